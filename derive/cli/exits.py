"""derive's exit codes, and the --help epilog that lists them with the size limits."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TOOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug, not the user's input

EPILOG = """\
exit codes:
  0    ok
  1    a check or claim failed
  2    bad input or usage (one line on stderr, starting "derive: ")
  3    an external tool (pdflatex, latexmk) failed or is missing
  130  interrupted (Ctrl-C); no partial output file is left behind
  70   internal error, a bug in derive (DERIVE_DEBUG=1 shows the traceback)

limits (a bigger network is refused up front, naming the flag to pass):
  --max-params N   or DERIVE_MAX_PARAMS=N   weights + biases (default 250000)
  --max-depth N    or DERIVE_MAX_DEPTH=N    layers (default 1000)"""

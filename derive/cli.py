"""Stage 6: the command line, a thin layer over the Python API.

    derive                      build the default example's documents into output/
    derive grad SPEC [--values FILE] [--json] [--values-only]
    derive check SPEC [--values FILE] [--points N] [--against torch]
    derive explain SPEC [--format pdf,tex,md,html] [-o DIR] [--params ...] [--snippet | --part ...]
    derive which SPEC [PARAM] [--json] [--format md|tex|html] [--notation] [--loss-symbol] [--question]
    derive claim SPEC PARAM EXPR [--values FILE] [--json]
    derive code SPEC --target numpy|torch [-o FILE]

A spec is a TOML file or the shorthand --layers 2,3,1 --activation tanh,sigmoid
--loss bce [--no-bias].  Exit codes: 0 ok, 1 a check or claim failed, 2 bad
input or usage, 3 an external tool failed, 130 interrupted, 70 a bug in
derive.  Every `DeriveError` becomes one line on stderr; no traceback reaches
the user (DERIVE_DEBUG=1 lets an internal error's traceback through).  The
size limits of spec.py are raised per run with --max-params / --max-depth,
accepted before or after the subcommand.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from .errors import DeriveError, SpecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TOOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug, not the user's input
DEFAULT_EXAMPLE = Path(__file__).parent / "data" / "default.toml"

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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        where = self.prog.removeprefix("derive").strip()
        raise SpecError(f"{where + ': ' if where else ''}{message} (see {self.prog} --help)")


def _limit(text: str) -> int:
    value = text.strip().replace("_", "")
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def _limit_arguments(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's missing flag must not overwrite one given before it
    p.add_argument("--max-params", type=_limit, metavar="N", default=argparse.SUPPRESS,
                   help="allow networks of up to N parameters (default 250000; "
                        "env DERIVE_MAX_PARAMS)")
    p.add_argument("--max-depth", type=_limit, metavar="N", default=argparse.SUPPRESS,
                   help="allow networks of up to N layers (default 1000; env DERIVE_MAX_DEPTH)")


def _spec_arguments(p: argparse.ArgumentParser, values: bool = True) -> None:
    p.add_argument("spec", nargs="?", help="network spec (TOML); or use --layers ...")
    p.add_argument("--layers", help="shorthand: sizes, input first, e.g. 2,3,1")
    p.add_argument("--activation", help="shorthand: one name, or one per layer: tanh,sigmoid")
    p.add_argument("--loss", help="shorthand: loss name (default half_sse)")
    p.add_argument("--no-bias", action="store_true", help="shorthand: neurons without biases")
    if values:
        p.add_argument("--values", metavar="FILE", help="values TOML (overrides the spec's [values])")
    _limit_arguments(p)


def _which_parser(sub) -> None:
    """`derive which`: the reader's notation and loss symbol as for explain, and the question."""
    p = sub.add_parser("which", help='answer "which derivative does backprop use?" for a parameter',
                       epilog=EPILOG)
    _spec_arguments(p)
    p.add_argument("param", nargs="?", help='parameter, e.g. "W1[1,1]" (default: every layer)')
    p.add_argument("--json", action="store_true")
    p.add_argument("--format", default="md", help="md, tex or html (a self-contained page)")
    p.add_argument("--notation", default="nielsen", help="nielsen (w_jk, k to j) or ij (w_ij, i to j)")
    p.add_argument("--loss-symbol", default="L", help="L, C or E")
    # the names are answer_words.QUESTIONS (not imported here: --help loads no SymPy)
    p.add_argument("--question", default="auto",
                   help="what the answer opens with: auto (from the parameter), which, output, "
                        "hidden, bias, p-y (why p - y after softmax), transpose (why W^T delta)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="derive", description="Exact, verified backpropagation derivations.",
                     epilog=EPILOG)
    _limit_arguments(parser)
    from importlib.metadata import version

    parser.add_argument("--version", action="version", version=f"derive {version('derive')}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("grad", help="every dL/dparam, as a table or JSON", epilog=EPILOG)
    _spec_arguments(p)
    p.add_argument("--json", action="store_true", help="print the JSON object (see README)")
    p.add_argument("--values-only", action="store_true",
                   help="the loss and the numbers alone, no formulas (needs values)")

    p = sub.add_parser("check", help="compare every derived gradient with complex-step numbers",
                       epilog=EPILOG)
    _spec_arguments(p)
    p.add_argument("--points", type=int, default=None, help="random points besides the values (default 3)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random points")
    p.add_argument("--against", choices=["torch"], help="also compare with PyTorch autograd")

    p = sub.add_parser("explain", help="a derivation document (PDF, LaTeX, Markdown)", epilog=EPILOG)
    _spec_arguments(p)
    p.add_argument("--format", default=None,
                   help="comma list of pdf, tex, md, html (default pdf,tex,md)")
    p.add_argument("-o", "--output", default="output", help="output folder (default output/)")
    p.add_argument("--params", default=None, help='parameters to derive step by step, e.g. "W1[1,1],b2[*]"')
    p.add_argument("--snippet", action="store_true", help="only the equations, for \\input or pasting "
                   "(writes <stem>-snippet.tex and .md)")
    p.add_argument("--part", default=None, metavar="PARTS",
                   help="only these parts, as a snippet for one slide: a comma list of local, chain "
                        "(with --params), recursion, matrix, example (needs values); "
                        "writes <stem>-<part>.tex and .md")
    p.add_argument("--paper", default="a4", choices=["a4", "letter"], help="PDF paper size (default a4)")
    p.add_argument("--notation", default="nielsen", help="nielsen (W_jk, from k to j) or ij (W_ij, from i to j)")
    p.add_argument("--loss-symbol", default="L", help="L, C or E")
    p.add_argument("--templates", default=None, metavar="DIR",
                   help="folder of templates overriding the built-in ones of the same name "
                        "(see docs/templates.md)")

    _which_parser(sub)

    p = sub.add_parser("claim", help="check a claimed formula for dL/dPARAM", epilog=EPILOG,
                       usage="derive claim [SPEC] PARAM EXPR [options]")
    _spec_arguments(p)
    # Optional here so that options may come anywhere; cmd_claim says what is missing.
    p.add_argument("param", nargs="?", help='parameter, e.g. "W1[1,1]"')
    p.add_argument("expr", nargs="?", help='claimed formula in x[k], y[j], W1[j,k], b1[j], z1[j], '
                   "a1[j], delta1[j] (dL/dz1[j]), L and sigmoid'(z1[j]), or the API's names x_1, "
                   "W1_j_k, ...; e.g. \"delta2[1]*a1[1]\"; it may start with '-'")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON (see README)")

    p = sub.add_parser("code", help="export the gradients as a standalone NumPy or PyTorch module",
                       epilog=EPILOG)
    _spec_arguments(p, values=False)
    p.add_argument("--target", choices=["numpy", "torch"], default="numpy")
    p.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")
    _exercises_parser(sub)
    return parser


def _exercises_parser(sub) -> None:
    p = sub.add_parser("exercises", help="exercise sheets and quizzes with answer keys",
                       epilog=EPILOG)
    _spec_arguments(p, values=False)
    p.add_argument("--count", type=int, default=5, help="variants, each with its own values (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed of the values (default 1)")
    p.add_argument("--questions", default=None,
                   help="comma list of forward, loss, delta, gradient, update, factors, formula (default all)")
    p.add_argument("--format", default=None, help="comma list of pdf, tex, md, moodle, qti, json "
                                                  "(default pdf,md,json)")
    p.add_argument("-o", "--output", default="output", help="output folder (default output/)")


def load_network(args):
    """The Network the arguments describe: a spec file, or the shorthand."""
    from .api import Network, load

    values_path = getattr(args, "values", None)
    shorthand = any([args.layers, args.activation, args.loss, args.no_bias])
    if args.spec and shorthand:
        raise SpecError("give a spec file or --layers/--activation/--loss, not both")
    if args.spec:
        return load(args.spec, values_path)
    if not args.layers:
        raise SpecError("no network: give a spec file or --layers, e.g. --layers 2,3,1")
    sizes = []
    for i, part in enumerate(args.layers.split(",")):
        part = part.strip()
        if not part.lstrip("-").isdigit():
            raise SpecError(f"--layers item {i + 1} must be a positive integer, got {part!r}")
        sizes.append(int(part))
    acts = (args.activation or "sigmoid").split(",")
    raw_values = None
    if values_path:
        from .spec.loading import load_values_table

        raw_values = load_values_table(values_path)
    return Network(sizes, acts[0] if len(acts) == 1 else acts, args.loss or "half_sse",
                   bias=not args.no_bias, values=raw_values)


def cmd_grad(args) -> int:
    from .render.report import grad_table, write_grad_json

    net = load_network(args)
    if args.json:
        write_grad_json(net, sys.stdout, values_only=args.values_only)
    else:
        for line in grad_table(net, values_only=args.values_only):
            print(line)
    return EXIT_OK


def cmd_check(args) -> int:
    net = load_network(args)
    points = 3 if args.points is None else args.points
    report = net.check(points=points, seed=args.seed)
    torch_report = None
    if args.against == "torch":  # before printing: a network torch can't build is one error line
        from .check.torchcheck import compare_with_torch

        kwargs = {} if args.seed is None else {"seed": args.seed}
        torch_report = compare_with_torch(net, points=points, **kwargs)
    print(report.table())
    if torch_report is not None:
        print("\n" + torch_report.table())
    ok = report.passed and (torch_report is None or torch_report.passed)
    return EXIT_OK if ok else EXIT_FAILED


def _answers(net, notation: str = "nielsen", loss_symbol: str = "L"):
    """The `which --json` engine, for the HTML page's paths (render cannot import qa)."""
    from .qa.answer import which

    return lambda name: which(net, name, notation=notation, loss_symbol=loss_symbol).to_json()


def cmd_explain(args) -> int:
    from .render.document import build

    _check_params_list(args.params)
    net = load_network(args)
    formats = tuple(f.strip() for f in args.format.split(",")) if args.format else None
    bad = [f for f in formats or () if f.lower() not in ("pdf", "tex", "md", "html")]
    if bad:
        raise SpecError(f"format {','.join(bad)!r}; expected a comma list of pdf, tex, md, html")
    html = formats is not None and "html" in [f.lower() for f in formats]
    others = tuple(f for f in formats or () if f.lower() != "html") or (None if not html else ())
    stem = Path(args.spec).stem if args.spec else None
    if html and (args.snippet or args.part):
        raise SpecError("--snippet writes LaTeX and Markdown fragments; the HTML page is a whole "
                        "document (drop --snippet or html from --format)")
    written = [] if others == () else build(
        net, formats=others, outdir=args.output, params=args.params, snippet=args.snippet,
        notation=args.notation, loss_symbol=args.loss_symbol, templates=args.templates,
        part=args.part, paper=args.paper, stem=stem)
    if html:
        from .render.html import write_page

        written.append(write_page(net, _answers(net, args.notation, args.loss_symbol), args.output,
                                  stem, params=args.params, notation=args.notation,
                                  loss_symbol=args.loss_symbol, templates=args.templates))
    for path in written:
        print(path)
    return EXIT_OK


def cmd_default(args) -> int:
    from .api import load
    from .render.document import build

    for path in build(load(DEFAULT_EXAMPLE), outdir="output"):
        print(path)
    return EXIT_OK


def cmd_which(args) -> int:
    import json

    from .qa.answer import which

    net = load_network(args)
    answer = which(net, args.param, notation=args.notation, loss_symbol=args.loss_symbol,
                   question=args.question)
    if args.json:
        print(json.dumps(answer.to_json(), indent=1))
    elif args.format == "tex":
        print(answer.latex())
    elif args.format == "md":
        print(answer.markdown())
    elif args.format == "html":  # the handout with this answer as its text, on stdout
        from .render.html import page

        print(page(net, _answers(net, args.notation, args.loss_symbol), answer.markdown(),
                   args.param and answer.param.name))
    else:
        raise SpecError(f"--format {args.format!r}; expected md, tex or html")
    return EXIT_OK


def cmd_claim(args) -> int:
    import json

    from .qa.claim import check_claim

    missing = [name for name in ("PARAM", "EXPR") if getattr(args, name.lower()) is None]
    if missing:
        raise SpecError(f"claim: missing {' and '.join(missing)}: usage derive claim SPEC PARAM "
                        f"EXPR, e.g. derive claim net.toml \"W2[1,1]\" \"delta2[1]*a1[1]\" "
                        f"(see derive claim --help)")
    verdict = check_claim(load_network(args), args.param, args.expr)
    print(json.dumps(verdict.to_json(), indent=1) if args.json else verdict.text())
    return EXIT_OK if verdict.correct else EXIT_FAILED


def _claim_formula(word: str) -> bool:
    """A word argparse left over that is a claim's formula, not a mistyped option:
    "-(a2[1]-y[1])*a1[1]" is a formula, "--jsn" and "-j" are not."""
    return not re.fullmatch(r"--?[A-Za-z][A-Za-z0-9-]*(=.*)?", word)


def cmd_code(args) -> int:
    from .export.codegen import generate
    from .files import write_text_atomic

    source = generate(load_network(args), target=args.target)
    if args.output:
        print(write_text_atomic(Path(args.output), source))
    else:
        sys.stdout.write(source)
    return EXIT_OK


def cmd_exercises(args) -> int:
    from .qa.quiz import build

    stem = f"{Path(args.spec).stem}-exercises" if args.spec else "exercises"
    for path in build(load_network(args), args.output, count=args.count, seed=args.seed,
                      kinds=args.questions, formats=args.format, stem=stem):
        print(path)
    return EXIT_OK


COMMANDS = {None: cmd_default, "grad": cmd_grad, "check": cmd_check, "explain": cmd_explain,
            "which": cmd_which, "claim": cmd_claim, "code": cmd_code, "exercises": cmd_exercises}


def parse_args(argv: list[str] | None):
    """argparse, plus what it cannot do alone with optional positionals.

    `derive which SPEC --json PARAM` leaves PARAM unmatched, because argparse
    fills positionals in one chunk; leftover words fill the empty positional
    slots in order.  With the shorthand (`--layers ...`) there is no SPEC, so
    a word argparse took as SPEC is the next positional (the parameter).  A
    claim's formula may start with '-' ("-(a2[1]-y[1])*a1[1]"): argparse leaves
    it over as an unknown option, and it fills the EXPR slot unless it looks
    like one (`_claim_formula`).
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    slots = [name for name in ("spec", "param", "expr") if hasattr(args, name)]
    words = [getattr(args, name) for name in slots if getattr(args, name) is not None]
    if (getattr(args, "layers", None) and getattr(args, "spec", None) and "param" in slots
            and len(words) + len(extras) < len(slots)):  # more words: a spec file besides --layers
        extras[:0] = words
        for name in slots:
            setattr(args, name, None)
    for word in list(extras):
        empty = [name for name in slots if getattr(args, name) is None
                 and not (name == "spec" and getattr(args, "layers", None))]
        dash = word.startswith("-") and not (empty[:1] == ["expr"] and _claim_formula(word))
        if dash or not empty:
            hint = ("; a formula that looks like an option follows '--': derive claim SPEC PARAM -- EXPR"
                    if args.command == "claim" and dash and word[1:2] != "-" else "")
            _usage_error(args.command, f"unrecognized arguments: {' '.join(extras)}{hint}")
        setattr(args, empty[0], word)
        extras.remove(word)
    return args


def _usage_error(command: str | None, message: str):
    """_Parser.error's line, pointing at the subcommand's own --help where there is one."""
    prog = f"derive {command}" if command else "derive"
    raise SpecError(f"{command + ': ' if command else ''}{message} (see {prog} --help)")


def _check_params_list(text: str | None) -> None:
    """--params "W1[1,1] b2[1]": say the list is comma-separated, not only that it is bad."""
    if not text:
        return
    tight = re.sub(r"\s+(?=[^\[\]]*\])", "", text.strip())  # W1[1, 1] is one name
    if re.search(r"[^\s,]\s+[^\s,]", tight):
        fixed = re.sub(r"[\s,]+", ",", tight)
        raise SpecError(f"--params {text!r}: separate the names with commas, e.g. {fixed!r}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; every outcome is an exit code, every failure one stderr line."""
    from .spec.sizes import limits

    try:
        args = parse_args(argv)
        with limits(getattr(args, "max_params", None), getattr(args, "max_depth", None)):
            return COMMANDS[args.command](args)
    except DeriveError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # `derive grad ... | head`: the reader left, which is fine
        _silence_stdout()
        return EXIT_OK
    except SystemExit as exc:  # --help: argparse printed it and exits 0
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except MemoryError:
        return _fail("out of memory; try a smaller network or lower --max-params", EXIT_INTERNAL)
    except Exception as exc:
        if os.environ.get("DERIVE_DEBUG"):
            raise
        first = (str(exc).splitlines() or [""])[0][:200]
        return _fail(f"internal error, a bug in derive: {type(exc).__name__}: {first} "
                     f"(DERIVE_DEBUG=1 shows the traceback)", EXIT_INTERNAL)


def _fail(message: str, code: int) -> int:
    """Print `derive: message` as exactly one line, control characters escaped."""
    line = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in message)
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        _silence_stdout()
    print(f"derive: {line}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        pass


if __name__ == "__main__":
    sys.exit(main())

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
size limits of spec/sizes.py are raised per run with --max-params / --max-depth,
accepted before or after the subcommand.
"""

from __future__ import annotations

import os
import sys

from ..errors import DeriveError
from .commands import COMMANDS, DEFAULT_EXAMPLE, load_network
from .exits import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .parser import build_parser, parse_args

__all__ = ["COMMANDS", "DEFAULT_EXAMPLE", "EXIT_INTERNAL", "build_parser", "load_network", "main",
           "parse_args"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; every outcome is an exit code, every failure one stderr line."""
    from ..spec.sizes import limits

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

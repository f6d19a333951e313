"""The argument parser: one sub-parser per command, and the fixes argparse needs.

Every usage error is a `SpecError` (one `derive: ...` line, exit 2) naming the
subcommand's own --help.  `parse_args` fills positional slots argparse leaves
empty (options may come anywhere; a claim's formula may start with '-').
Nothing here imports SymPy or NumPy: `derive --help` answers at once.
"""

from __future__ import annotations

import argparse
import re

from ..errors import SpecError
from .exits import EPILOG


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
    t = p.add_argument_group("minibatch, layout and regulariser (also override a spec file's)")
    t.add_argument("--batch", metavar="M", help="examples in the minibatch (default 1)")
    t.add_argument("--reduction", choices=("mean", "sum"), help="mean (default) or sum of the losses")
    t.add_argument("--layout", choices=("column", "row"),
                   help="column: z = W a + b (default); row: Z = X W + b, W<l>[k,j]")
    t.add_argument("--l2", metavar="LAMBDA", help="adds (l2/2) sum w^2: gradient l2 w")
    t.add_argument("--l1", metavar="LAMBDA", help="adds l1 sum |w|: gradient l1 sign(w)")
    t.add_argument("--regularize-biases", action="store_true", help="regularise the biases too")
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
                        "hidden, bias, p-y (why p - y after softmax), transpose (why W^T delta), "
                        "bias-batch (why bias gradients are summed over a minibatch), "
                        "l2 (what the regulariser adds)")


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: global limits and --version, then one sub-parser per command."""
    parser = _Parser(prog="derive", description="Exact, verified backpropagation derivations.",
                     epilog=EPILOG)
    _limit_arguments(parser)
    from importlib.metadata import version

    parser.add_argument("--version", action="version", version=f"derive {version('derive')}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for add in (_grad_parser, _check_parser, _explain_parser, _which_parser, _claim_parser,
                _code_parser, _exercises_parser):
        add(sub)
    return parser


def _grad_parser(sub) -> None:
    p = sub.add_parser("grad", help="every dL/dparam, as a table or JSON", epilog=EPILOG)
    _spec_arguments(p)
    p.add_argument("--json", action="store_true", help="print the JSON object (see README)")
    p.add_argument("--values-only", action="store_true",
                   help="the loss and the numbers alone, no formulas (needs values)")


def _check_parser(sub) -> None:
    p = sub.add_parser("check", help="compare every derived gradient with complex-step numbers",
                       epilog=EPILOG)
    _spec_arguments(p)
    p.add_argument("--points", type=int, default=None, help="random points besides the values (default 3)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random points")
    p.add_argument("--against", choices=["torch"], help="also compare with PyTorch autograd")


def _explain_parser(sub) -> None:
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


def _claim_parser(sub) -> None:
    p = sub.add_parser("claim", help="check a claimed formula for dL/dPARAM", epilog=EPILOG,
                       usage="derive claim [SPEC] PARAM EXPR [options]")
    _spec_arguments(p)
    # Optional here so that options may come anywhere; cmd_claim says what is missing.
    p.add_argument("param", nargs="?", help='parameter, e.g. "W1[1,1]"; a bare matrix name ("W2", '
                   '"b1") claims the whole matrix')
    p.add_argument("expr", nargs="?", help='claimed formula in x[k], y[j], W1[j,k], b1[j], z1[j], '
                   "a1[j], delta1[j] (dL/dz1[j]), L and sigmoid'(z1[j]), or the API's names x_1, "
                   "W1_j_k, ...; e.g. \"delta2[1]*a1[1]\"; it may start with '-'.  For a matrix "
                   "PARAM, in X, Y, W<l>, b<l>, Z<l>, A<l>, dZ<l> (per-example dloss/dz), m, l2, l1 "
                   "with @, .T, + - * / **, sum/mean(M, axis=0|1) and the elementwise functions, "
                   "in the spec's layout: \"dZ2 @ A1.T / m + l2*W2\" (column), "
                   "\"A1.T @ dZ2 / m\" (row)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON (see README)")


def _code_parser(sub) -> None:
    p = sub.add_parser("code", help="export the gradients as a standalone NumPy or PyTorch module",
                       epilog=EPILOG)
    _spec_arguments(p, values=False)
    p.add_argument("--target", choices=["numpy", "torch"], default="numpy")
    p.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")


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


def _claim_formula(word: str) -> bool:
    """A word argparse left over that is a claim's formula, not a mistyped option:
    "-(a2[1]-y[1])*a1[1]" is a formula, "--jsn" and "-j" are not."""
    return not re.fullmatch(r"--?[A-Za-z][A-Za-z0-9-]*(=.*)?", word)

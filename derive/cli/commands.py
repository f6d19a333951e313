"""One handler per command: each builds the network, asks the API or a stage, prints.

Stages are imported inside the handler that needs them, so a command pays
only for its own imports.  `COMMANDS` maps a subcommand to its handler.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ..errors import SpecError
from .exits import EXIT_FAILED, EXIT_OK


DEFAULT_EXAMPLE = Path(__file__).parent.parent / "data" / "default.toml"


def load_network(args, stacks: bool = False):
    """The Network the arguments describe: a spec file, or the shorthand.  A [[layer]]
    file gives a StackNetwork, which only the commands passing `stacks` read so far."""
    net = _load_network(args)
    if not stacks and _is_stack(net):
        from ..api.stack import unsupported

        raise unsupported(f"derive {args.command}")
    return net


def _is_stack(net) -> bool:
    """A [[layer]] network (api/stack.py), told by its type's name so that the CLI does not
    import the stack modules for a layers = [...] network."""
    return type(net).__name__ == "StackNetwork"


def _load_network(args):
    from ..api import Network, load

    values_path = getattr(args, "values", None)
    shorthand = any([args.layers, args.activation, args.loss, args.no_bias])
    if args.spec and shorthand:
        raise SpecError("give a spec file or --layers/--activation/--loss, not both")
    training = _training_flags(args)
    if args.spec:
        return load(args.spec, values_path, **training)
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
        from ..spec.loading import load_values_table

        raw_values = load_values_table(values_path)
    return Network(sizes, acts[0] if len(acts) == 1 else acts, args.loss or "half_sse",
                   bias=not args.no_bias, values=raw_values, **training)


def _training_flags(args) -> dict:
    """--batch, --reduction, --layout, --l2, --l1, --regularize-biases as spec fields
    (only those given; numbers checked as the spec's own fields are)."""
    out = {}
    if getattr(args, "batch", None) is not None:
        text = args.batch.strip()
        if not text.isdigit():
            raise SpecError(f"--batch must be a positive integer, got {args.batch!r}")
        out["batch"] = int(text)
    for flag in ("reduction", "layout"):
        if getattr(args, flag, None) is not None:
            out[flag] = getattr(args, flag)
    reg = {}
    for flag in ("l2", "l1"):
        text = getattr(args, flag, None)
        if text is not None:
            try:
                reg[flag] = float(text)
            except ValueError:
                raise SpecError(f"--{flag} must be a number >= 0, got {text!r}") from None
    if getattr(args, "regularize_biases", False):
        reg["biases"] = True
    if reg:
        out["regularization"] = reg
    return out


def cmd_grad(args) -> int:
    from ..render.report import grad_table, write_grad_json

    net = load_network(args, stacks=True)
    if _is_stack(net):
        from ..render.report import stack_grad

        for chunk in stack_grad(net, args.json, args.values_only):
            sys.stdout.write(chunk if args.json else chunk + "\n")
        if args.json:
            sys.stdout.write("\n")
        return EXIT_OK
    if args.json:
        write_grad_json(net, sys.stdout, values_only=args.values_only)
    else:
        for line in grad_table(net, values_only=args.values_only):
            print(line)
    return EXIT_OK


def cmd_check(args) -> int:
    net = load_network(args, stacks=True)
    if _is_stack(net):
        return _check_stack(net, args)
    points = 3 if args.points is None else args.points
    report = net.check(points=points, seed=args.seed)
    torch_report = None
    if args.against == "torch":  # before printing: a network torch can't build is one error line
        from ..check.torchcheck import compare_with_torch

        kwargs = {} if args.seed is None else {"seed": args.seed}
        torch_report = compare_with_torch(net, points=points, **kwargs)
    print(report.table())
    if torch_report is not None:
        print("\n" + torch_report.table())
    ok = report.passed and (torch_report is None or torch_report.passed)
    return EXIT_OK if ok else EXIT_FAILED


def _check_stack(net, args) -> int:
    """`derive check` of a [[layer]] network: complex-step, and torch if asked."""
    points = 3 if args.points is None else args.points
    report = net.check(points=points, seed=args.seed)
    torch_report = None
    if args.against == "torch":
        from ..check.stack_torch import compare_stack_with_torch

        kwargs = {} if args.seed is None else {"seed": args.seed}
        torch_report = compare_stack_with_torch(net.spec, net.values(), points, **kwargs)
    print(report.table())
    if torch_report is not None:
        print("\n" + torch_report.table())
    ok = report.passed and (torch_report is None or torch_report.passed)
    return EXIT_OK if ok else EXIT_FAILED


def _answers(net, notation: str = "nielsen", loss_symbol: str = "L"):
    """The `which --json` engine, for the HTML page's paths (render cannot import qa)."""
    from ..qa.answer import which

    return lambda name: which(net, name, notation=notation, loss_symbol=loss_symbol).to_json()


def cmd_explain(args) -> int:
    from ..render.document import build

    _check_params_list(args.params)
    net = load_network(args, stacks=True)
    formats = tuple(f.strip() for f in args.format.split(",")) if args.format else None
    bad = [f for f in formats or () if f.lower() not in ("pdf", "tex", "md", "html")]
    if bad:
        raise SpecError(f"format {','.join(bad)!r}; expected a comma list of pdf, tex, md, html")
    if _is_stack(net):
        return _explain_stack(net, args, formats)
    html = formats is not None and "html" in [f.lower() for f in formats]
    others = tuple(f for f in formats or () if f.lower() != "html") or (None if not html else ())
    stem = Path(args.spec).stem if args.spec else None
    if html and (args.snippet or args.part):
        flag = "--snippet" if args.snippet else "--part"
        raise SpecError(f"{flag} writes LaTeX and Markdown fragments; the HTML page is a whole "
                        f"document (drop {flag} or html from --format)")
    written = [] if others == () else build(
        net, formats=others, outdir=args.output, params=args.params, snippet=args.snippet,
        notation=args.notation, loss_symbol=args.loss_symbol, templates=args.templates,
        part=args.part, paper=args.paper, stem=stem)
    if html:
        from ..render.html import write_page

        written.append(write_page(net, _answers(net, args.notation, args.loss_symbol), args.output,
                                  stem, params=args.params, notation=args.notation,
                                  loss_symbol=args.loss_symbol, templates=args.templates))
    for path in written:
        print(path)
    return EXIT_OK


def _explain_stack(net, args, formats) -> int:
    """`derive explain` of a [[layer]] network: render/stack_document.py's own document."""
    from ..render.stack_document import build_stack

    if formats and "html" in [f.lower() for f in formats]:
        from ..api.stack import unsupported

        raise unsupported("derive explain --format html")
    for path in build_stack(net, formats=formats, outdir=args.output, params=args.params,
                            snippet=args.snippet, part=args.part, templates=args.templates,
                            paper=args.paper, stem=Path(args.spec).stem if args.spec else None):
        print(path)
    return EXIT_OK


def cmd_default(args) -> int:
    from ..api import load
    from ..render.document import build

    for path in build(load(DEFAULT_EXAMPLE), outdir="output"):
        print(path)
    return EXIT_OK


def cmd_which(args) -> int:
    import json

    from ..qa.answer import which

    net = load_network(args, stacks=True)
    if _is_stack(net):
        return _which_stack(net, args)
    answer = which(net, args.param, notation=args.notation, loss_symbol=args.loss_symbol,
                   question=args.question)
    if args.json:
        print(json.dumps(answer.to_json(), indent=1))
    elif args.format == "tex":
        print(answer.latex())
    elif args.format == "md":
        print(answer.markdown())
    elif args.format == "html":  # the handout with this answer as its text, on stdout
        from ..render.html import page

        print(page(net, _answers(net, args.notation, args.loss_symbol), answer.markdown(),
                   args.param and answer.param.name))
    else:
        raise SpecError(f"--format {args.format!r}; expected md, tex or html")
    return EXIT_OK


def _which_stack(net, args) -> int:
    import json

    from ..qa.stack_answer import stack_which

    if args.format == "html":
        from ..api.stack import unsupported

        raise unsupported("derive which --format html")
    if getattr(args, "question", "auto") not in (None, "auto"):
        raise SpecError(f"--question {args.question} is for layers = [...] networks; a [[layer]] network's "
                        f"answer follows its parameter (drop --question)")
    answer = stack_which(net, args.param)
    if args.json:
        print(json.dumps(answer.to_json(), indent=1))
    elif args.format in ("md", "tex"):
        print(answer.markdown() if args.format == "md" else answer.latex(), end="")
    else:
        raise SpecError(f"--format {args.format!r}; expected md, tex or html")
    return EXIT_OK


def cmd_claim(args) -> int:
    import json

    missing = [name for name in ("PARAM", "EXPR") if getattr(args, name.lower()) is None]
    if missing:
        raise SpecError(f"claim: missing {' and '.join(missing)}: usage derive claim SPEC PARAM "
                        f"EXPR, e.g. derive claim net.toml \"W2[1,1]\" \"delta2[1]*a1[1]\" "
                        f"(see derive claim --help)")
    verdict = load_network(args, stacks=True).claim(args.param, args.expr)  # entry, matrix or stack
    print(json.dumps(verdict.to_json(), indent=1) if args.json else verdict.text())
    return EXIT_OK if verdict.correct else EXIT_FAILED


def cmd_code(args) -> int:
    from ..export.codegen import generate
    from ..files import write_text_atomic

    net = load_network(args, stacks=True)  # a StackNetwork writes its own (export/stackgen.py)
    source = net.code(args.target) if _is_stack(net) else generate(net, args.target)
    if args.output:
        print(write_text_atomic(Path(args.output), source))
    else:
        sys.stdout.write(source)
    return EXIT_OK


def cmd_exercises(args) -> int:
    from ..qa.quiz import build

    stem = f"{Path(args.spec).stem}-exercises" if args.spec else "exercises"
    for path in build(load_network(args), args.output, count=args.count, seed=args.seed,
                      kinds=args.questions, formats=args.format, stem=stem):
        print(path)
    return EXIT_OK


def _check_params_list(text: str | None) -> None:
    """--params "W1[1,1] b2[1]": say the list is comma-separated, not only that it is bad."""
    if not text:
        return
    tight = re.sub(r"\s+(?=[^\[\]]*\])", "", text.strip())  # W1[1, 1] is one name
    if re.search(r"[^\s,]\s+[^\s,]", tight):
        fixed = re.sub(r"[\s,]+", ",", tight)
        raise SpecError(f"--params {text!r}: separate the names with commas, e.g. {fixed!r}")


COMMANDS = {None: cmd_default, "grad": cmd_grad, "check": cmd_check, "explain": cmd_explain,
            "which": cmd_which, "claim": cmd_claim, "code": cmd_code, "exercises": cmd_exercises}

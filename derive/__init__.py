"""derive: exact, verified backpropagation derivations for any MLP.

The pipeline flows one way, one module per stage:

    spec.py        the network spec and values, validated      (stage 1)
    model.py       the symbolic model: symbols, forward pass    (stage 2)
    backprop.py    the factored derivation (delta equations)    (stage 3)
      simplify.py  the display form; explicit.py the closed form
      paths.py     the chain rule as a sum over labelled paths
      evaluate.py  numbers from the derivation, layer by layer (numeric.py compiles)
    verify.py      the independent complex-step check           (stage 4)
      torchcheck.py  the same against PyTorch autograd (optional)
    rendering                                                   (stage 5)
      printing.py  LaTeX and text printers; report.py grad's table and JSON
      document.py  documents: content.py, walkthrough.py, worked.py, formulas.py,
                   diagram.py, templating.py, render_latex.py
      answer.py    `which` (chain.py); claim.py `claim` (points.py, diagnosis.py)
      codegen.py   standalone NumPy / PyTorch modules
    cli.py         the command line over api.py                 (stage 6)

registry.py holds the activation and loss tables every stage reads;
expressions.py parses user formulas by a whitelist, never executing them;
files.py writes every output atomically.
"""

from importlib.metadata import version as _version

from .errors import DeriveError, RenderError, SpecError, ToolError, VerificationError

#: Names loaded on first use, so `derive --help` and `import derive.errors` pay no SymPy import.
_LAZY = {"Network": "api", "Gradient": "api", "load": "api"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")

__all__ = ["Network", "Gradient", "load", "DeriveError", "SpecError", "VerificationError",
           "RenderError", "ToolError"]
__version__ = _version("derive")

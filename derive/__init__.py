"""derive: exact, verified backpropagation derivations for any MLP.

The pipeline flows one way, and the subpackages are its stages:

    spec/       the network spec and values, validated; the activation and loss tables
    calculus/   the symbolic model, the factored derivation, display and closed forms, paths
    check/      numbers from the derivation and the independent checks (complex step, torch)
    render/     LaTeX and text printers, documents, grad's table and JSON
    qa/         `which` and `claim`;  export/  standalone NumPy / PyTorch code
    api/        the Python API (Network) over the stages;  cli/  the command line over it

errors.py holds the error tree and files.py bounded reads and atomic writes.  A module
imports only from its own package or those listed above it (tests/test_architecture.py);
docs/architecture.md says where a new activation, loss, format or command goes.
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

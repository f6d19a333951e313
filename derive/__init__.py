"""derive: exact, verified backpropagation derivations for any MLP.

The pipeline flows one way, one module per stage:

    spec.py      the network spec and values, validated     (stage 1)
    model.py     the symbolic model: symbols, forward pass   (stage 2)
    backprop.py  the factored derivation (delta equations)   (stage 3)
    simplify.py  the display form; explicit.py the closed form
    evaluate.py  numbers from the derivation, layer by layer
    verify.py    the independent complex-step check          (stage 4)
    printing.py, report.py, document.py ...  rendering       (stage 5)
    cli.py       the command line over api.py                (stage 6)

registry.py holds the activation and loss tables every stage reads.
"""

from .api import Gradient, Network, load
from .errors import DeriveError, RenderError, SpecError, ToolError, VerificationError

__all__ = ["Network", "Gradient", "load", "DeriveError", "SpecError", "VerificationError",
           "RenderError", "ToolError"]
__version__ = "0.1.0"

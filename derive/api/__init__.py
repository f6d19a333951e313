"""The Python API: `Network` ties the stages together; the CLI calls only this.

    network.py   Network (and `load`): the stages, built on first use, and the questions
    gradient.py  Gradient: one parameter's factored, simplified and explicit forms, its paths
"""

from .gradient import Gradient
from .network import MAX_POINTS, Network, load

__all__ = ["Gradient", "MAX_POINTS", "Network", "load"]

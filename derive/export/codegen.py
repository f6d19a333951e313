"""Export a network's loss and gradients as a standalone NumPy or PyTorch module.

The generated module does not import derive.  Its backward pass is printed
from the derivation itself, one vectorised step per layer: the Simplifier's
output delta (``a2 - y``, ``a2*(1 - a2)*(a2 - y)``) and local
derivatives (``1 - a1**2``, ``a1*(1 - a1)``) are taken for neuron 1 of a
layer, their network symbols a(l)_1, z(l)_1, y_1 are swapped for the layer's
array variables a1, z1, y, and `ArrayPrinter` (SymPy's PythonCodePrinter with
our functions) writes them for NumPy or PyTorch.  The batch dimension comes
first: z1 = a0 @ W1.T + b1; delta(l) = (delta(l+1) @ W(l+1)) * f_l'; dL/dW(l)
= delta(l).T @ a(l-1).  In the row layout the module takes the user's
n_(l-1) x n_l matrices: z1 = a0 @ W1 + b1, delta(l) = (delta(l+1) @ W(l+1).T)
* f_l', dL/dW(l) = a(l-1).T @ delta(l), gradients shaped like W(l).

The spec's training fields (spec/training.py) decide the reduction: for the
mean the output delta is divided by the batch size m once, so every gradient
is that of the mean loss; for the sum it is not.  A regulariser is written into
the module as constants L2, L1 and the names REGULARIZED of the matrices it
covers: loss() adds (L2/2) sum w^2 + L1 sum |w|, gradients() adds
L2 w + L1 sign(w); the NumPy check() moves L1 weights within 1e-3 of 0 out of
|w|'s kink before its central differences.  A spec without these fields prints
the module it always did.

Numerical stability comes from the one table of stable rewrites that the
checks use too (check/stable.py), applied to every printed expression:
1/(1+e^-u) -> sigmoid(u), e^u sigmoid(-u) -> sigmoid(u), ln(1+e^u) ->
softplus(u), ln sigmoid(u) -> -softplus(-u), 1 - sigmoid(u) -> sigmoid(-u),
e^u - 1 -> expm1(u), 1 + erf(u) -> erfc(-u), ...; its placeholders print as
the module's helpers (`FUNCTIONS`).  softmax's cross-entropy is written with
log_softmax (log-sum-exp).  So bce of a sigmoid output and cross_entropy of a
softmax are computed from z, finite for any z.  Templates in templates/code/ arrange the printed pieces.
"""

from __future__ import annotations

from pathlib import Path

import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter, _known_functions_math

from ..check.stable import ERFC, SIGMOID, SOFTPLUS, stabilize
from ..errors import RenderError
from ..spec.registry import A, X, Y

TARGETS = ("numpy", "torch")
_PACKAGE = Path(__file__).resolve().parent.parent  # derive/
#: The module templates: package data when installed, else the source tree's templates/code.
TEMPLATES = next((d for d in (_PACKAGE / "templates" / "code", _PACKAGE.parent / "templates" / "code")
                  if d.is_dir()), _PACKAGE.parent / "templates" / "code")


# -- stable forms --------------------------------------------------------------
class log_softmax(sympy.Function):
    """ln softmax(z)_j for a whole layer z, by log-sum-exp."""


# -- printing ------------------------------------------------------------------
#: Elementwise functions by SymPy name: (NumPy, PyTorch) spellings.
FUNCTIONS = {
    "exp": ("np.exp", "torch.exp"), "log": ("np.log", "torch.log"),
    "tanh": ("np.tanh", "torch.tanh"), "sinh": ("np.sinh", "torch.sinh"),
    "cosh": ("np.cosh", "torch.cosh"), "sin": ("np.sin", "torch.sin"),
    "cos": ("np.cos", "torch.cos"), "tan": ("np.tan", "torch.tan"),
    "atan": ("np.arctan", "torch.atan"), "asinh": ("np.arcsinh", "torch.asinh"),
    "erf": ("_erf", "torch.erf"), "sign": ("np.sign", "torch.sign"),
    "Abs": ("abs", "abs"), "log_softmax": ("_log_softmax", "_log_softmax"),
    # the placeholders of check/stable.py's rewrites, as the module's stable helpers
    SIGMOID.__name__: ("_sigmoid", "torch.sigmoid"), SOFTPLUS.__name__: ("_softplus", "_softplus"),
    ERFC.__name__: ("_erfc", "torch.erfc"), "expm1": ("np.expm1", "torch.expm1"),
    "log1p": ("np.log1p", "torch.log1p"),
}
#: The same functions on plain numbers (constants such as sqrt(2), erf(1)).
SCALAR = {"exp": "math.exp", "log": "math.log", "tanh": "math.tanh", "erf": "math.erf",
          "sinh": "math.sinh", "cosh": "math.cosh", "sin": "math.sin", "cos": "math.cos",
          "tan": "math.tan", "atan": "math.atan", "asinh": "math.asinh", "Abs": "abs",
          ERFC.__name__: "math.erfc", "expm1": "math.expm1", "log1p": "math.log1p"}


class ArrayPrinter(PythonCodePrinter):
    """Python source of an elementwise expression over NumPy arrays or torch tensors.

    Records the names the module must define or import in `self.used`.
    """

    _default_settings = {**PythonCodePrinter._default_settings, "target": "numpy"}

    def __init__(self, settings=None):
        super().__init__(settings)
        if self._settings["target"] not in TARGETS:
            raise ValueError(f"target {self._settings['target']!r}; expected one of {', '.join(TARGETS)}")
        self.torch = self._settings["target"] == "torch"
        self.used: set[str] = set()

    def _call(self, name: str, *args) -> str:
        self.used.add(name.split(".")[0])
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _print_Function(self, e):
        name = type(e).__name__
        if e.is_number and name in SCALAR:
            return self._call(SCALAR[name], *e.args)
        if name in FUNCTIONS:
            return self._call(FUNCTIONS[name][self.torch], *e.args)
        raise RenderError(f"code: no {self._settings['target']} code for the function {name!r} in {e}")

    def _print_Pow(self, e, rational=False):
        if e.base.is_number:
            self.used.add("math")
            return self._hprint_Pow(e, rational=rational, sqrt="math.sqrt")
        return self._hprint_Pow(e, rational=rational, sqrt="torch.sqrt" if self.torch else "np.sqrt")

    def _print_Pi(self, e):
        self.used.add("math")
        return "math.pi"

    def _print_Exp1(self, e):
        self.used.add("math")
        return "math.e"

    def _print_Piecewise(self, e):
        (value, cond), rest = e.args[0], e.args[1:]
        if cond == sympy.true:
            return self._print(value)
        other = sympy.Piecewise(*rest) if rest else sympy.nan
        if not self.torch:
            return self._call("np.where", cond, value, other)
        # the tested array gives the branches its dtype and device (float32 params stay float32)
        like = min(cond.free_symbols, key=str, default=None)
        if like is None:
            return self._print(value if cond == sympy.true else other)
        return self._call("_where", cond, value, other, like)

    def _print_Relational(self, e):
        return f"{self._print(e.lhs)} {e.rel_op} {self._print(e.rhs)}"

    def _print_And(self, e):  # & binds tighter than a comparison: parenthesise each
        return "(" + " & ".join(f"({self._print(a)})" for a in e.args) + ")"

    def _print_Or(self, e):
        return "(" + " | ".join(f"({self._print(a)})" for a in e.args) + ")"

    def _print_Not(self, e):
        return f"(~{self._print(e.args[0])})"

    def _minmax(self, e, np_name, torch_name, bound):
        # arrays first: torch.maximum takes tensors only, numbers go to torch.clamp
        first, *rest = sorted(e.args, key=lambda v: bool(v.is_number))
        out = self._print(first)
        for arg in rest:
            if self.torch and arg.is_number:
                out = f"torch.clamp({out}, {bound}={self._print(arg)})"
            elif self.torch:
                out = f"{torch_name}({out}, {self._print(arg)})"
            else:
                out = f"{np_name}({out}, {self._print(arg)})"
        return out

    def _print_Max(self, e):
        return self._minmax(e, "np.maximum", "torch.maximum", "min")

    def _print_Min(self, e):
        return self._minmax(e, "np.minimum", "torch.minimum", "max")

    def _print_Heaviside(self, e):
        h0 = e.args[1] if len(e.args) > 1 else sympy.Integer(0)
        return self._print(sympy.Piecewise((1, e.args[0] > 0), (0, e.args[0] < 0), (h0, True)))


# Ours, not PythonCodePrinter's math.* printers (which would apply math.gamma to an array).
for _name in {*FUNCTIONS, *_known_functions_math}:
    setattr(ArrayPrinter, f"_print_{_name}", ArrayPrinter._print_Function)


def to_code(expr: sympy.Expr, target: str = "numpy", used: set | None = None,
            factor: bool = False) -> str:
    """Python source of `expr` (stable forms applied) for `target`; `factor`
    parenthesises it as the operand of a product."""
    printer = ArrayPrinter({"target": target})
    expr = stabilize(expr)
    text = printer.parenthesize(expr, PRECEDENCE["Mul"], strict=False) if factor else printer.doprint(expr)
    if used is not None:
        used |= printer.used
    return text


# -- the module ----------------------------------------------------------------
def _array(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


def _vectorised(expr: sympy.Expr, subs: dict, what: str) -> sympy.Expr:
    """Neuron 1's expression with its symbols swapped for the layer's arrays."""
    out = expr.xreplace(subs)
    stray = out.free_symbols - set(subs.values())
    assert not stray, f"{what} is not elementwise: it still mentions {stray}"
    return out


def loss_term(row, loss, n_out: int, L: int, used: set, target: str) -> tuple[str, str]:
    """Code of one output's loss term over arrays (a<L> or z<L>, y) for an output layer L of
    n_out units with activation `row`, and a note on its form (MLPs and stacks alike)."""
    aL, zL, y = _array(f"a{L}"), _array(f"z{L}"), _array("y")
    term = loss.per_output(A, Y, n_out)
    if row.vector:
        if term.has(sympy.log(A)):
            term = term.xreplace({sympy.log(A): log_softmax(zL)})
            note = f"ln a{L} = log_softmax(z{L}) by log-sum-exp: finite for any z{L}"
        else:
            note = ""
        return to_code(term.xreplace({A: aL, Y: y}), target, used), note
    in_z = stabilize(term.xreplace({A: row.definition.xreplace({X: zL}), Y: y}))
    if term.has(sympy.log) and not in_z.has(sympy.log):
        return (to_code(in_z, target, used),
                f"written in z{L} with ln sigmoid(z) = -softplus(-z): finite for any z{L}")
    return to_code(term.xreplace({A: aL, Y: y}), target, used), ""


def _output_delta(net, used: set, target: str) -> tuple[str | None, str | None, str]:
    """(code of delta(L), or None; code of dL/da(L) for softmax's Jacobian, or None; equation)."""
    d, s, model, L = net.derivation, net.simplifier, net.model, net.spec.depth
    subs = {model.a(L, 1): _array(f"a{L}"), model.z(L, 1): _array(f"z{L}"), model.y(1): _array("y")}
    row = net.spec.activations[-1]
    if row.vector and not net.spec.softmax_cross_entropy:
        g = to_code(_vectorised(d.loss_derivative(1), subs, "dL/da"), target, used)
        return None, g, f"delta({L}) = a{L} * (g - rowsum(a{L} * g)),  g = dL/da{L} = {g}"
    delta = to_code(_vectorised(s.output_delta(1), subs, f"delta({L})"), target, used)
    return delta, None, f"delta({L}) = {delta}"


def _layer(net, l: int, used: set, target: str) -> dict:
    """The forward line and the local derivative f_l' of layer l, as code."""
    model, row = net.model, net.spec.activations[l - 1]
    subs = {model.a(l, 1): _array(f"a{l}"), model.z(l, 1): _array(f"z{l}")}
    if row.vector:
        used.add("_softmax")
        forward = f"_softmax(z{l})"
    else:
        forward = to_code(_vectorised(model.activation_of(l, 1), subs, f"a({l})"), target, used)
    local = None
    if l < net.spec.depth:
        expr = _vectorised(net.simplifier.activation_derivative(l, 1, 1), subs, f"f_{l}'")
        local = None if expr == 1 else to_code(expr, target, used, factor=True)
    return {"l": l, "forward": forward, "local": local}


def _training(spec, names: list[str]) -> dict:
    """The template's keys for the layout, the reduction and the regulariser."""
    reg = spec.regularization
    return {
        "row": spec.row_layout, "reduction": spec.training.reduction,
        "regularized": tuple(k for k in names if reg.covers(k[0])),
        "l2": repr(reg.l2), "l1": repr(reg.l1), "l1_active": reg.l1 != 0,
    }


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True,
                              autoescape=False)


def generate(net, target: str = "numpy") -> str:
    """Source of a standalone module with loss(), gradients() and check() for `net`.

    >>> import derive
    >>> src = generate(derive.Network([1, 1], "identity", "half_sse"))
    >>> "d1 = (a1 - y) / m" in src
    True
    """
    if target not in TARGETS:
        raise RenderError(f"code target {target!r}; expected one of {', '.join(TARGETS)}")
    spec, used = net.spec, set()
    L, n, row = spec.depth, spec.layers, spec.row_layout
    layers = [_layer(net, l, used, target) for l in range(1, L + 1)]
    delta, softmax_g, delta_line = _output_delta(net, used, target)
    equations = [delta_line] + [
        f"delta({x['l']}) = (delta({x['l'] + 1}) @ W{x['l'] + 1}{'.T' if row else ''})"
        + (f" * {x['local']}" if x["local"] else "") for x in reversed(layers[:-1])]
    loss_term_code, loss_note = loss_term(spec.activations[-1], spec.loss, n[-1], L, used, target)
    shapes = {f"{k}{l}": (((n[l - 1], n[l]) if row else (n[l], n[l - 1])) if k == "W" else (n[l],))
              for l in range(1, L + 1) for k in ("W", "b") if k == "W" or spec.bias}
    context = {
        "description": spec.title or spec.describe(),
        "equations": equations, "bias": spec.bias, "layers": tuple(n), "L": L,
        "n0": n[0], "nL": n[-1], "param_shapes": repr(shapes),
        "shapes": ", ".join(f"{k} {v}" for k, v in shapes.items()),
        "layer_list": layers, "output_delta": delta, "softmax_g": softmax_g,
        "loss_term": loss_term_code, "loss_note": loss_note,
        "loss_text": f"sum over outputs of {spec.loss.per_output(A, Y, n[-1])}",
        "trace": ", ".join(["a0"] + [f"z{l}, a{l}" for l in range(1, L + 1)]),
        "helpers": used, "math": bool(used & {"math", "_erf", "_erfc"}),
        "kinked": tuple(l for l, act in enumerate(spec.activations, 1) if act.kink),
        "probabilistic": spec.loss.probabilistic,
        "softmax_ce": spec.softmax_cross_entropy,
        **_training(spec, list(shapes)),
    }
    return _environment().get_template(f"{target}.py.j2").render(**context)

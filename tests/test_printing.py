"""Golden strings for what documents print: symbols, folded sums, settings, escaping.

Every expected string here was written by hand from the conventions in the
README (W^{(l)}_{jk} from k to j; "ij" writes the sender first), not copied
from the code's output.
"""

import pytest
import sympy

from derive import Network
from derive.errors import SpecError
from derive.render.formulas import Style, format_number, mixed
from derive.calculus.model import NetSymbol
from derive.render.printing import symbol_latex, to_latex
from derive.spec.registry import A, X
from derive.render.templating import escape_md, escape_tex

W = NetSymbol.make


def test_to_latex_network_symbols():
    assert to_latex(W("W", 2, 1, 3)) == r"W^{(2)}_{13}"
    assert to_latex(W("a", 1, 2)) == r"a^{(1)}_{2}"
    assert to_latex(W("x", None, 1)) == r"x_{1}"
    assert to_latex(W("delta", 3, 4)) == r"\delta^{(3)}_{4}"
    assert to_latex(W("W", 1, 12, 3)) == r"W^{(1)}_{12,3}"


def test_to_latex_notation_ij_puts_the_sender_first():
    assert symbol_latex("W", 2, 1, 3, notation="ij") == r"W^{(2)}_{31}"


def test_to_latex_bad_settings():
    with pytest.raises(ValueError, match="nielsen, ij"):
        to_latex(W("a", 1, 1), notation="kj")
    with pytest.raises(ValueError, match="L, C, E"):
        to_latex(W("a", 1, 1), loss_symbol="J")
    with pytest.raises(ValueError, match="non-negative"):
        to_latex(W("a", 1, 1), fold_sums=-1)
    with pytest.raises(TypeError):
        to_latex(W("a", 1, 1), colour="red")


def test_to_latex_folds_a_backpropagated_sum():
    back = sum(W("W", 3, m, 2) * W("delta", 3, m) for m in range(1, 6))
    assert to_latex(back, fold_sums=5) == r"\sum_{m=1}^{5} W^{(3)}_{m,2} \delta^{(3)}_{m}"
    assert to_latex(back, fold_sums=5, notation="ij") == r"\sum_{m=1}^{5} W^{(3)}_{2,m} \delta^{(3)}_{m}"


def test_to_latex_folds_only_the_exact_pattern():
    back = sum(W("W", 3, m, 2) * W("delta", 3, m) for m in range(1, 6))
    assert r"\sum" not in to_latex(back, fold_sums=6)  # too few terms
    four = back - W("W", 3, 5, 2) * W("delta", 3, 5)
    assert to_latex(four, fold_sums=3) == r"\sum_{m=1}^{4} W^{(3)}_{m,2} \delta^{(3)}_{m}"
    mixed_columns = W("W", 3, 1, 2) * W("delta", 3, 1) + W("W", 3, 2, 1) * W("delta", 3, 2)
    assert to_latex(mixed_columns, fold_sums=2) == \
        r"W^{(3)}_{12} \delta^{(3)}_{1} + W^{(3)}_{21} \delta^{(3)}_{2}"
    gap = W("W", 3, 1, 2) * W("delta", 3, 1) + W("W", 3, 3, 2) * W("delta", 3, 3)
    assert r"\sum" not in to_latex(gap, fold_sums=2)


def test_style_prints_general_weights_by_notation():
    assert Style().w("l", "j", "k") == r"W^{(l)}_{jk}"
    assert Style(notation="ij").w("l", "j", "i") == r"W^{(l)}_{ij}"
    assert Style().w(3, "m_{3}", "m_{2}") == r"W^{(3)}_{m_{3},m_{2}}"
    assert Style(loss_symbol="C").d_loss("a") == r"\frac{\partial C}{\partial a}"


def test_style_rejects_bad_choices_as_spec_errors():
    with pytest.raises(SpecError, match="notation 'w'; expected one of nielsen, ij"):
        Style(notation="w")
    with pytest.raises(SpecError, match="loss symbol 'J'"):
        Style(loss_symbol="J")


def test_style_paints_by_target():
    assert Style(target="tex").paint("loss", "x") == r"\textcolor{deriveLoss}{x}"
    assert Style(target="md").paint("weight", "x") == r"{\color{#4477AA}{x}}"


def test_format_number_nine_significant_digits():
    assert format_number(0.298371108760003) == "0.298371109"
    assert format_number(-0.0380982365298) == "-0.0380982365"
    assert format_number(0.15) == "0.15"
    assert format_number(1.5e-12) == r"1.5 \times 10^{-12}"
    assert format_number(float("nan")) == r"\mathrm{NaN}"


def test_mixed_puts_math_runs_in_dollars():
    assert mixed(r"f'(z) = 1 and the \tfrac12 cancels the exponent 2") == \
        r"$f'(z) = 1$ and the $\tfrac12$ cancels the exponent $2$"


def test_escape_tex_prints_every_special_literally():
    assert escape_tex(r"%$&#_{}\~^") == \
        r"\%\$\&\#\_\{\}\textbackslash{}\textasciitilde{}\textasciicircum{}"
    assert escape_tex(r"\input{/etc/passwd}") == r"\textbackslash{}input\{/etc/passwd\}"
    assert escape_tex("σ Σ Α é") == r"\ensuremath{\sigma} \ensuremath{\Sigma} \ensuremath{\mathrm{A}} é"
    assert escape_tex("漢") == r"\texttt{[U+6F22]}"
    assert escape_tex("a\nb") == "a b"


def test_escape_md_escapes_markup():
    assert escape_md("x_1 $y$ *b* <i> #") == r"x\_1 \$y\$ \*b\* \<i\> \#"
    assert escape_md("2-2-2 net.") == "2-2-2 net."


def test_general_prints_a_row_formula_for_neuron_j():
    from derive.render.rows import general

    style = Style()
    assert general(style, A * (1 - A), {A: "a^{(2)}_{j}"}) == r"a^{(2)}_{j} \left(1 - a^{(2)}_{j}\right)"
    assert general(style, sympy.tanh(X), {X: "z"}) == r"\tanh{\left(z \right)}"


def test_output_delta_printed_with_cancellation():
    from derive.render.content import recursion_section

    net = Network([2, 2, 2], activation="sigmoid", loss="bce")
    r = recursion_section(net, Style())
    assert r["output_special"] == r"a^{(2)}_{j} - y_{j}"
    assert r["cancellation"].startswith(r"$\sigma'(z) = a(1-a)$ cancels")


# -- textbook shape (issue 11 item 5) ------------------------------------------------

import random
import re

from derive.render.printing import to_text


def _read_back(net, text):
    """A printed text formula as SymPy, symbol for symbol (our own output, not user text):
    W2[1,3] -> the real symbol W2_1_3 the derivation uses."""
    names = {}

    def symbol(m):
        name = f"{m.group(1)}_{m.group(2).replace(',', '_')}"
        names[name] = net.symbol(m.group(0))
        return name

    source = re.sub(r"([A-Za-z]+\d*)\[([\d,]+)\]", symbol, text)
    return sympy.sympify(source, locals={**names, "Piecewise": sympy.Piecewise})


def _same_value(net, printed, original, points=3, seed=0):
    """printed == original at random rational points (every free symbol drawn), to 30 digits."""
    rng = random.Random(seed)
    back = _read_back(net, printed)
    checked = 0
    while checked < points:
        at = {s: sympy.Rational(rng.randint(-90, 90), rng.randint(1, 9)) for s in original.free_symbols}
        want = original.subs(at).evalf(40)
        if not want.is_finite:  # a point on a pole (a = 1 under bce's 1/(1 - a)): draw again
            continue
        assert abs(back.subs(at).evalf(40) - want) <= 1e-30 * (1 + abs(want)), (printed, original)
        checked += 1


@pytest.mark.parametrize("layers, activation, loss, param, text, latex", [
    ([1, 1], "sigmoid", "sse", "W1[1,1]", "2*a1[1]*x[1]*(1 - a1[1])*(a1[1] - y[1])",
     r"2 a^{(1)}_{1} x_{1} \left(1 - a^{(1)}_{1}\right) \left(a^{(1)}_{1} - y_{1}\right)"),
    ([1, 3], "identity", "mse", "W1[2,1]", "2/3*x[1]*(a1[2] - y[2])",
     r"\frac{2}{3} x_{1} \left(a^{(1)}_{2} - y_{2}\right)"),
    ([1, 3], "identity", "mse", "b1[1]", "2/3*(a1[1] - y[1])", r"\frac{2}{3} \left(a^{(1)}_{1} - y_{1}\right)"),
    ([1, 1, 1], "tanh", "sse", "b2[1]", "2*(1 - a2[1]**2)*(a2[1] - y[1])",
     r"2 \left(1 - \left(a^{(2)}_{1}\right)^{2}\right) \left(a^{(2)}_{1} - y_{1}\right)"),
    ([1, 1], "identity", "sse", "b1[1]", "2*(a1[1] - y[1])", r"2 \left(a^{(1)}_{1} - y_{1}\right)"),
    ([1, 1], "identity", "bce", "b1[1]", "(a1[1] - y[1])/(a1[1]*(1 - a1[1]))",
     r"\frac{a^{(1)}_{1} - y_{1}}{a^{(1)}_{1} \left(1 - a^{(1)}_{1}\right)}"),
])
def test_textbook_shape(layers, activation, loss, param, text, latex):
    """Hand-written textbook forms: the number in front, (a - y), (1 - a); and the printed
    text is the derived gradient's value (read back, evaluated exactly)."""
    net = Network(layers, activation, loss)
    g = net.gradient(param)
    assert to_text(g.simplified) == text
    assert g.latex == latex
    _same_value(net, text, g.simplified)


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu", "softplus", "elu", "silu"])
@pytest.mark.parametrize("loss", ["mse", "sse", "half_sse", "bce", "cross_entropy", "(a-y)**4/4 + (a-y)**3"])
def test_textbook_shape_keeps_every_value(activation, loss):
    """Every gradient of a small net, as printed, equals the unprinted expression (a printer
    that dropped the sign it moved out of a flipped sum fails here, for cross_entropy)."""
    net = Network([2, 2, 2], activation, loss)
    for i, p in enumerate(net.params()):
        g = net.gradient(p)
        _same_value(net, to_text(g.simplified), g.simplified, points=2, seed=i)


def test_sums_in_numeric_index_order():
    net = Network([2, 2, 12], "tanh", "half_sse")
    g = net.gradient("W1[1,1]")
    text = to_text(g.simplified)
    order = [int(i) for i in re.findall(r"delta2\[(\d+)\]", text)]
    assert order == list(range(1, 13))
    latex_order = [int(i) for i in re.findall(r"\\delta\^\{\(2\)\}_\{(\d+)\}", g.latex)]
    assert latex_order == list(range(1, 13))
    _same_value(net, text, g.simplified)


def test_sum_without_network_symbols_keeps_sympy_order():
    u, v = sympy.symbols("u v")
    assert to_latex(1 - u) == "1 - u" and to_latex(u - v) == "u - v"
    assert to_latex(-2 * u + 2 * v) == r"- 2 \left(u - v\right)"


def test_grad_table_defines_the_deltas_it_names():
    """Every delta2[j] the table names is defined below it, and the definition has the
    value of dL/db2[j] by central differences of a NumPy forward pass written here."""
    import numpy as np

    from derive.render.report import grad_table, grad_json_chunks

    net = Network([2, 2, 12], "tanh", "half_sse")
    lines = list(grad_table(net))
    named = {int(j) for line in lines if not line.startswith("  delta") for j in re.findall(r"delta2\[(\d+)\]", line)}
    defined = {int(m.group(1)): m.group(2) for line in lines
               if (m := re.match(r"^  delta2\[(\d+)\] = (.*)$", line))}
    assert named == set(range(1, 13)) and set(defined) == named
    rng = np.random.default_rng(7)
    W1, b1, W2, b2 = rng.normal(size=(2, 2)), rng.normal(size=2), rng.normal(size=(12, 2)) / 2, rng.normal(size=12)
    x, y = np.array([0.4, -0.3]), rng.uniform(-1, 1, 12)
    a1 = np.tanh(W1 @ x + b1)
    a2 = np.tanh(W2 @ a1 + b2)

    def loss(b):
        return 0.5 * np.sum((np.tanh(W2 @ a1 + b) - y) ** 2)

    for j, text in defined.items():
        at = {net.symbol(f"a2[{j}]"): a2[j - 1], net.symbol(f"y[{j}]"): y[j - 1]}
        up, down = b2.copy(), b2.copy()
        up[j - 1] += 1e-6
        down[j - 1] -= 1e-6
        assert float(_read_back(net, text).subs(at)) == pytest.approx((loss(up) - loss(down)) / 2e-6, abs=1e-8)
    import json

    first = json.loads("".join(grad_json_chunks(net)))["gradients"]["W1[1,1]"]["latex"]
    assert [int(i) for i in re.findall(r"\\delta\^\{\(2\)\}_\{(\d+)\}", first)] == list(range(1, 13))


def test_relu_family_derivatives_print_as_iverson_brackets():
    from derive.spec.registry import ACTIVATIONS

    y = sympy.Symbol("y")
    relu, leaky, elu = (ACTIVATIONS[n].derivative() for n in ("relu", "leaky_relu", "elu"))
    assert to_latex(relu) == r"\left[x > 0\right]"
    assert to_latex(3 * y * relu) == r"3 y \left[x > 0\right]"  # one bracket needs no parentheses
    assert to_latex(leaky) == r"\left[x > 0\right] + \frac{1}{100}\, \left[x \leq 0\right]"
    assert to_latex(y * elu) == r"y \left(\left[x > 0\right] + e^{x}\, \left[x \leq 0\right]\right)"
    # three pieces are not a ReLU family member: SymPy's cases block
    three = sympy.Piecewise((1, X > 1), (2, X > 0), (0, True))
    assert r"\begin{cases}" in to_latex(three)
    # the brackets evaluate as the Piecewise does on both sides of the kink
    for z in (-0.5, 0.5):
        assert float(leaky.subs(X, z)) == (1.0 if z > 0 else 0.01)


def test_printer_settings_are_public():
    from derive.render.printing import DerivePrinter, loss_symbol

    printer = DerivePrinter({"notation": "ij", "loss_symbol": "C"})
    assert printer.settings["notation"] == "ij" and printer.settings["loss_symbol"] == "C"
    assert printer.settings["fold_sums"] == 0
    printer.settings["notation"] = "nielsen"  # a copy: the printer keeps its own
    assert printer.settings["notation"] == "ij"
    assert loss_symbol(loss_symbol="E") == "E"

r"""Backpropagation through time, printed: the unrolled network, the BPTT recursion, per-step norms.

For each recurrent layer of a stack (an rnn or an lstm over steps = T), the
document's section "Through time" and `which` read `sequence_layers(net, trace)`:

    unrolled   the chain x_t -> h_t -> h_(t+1) ... drawn over time, elided past a few steps
    recursion  the BPTT recursion: delta of h_t from the output at t and from h_(t+1)
               through R^T and f' (an lstm: the cell state's path, dc_t/dc_(t-1) = f_t)
    jacobian   dh_t/dh_k as the product of one Jacobian per step, where gradients
               vanish (|| ... || < 1 each step) or explode (> 1)
    norms      with values: ||dL/dh_t|| per step t (and ||dL/dc_t|| for an lstm), from
               StackTrace.step_norms, the numbers the recursion produces
    shares     each step's term of a recurrent weight's gradient (step_terms)

Everything is LaTeX (MathJax 3 reads it too), built from the layer's numbers.
"""

from __future__ import annotations

import numpy as np

#: Steps drawn before the unrolled picture elides the middle.
SHOWN_STEPS = 4


def _steps(T: int) -> list[int | None]:
    """1, 2, ..., T with the middle elided (None) past SHOWN_STEPS."""
    if T <= SHOWN_STEPS:
        return list(range(1, T + 1))
    return [1, 2, None, T - 1, T]


def unrolled(layer) -> str:
    r"""The layer unrolled over time as a LaTeX array: x_t below, h_t in a row, arrows through R."""
    l, T = layer.number, layer.input[0]
    cols = _steps(T)
    hs = [r"h_0 = 0"] + [r"\cdots" if t is None else f"h^{{({l})}}_{{{t}}}" for t in cols]
    row_h = (r" \xrightarrow{R^{(%d)}} " % l).join(hs)
    return (r"\begin{array}{l}" + row_h + r" \\[4pt] " + r"\text{inputs: } " +
            r",\ ".join(f"a^{{({l - 1})}}_{{{t}}}" for t in cols if t is not None) +
            (r",\ \ldots" if None in cols else "") + r"\ \text{enter through } W^{(%d)}" % l + r"\end{array}")


def recursion(layer) -> list[str]:
    """The BPTT recursion of the layer, one equation per line."""
    l = layer.number
    if layer.kind.name == "rnn":
        return [f"\\delta^{{({l})}}_t = \\frac{{\\partial L}}{{\\partial z^{{({l})}}_t}} = \\Big(g^{{({l})}}_t"
                f" + R^{{({l})\\top}} \\delta^{{({l})}}_{{t+1}}\\Big) \\odot f'\\big(z^{{({l})}}_t\\big),"
                f"\\qquad \\delta^{{({l})}}_{{T+1}} = 0",
                f"\\frac{{\\partial L}}{{\\partial R^{{({l})}}}} = \\sum_n \\sum_{{t=2}}^{{T}} \\delta^{{({l})}}_t"
                f"\\, \\big(h^{{({l})}}_{{t-1}}\\big)^\\top",
                f"\\frac{{\\partial L}}{{\\partial W^{{({l})}}}} = "
                f"\\sum_n \\sum_{{t=1}}^{{T}} \\delta^{{({l})}}_t \\big(a^{{({l - 1})}}_t\\big)^\\top",
                f"\\text{{where }} g^{{({l})}}_t = \\partial L / \\partial h^{{({l})}}_t \\text{{ from the layer above at step }} t"]
    return [r"\bar h_t = g_t + \sum_{\ast \in \{i,f,g,o\}} R_\ast^\top \bar z_{\ast,t+1}",
            r"\bar c_t = \bar c_{t+1} \odot f_{t+1} + \bar h_t \odot o_t \odot \big(1 - \tanh^2 c_t\big)",
            r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)\ \text{(no weight matrix, no squashing derivative)}",
            r"\bar z_{i,t} = \bar c_t \odot g_t \odot i_t(1-i_t),\quad \bar z_{f,t} = \bar c_t \odot c_{t-1} \odot f_t(1-f_t)",
            r"\bar z_{g,t} = \bar c_t \odot i_t \odot (1-g_t^2),\quad \bar z_{o,t} = \bar h_t \odot \tanh c_t \odot o_t(1-o_t)"]


def jacobian(layer) -> str:
    """dh_t/dh_k as a product of one Jacobian per step."""
    l = layer.number
    if layer.kind.name == "rnn":
        return (f"\\frac{{\\partial h^{{({l})}}_t}}{{\\partial h^{{({l})}}_k}} = \\prod_{{s=k+1}}^{{t}} "
                f"\\operatorname{{diag}}\\big(f'(z^{{({l})}}_s)\\big)\\, R^{{({l})}}")
    return (r"\frac{\partial c_t}{\partial c_k}\Big|_{\text{cell path}} = \prod_{s=k+1}^{t} "
            r"\operatorname{diag}(f_s)")


def step_terms(trace, layer, letter: str, idx: tuple[int, ...]) -> np.ndarray:
    """Each step's term of a recurrent weight's gradient (they sum to the entry's gradient):
    sum_n delta_(n,t,j) times the weight's input at t (a(l-1)_t for W, h_(t-1) for R, 1 for b)."""
    n, inner = layer.number, trace.inner[layer.number]
    gate = letter[1:]
    delta = inner["dz"] if layer.kind.name == "rnn" else inner[f"d{gate}"]
    j = idx[0] - 1
    d = np.real(delta[:, :, j])
    if letter[0] == "b":
        return d.sum(axis=0)
    if letter[0] == "W":
        return np.sum(d * np.real(trace.a[n - 1][:, :, idx[1] - 1]), axis=0)
    h = np.real(trace.a[n][:, :, idx[1] - 1])
    shifted = np.concatenate([np.zeros((h.shape[0], 1)), h[:, :-1]], axis=1)  # h_(t-1), h_0 = 0
    return np.sum(d * shifted, axis=0)


def norms(trace, layer) -> list[dict]:
    """||dL/dh_t|| (and ||dL/dc_t||) per step, for the table of the worked section."""
    hs = trace.step_norms(layer.number)
    cs = (np.sqrt(np.sum(np.abs(trace.inner[layer.number]["dc"]) ** 2, axis=(0, 2)))
          if layer.kind.name == "lstm" else None)
    return [{"t": t + 1, "h": f"{hs[t]:.4g}", "c": None if cs is None else f"{cs[t]:.4g}"} for t in range(len(hs))]


def trend(rows: list[dict]) -> str:
    """One sentence on what the norms do from the last step back to the first."""
    first, last = float(rows[0]["h"]), float(rows[-1]["h"])
    if len(rows) < 2 or last == 0:
        return ""
    ratio = first / last
    if ratio < 0.1:
        return (f"Going back from step {len(rows)} to step 1 the gradient shrinks by a factor "
                f"{1 / ratio:.3g}: it vanishes through time.")
    if ratio > 10:
        return f"Going back from step {len(rows)} to step 1 the gradient grows by a factor {ratio:.3g}: it explodes."
    return f"From step {len(rows)} back to step 1 the gradient's norm changes by a factor {ratio:.3g}."


def sequence_layers(net, trace=None) -> list[dict]:
    """The section's content for every recurrent layer (norms only with a trace)."""
    out = []
    for layer in net.spec.layers:
        if not layer.kind.recurrent:
            continue
        rows = norms(trace, layer) if trace is not None else None
        out.append({"layer": layer.number, "kind": layer.kind.name, "steps": layer.input[0],
                    "unrolled": unrolled(layer), "recursion": recursion(layer), "jacobian": jacobian(layer),
                    "norms": rows, "trend": trend(rows) if rows else "", "lstm": layer.kind.name == "lstm"})
    return out

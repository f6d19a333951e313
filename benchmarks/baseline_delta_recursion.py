"""The straightforward SymPy delta recursion: the baseline `derive grad` is compared with.

    python benchmarks/baseline_delta_recursion.py 784,30,10 [sigmoid]

Written the way a competent user would (issue #10): z, a and delta as Symbols, local
derivatives by sympy.diff, each gradient as its delta equation times a(l-1)_k, then
every gradient printed as LaTeX and as a string.  Half-SSE loss.  Prints its wall time
(after `import sympy`) and the number of gradients.
"""

import sys
import time

import sympy as sp


def derive_and_print(n: list[int], act: str = "sigmoid") -> int:
    depth, count = len(n) - 1, 0
    f = {"sigmoid": lambda v: 1 / (1 + sp.exp(-v)), "tanh": sp.tanh}[act]
    x = [sp.Symbol(f"x_{k}") for k in range(n[0])]
    y = [sp.Symbol(f"y_{j}") for j in range(n[depth])]
    a, z, W, delta = {0: x}, {}, {}, {}
    for l in range(1, depth + 1):
        W[l] = [[sp.Symbol(f"W{l}_{j}_{k}") for k in range(n[l - 1])] for j in range(n[l])]
        z[l] = [sp.Symbol(f"z{l}_{j}") for j in range(n[l])]
        a[l] = [sp.Symbol(f"a{l}_{j}") for j in range(n[l])]
        delta[l] = [sp.Symbol(f"delta{l}_{j}") for j in range(n[l])]
    loss = sum((a[depth][j] - y[j]) ** 2 for j in range(n[depth])) / 2
    equations = {}  # delta(l)_j = dL/dz(l)_j, over the next layer's delta symbols
    for l in range(depth, 0, -1):
        for j in range(n[l]):
            local = sp.diff(f(z[l][j]), z[l][j])
            if l == depth:
                equations[l, j] = sp.diff(loss, a[l][j]) * local
            else:
                back = sum(W[l + 1][i][j] * delta[l + 1][i] for i in range(n[l + 1]))
                equations[l, j] = back * local
    for l in range(1, depth + 1):  # every gradient, printed as LaTeX and as a string
        for j in range(n[l]):
            for k in range(n[l - 1]):
                grad = equations[l, j] * a[l - 1][k]
                sp.latex(grad), str(grad)
                count += 1
            sp.latex(equations[l, j]), str(equations[l, j])  # the bias: delta itself
            count += 1
    return count


if __name__ == "__main__":
    layers = [int(v) for v in sys.argv[1].split(",")]
    start = time.perf_counter()
    count = derive_and_print(layers, sys.argv[2] if len(sys.argv) > 2 else "sigmoid")
    print(f"{time.perf_counter() - start:.3f} {count}")

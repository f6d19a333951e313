"""Spec files with values for the wide benchmark networks (784-30-10 and friends).

    python benchmarks/nets.py 784,30,10 -o /tmp/mnist.toml

Values come from a seeded NumPy generator, rounded to 6 decimals: x uniform in
[0, 1] (pixel intensities), y one-hot, weights N(0, 1/fan_in), biases uniform in
[-0.1, 0.1].  The same layers and seed always give the same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEED = 7


def _row(values) -> str:
    return "[" + ", ".join(repr(round(float(v), 6)) for v in values) + "]"


def wide_spec(layers: list[int], activation: str = "sigmoid", loss: str = "half_sse",
              seed: int = SEED) -> str:
    """The TOML text of a network with these layer sizes, with values."""
    rng = np.random.default_rng(seed)
    y = np.zeros(layers[-1])
    y[int(rng.integers(layers[-1]))] = 1.0
    lines = [f'title = "A {"-".join(map(str, layers))} {activation} network"',
             "layers = [" + ", ".join(map(str, layers)) + "]",
             f'activation = "{activation}"', f'loss = "{loss}"', "", "[values]",
             "x = " + _row(rng.uniform(0, 1, layers[0])), "y = " + _row(y)]
    for l in range(1, len(layers)):
        W = rng.normal(0, 1 / np.sqrt(layers[l - 1]), (layers[l], layers[l - 1]))
        lines.append(f"W{l} = [" + ", ".join(_row(r) for r in W) + "]")
        lines.append(f"b{l} = " + _row(rng.uniform(-0.1, 0.1, layers[l])))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layers", help="comma list of layer sizes, e.g. 784,30,10")
    parser.add_argument("--activation", default="sigmoid")
    parser.add_argument("--loss", default="half_sse")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    layers = [int(n) for n in args.layers.split(",")]
    args.output.write_text(wide_spec(layers, args.activation, args.loss), encoding="utf-8")
    print(args.output)


if __name__ == "__main__":
    main()

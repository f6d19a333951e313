"""Stage 1, the spec: what the user described, validated, before any calculus.

    registry.py     the activation and loss tables every stage reads
    expressions.py  user formulas parsed by a whitelist, never executed
    screening.py    the parser's text checks, syntax tree and one-line error format
    deadline.py     Deadline: a monotonic time budget checked between steps (no alarm)
    network.py      NetworkSpec: layer sizes, activation and loss rows, bias
    training.py     minibatch, reduction, row/column layout, L2/L1 regulariser
    values.py       Values: x, y, weights, biases, learning rate, checked against the shapes
    loading.py      make_spec / load_spec: keyword arguments or a TOML file to a spec
    sizes.py        size limits and how to raise them; words.py the words of an error
"""

"""Stage 4, numbers: the derivation evaluated, and checked against independent references.

    numeric.py     compiling SymPy expressions to NumPy, with overflow-free rewrites
    evaluate.py    the derivation's own numbers, layer by layer (forward and delta passes)
    verify.py      the complex-step derivative of the forward pass alone (never a derivative)
    torchcheck.py  PyTorch autograd on the same network built again (optional)
    points.py      high-precision random points for judging claimed formulas
"""

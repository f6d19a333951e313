"""Stage 4, numbers: the derivation evaluated, and checked against independent references.

    numeric.py     compiling SymPy expressions to NumPy; stable.py the one table of rewrites
    evaluate.py    the derivation's own numbers, layer by layer (forward and delta passes)
    points.py      the one random-point sampler, and high-precision values at a point
    compare.py     the one comparison (tolerances) and report table
    verify.py      the complex-step derivative of the forward pass alone (never a derivative)
    torchcheck.py  PyTorch autograd on the same network built again (optional)
"""

"""Stages 2-3, the mathematics: the symbolic model and its exact derivation.

    model.py     every quantity a NetSymbol; the forward pass as per-neuron definitions;
                 the one parameter-name parser; names.py user names to symbols
    backprop.py  the delta equations; local derivatives by sympy.diff, once per table row
    batch.py     the minibatch sum s sum_n and the regulariser's l2 w + l1 sign(w) around them
    simplify.py  the display form (sigma' = a(1-a), a - y where it cancels)
    explicit.py  the closed form in x, y, W, b while it stays small
    paths.py     the chain rule as a sum over paths, each factor named by its role

Nothing here prints or evaluates numbers: render/ prints, check/ evaluates.
"""

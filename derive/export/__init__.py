"""Export: standalone NumPy / PyTorch modules printed from the derivation (codegen.py).
They never import qa/.
"""

"""Questions about a network: `derive which` (answer.py) and `derive claim` (claim.py,
diagnosis.py).  They read the derivation through api.Network and print through render/;
they never import export/.
"""

"""Stage 5, printing: LaTeX and text of derived expressions, documents, grad's report.

    printing.py   the SymPy printers with our symbols; formulas.py the reader's choices
    chain.py      the chain rule printed (factors, paths, sums, delta forms)
    templating.py the one Jinja environment; templates arrange words, compute nothing
    content.py, walkthrough.py, worked.py, diagram.py  the document's sections
    document.py   assembling them; pdf.py compiling LaTeX safely; report.py grad's table/JSON
"""

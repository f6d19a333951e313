"""Stage 5, printing: LaTeX and text of derived expressions, documents, grad's report.

    printing.py   the SymPy printers with our symbols; compose.py per-neuron printing
    formulas.py   the reader's choices; roles.py the one role table; rows.py the registry rows
    chain.py      the one chain-rule printer (factors, paths, sums, delta forms)
    templating.py the one Jinja environment; templates arrange words, compute nothing
    content.py, walkthrough.py, worked.py, layout.py, diagram.py  the document's sections
    document.py   assembling them; pdf.py compiling LaTeX safely; html.py the interactive page
    report.py     grad's table and JSON; answer_words.py the facts a `which` answer states
"""

"""Questions about a network, over api.Network, printed through render/ (never export/):

    answer.py                          `derive which`
    claim.py, notation.py, variants.py, diagnosis.py   `derive claim`
    exercises.py, distractors.py, solutions.py, sheets.py, lms.py, quiz.py   `derive exercises`
"""

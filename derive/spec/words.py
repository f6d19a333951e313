"""The words of a spec error: a value quoted short, a count, a did-you-mean hint.

Every stage-1 message is one line naming the field and the bad value; these
helpers keep that line short and its grammar right, in one place.
"""

from __future__ import annotations

import difflib
import math
import sys
from typing import Any, Mapping, Sequence

from ..errors import SpecError

#: Longest repr of a bad value quoted in a message.
SHOW_WIDTH = 60


def show(value: Any) -> str:
    """repr(value), cut to `SHOW_WIDTH` characters so a message stays one short line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str(): Python refuses past 4300 digits
        text = (f"<an integer of about {value.bit_length() * math.log10(2):.0f} digits>"
                if isinstance(value, int) else f"<a {type(value).__name__} holding an integer "
                f"of over {sys.get_int_max_str_digits()} digits>")
    return text if len(text) <= SHOW_WIDTH else text[:SHOW_WIDTH - 3] + "..."


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def suggest(name: str, choices: Sequence[str]) -> str:
    """"; did you mean 'W1'?" for a close choice (case aside: w1 -> W1), else the choices."""
    same = [c for c in choices if c.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, list(choices), n=1)
    if not close:  # MSEE, Sigmoud: close once the case is set aside
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=1)]
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; expected one of " + ", ".join(choices)


def check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str,
                hint=lambda key: None) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}: " if where else ""
            why = hint(key) if isinstance(key, str) else None
            shown = show(key)
            if why:
                raise SpecError(f"{prefix}unknown key {shown} ({why})")
            raise SpecError(f"{prefix}unknown key {shown}{suggest(str(key), allowed)}")

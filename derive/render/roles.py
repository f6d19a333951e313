r"""The four roles a factor of a chain-rule path plays, as one table.

A path from the loss back to a parameter multiplies four kinds of factor
(`calculus.paths.ROLES`); every picture, formula, colour key and sentence
about them reads this table, so the diagram, the documents and `derive
which` name and colour a role the same way.  A row holds the role's name,
its colour (hex, for SVG and MathJax), its xcolor name (for LaTeX, defined
by `definition`), the words prose uses for it, and the partial derivative
a diagram's legend writes for it.

The colours: Okabe-Ito vermillion with Tol's indigo, blue and wine.  Every
pair stays apart (CIELAB distance > 28) under simulated protan-, deutan- and
tritanopia (Machado 2009 matrices), each reads as text on white (contrast
>= 3.8:1), and their lightness differs, so roles survive a grey photocopy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    """One row: a role of a chain-rule factor and how it is shown."""

    name: str
    colour: str        # "#D55E00": SVG and MathJax
    words: str         # "loss derivative": prose and colour keys
    top: str           # the legend's partial: d(top)/d(bottom), "{L}" the loss symbol
    bottom: str

    @property
    def xcolor(self) -> str:
        """The xcolor name LaTeX paints with: deriveLoss, deriveActivation, ..."""
        return "derive" + self.name.capitalize()

    @property
    def definition(self) -> str:
        r"""The \definecolor line that makes `xcolor` known to LaTeX."""
        return rf"\definecolor{{{self.xcolor}}}{{HTML}}{{{self.colour[1:]}}}"

    def __repr__(self) -> str:
        return f"Role({self.name!r}, {self.colour})"


#: In the order a path meets them, from the loss back to the parameter.
ROLES: dict[str, Role] = {r.name: r for r in [
    Role("loss", "#D55E00", "loss derivative", "{L}", "a"),
    Role("activation", "#332288", "activation derivative", "a", "z"),
    Role("weight", "#4477AA", "weight", "z", "a"),
    Role("input", "#882255", "input", "z", "W"),
]}

#: Hex colour of each role (SVG, MathJax).
ROLE_COLOURS: dict[str, str] = {name: r.colour for name, r in ROLES.items()}
#: The xcolor name of each role, and its \definecolor line (LaTeX).
XCOLOR_NAMES: dict[str, str] = {name: r.xcolor for name, r in ROLES.items()}
XCOLOR_DEFINITIONS: dict[str, str] = {name: r.definition for name, r in ROLES.items()}


def colour_definitions() -> list[str]:
    r"""The xcolor \definecolor lines every painted LaTeX formula needs."""
    return list(XCOLOR_DEFINITIONS.values())

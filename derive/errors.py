"""The error tree: every failure a user can cause or meet is a `DeriveError`.

The CLI turns any `DeriveError` into one line on stderr and the error's
`exit_code`; `assert` is kept for internal invariants only.  Messages name the
offending field and value (``layers[1] must be a positive integer, got 0``).
"""


class DeriveError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 2


class SpecError(DeriveError):
    """A network spec, values file, parameter name or expression is invalid."""


class VerificationError(DeriveError):
    """Derived gradients disagree with the independent numeric reference."""

    exit_code = 1


class RenderError(DeriveError):
    """A document could not be written (bad path, template, unwritable folder)."""


class ToolError(DeriveError):
    """An external tool (pdflatex, latexmk, node) is missing or failed."""

    exit_code = 3

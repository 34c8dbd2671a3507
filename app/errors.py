"""The error type every Hearth service raises for a problem the user can act on."""

from __future__ import annotations


class HearthError(Exception):
    """A failure with a message written for the user: what happened and what to do.

    The CLI prints it as one line on stderr and exits non-zero; the GUI shows it
    in a message bar. Anything else that escapes is a bug.
    """

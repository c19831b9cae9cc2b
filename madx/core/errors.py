"""The base of the errors madx raises for what its user gave it.

A command prints a MadxError as one line, `madx: error: <message>`, and exits with status 2: the message says
what was wrong, where, and what to do, and a traceback would only bury it. Any other exception is a bug in madx
(or in a library under it) and keeps its traceback. Each kind of bad input has its own class (DataError,
ConfigError, AdapterLoadError, ...) beside the code that finds it; those classes also keep the built-in base
(ValueError, RuntimeError, TypeError) that callers catch them by.
"""

from __future__ import annotations


class MadxError(Exception):
    """Bad input to madx, found and explained by madx: shown to the user as its message alone."""


class InputError(MadxError, ValueError):
    """A value given to madx that it cannot work with (a command's option, a run's setup, a size) and that no more
    specific error covers."""

"""The exception hierarchy: every error the library raises on bad input is a
:class:`CoresetError`, and its message names the parameter, what is allowed and
the value received."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CoresetError",
    "ValidationError",
    "UnknownNameError",
    "DegenerateInputError",
    "BackendUnavailableError",
    "IndexFileError",
    "InputFileError",
]


class CoresetError(Exception):
    """Base class of every error raised by ``coreset``."""


class ValidationError(CoresetError, ValueError):
    """A parameter or input array is not acceptable."""


class UnknownNameError(ValidationError):
    """A registry name (objective, optimizer, selector, ...) is not known."""

    def __init__(self, parameter: str, value: object, choices: Iterable[str]):
        self.parameter = parameter
        self.value = value
        self.choices = sorted(choices)
        msg = f"{parameter}={value!r} is not known; choose one of {', '.join(self.choices)}"
        close = difflib.get_close_matches(str(value), self.choices, n=1, cutoff=0.5)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        super().__init__(msg)


class DegenerateInputError(ValidationError):
    """The input is well formed but carries no information to select on
    (for instance all rows identical, or a zero vector under cosine)."""


class BackendUnavailableError(CoresetError, ImportError):
    """An optional backend (torch, faiss, ray, ...) is missing or cannot run here."""


class IndexFileError(CoresetError):
    """An index file is corrupt, truncated, foreign or of an unknown version."""


class InputFileError(CoresetError):
    """An input file is missing, unreadable or lacks the expected column/array."""

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
    "CheckpointError",
    "OutputPathError",
    "OutputWriteError",
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


class CheckpointError(CoresetError):
    """A stream checkpoint belongs to another input or other settings, is
    unreadable or invalid (a field of the wrong type, shape or range), or could
    not be written (the previous one is then left as it was)."""


class OutputPathError(IndexFileError):
    """An output path cannot be written: its folder is missing, it is a folder,
    a device, a FIFO or a socket, its name is over the file system's limits, or
    it is the same file as an input. (An :class:`IndexFileError` because index
    files were the first outputs checked; every writer uses the same check.)"""


class OutputWriteError(IndexFileError, OSError):
    """Writing an output failed (a full disk, an I/O error, a size limit) and
    nothing was left behind. Also an :class:`OSError` with the ``errno`` and
    ``strerror`` of the failure."""

    def __init__(self, message: str, errno: int | None = None, strerror: str | None = None, filename=None):
        super().__init__(message)
        self.errno, self.strerror, self.filename = errno, strerror, filename

    def __str__(self) -> str:
        return str(self.args[0])

"""Shared CLI plumbing: consoles, logging to stderr, and turning a
:class:`~coreset.exceptions.CoresetError` into one ``Error:`` line and exit 1."""

from __future__ import annotations

import logging
import math
import sys
from contextlib import contextmanager

import typer

from ..exceptions import CoresetError

__all__ = ["stderr_console", "stdout_console", "cli_errors", "logging_to_stderr", "jsonable", "fail", "check_output",
           "check_output_target", "interrupted"]


def stdout_console():
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr, stderr=True, highlight=False)


def fail(message: str, code: int = 1):
    """Print ``Error: message`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(str(message).split())
    typer.echo(f"Error: {one_line}", err=True)
    raise typer.Exit(code)


@contextmanager
def cli_errors(debug: bool):
    """Library errors (and OS errors such as a full disk) become one ``Error:``
    line and exit 1; with ``debug`` they propagate with their traceback."""
    try:
        yield
    except (CoresetError, OSError) as exc:
        if debug:
            raise
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and not isinstance(exc, CoresetError):
            msg = f"{exc.strerror or exc}" + (f": {exc.filename!r}" if exc.filename else "")
        fail(msg)
    except KeyboardInterrupt:
        if debug:
            raise
        interrupted()
    except Exception as exc:
        # Ctrl-C that lands inside a library's own frames can surface as another
        # error raised while the KeyboardInterrupt was pending (numba's
        # dispatcher loading a cached function: SystemError "returned a result
        # with an exception set"). It is an interrupt, not a failure.
        if debug or not interrupt_in_chain(exc):
            raise
        interrupted()


def interrupt_in_chain(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while handling (or because of) a
    ``KeyboardInterrupt``: one is in its ``__context__`` / ``__cause__`` chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def interrupted():
    """Ctrl-C: print ``Interrupted.`` once on stderr and exit 130 (the
    console script then ends the process at once: ``coreset.cli._app.main``)."""
    typer.echo("Interrupted.", err=True)
    _SHOWN.append(True)
    raise typer.Exit(130)


_SHOWN: list = []  # the Interrupted. line was printed (read by main)


@contextmanager
def logging_to_stderr(console, *, verbose: bool = False, debug: bool = False, quiet: bool = False):
    """Route the ``coreset`` loggers to ``console`` (stderr) for one command."""
    from rich.logging import RichHandler

    level = logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    logger = logging.getLogger("coreset")
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False, rich_tracebacks=False)
    handler.setLevel(level)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def jsonable(value):
    """``value`` with NaN/inf floats replaced by None and numpy scalars made
    plain, so ``json.dumps`` writes standard JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_output(output, fmt_option, protected) -> str:
    """Checks of ``--output``: a known format (exit 2), then
    :func:`check_output_target` (exit 1, or 2 for one of the ``protected`` files)."""
    from .._io import FORMATS, format_for_path

    if fmt_option is not None and fmt_option not in FORMATS:
        raise typer.BadParameter(f"{fmt_option!r} is not a format; use one of {', '.join(FORMATS)}",
                                 param_hint="'--format'")
    try:
        fmt = format_for_path(output, fmt_option)
    except CoresetError:
        raise typer.BadParameter(
            f"cannot tell the index-file format from {output.suffix or 'no suffix'!r}; "
            "use a .npz, .parquet, .npy or .txt suffix, or --format npz|parquet|npy|txt",
            param_hint="'--output' / '--format'",
        ) from None
    check_output_target(output, protected)
    return fmt


def check_output_target(output, protected=(), *, param: str = "--output", reserve: int = 0):
    """The output-path check every writing command runs before any work
    (``coreset._atomic.check_output_path``, which every write runs again): a
    regular file or a new one in a folder that exists, names within NAME_MAX /
    PATH_MAX; else one ``Error:`` line naming ``param`` and exit 1. Then a usage
    check (exit 2): not one of the ``protected`` files (INPUT, --labels,
    --checkpoint, ...), also through a symbolic link, a hard link or ``..``.
    Returns the file the write replaces (a symbolic link's target)."""
    from .._atomic import check_output_path, same_file

    try:
        target = check_output_path(output, param=param, reserve=reserve)
    except CoresetError as exc:
        fail(str(exc))
    for flag, path in protected:
        if path is not None and same_file(output, path):
            raise typer.BadParameter(f"the output would overwrite {flag}", param_hint=f"'{param}'")
    return target

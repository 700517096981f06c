"""Shared CLI plumbing: consoles, logging to stderr, and turning a
:class:`~coreset.exceptions.CoresetError` into one ``Error:`` line and exit 1."""

from __future__ import annotations

import logging
import math
import sys
from contextlib import contextmanager

import typer

from ..exceptions import CoresetError

__all__ = ["stderr_console", "stdout_console", "cli_errors", "logging_to_stderr", "jsonable", "fail"]


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
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None


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

"""Shared CLI plumbing: consoles, logging to stderr, and turning a
:class:`~coreset.exceptions.CoresetError` into one ``Error:`` line and exit 1."""

from __future__ import annotations

import logging
import math
import sys
from contextlib import contextmanager

import typer

from ..exceptions import CoresetError

__all__ = ["stderr_console", "stdout_console", "cli_errors", "logging_to_stderr", "jsonable", "fail", "check_output"]


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


def check_output(output, fmt_option, protected) -> str:
    """Usage checks of ``--output`` (exit 2): a known format, not a folder, and
    not one of the ``protected`` input files (INPUT, --labels, ...)."""
    from .._io import FORMATS, format_for_path
    from ..exceptions import CoresetError

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
    if output.is_dir():
        raise typer.BadParameter(f"{str(output)!r} is a folder; give a file path", param_hint="'--output'")
    for flag, path in protected:
        if path is not None and output.exists() and path.exists() and output.resolve() == path.resolve():
            raise typer.BadParameter(f"the output would overwrite {flag}", param_hint="'--output'")
    return fmt

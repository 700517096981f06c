"""The ``coreset`` command: the Typer app and its small commands."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Annotated, Optional


def _end_on_sigint(signum, frame):  # pragma: no cover - exercised by tests/test_sigint.py in a subprocess
    sys.stderr.write("Interrupted.\n")
    sys.stderr.flush()
    os._exit(130)


# Ctrl-C while the commands load (nothing started, nothing to clean up): exit 130 at once
# instead of a KeyboardInterrupt traceback; the handler before is restored after the imports.
_GUARD = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
    signal.default_int_handler
if _GUARD:
    signal.signal(signal.SIGINT, _end_on_sigint)
try:
    import typer

    from ._compare import compare_command
    from ._dedup import dedup_command
    from ._embed import embed_command
    from ._inspect import inspect_command
    from ._list import list_command
    from ._report import report_command
    from ._select import select_command
finally:
    if _GUARD:
        signal.signal(signal.SIGINT, signal.default_int_handler)

__all__ = ["app", "main"]

app = typer.Typer(
    name="coreset",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        from .._version import __version__

        typer.echo(f"coreset {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
):
    """Select small, informative, weighted training subsets from embeddings.

    Results go to stdout (or the output file); progress and logs to stderr.
    Exit status: 0 ok, 1 error (one `Error:` line), 2 usage error, 130 Ctrl-C
    (nothing written).
    """


app.command("select")(select_command)
app.command("inspect")(inspect_command)
app.command("dedup")(dedup_command)
app.command("embed")(embed_command)
app.command("list")(list_command)
app.command("compare")(compare_command)
app.command("report")(report_command)


@app.command("datasets")
def datasets_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
):
    """List the embedded datasets (usable as `coreset select --dataset NAME`)."""
    # n_train / n_test: training points and balanced test points; imbalance: largest /
    # smallest training class (seed 0). Static numbers from the registry: nothing is generated.
    from ..data import DATASETS

    rows = {name: {"description": info.description, "n_train": info.n_train, "n_test": info.n_test,
                   "n_classes": info.n_classes, "dims": info.n_features, "imbalance": round(info.imbalance, 1)}
            for name, info in DATASETS.items()}
    if as_json:
        typer.echo(json.dumps(rows))
        return
    from rich.table import Table

    from ._common import stdout_console

    t = Table("name", "n_train", "n_test", "classes", "dims", "imbalance", "description", box=None, pad_edge=False)
    for name, r in rows.items():
        t.add_row(name, f"{r['n_train']:,}", f"{r['n_test']:,}", str(r["n_classes"]), str(r["dims"]),
                  f"{r['imbalance']:g}", r["description"])
    stdout_console().print(t)


def main() -> None:
    """Entry point of the ``coreset`` console script.

    Ctrl-C (SIGINT) at any point: one ``Interrupted.`` line on stderr and
    exit 130. The library returns to Python several times a second even
    inside compiled loops and searches (``coreset._pace``), so the interrupt
    raises within a fraction of a second; as it unwinds, the writes in
    progress remove their temporary files (an output is written whole or not
    at all) and the commands release what they started. The process then ends
    at once after the exit handlers (``atexit``: a local Ray cluster is shut
    down there), skipping the interpreter's teardown of every loaded module,
    which takes seconds on a loaded machine."""
    from ._common import _SHOWN

    del _SHOWN[:]
    try:
        app(prog_name="coreset")
    except KeyboardInterrupt:  # outside every command's handler (e.g. while typer starts)
        _exit_interrupted(_SHOWN)
    except SystemExit as exc:
        if exc.code == 130:
            _exit_interrupted(_SHOWN)
        raise
    except Exception as exc:  # an error raised while a Ctrl-C was pending
        from ._common import interrupt_in_chain

        if interrupt_in_chain(exc):
            _exit_interrupted(_SHOWN)
        raise


def _exit_interrupted(shown) -> None:
    import atexit
    import os
    import sys

    try:
        if not shown:
            typer.echo("Interrupted.", err=True)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed pipe: nothing more to say
                pass
        from ..executors._ray import end_ray_for_exit

        end_ray_for_exit()
        atexit._run_exitfuncs()
    except KeyboardInterrupt:  # a second Ctrl-C: end now
        pass
    os._exit(130)

"""Option sets: every CLI option is declared once, in a group, with where its
value goes. A command is built from its groups (``command(*groups)``), so a
new knob is one :class:`Opt` line: Typer sees it in ``--help``, the docs are
generated from ``--help``, and ``route="select"`` passes it to
``coreset.select`` under its own name when the user sets it.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Annotated, Any

import typer

__all__ = ["Opt", "command", "library_params", "JSON_FLAG", "QUIET_FLAG", "DEBUG_FLAG", "JsonFlag", "QuietFlag",
           "DebugFlag"]

#: the output flags every command shares (one declaration: the same names, panel and help everywhere)
JSON_FLAG = typer.Option("--json", rich_help_panel="Output",
                         help="Print the summary as one JSON object instead of a table.")
QUIET_FLAG = typer.Option("--quiet", "-q", rich_help_panel="Output", help="No progress bar; only errors on stderr.")
DEBUG_FLAG = typer.Option("--debug", rich_help_panel="Output", help="Show tracebacks instead of one-line errors.")
JsonFlag = Annotated[bool, JSON_FLAG]
QuietFlag = Annotated[bool, QUIET_FLAG]
DebugFlag = Annotated[bool, DEBUG_FLAG]


@dataclass(frozen=True)
class Opt:
    """One option: its Python name, type, default, the typer parameter (an
    ``Option`` or ``Argument``), and where the value goes: ``"select"`` (the
    library call, only when set to something other than the default) or
    ``"cli"`` (the command itself)."""

    name: str
    annotation: Any
    default: Any
    param: Any
    route: str = "cli"


def command(*groups):
    """Decorate ``impl(values: dict)`` into a Typer command whose parameters
    are the options of ``groups`` (in order)."""
    opts = [o for g in groups for o in g]

    def wrap(impl):
        @functools.wraps(impl)
        def cmd(**kwargs):
            return impl(kwargs)

        params = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default,
                                    annotation=Annotated[o.annotation, o.param]) for o in opts]
        cmd.__signature__ = inspect.Signature(params)
        cmd.__annotations__ = {o.name: Annotated[o.annotation, o.param] for o in opts}
        cmd.__wrapped__ = None
        del cmd.__wrapped__
        cmd.options = opts
        return cmd

    return wrap


def library_params(values: dict, *groups) -> dict:
    """The values of the ``route="select"`` options the user set (not at their default)."""
    out = {}
    for g in groups:
        for o in g:
            if o.route == "select" and values.get(o.name, o.default) != o.default:
                out[o.name] = values[o.name]
    return out

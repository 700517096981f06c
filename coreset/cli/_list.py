"""``coreset list``: what the registries hold (objectives, optimizers, selectors)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ._common import cli_errors, stdout_console

__all__ = ["list_command", "registry_rows", "FAMILIES"]

FAMILIES = ("objectives", "optimizers", "selectors")


def _summary(cls) -> str:
    doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
    first = doc.split(": ")[0].split(". ")[0]
    return first.rstrip(".")


def registry_rows(family: str) -> list[dict]:
    """One dict per registered member: name, class, summary and, for
    objectives, what it is built on, monotone, sparse and torch support."""
    from .. import _registry

    reg = {"objectives": _registry.OBJECTIVES, "optimizers": _registry.OPTIMIZERS,
           "selectors": _registry.SELECTORS}[family]
    rows = []
    for name in reg.names():
        cls = reg.get(name)
        row = {"name": name, "class": f"{cls.__module__.rsplit('._', 1)[0]}.{cls.__name__}", "summary": _summary(cls)}
        if family == "objectives":
            import inspect

            flag = inspect.getattr_static(cls, "monotone", None)  # a descriptor: depends on parameters and data
            row.update(inputs=getattr(cls, "inputs", "similarity"),
                       monotone=flag if isinstance(flag, bool) or flag is None else "depends",
                       sparse=getattr(cls, "supports_sparse", None),
                       torch=any("to_torch" in k.__dict__ for k in cls.__mro__[:-1]
                                 if k.__name__ not in ("KernelObjective",)))
        rows.append(row)
    return rows


def list_command(
    family: Annotated[Optional[str], typer.Argument(
        metavar="[FAMILY]", show_default=False,
        help="objectives, optimizers or selectors (default: all three).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
):
    """List the registered objectives, optimizers and selectors: the names that the
    objective, optimizer and method options of `coreset select` accept."""
    if family is not None and family not in FAMILIES:
        raise typer.BadParameter(f"{family!r} is not one of {', '.join(FAMILIES)}", param_hint="FAMILY")
    with cli_errors(False):
        tables = {f: registry_rows(f) for f in ([family] if family else FAMILIES)}
    if as_json:
        typer.echo(json.dumps(tables))
        return
    from rich.table import Table

    con = stdout_console()
    for fam, rows in tables.items():
        cols = [k for k in rows[0] if k != "class"]
        t = Table(*cols, title=fam, title_justify="left", box=None, pad_edge=False)
        for r in rows:
            t.add_row(*("" if r[k] is None else str(r[k]) for k in cols))
        con.print(t)

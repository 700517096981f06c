"""The package's imports go one way: no import circle among ``coreset``
modules, and no module imports one from a higher layer (DESIGN.md, "Data
flow"; docs/contributing.md, "Layers"). Every import counts: module level and
deferred (inside functions), absolute and relative, ``from . import x``.

The graph is read with ``ast`` from the source files; nothing is imported.
An edge ``a -> b`` means module ``a`` names module ``b`` in an import (for
``from pkg import name``: ``pkg.name`` when that is a module, else ``pkg``).
A package's own ``__init__`` running when a submodule is imported is not an
edge: the face ``coreset/__init__.py`` would otherwise sit under everything.
Imports under ``if TYPE_CHECKING:`` are not edges either: they never run.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

import coreset

ROOT = Path(coreset.__file__).resolve().parent

#: bottom to top; a module may import modules of its own layer or of lower ones.
#: Patterns match dotted module names (``fnmatch``); every module matches exactly one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("version", ("coreset._version",)),
    ("exceptions", ("coreset.exceptions",)),
    ("utilities", ("coreset._validation", "coreset._registry", "coreset._pace", "coreset._atomic",
                   "coreset._device", "coreset._defaults")),
    ("row sources", ("coreset.data._fingerprint", "coreset.data._readers", "coreset.data._hf",
                     "coreset.data._chunks", "coreset.data._sources", "coreset.data._shards",
                     "coreset.data._split", "coreset.data._noise", "coreset.data._base")),
    ("similarity", ("coreset.similarity", "coreset.similarity.*")),
    ("objectives", ("coreset.objectives", "coreset.objectives.*")),
    ("optimizers", ("coreset.optimizers", "coreset.optimizers.*")),
    # the result type and what writes it, the executors (they run a function over
    # row sources; selectors hand them that function), the dataset generators
    ("selection, io, executors, datasets", (
        "coreset._io", "coreset.selection", "coreset._knee", "coreset._provenance", "coreset._checkpoint",
        "coreset.executors", "coreset.executors.*",
        "coreset.data", "coreset.data._longtail", "coreset.data._mnist1d", "coreset.data._text")),
    ("probes", ("coreset.probes", "coreset.probes.*")),
    ("selectors", ("coreset.selectors", "coreset.selectors.*", "coreset._stream")),
    ("pipelines", ("coreset.pipelines", "coreset.pipelines.*", "coreset.testing")),
    ("report, integrations", ("coreset.report", "coreset.report.*", "coreset.integrations",
                              "coreset.integrations.*")),
    ("package face", ("coreset",)),
    ("cli", ("coreset.cli", "coreset.cli.*")),
]

#: Upward imports accepted on purpose, each a deferred import in one method; they
#: are left out of the cycle check too. An entry that no longer occurs fails the test.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # ``Selection.report(X)``: the result type's shortcut to coreset.report.build_report
    ("coreset.selection", "coreset.report"): "Selection.report",
}
#: What the test still tolerates, each to be removed by the change that fixes it
#: (issue 19). An entry that no longer occurs fails the test: the lists only shrink.
KNOWN_CYCLES: list[frozenset[str]] = []
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _runtime_nodes(tree):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                todo.extend(child.orelse)
            else:
                todo.append(child)


UNRESOLVED: list[str] = []  # imports of coreset modules that do not exist (filled by import_graph)


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported coreset module: first line}."""
    mods = _modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, dict[str, int]] = {}
    UNRESOLVED.clear()
    for mod, path in mods.items():
        edges = graph.setdefault(mod, {})
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names if a.name.split(".")[0] == "coreset"]
                UNRESOLVED.extend(f"{mod} line {node.lineno}: import {a.name}" for a in node.names
                                  if a.name.split(".")[0] == "coreset" and a.name not in mods)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                if node.level and full.split(".")[0] != "coreset" or full.split(".")[0] == "coreset" and full not in mods:
                    UNRESOLVED.append(f"{mod} line {node.lineno}: from {'.' * node.level}{node.module or ''} import ...")
                if full.split(".")[0] == "coreset":
                    targets = [f"{full}.{a.name}" if f"{full}.{a.name}" in mods else resolve(full)
                               for a in node.names]
            for t in targets:
                if t and t != mod:
                    edges[t] = min(edges.get(t, node.lineno), node.lineno)
    return graph


def find_cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _cycle_path(graph, comp: list[str]) -> str:
    """One concrete circle through the component, with the import lines."""
    members, start = set(comp), comp[0]
    prev, frontier = {start: None}, [start]
    while frontier:  # breadth-first back to start
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    path = path[::-1] + [start]
                    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:])) + f" -> {start}"
                if w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return " <-> ".join(comp)


def layer_of(module: str) -> list[int]:
    return [i for i, (_, pats) in enumerate(LAYERS) if any(fnmatch.fnmatchcase(module, p) for p in pats)]


GRAPH = import_graph()


def test_the_walker_sees_every_kind_of_import(tmp_path):
    """Deferred, relative, ``from . import x`` and absolute imports are all edges."""
    # deferred inside a method (Selection.save), relative
    assert "coreset._io" in GRAPH["coreset.selection"]
    # under `if TYPE_CHECKING:` only: not an edge
    assert "coreset.selection" not in GRAPH["coreset._io"]
    # `from .._version import __version__` at module level
    assert "coreset._version" in GRAPH["coreset._provenance"]
    # `from . import selectors` in the face names the subpackage
    assert "coreset.selectors" in GRAPH["coreset"]
    # absolute `import coreset` inside a function (the CLI's select)
    assert "coreset" in GRAPH["coreset.cli._select"]
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


def test_every_coreset_import_names_a_module_that_exists():
    """A deferred import of a module that is not there fails only when it runs."""
    assert not UNRESOLVED, "imports of missing coreset modules:\n" + "\n".join(UNRESOLVED)


def test_every_module_has_exactly_one_layer():
    bad = {m: [LAYERS[i][0] for i in layer_of(m)] for m in GRAPH if len(layer_of(m)) != 1}
    assert not bad, f"place each module in exactly one layer of LAYERS (tests/test_layering.py): {bad}"


def test_no_import_cycles():
    graph = {a: {b: n for b, n in e.items() if (a, b) not in ALLOWED_UPWARD} for a, e in GRAPH.items()}
    cycles = find_cycles(graph)
    new = [c for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not new, "import circles:\n" + "\n".join(_cycle_path(graph, c) for c in new)
    stale = [sorted(k) for k in KNOWN_CYCLES if k not in {frozenset(c) for c in cycles}]
    assert not stale, f"fixed or changed, remove from KNOWN_CYCLES: {stale}"


def test_no_imports_from_a_lower_layer_to_a_higher_one():
    found = {}
    for a, edges in GRAPH.items():
        for b, line in edges.items():
            la, lb = layer_of(a), layer_of(b)
            if len(la) == 1 and len(lb) == 1 and lb[0] > la[0]:
                found[(a, b)] = f"{a} (layer {LAYERS[la[0]][0]!r}, line {line}) imports {b} " \
                                f"(layer {LAYERS[lb[0]][0]!r})"
    new = [msg for key, msg in sorted(found.items()) if key not in KNOWN_UPWARD and key not in ALLOWED_UPWARD]
    assert not new, "imports back up:\n" + "\n".join(new)
    stale = [k for k in {**KNOWN_UPWARD, **ALLOWED_UPWARD} if k not in found]
    assert not stale, f"fixed, remove from KNOWN_UPWARD: {stale}"


@pytest.mark.parametrize("name", ["torch", "faiss"])
def test_import_coreset_stays_light(name):
    import subprocess
    import sys

    code = f"import coreset, sys; assert {name!r} not in sys.modules, {name!r}"
    subprocess.run([sys.executable, "-c", code], check=True)


def _private_imports_across_packages() -> list[str]:
    """``from <coreset module> import _name`` where the importer sits in another
    subpackage than the module (coreset.selectors.* importing a private helper
    of coreset.similarity.*, say). A private module imported as a module
    (``from coreset import _registry``) is not a private *name* and is allowed."""
    mods = _modules()

    def package_of(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 and (ROOT / parts[1]).is_dir() else "coreset"

    found = []
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                full = ".".join(base + ([node.module] if node.module else []))
            else:
                full = node.module or ""
            if full.split(".")[0] != "coreset" or package_of(full) == package_of(mod):
                continue
            bad = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                   and f"{full}.{a.name}" not in mods]
            if bad:
                found.append(f"{mod} line {node.lineno}: from {full} import {', '.join(bad)}")
    return found


def test_no_private_name_is_imported_from_another_package():
    """A package uses another through the names it exports (issue 19: the
    selectors imported the similarity package's private helpers)."""
    found = _private_imports_across_packages()
    assert not found, "private names imported across packages:\n" + "\n".join(found)

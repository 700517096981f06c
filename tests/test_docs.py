"""The README's two commands, .ci/run and docs/ stay true: the CI script runs the
README's test command exactly, the CLI reference matches ``--help``, and the
main job of command 1 runs."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coreset.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_MD = ROOT / "docs" / "cli.md"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None


def bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def readme_commands() -> tuple[str, str]:
    """(command 1, command 2): the one-line blocks under the "Two commands" heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = bash_blocks(section)
    assert len(blocks) == 2, blocks
    for b in blocks:
        assert "\n" not in b, f"a README command must be one copy-pasteable line: {b!r}"
    return blocks[0], blocks[1]


def test_ci_runs_the_readme_test_command_exactly():
    _, test_cmd = readme_commands()
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "set -euo pipefail"
    assert lines[-1] == test_cmd
    assert "pytest" in test_cmd


@pytest.mark.parametrize("which", [0, 1])
def test_readme_commands_install_cpu_torch_first(which):
    cmd = readme_commands()[which]
    steps = [s.strip() for s in cmd.split("&&")]
    assert steps[0].startswith("python3 -m venv ")
    torch_step = steps.index("pip install torch==2.13.0")
    install = next(i for i, s in enumerate(steps) if s.startswith("pip install -e "))
    assert torch_step < install
    extras = re.search(r'"\.\[(.*)\]"', steps[install]).group(1).split(",")
    assert "faiss-cpu" in extras and "faiss-gpu" not in extras
    if tomllib is not None:
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert set(extras) <= set(declared)
        assert not any(dep.startswith("torch") for dep in
                       tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def test_readme_command_1_main_job_runs(tmp_path):
    """The `coreset select ...` part of command 1, through the CLI runner."""
    cmd = readme_commands()[0]
    job = shlex.split(cmd.split("&&")[-1])
    assert job[:2] == ["coreset", "select"]
    out = job.index("--output") + 1
    job[out] = str(tmp_path / job[out])
    res = CliRunner().invoke(app, job[1:])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "subset.npz").exists()
    assert "selected" in res.stdout and "classes covered" in res.stdout and "seconds" in res.stdout


# ------------------------------------------------------------- CLI reference


def test_cli_reference_is_generated_from_the_commands():
    from coreset.cli._docgen import extract_block, render_reference

    assert extract_block(CLI_MD.read_text(encoding="utf-8")) == render_reference(), (
        "docs/cli.md is out of date: run `python -m coreset.cli._docgen docs/cli.md`"
    )


def _norm(text: str) -> str:
    text = re.sub(r"[│╭╮╰╯─┃━┏┓┗┛]", " ", text)
    return " ".join(text.split())


def _doc_sections() -> dict[str, list[tuple[list[str], str]]]:
    """command -> [(flags, description)] from the tables of docs/cli.md."""
    text = CLI_MD.read_text(encoding="utf-8")
    out = {}
    for sec in re.split(r"^### ", text, flags=re.M)[1:]:
        name = re.match(r"`([^`]*)`", sec).group(1)
        rows = []
        for line in sec.splitlines():
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if len(cells) == 4 and cells[0].startswith("`"):
                rows.append((re.findall(r"`(-[^`]+)`", cells[0]), cells[3].replace("\\|", "|")))
        out[name] = rows
    return out


@pytest.mark.parametrize("command", ["", "select", "inspect", "datasets", "list", "dedup", "embed", "compare",
                                     "report"])
def test_cli_reference_matches_help(command):
    res = CliRunner().invoke(app, ([command] if command else []) + ["--help"], env={"COLUMNS": "120"})
    assert res.exit_code == 0
    help_text = _norm(res.stdout)
    rows = _doc_sections()[f"coreset {command}".strip()]
    documented = {f for flags, _ in rows for f in flags}
    shown = set()  # flags that start an option row of the help (not ones mentioned in prose)
    for line in res.stdout.splitlines():
        m = re.match(r"\s*[│|]?\s*(?:\*\s+)?(--[a-z][a-z-]*)(?:,?\s+(-[a-z]\b|--[a-z][a-z-]*))?", line)
        if m:
            shown.update(f for f in m.groups() if f)
    assert documented == shown
    for flags, desc in rows:
        if flags == ["--help", "-h"]:
            continue
        assert _norm(desc) in help_text, (flags, desc)


# ------------------------------------------------------------------- pages


def test_docs_pages_exist_and_are_linked():
    text = README.read_text(encoding="utf-8")
    for page in ("getting-started", "cli", "index-files", "api", "benchmarks"):
        assert (ROOT / "docs" / f"{page}.md").is_file()
        assert f"(docs/{page}.md)" in text


def test_index_file_doc_names_the_current_version_and_arrays():
    from coreset._io import FORMAT_VERSION

    text = (ROOT / "docs" / "index-files.md").read_text(encoding="utf-8")
    assert f"Current `format_version`: **{FORMAT_VERSION}**" in text
    for name in ("indices", "weights", "gains", "objective", "labels", "meta", "coreset.meta"):
        assert f"`{name}`" in text


def test_no_machine_paths_in_user_files():
    files = [README, ROOT / ".ci" / "run", *sorted((ROOT / "docs").glob("*.md"))]
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.])/(work|tmp|root|home)/", text), f


def test_objectives_table_is_generated_from_the_registry():
    from coreset._registry import OBJECTIVES
    from coreset.cli._docgen import extract_objectives, render_objectives

    text = (ROOT / "docs" / "objectives.md").read_text(encoding="utf-8")
    assert extract_objectives(text) == render_objectives(), (
        "docs/objectives.md is out of date: run `python -m coreset.cli._docgen`")
    for name in OBJECTIVES.names():
        assert f"| `{name}` |" in text, name

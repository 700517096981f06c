"""The ``coreset`` command line, driven through Typer's CliRunner: a loadable
index file for every input format, one ``Error:`` line and exit 1 for every
bad input, exit 2 for usage errors, and no partial output after a failure."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import coreset
from coreset import CoresetError, Selection
from coreset.cli import app
from coreset.data import input_fingerprint

N, D, C = 300, 16, 5


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((C, D)) * 4
    y = rng.integers(0, C, size=N)
    X = (centers[y] + rng.standard_normal((N, D))).astype(np.float32)
    return X, y.astype(np.int64)


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_error_line(res, *fragments):
    assert res.exit_code == 1, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in res.output
    assert res.stdout == ""
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def write_input(kind, tmp_path, X, y):
    """Write X (and y) in one input format; return the CLI arguments naming them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "npy":
        np.save(tmp_path / "emb.npy", X)
        np.savetxt(tmp_path / "labels.txt", y, fmt="%d")
        return [tmp_path / "emb.npy", "--labels", tmp_path / "labels.txt"]
    if kind == "npz":
        np.savez(tmp_path / "emb.npz", embeddings=X, label=y)
        return [tmp_path / "emb.npz", "--column", "embeddings", "--labels-column", "label"]
    if kind == "parquet":
        col = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), X.shape[1])
        pq.write_table(pa.table({"id": np.arange(len(X)), "emb": col, "label": y}), tmp_path / "emb.parquet")
        return [tmp_path / "emb.parquet", "--column", "emb", "--labels-column", "label"]
    if kind == "pt":
        torch = pytest.importorskip("torch")
        torch.save({"x": torch.from_numpy(X), "y": torch.from_numpy(y)}, tmp_path / "emb.pt")
        return [tmp_path / "emb.pt", "--column", "x", "--labels-column", "y"]
    raise AssertionError(kind)


# ----------------------------------------------------------------- success


@pytest.fixture(scope="module")
def reference(data):
    X, y = data
    return coreset.select(X, n_select=30, y=y, random_state=0)


@pytest.mark.parametrize("kind", ["npy", "npz", "parquet", "pt"])
def test_each_input_format_gives_a_loadable_index_file(runner, tmp_path, data, reference, kind):
    X, y = data
    args = write_input(kind, tmp_path, X, y)
    out = tmp_path / "subset.npz"
    res = run(runner, "select", *args, "--n-select", 30, "--output", out, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)  # stdout is exactly one JSON object
    sel = Selection.load(out)
    # the same numbers in any container give the library's own selection
    np.testing.assert_array_equal(sel.indices, reference.indices)
    np.testing.assert_allclose(sel.weights, reference.weights)
    np.testing.assert_array_equal(sel.labels, y[sel.indices])
    assert sel.meta["input"] == args[0].name
    assert sel.meta["input_fingerprint"] == input_fingerprint(X)
    assert sel.meta["random_state"] == 0 and "read" in sel.meta["timings"]
    assert summary["n_samples"] == N and summary["n_select"] == 30
    assert summary["classes_total"] == C
    assert summary["classes_covered"] == len(np.unique(y[sel.indices]))
    assert summary["weights_sum"] == pytest.approx(N)
    assert {"read", "write", "total"} <= set(summary["timings"])


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".npy", ".txt"])
def test_each_output_format(runner, tmp_path, data, suffix):
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / f"subset{suffix}"
    res = run(runner, "select", tmp_path / "x.npy", "--fraction", 0.1, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    sel = Selection.load(out)
    assert len(sel) == 30 and len(np.unique(sel.indices)) == 30
    assert sel.indices.min() >= 0 and sel.indices.max() < N
    assert "wrote" in res.stdout and "30 of 300" in res.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_human_summary_on_stdout_nothing_on_stderr(runner, tmp_path, data):
    X, y = data
    args = write_input("npz", tmp_path, X, y)
    res = run(runner, "select", *args, "--n-select", 12, "-o", tmp_path / "s.npz")
    assert res.exit_code == 0, res.output
    out = res.stdout
    for needle in ("emb.npz (300 x 16)", "12 of 300", "classes covered", f"/ {C}",
                   "facility_location", "lazy_greedy", "backend / device", "seconds", "read", "write"):
        assert needle in out, needle
    assert res.stderr == ""


def test_default_dataset_runs(runner, tmp_path):
    out = tmp_path / "digits.npz"
    res = run(runner, "select", "--dataset", "digits-lt", "--fraction", 0.1, "-o", out, "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    ds = coreset.data.load_dataset("digits-lt")
    n = len(ds.X)
    assert s["n_samples"] == n and s["n_select"] == max(1, round(0.1 * n))
    assert s["input"] == "dataset:digits-lt" and s["classes_total"] == len(np.unique(ds.y))
    sel = Selection.load(out)
    np.testing.assert_array_equal(sel.labels, ds.y[sel.indices])


def test_no_input_means_the_zipf_dataset(runner, tmp_path):
    out = tmp_path / "z.npz"
    res = run(runner, "select", "--fraction", 0.02, "-o", out, "--json", "--n-neighbors", 10)
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["input"] == "dataset:zipf" and s["n_samples"] == 10_000 and s["n_select"] == 200
    assert Selection.load(out).meta["n_neighbors"] == 10


def test_options_reach_the_library(runner, tmp_path, data):
    X, y = data
    args = write_input("npz", tmp_path, X, y)
    out = tmp_path / "s.npz"
    res = run(runner, "select", *args, "--n-select", 20, "-o", out, "--metric", "euclidean",
              "--optimizer", "naive_greedy", "--n-neighbors", "dense", "--class-budget", "equal",
              "--seed", 3, "--json")
    assert res.exit_code == 0, res.output
    sel = Selection.load(out)
    expected = coreset.select(X, n_select=20, y=y, metric="euclidean", optimizer="naive_greedy",
                              n_neighbors=None, class_budget="equal", random_state=3)
    np.testing.assert_array_equal(sel.indices, expected.indices)
    assert sel.meta["metric"] == "euclidean" and sel.meta["optimizer"] == "naive_greedy"
    assert sel.meta["random_state"] == 3
    assert np.bincount(y).min() >= 4
    np.testing.assert_array_equal(np.bincount(sel.labels, minlength=C), [4] * C)  # 20 points, 5 classes


def test_random_method_is_seeded(runner, tmp_path, data):
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    outs = []
    for i, seed in enumerate((1, 1, 2)):
        out = tmp_path / f"r{i}.txt"
        res = run(runner, "select", tmp_path / "x.npy", "--n-select", 25, "--method", "random",
                  "--seed", seed, "-o", out)
        assert res.exit_code == 0, res.output
        outs.append(Selection.load(out).indices)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(np.sort(outs[0]), np.sort(outs[2]))


# ------------------------------------------------------ bad input: exit 1


@pytest.fixture
def good(tmp_path, data):
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    return tmp_path / "x.npy"


def _npy(tmp_path, name, arr):
    np.save(tmp_path / name, arr)
    return tmp_path / name


def bad_cases(tmp_path, X):
    Xn = X.copy()
    Xn[5, 3] = np.nan
    Xi = X.copy()
    Xi[7, 1] = np.inf
    return {
        "nan": ([_npy(tmp_path, "nan.npy", Xn), "--n-select", 5], ["finite", "nan", "row 5"]),
        "inf": ([_npy(tmp_path, "inf.npy", Xi), "--n-select", 5], ["finite", "inf", "row 7"]),
        "1-d": ([_npy(tmp_path, "v.npy", X[:, 0]), "--n-select", 5], ["2-D", "ndim=1"]),
        "3-d": ([_npy(tmp_path, "c.npy", X.reshape(N, 4, 4)), "--n-select", 5], ["2-D", "ndim=3"]),
        "empty": ([_npy(tmp_path, "e.npy", np.zeros((0, D), np.float32)), "--n-select", 5], ["empty"]),
        "n_select=0": ([tmp_path / "x.npy", "--n-select", 0], ["n_select", "got 0"]),
        "n_select<0": ([tmp_path / "x.npy", "--n-select", -4], ["n_select", "got -4"]),
        "n_select>N": ([tmp_path / "x.npy", "--n-select", N + 1], ["n_select", str(N + 1)]),
        "fraction=0": ([tmp_path / "x.npy", "--fraction", 0], ["fraction", "(0"]),
        "fraction>1": ([tmp_path / "x.npy", "--fraction", 1.5], ["fraction", "1.5"]),
        "labels length": ([tmp_path / "x.npy", "--n-select", 5, "--labels", _npy(tmp_path, "y.npy", np.arange(N - 1))],
                          ["299", "300"]),
        "dtype": ([_npy(tmp_path, "s.npy", np.array([["a", "b"]] * 10)), "--n-select", 2], ["real numbers", "<U1"]),
        "n_neighbors>=N": ([tmp_path / "x.npy", "--n-select", 5, "--n-neighbors", N], ["n_neighbors", str(N)]),
        "identical rows": ([_npy(tmp_path, "same.npy", np.ones((50, 4), np.float32)), "--n-select", 5],
                           ["identical"]),
        "objective name": ([tmp_path / "x.npy", "--n-select", 5, "--objective", "facility_locatoin"],
                           ["facility_locatoin", "did you mean 'facility_location'"]),
        "optimizer name": ([tmp_path / "x.npy", "--n-select", 5, "--optimizer", "lazy-greedy"],
                           ["lazy-greedy", "did you mean 'lazy_greedy'"]),
        "metric name": ([tmp_path / "x.npy", "--n-select", 5, "--metric", "cosin"], ["did you mean 'cosine'"]),
        "device name": ([tmp_path / "x.npy", "--n-select", 5, "--device", "gpu0"], ["device", "gpu0"]),
        "dataset name": (["--dataset", "zipff", "--n-select", 5], ["zipff", "did you mean 'zipf'"]),
        "missing file": ([tmp_path / "nope.npy", "--n-select", 5], ["nope.npy", "no such file"]),
        "missing labels": ([tmp_path / "x.npy", "--n-select", 5, "--labels", tmp_path / "nope.txt"], ["nope.txt"]),
    }


BAD = [
    "nan", "inf", "1-d", "3-d", "empty", "n_select=0", "n_select<0", "n_select>N", "fraction=0",
    "fraction>1", "labels length", "dtype", "n_neighbors>=N", "identical rows", "objective name",
    "optimizer name", "metric name", "device name", "dataset name", "missing file", "missing labels",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_error_line_and_no_file(runner, tmp_path, data, good, case):
    args, fragments = bad_cases(tmp_path, data[0])[case]
    out = tmp_path / "out.npz"
    res = run(runner, "select", *args, "-o", out)
    assert_one_error_line(res, *fragments)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.npz")]


def test_unreadable_files(runner, tmp_path):
    out = tmp_path / "out.npz"
    for name in ("g.npy", "g.npz", "g.parquet", "g.pt"):
        (tmp_path / name).write_bytes(b"\x00garbage, not embeddings\n" * 50)
        res = run(runner, "select", tmp_path / name, "--n-select", 5, "-o", out)
        assert_one_error_line(res, name)
    (tmp_path / "dir.npy").mkdir()
    assert_one_error_line(run(runner, "select", tmp_path / "dir.npy", "--n-select", 5, "-o", out), "folder")
    (tmp_path / "x.h5").write_bytes(b"")
    assert_one_error_line(run(runner, "select", tmp_path / "x.h5", "--n-select", 5, "-o", out), ".h5")
    assert not out.exists()


def test_wrong_column_names(runner, tmp_path, data):
    X, y = data
    args = write_input("parquet", tmp_path, X, y)
    out = tmp_path / "out.npz"
    res = run(runner, "select", args[0], "--column", "embedding", "--n-select", 5, "-o", out)
    assert_one_error_line(res, "no column 'embedding'", "columns: id, emb, label")
    res = run(runner, "select", args[0], "--labels-column", "y", "--n-select", 5, "-o", out)
    assert_one_error_line(res, "no labels column 'y'")
    np.savez(tmp_path / "two.npz", a=X, b=X)
    res = run(runner, "select", tmp_path / "two.npz", "--n-select", 5, "-o", out)
    assert_one_error_line(res, "2 arrays (a, b)", "--column")
    assert not out.exists()


def test_pickle_bearing_npz_is_refused(runner, tmp_path):
    np.savez(tmp_path / "evil.npz", x=np.array([{"payload": 1}, None], dtype=object))
    res = run(runner, "select", tmp_path / "evil.npz", "--n-select", 1, "-o", tmp_path / "out.npz")
    assert_one_error_line(res, "evil.npz", "pickled")
    assert not (tmp_path / "out.npz").exists()


def test_failed_run_keeps_an_existing_output(runner, tmp_path, good):
    out = tmp_path / "out.npz"
    res = run(runner, "select", good, "--n-select", 5, "-o", out)
    assert res.exit_code == 0, res.output
    before = out.read_bytes()
    res = run(runner, "select", good, "--n-select", 10_000, "-o", out)
    assert_one_error_line(res, "n_select")
    assert out.read_bytes() == before


def test_output_folder_must_exist(runner, tmp_path, good):
    res = run(runner, "select", good, "--n-select", 5, "-o", tmp_path / "no" / "out.npz")
    assert_one_error_line(res, "does not exist")


def test_debug_shows_the_exception(runner, tmp_path, good):
    res = run(runner, "select", good, "--n-select", 0, "-o", tmp_path / "o.npz", "--debug")
    assert res.exit_code == 1 and isinstance(res.exception, CoresetError)
    assert "Error:" not in res.stderr


# ------------------------------------------------------------- usage: exit 2


@pytest.mark.parametrize("args", [
    ["select", "IN", "-o", "OUT"],                                     # neither --fraction nor --n-select
    ["select", "IN", "--fraction", "0.1", "--n-select", "3", "-o", "OUT"],  # both
    ["select", "IN", "--fraction", "0.1"],                             # no --output
    ["select", "IN", "--fraction", "abc", "-o", "OUT"],                # not a number
    ["select", "IN", "--n-select", "2.5", "-o", "OUT"],                # not an integer
    ["select", "IN", "--fraction", "0.1", "-o", "OUT", "--n-neighbors", "many"],
    ["select", "IN", "--fraction", "0.1", "-o", "subset.h5"],          # unknown output format
    ["select", "IN", "--fraction", "0.1", "-o", "OUT", "--dataset", "zipf"],  # INPUT and --dataset
    ["select", "--fraction", "0.1", "-o", "OUT", "--labels", "y.txt"],  # --labels without INPUT
    ["select", "IN", "--fraction", "0.1", "-o", "OUT", "--no-such-option"],
    ["select", "IN", "--fraction", "0.1", "-o", "IN"],                 # would overwrite the input
    ["selec"],
    ["inspect"],
    ["inspect", "OUT", "--top", "0"],
])
def test_usage_errors_exit_2(runner, tmp_path, good, args):
    args = [str(good) if a == "IN" else str(tmp_path / "o.npz") if a == "OUT" else a for a in args]
    before = good.read_bytes()
    res = runner.invoke(app, args)
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.stdout == ""
    assert not (tmp_path / "o.npz").exists()
    assert good.read_bytes() == before


# --------------------------------------------------- inspect, datasets, version


def test_inspect(runner, tmp_path, data):
    X, y = data
    args = write_input("npz", tmp_path, X, y)
    out = tmp_path / "s.parquet"
    assert run(runner, "select", *args, "--n-select", 40, "-o", out).exit_code == 0
    res = run(runner, "inspect", out, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    sel = Selection.load(out)
    assert d["format"] == "parquet" and d["format_version"] == coreset._io.FORMAT_VERSION
    assert d["size_bytes"] == out.stat().st_size and d["n_select"] == 40
    hist = {int(k): v for k, v in d["class_histogram"].items()}
    assert hist == {int(c): int(n) for c, n in zip(*np.unique(sel.labels, return_counts=True))}
    assert list(d["class_histogram"].values()) == sorted(hist.values(), reverse=True)
    assert d["meta"]["input"] == "emb.npz"
    res = run(runner, "inspect", out, "--top", 2)
    assert res.exit_code == 0
    assert "class histogram of the selection" in res.stdout and f"{len(hist) - 2} more" in res.stdout
    assert "format_version 1" in res.stdout and "input_fingerprint" in res.stdout


def test_inspect_bare_and_bad_files(runner, tmp_path):
    Selection([3, 1, 2], [1, 1, 1], [0, 0, 0]).save(tmp_path / "s.txt")
    res = run(runner, "inspect", tmp_path / "s.txt", "--json")
    d = json.loads(res.stdout)
    assert d["bare_indices"] and d["n_select"] == 3 and d["class_histogram"] is None
    res = run(runner, "inspect", tmp_path / "s.txt")
    assert "no labels" in res.stdout and "bare indices" in res.stdout
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert_one_error_line(run(runner, "inspect", tmp_path / "bad.npz"), "bad.npz", "corrupt or truncated")
    np.savez(tmp_path / "foreign.npz", X=np.zeros(3))
    assert_one_error_line(run(runner, "inspect", tmp_path / "foreign.npz"), "missing arrays")
    assert_one_error_line(run(runner, "inspect", tmp_path / "none.npz"), "does not exist")


def test_datasets_and_version(runner):
    res = run(runner, "datasets")
    assert res.exit_code == 0 and "zipf" in res.stdout and "digits-lt" in res.stdout
    listed = json.loads(run(runner, "datasets", "--json").stdout)
    assert set(listed) == set(coreset.data.DATASETS)
    res = run(runner, "--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"coreset {coreset.__version__}"
    res = run(runner)
    assert "select" in res.output and "inspect" in res.output


# ----------------------------------------------------------------- progress


def test_progress_bar_draws_on_a_terminal_only_after_the_delay():
    from rich.console import Console

    from coreset.cli._progress import ProgressReporter

    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=100)
    with ProgressReporter(con, delay=0, min_interval=0) as rep:
        for i in range(1, 11):
            rep.callback("optimize", i, 10)
        assert rep.started
    assert "optimize" in buf.getvalue() and "10/10" in buf.getvalue()

    buf = io.StringIO()
    with ProgressReporter(Console(file=buf, force_terminal=True), delay=60) as rep:
        rep.callback("optimize", 1, 10)
        assert not rep.started
    assert buf.getvalue() == ""

    with ProgressReporter(Console(file=io.StringIO()), enabled=False) as rep:
        rep.callback("graph", 1, 2)  # a no-op, no error
        assert not rep.started


# ------------------------------------------ engine v2: no silent wrong results


def flat(text):
    """A rich-boxed usage error as one line of words."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_class_budget_knobs_without_a_class_budget_are_refused(runner, tmp_path, good):
    res = run(runner, "select", good, "--n-select", 5, "--min-per-class", 2, "-o", tmp_path / "o.npz")
    assert_one_error_line(res, "min_per_class=2", "class_budget")
    res = run(runner, "select", good, "--n-select", 5, "--alpha", 0.3, "-o", tmp_path / "o.npz")
    assert_one_error_line(res, "alpha=0.3", "class_budget")
    assert not (tmp_path / "o.npz").exists()


def test_bad_format_names_the_format_not_the_suffix(runner, tmp_path, good):
    res = runner.invoke(app, ["select", str(good), "--n-select", "5", "-o", str(tmp_path / "o.npz"),
                              "--format", "zip"])
    assert res.exit_code == 2
    assert "'zip' is not a format" in flat(res.stderr) and "npz, parquet, npy, txt" in flat(res.stderr)
    assert "suffix" not in res.stderr


def test_output_that_is_a_folder_is_named(runner, tmp_path, good):
    (tmp_path / "out.npz").mkdir()
    res = runner.invoke(app, ["select", str(good), "--n-select", "5", "-o", str(tmp_path / "out.npz")])
    assert_one_error_line(res, "--output", "it is a folder")  # exit 1, as for every target not a regular file
    assert ".tmp" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "x.npy"]


def test_output_equal_to_the_labels_file_is_refused(runner, tmp_path, data):
    X, y = data
    np.save(tmp_path / "x.npy", X)
    labels = tmp_path / "y.npy"
    np.save(labels, y)
    before = labels.read_bytes()
    res = runner.invoke(app, ["select", str(tmp_path / "x.npy"), "--labels", str(labels), "--n-select", "5",
                              "-o", str(labels)])
    assert res.exit_code == 2 and "overwrite the --labels file" in flat(res.stderr)
    assert labels.read_bytes() == before


def test_options_only_for_another_optimizer_are_usage_errors(runner, tmp_path, good):
    for flag, value in (("--epsilon", "0.1"), ("--sample-fraction", "0.3")):
        res = runner.invoke(app, ["select", str(good), "--n-select", "5", "-o", str(tmp_path / "o.npz"), flag, value])
        assert res.exit_code == 2 and flag in res.stderr


def test_objective_param_and_warm_start_reach_the_library(runner, tmp_path, data, good):
    X, _ = data
    first = tmp_path / "first.npz"
    assert run(runner, "select", good, "--n-select", 10, "-o", first).exit_code == 0
    out = tmp_path / "more.npz"
    res = run(runner, "select", good, "--n-select", 20, "--initial-subset", first, "-o", out)
    assert res.exit_code == 0, res.output
    a, b = Selection.load(first), Selection.load(out)
    np.testing.assert_array_equal(b.indices[:10], a.indices)  # warm start kept first
    full = coreset.select(X, n_select=20, random_state=0)
    np.testing.assert_array_equal(b.indices, full.indices)  # greedy from its own first 10 picks
    res = run(runner, "select", good, "--n-select", 5, "--objective-param", "nonsense", "-o", out)
    assert res.exit_code == 2 and "KEY=VALUE" in res.stderr


def test_list_shows_every_registered_name(runner):
    from coreset._registry import OBJECTIVES, OPTIMIZERS, SELECTORS

    res = run(runner, "list", "--json")
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    for fam, reg in (("objectives", OBJECTIVES), ("optimizers", OPTIMIZERS), ("selectors", SELECTORS)):
        assert [r["name"] for r in listed[fam]] == list(reg.names())
    assert runner.invoke(app, ["list", "objectivs"]).exit_code == 2


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("args", [["select", "{fifo}", "--fraction", "0.1", "-o", "{out}"],
                                  ["select", "{x}", "--labels", "{fifo}", "--fraction", "0.1", "-o", "{out}"],
                                  ["inspect", "{fifo}"]])
def test_a_named_pipe_is_one_error_line_not_a_hang(runner, tmp_path, data, args):
    """A FIFO as INPUT, --labels or an index file: exit 1, one Error line that
    says what it is (it used to wait for a writer forever); nothing written."""
    import os

    fifo, x, out = tmp_path / "in.npy", tmp_path / "x.npy", tmp_path / "out.npz"
    os.mkfifo(fifo)
    np.save(x, data[0])

    def release():  # a reader blocked on the FIFO (the bug) gets end-of-file, so the test fails, not hangs
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader waiting: nothing to release
            pass

    watchdog = __import__("threading").Timer(20.0, release)
    watchdog.start()
    try:
        res = run(runner, *[a.format(fifo=fifo, x=x, out=out) for a in args])
    finally:
        watchdog.cancel()
    assert_one_error_line(res, "not a regular file", "in.npy")
    assert not out.exists()

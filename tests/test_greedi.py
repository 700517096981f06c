"""GreeDi / RandGreeDi: partition -> select -> merge, on the local executor
and on a real local Ray cluster (one per module, 2 CPUs).

Oracles: the inner selector alone (1 partition), exact facility location on
all points computed by brute force (dense cosine) against centralized greedy,
class counts from allocate_budget, the local executor against Ray, an
unkilled run against one whose worker is SIGKILLed mid-task, reads against
numpy slicing."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from coreset import ClassBalanced, CoresetError, GreeDi, SubmodularSelector, ValidationError
from coreset.executors import NpySource, RayExecutor, as_source
from coreset.data import _sources
from coreset.selectors import allocate_budget
from _greedi_helpers import blobs, inner, ray_cluster, same  # noqa: F401 (ray_cluster: a fixture)


def exact_fl(X, idx):
    """Facility location on all points, brute force: sum_i max_j max(0, cos(x_i, x_j))."""
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    return float(np.maximum(Z @ Z[idx].T, 0).max(axis=1).sum())


# ------------------------------------------------------------------ local executor
def test_one_partition_is_the_inner_selector():
    X, _ = blobs()
    ref = inner(n_select=30, random_state=3).fit(X).selection_
    got = GreeDi(inner(n_select=30, random_state=3), 1).fit(X).selection_
    same(ref, got)
    assert got.meta["greedi"]["n_partitions"] == 1


def test_one_partition_with_class_budget_is_class_balanced():
    X, y = blobs(seed=1)
    ref = ClassBalanced(inner(), policy="equal", n_select=40, random_state=0).fit(X, y).selection_
    got = GreeDi(ClassBalanced(inner(), policy="equal"), 1, n_select=40, random_state=0).fit(X, y).selection_
    assert np.array_equal(ref.indices, got.indices) and np.array_equal(ref.weights, got.weights)
    # the wrapper's own size and seed when GreeDi has none
    own = GreeDi(ClassBalanced(inner(), policy="equal", n_select=40, random_state=0), 1).fit(X, y).selection_
    assert np.array_equal(ref.indices, own.indices)


def test_greedi_composes_with_class_balanced_and_the_old_parameters_are_deprecated():
    """GreeDi(ClassBalanced(selector, policy=...)) is the class-budgeted GreeDi;
    GreeDi's own class_budget / alpha / min_per_class still work, with a
    DeprecationWarning, and give the same selection; both at once is an error."""
    X, y = blobs(n=900, seed=2)
    composed = GreeDi(ClassBalanced(inner(), policy="tempered", alpha=0.3, min_per_class=2), 3, n_select=45,
                      random_state=4).fit(X, y)
    with pytest.warns(DeprecationWarning, match="ClassBalanced"):
        old = GreeDi(inner(), 3, class_budget="tempered", alpha=0.3, min_per_class=2, n_select=45,
                     random_state=4).fit(X, y)
    same(composed.selection_, old.selection_)
    assert composed.selection_.meta["class_budget"] == "tempered" and composed.selection_.meta["min_per_class"] == 2
    with pytest.raises(ValidationError, match="given twice"):
        GreeDi(ClassBalanced(inner(), policy="equal"), 3, class_budget="equal", n_select=45).fit(X, y)


@pytest.mark.parametrize("partition", ["random", "kmeans", "contiguous"])
@pytest.mark.parametrize("P", [2, 5])
def test_selection_is_valid_and_weights_sum_to_n(partition, P):
    X, _ = blobs(n=1000)
    model = GreeDi(inner(), P, partition=partition, n_select=25, random_state=0).fit(X)
    sel = model.selection_
    assert len(sel) == 25 and np.unique(sel.indices).size == 25
    assert sel.weights.sum() == pytest.approx(1000) and (sel.weights >= 1).all()  # a pick stands for itself
    info = sel.meta["greedi"]
    assert sum(info["partition_sizes"]) == 1000
    # RandGreeDi: never worse on the union than any single partition's solution
    cands = info["merge_candidates"]
    assert sel.objective == pytest.approx(max(cands.values()))
    again = GreeDi(inner(), P, partition=partition, n_select=25, random_state=0).fit(X).selection_
    same(sel, again)


def test_objective_close_to_centralized():
    """Exact facility location on all points, brute force; measured ratios 0.9925 (random)
    and 0.9945 (kmeans) to centralized lazy greedy."""
    X, _ = blobs(n=2000, d=16, centers=12, seed=4)
    k = 40
    central = exact_fl(X, inner(n_select=k, random_state=0).fit(X).selection_.indices)
    for partition in ("random", "kmeans"):
        got = GreeDi(inner(), 4, partition=partition, n_select=k, random_state=0).fit(X).selection_
        assert exact_fl(X, got.indices) >= 0.97 * central, partition


def test_contiguous_partitions_are_row_ranges_and_read_only_their_rows(tmp_path, monkeypatch):
    X, _ = blobs(n=1000)
    path = tmp_path / "X.npy"
    np.save(path, X)
    from coreset.data import _sources

    spans = []
    real = _sources.NpySource.read_range
    monkeypatch.setattr(_sources.NpySource, "read_range",
                        lambda self, a, b: spans.append((a, b)) or real(self, a, b))
    model = GreeDi(inner(), 4, partition="contiguous", n_select=20, random_state=0).fit(str(path))
    assert model.greedi_["partition_sizes"] == [250] * 4
    # the partition tasks (run in order by the local executor) read rows 0-249, 250-499, ... and
    # nothing else; what follows is the merge reading the union's rows
    assert spans[:4] == [(0, 250), (250, 500), (500, 750), (750, 1000)]


def test_kmeans_partitions_keep_clusters_together():
    X, y = blobs(n=900, d=16, centers=3, seed=2, scale=10.0)
    sizes = GreeDi(inner(), 3, partition="kmeans", n_select=9, random_state=0).fit(X).greedi_["partition_sizes"]
    assert sorted(sizes) == sorted(np.bincount(y).tolist())


@pytest.mark.parametrize("partition", ["random", "kmeans", "contiguous"])
@pytest.mark.parametrize("policy", ["proportional", "equal", "tempered"])
def test_class_budgets_exact_after_merge(partition, policy):
    X, _ = blobs(n=1500, seed=5)
    rng = np.random.default_rng(0)
    y = np.minimum(rng.zipf(1.5, size=1500) - 1, 9)  # long tail, 10 classes
    k = 60
    sel = GreeDi(ClassBalanced(inner(), policy=policy, min_per_class=1), 4, partition=partition, n_select=k,
                 random_state=0).fit(X, y).selection_
    classes, sizes = np.unique(y, return_counts=True)
    want = allocate_budget(sizes, k, policy, min_per_class=1)
    got = np.array([(sel.labels == c).sum() for c in classes])
    assert np.array_equal(got, want)
    for c, n_c, b in zip(classes, sizes, want):  # each class's weights sum to its size
        assert sel.weights[sel.labels == c].sum() == pytest.approx(n_c if b else 0)
    assert np.array_equal(y[sel.indices], sel.labels)


def test_files_read_by_rows_give_the_same_selection(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X, _ = blobs(n=800)
    ref = GreeDi(inner(), 3, n_select=20, random_state=1).fit(X).selection_
    np.save(tmp_path / "x.npy", X)
    same(ref, GreeDi(inner(), 3, n_select=20, random_state=1).fit(tmp_path / "x.npy").selection_)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    same(ref, GreeDi(inner(), 3, n_select=20, random_state=1).fit(mapped).selection_)
    table = pa.table({"id": np.arange(800), "emb": pa.array(list(X), type=pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=97)
    same(ref, GreeDi(inner(), 3, n_select=20, random_state=1).fit(str(tmp_path / "x.parquet")).selection_)


def test_sources_read_exactly_the_rows_asked(tmp_path, monkeypatch):
    X = np.random.default_rng(0).standard_normal((5000, 7))  # float64 kept
    np.save(tmp_path / "x.npy", X)
    monkeypatch.setattr(_sources, "BLOCK_BYTES", 7 * 8 * 300)  # many blocks: dense and sparse reads
    src = NpySource(tmp_path / "x.npy")
    rng = np.random.default_rng(1)
    for m in (1, 10, 700, 4000, 5000):
        rows = np.sort(rng.choice(5000, m, replace=False))
        out = src.read(rows)
        assert out.dtype == np.float64 and np.array_equal(out, X[rows])
    assert np.array_equal(src.read_range(123, 4567), X[123:4567])
    assert np.array_equal(src.read(np.array([3, 2, 3])), X[[3, 2, 3]])  # any order, repeats: as asked
    with pytest.raises(ValidationError, match=r"rows must be row numbers in \[0, 5000\); got .* to 5000"):
        src.read(np.array([3, 5000]))
    assert isinstance(as_source(np.load(tmp_path / "x.npy", mmap_mode="r")), NpySource)
    assert not isinstance(as_source(np.load(tmp_path / "x.npy", mmap_mode="r")[10:]), NpySource)


def test_progress_one_call_per_partition():
    X, _ = blobs(n=600)
    calls = []
    GreeDi(inner(), 4, n_select=10, random_state=0).fit(X, callback=lambda *a: calls.append(a))
    assert [c for c in calls if c[0] == "partitions"] == [("partitions", i, 4) for i in range(1, 5)]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_partitions": 0}, r"n_partitions must be in \[1, 100\]; got 0"),
    ({"n_partitions": 101}, r"n_partitions must be in \[1, 100\]; got 101"),
    ({"partition": "kmean"}, r"partition='kmean' is not known.*did you mean 'kmeans'"),
    ({"oversample": 0.5}, r"oversample"),
    ({"class_budget": "equal"}, r"needs labels y"),
    ({"ray_address": "127.0.0.1:1"}, r"ray_address applies to executor='ray'"),
    ({"executor": "spark"}, r"executor='spark' is not known"),
])
def test_bad_parameters(kwargs, match):
    X, _ = blobs(n=100)
    with pytest.raises(ValidationError, match=match):
        GreeDi(inner(), **{"n_partitions": 2, **kwargs}, n_select=5).fit(X)


def test_bad_selector_and_inputs(tmp_path):
    X, _ = blobs(n=100)
    with pytest.raises(ValidationError, match="selector must be a coreset selector"):
        GreeDi(object(), 2, n_select=5).fit(X)
    with pytest.raises(ValidationError, match="precomputed"):
        GreeDi(SubmodularSelector(similarity="precomputed"), 2, n_select=5).fit(X)
    with pytest.raises(CoresetError, match="no such file"):
        GreeDi(inner(), 2, n_select=5).fit(str(tmp_path / "missing.npy"))
    bad = X.copy()
    bad[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValidationError, match="X must be finite; found nan at row 7, column 3"):
        GreeDi(inner(), 2, n_select=5).fit(tmp_path / "nan.npy")


def test_unreachable_ray_address_is_one_clear_error():
    X, _ = blobs(n=100)
    with pytest.raises(CoresetError, match=r"cannot reach the Ray cluster at '127\.0\.0\.1:1'"):
        GreeDi(inner(), 2, executor="ray", ray_address="127.0.0.1:1", n_select=5).fit(X)


def test_cli_partitions(tmp_path):
    from typer.testing import CliRunner

    from coreset import Selection
    from coreset.cli import app

    X, y = blobs(n=700)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "20", "--partitions", "3",
                                 "--partition-by", "kmeans", "--n-neighbors", "dense", "--labels",
                                 str(tmp_path / "y.npy"), "--class-budget", "proportional", "-o",
                                 str(tmp_path / "o.npz"), "--json"])
    assert r.exit_code == 0, r.output
    sel = Selection.load(tmp_path / "o.npz")
    assert len(sel) == 20 and sel.weights.sum() == pytest.approx(700)
    ref = GreeDi(ClassBalanced(inner(), policy="proportional"), 3, partition="kmeans", n_select=20,
                 random_state=0).fit(X, y).selection_
    assert np.array_equal(sel.indices, ref.indices)
    r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "5", "--partitions", "2",
                                 "--executor", "ray", "--ray-address", "127.0.0.1:1", "-o", str(tmp_path / "p.npz")])
    assert r.exit_code == 1 and r.output.count("Error:") == 1 and "cannot reach the Ray cluster" in r.output
    for args in (["--partitions", "0"], ["--executor", "ray"], ["--partitions", "2", "--partition-by", "x"]):
        r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "5", *args,
                                     "-o", str(tmp_path / "q.npz")])
        assert r.exit_code == 2, (args, r.output)
    r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "5", "--partitions", "701",
                                 "-o", str(tmp_path / "q.npz")])
    assert r.exit_code == 1 and "n_partitions" in r.output


# ------------------------------------------------------------------ a real Ray cluster
@pytest.mark.distributed
@pytest.mark.parametrize("partition", ["random", "kmeans"])
def test_ray_equals_local(ray_cluster, tmp_path, partition):
    X, y = blobs(n=1200, seed=7)
    np.save(tmp_path / "x.npy", X)
    ref = GreeDi(inner(), 4, partition=partition, n_select=24, random_state=5).fit(X).selection_
    on_file = GreeDi(inner(), 4, executor="ray", partition=partition, n_select=24,
                     random_state=5).fit(tmp_path / "x.npy")
    same(ref, on_file.selection_)
    assert on_file.greedi_["executor"]["executor"] == "ray"
    shipped = GreeDi(inner(), 4, executor="ray", partition=partition, n_select=24, random_state=5).fit(X)
    same(ref, shipped.selection_)
    # in-memory X with Ray: each partition's rows are shipped (ray.put); with a file only row numbers
    assert shipped.greedi_["bytes_shipped"] >= X.nbytes > on_file.greedi_["bytes_shipped"]
    # one task at a time (as on a 1-CPU cluster): the same selection
    serial = GreeDi(inner(), 4, executor=RayExecutor(num_cpus_per_task=2), partition=partition, n_select=24,
                    random_state=5).fit(tmp_path / "x.npy").selection_
    same(ref, serial)
    budget = dict(n_select=30, random_state=5)
    same(GreeDi(ClassBalanced(inner(), policy="tempered", min_per_class=1), 3, partition=partition,
                **budget).fit(X, y).selection_,
         GreeDi(ClassBalanced(inner(), policy="tempered", min_per_class=1), 3, executor="ray", partition=partition,
                **budget).fit(tmp_path / "x.npy", y).selection_)


@pytest.mark.distributed
def test_killed_worker_is_retried_with_the_same_selection(ray_cluster, tmp_path):
    X, _ = blobs(n=1000, seed=8)
    np.save(tmp_path / "x.npy", X)
    folder = str(tmp_path)

    class StallOnce(SubmodularSelector):
        """The first partition task to start writes its pid and stalls until killed."""

        def _select_group(self, group, n_select, rng):
            import os as _os
            import time as _time

            if not _os.path.exists(_os.path.join(folder, "killed")):
                try:
                    fd = _os.open(_os.path.join(folder, "pid"), _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY)
                except FileExistsError:
                    pass
                else:
                    _os.write(fd, str(_os.getpid()).encode())
                    _os.close(fd)
                    _time.sleep(120)
            return super()._select_group(group, n_select, rng)

    killed = {}

    def killer():
        pid_file = tmp_path / "pid"
        for _ in range(1200):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        (tmp_path / "killed").write_text("1")
        os.kill(pid, signal.SIGKILL)
        killed["pid"] = pid

    thread = threading.Thread(target=killer)
    thread.start()
    got = GreeDi(StallOnce(similarity="dense"), 4, executor=RayExecutor(max_retries=2), n_select=20,
                 random_state=9).fit(tmp_path / "x.npy").selection_
    thread.join()
    assert killed["pid"] != os.getpid()
    for _ in range(100):  # the worker really died (once its parent has reaped it)
        try:
            os.kill(killed["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker {killed['pid']} is still alive")
    ref = GreeDi(inner(), 4, n_select=20, random_state=9).fit(X).selection_
    same(ref, got)


@pytest.mark.distributed
def test_a_worker_lost_beyond_max_retries_is_one_coreset_error(ray_cluster, tmp_path):
    X, _ = blobs(n=300, seed=3)

    class Dies(SubmodularSelector):
        def _select_group(self, group, n_select, rng):
            os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(CoresetError, match=r"a Ray task failed after max_retries=0 retries: \w+"):
        GreeDi(Dies(similarity="dense"), 2, executor=RayExecutor(max_retries=0), n_select=5, random_state=0).fit(X)


@pytest.mark.distributed
def test_task_errors_reach_the_driver_as_coreset_errors(ray_cluster, tmp_path):
    X, _ = blobs(n=200)
    X[150, 0] = np.inf
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValidationError, match="X must be finite; found inf at row 150, column 0"):
        GreeDi(inner(), 2, executor="ray", n_select=5, random_state=0).fit(tmp_path / "x.npy")

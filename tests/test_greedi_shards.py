"""GreeDi on sharded inputs with Ray: Ray Data reads the shards (one read task
per shard), its shuffle hands each partition task exactly its rows, the merge
runs in a Ray task on the picks (coreset/executors/_ray_data.py).

Oracles: the same rows as one array with the same partition on the local
executor (the selection must be identical: same partition, seeds and rows);
the shard sizes and partition sizes against what every task received; an
unkilled run against one whose worker SIGKILLs itself on its first attempt.
A real local Ray cluster (2 CPUs), one per module."""

from __future__ import annotations

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from coreset import ClassBalanced, GreeDi, InputFileError, SubmodularSelector
from coreset.cli import app
from coreset.data import input_fingerprint
from coreset.executors import RayExecutor
from coreset.selection import load_selection
from _greedi_helpers import blobs, inner, ray_cluster, same  # noqa: F401 (ray_cluster: a fixture)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("ray.data")

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

CUTS = [0, 170, 171, 520, 800, 1100]  # a one-row shard; boundaries inside row groups


def write_shards(folder, X, kind):
    folder.mkdir()
    for i, (a, b) in enumerate(zip(CUTS[:-1], CUTS[1:])):
        if kind == "npy":
            np.save(folder / f"part-{i:05d}.npy", X[a:b])
        else:
            pq.write_table(pa.table({"emb": pa.array(list(X[a:b]), type=pa.list_(pa.float32()))}),
                           folder / f"part-{i:05d}.parquet", row_group_size=64)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, y = blobs(n=1100, d=8, centers=6)
    root = tmp_path_factory.mktemp("greedi-shards")
    return X, y, {kind: write_shards(root / kind, X, kind) for kind in ("npy", "parquet")}


def check_shares(g, parts_sizes):
    """Every read task read one shard; every partition task got exactly its partition's rows."""
    rd = g.greedi_["ray_data"]
    got = np.array(rd["rows_by_shard"])  # partitions x shards: rows each partition task received from each shard
    assert rd["read_tasks"] == len(CUTS) - 1  # one per shard
    assert got.sum(axis=0).tolist() == np.diff(CUTS).tolist()  # each shard's rows reached the tasks once
    assert got.sum(axis=1).tolist() == parts_sizes  # a task received its partition, nothing else
    assert g.greedi_["partition_bytes_read"] == [s * 8 * 4 for s in parts_sizes]


@pytest.mark.parametrize("kind, partition, extra", [
    ("parquet", "random", {}),
    ("npy", "kmeans", {"class_budget": "tempered", "min_per_class": 1}),
    ("parquet", "random", {"merge_cap": 60}),
])
def test_shards_on_ray_data_equal_the_array(ray_cluster, data, kind, partition, extra):
    X, y, folders = data
    extra = dict(extra)
    budget = {k: extra.pop(k) for k in ("class_budget", "min_per_class") if k in extra}
    kw = dict(partition=partition, n_select=24, random_state=5, **extra)
    labels = y if budget else None

    def sel():
        return ClassBalanced(inner(), policy=budget["class_budget"], min_per_class=budget["min_per_class"]) \
            if budget else inner()

    ref = GreeDi(sel(), 4, **kw).fit(X, labels)
    g = GreeDi(sel(), 4, executor="ray", **kw).fit(folders[kind], labels)
    same(ref.selection_, g.selection_)
    sel = g.selection_
    assert sel.meta["input_fingerprint"] == input_fingerprint(X)
    assert [s["n_rows"] for s in sel.meta["shards"]] == np.diff(CUTS).tolist()
    assert all(s["fingerprint"] == input_fingerprint(X[a:b])
               for s, a, b in zip(sel.meta["shards"], CUTS[:-1], CUTS[1:]))
    # row numbers are global: the picked rows are the array's rows of those numbers
    assert sel.indices.max() >= CUTS[-2] and g.greedi_["partition_sizes"] == ref.greedi_["partition_sizes"]
    check_shares(g, ref.greedi_["partition_sizes"])
    if "merge_cap" in extra:
        assert len(sel.meta["greedi"]["levels"]) >= 2
        assert all(s <= 60 for lev in sel.meta["greedi"]["levels"] for s in lev["ground_sizes"])


def test_a_worker_killed_mid_task_is_retried_to_the_identical_selection(ray_cluster, data, tmp_path):
    X, _, folders = data
    marker = str(tmp_path / "killed")

    class DiesOnce(SubmodularSelector):
        """The first partition task to get here kills its own worker process (SIGKILL)."""

        def _select_group(self, group, n_select, rng):
            import os as _os
            import signal as _signal

            try:
                fd = _os.open(marker, _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY)
            except FileExistsError:
                return super()._select_group(group, n_select, rng)
            _os.write(fd, str(_os.getpid()).encode())
            _os.close(fd)
            _os.kill(_os.getpid(), _signal.SIGKILL)

    got = GreeDi(DiesOnce(similarity="dense"), 4, executor=RayExecutor(max_retries=2), n_select=20,
                 random_state=9).fit(folders["parquet"]).selection_
    pid = int(open(marker).read())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):  # that worker is gone
        for _ in range(100):
            os.kill(pid, 0)
            import time

            time.sleep(0.1)
    same(GreeDi(inner(), 4, n_select=20, random_state=9).fit(X).selection_, got)


def test_a_shard_that_disappears_mid_run_is_named(ray_cluster, data, tmp_path):
    X, _, _ = data
    folder = write_shards(tmp_path / "s", X, "parquet")
    gone = folder / "part-00003.parquet"

    def remove(stage, done, total):  # after the k-means assignment, before the shards are read for selection
        if stage == "assign" and gone.exists():
            gone.unlink()

    with pytest.raises(InputFileError, match=r"shard 3 of .*part-00003\.parquet'.*(removed or moved|no such file)"):
        GreeDi(inner(), 3, executor="ray", partition="kmeans", n_select=10, random_state=0).fit(folder,
                                                                                               callback=remove)


def test_cli_select_shards_on_ray(ray_cluster, data, tmp_path):
    X, _, folders = data
    out = tmp_path / "p.npz"
    res = CliRunner().invoke(app, ["select", str(folders["parquet"]), "--n-select", "20", "--partitions", "3",
                                   "--executor", "ray", "--n-neighbors", "dense", "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    sel = load_selection(out)
    np.save(tmp_path / "all.npy", X)  # the same rows as one file, on the local executor
    res = CliRunner().invoke(app, ["select", str(tmp_path / "all.npy"), "--n-select", "20", "--partitions", "3",
                                   "--n-neighbors", "dense", "-o", str(tmp_path / "ref.npz"), "--quiet"])
    assert res.exit_code == 0, res.output
    ref = load_selection(tmp_path / "ref.npz")
    assert np.array_equal(sel.indices, ref.indices) and np.array_equal(sel.weights, ref.weights)
    assert sel.meta["input_fingerprint"] == ref.meta["input_fingerprint"]
    assert len(sel.meta["shards"]) == len(CUTS) - 1 and "ray_data" in sel.meta["greedi"]
    # a shard whose data pages are damaged (its footer still reads): named, one Error: line, nothing written
    bad = write_shards(tmp_path / "bad", X, "parquet")
    victim = bad / "part-00003.parquet"
    raw = bytearray(victim.read_bytes())
    raw[8:400] = os.urandom(392)
    victim.write_bytes(bytes(raw))
    out2 = tmp_path / "q.npz"
    res = CliRunner().invoke(app, ["select", str(bad), "--n-select", "20", "--partitions", "3", "--executor", "ray",
                                   "-o", str(out2)])
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "part-00003.parquet" in lines[0], res.stderr
    assert not out2.exists()

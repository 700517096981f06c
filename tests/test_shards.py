"""One row source over shards: a folder, a glob or a file:// URI of .npy / .parquet
files is one input, the same rows as the concatenated file (issue 19, item 1)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import coreset
from coreset import GreeDi, InputFileError, SubmodularSelector
from coreset.selection import load_selection
from coreset.cli import app
from coreset.data import input_fingerprint
from coreset.data._shards import ShardedSource, input_spec, is_sharded
from coreset.data._shards import as_source
from coreset.data._sources import ParquetSource

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CUTS = [0, 130, 131, 500, 777, 900]  # a one-row shard; boundaries inside chunks and row groups


def blobs(n=900, d=8, centers=6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)) * 3
    y = rng.integers(0, centers, n)
    return (c[y] + rng.standard_normal((n, d))).astype(np.float32)


def to_parquet(path, X, row_group_size=64):
    pq.write_table(pa.table({"id": np.arange(len(X)), "emb": pa.array(list(X), type=pa.list_(pa.float32()))}),
                   path, row_group_size=row_group_size)


@pytest.fixture(scope="module")
def X():
    return blobs()


@pytest.fixture(scope="module")
def shards(tmp_path_factory, X):
    """{kind: folder} of the same rows in 5 shards, written in reverse name order; and the one .npy file."""
    root = tmp_path_factory.mktemp("shards")
    out = {}
    for kind in ("npy", "parquet"):
        folder = root / kind
        folder.mkdir()
        for i in reversed(range(len(CUTS) - 1)):  # written last-first: the order comes from the names
            part = X[CUTS[i]:CUTS[i + 1]]
            if kind == "npy":
                np.save(folder / f"part-{i:05d}.npy", part)
            else:
                to_parquet(folder / f"part-{i:05d}.parquet", part)
        (folder / "_SUCCESS").write_text("")  # a job marker: skipped
        out[kind] = folder
    np.save(root / "all.npy", X)
    out["all"] = root / "all.npy"
    return out


SPECS = {"npy folder": lambda s: s["npy"], "parquet folder": lambda s: s["parquet"],
         "npy glob": lambda s: str(s["npy"] / "part-*.npy"), "parquet glob": lambda s: str(s["parquet"] / "*.parquet"),
         "file:// URI": lambda s: "file://" + str(s["parquet"].resolve()),
         "file:// glob": lambda s: "file://" + str(s["npy"].resolve()) + "/part-*.npy"}


@pytest.mark.parametrize("name", list(SPECS))
def test_sharded_rows_are_the_concatenation(shards, X, name):
    src = as_source(SPECS[name](shards))
    assert isinstance(src, ShardedSource)
    assert (src.n_rows, src.dim, src.dtype) == (900, 8, np.float32)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 900, 400)  # unsorted, repeats: returned as asked
    assert np.array_equal(src.read(rows), X[rows])
    edges = np.array([129, 130, 131, 499, 500, 776, 777, 899])  # both sides of every boundary
    assert np.array_equal(src.read(edges), X[edges])
    assert np.array_equal(src.read_range(100, 800), X[100:800])
    got = list(src.chunks(128, start_row=5))
    assert [r for r, _ in got] == list(range(5, 900, 128))
    assert all(c.shape[0] == 128 for _, c in got[:-1])
    assert np.array_equal(np.concatenate([c for _, c in got]), X[5:])
    # one fingerprint: the sharded input's is the concatenated array's and the single file's
    assert src.fingerprint() == input_fingerprint(X) == input_fingerprint(shards["all"]) == input_fingerprint(src)
    names = [Path(p.split("://")[-1]).name for p, _, _ in src.shards]
    assert names == sorted(names) and len(names) == 5
    assert [n for _, n, _ in src.shards] == list(np.diff(CUTS))
    assert [fp for _, _, fp in src.shards] == [input_fingerprint(X[a:b]) for a, b in zip(CUTS[:-1], CUTS[1:])]


def test_order_is_by_name_not_by_number(tmp_path):
    rows = {"b-1.npy": 1.0, "a-10.npy": 10.0, "a-9.npy": 9.0}
    for name, v in rows.items():
        np.save(tmp_path / name, np.full((2, 3), v, np.float32))
    got = as_source(tmp_path).read_range(0, 6)[::2, 0]
    assert got.tolist() == [10.0, 9.0, 1.0]  # "a-10" < "a-9" < "b-1": code-point order of the names


def test_select_and_cli_on_shards_match_the_single_file(shards, X, tmp_path):
    ref = coreset.select(X, n_select=25, random_state=0)
    runner = CliRunner()
    for name in ("npy", "parquet"):
        out = tmp_path / f"{name}.npz"
        res = runner.invoke(app, ["select", str(shards[name]), "--n-select", "25", "--seed", "0", "-o", str(out),
                                  "--quiet"])
        assert res.exit_code == 0, res.output
        sel = load_selection(out)
        assert np.array_equal(sel.indices, ref.indices)
        np.testing.assert_allclose(sel.weights, ref.weights)
        assert sel.meta["input_fingerprint"] == input_fingerprint(X)
        assert [s["n_rows"] for s in sel.meta["shards"]] == list(np.diff(CUTS))
        assert [s["fingerprint"] for s in sel.meta["shards"]] == [s[2] for s in as_source(shards[name]).shards]
        assert all(s["path"].startswith(str(shards[name])) for s in sel.meta["shards"])


def test_select_stream_on_shards_matches_the_single_file(shards, X):
    kw = dict(chunk_size=200, reservoir=300, random_state=0)
    ref = coreset.select_stream(shards["all"], 20, **kw)
    for name in ("npy", "parquet"):
        sel = coreset.select_stream(shards[name], 20, **kw)
        assert np.array_equal(sel.indices, ref.indices)
        np.testing.assert_allclose(sel.weights, ref.weights)
        assert sel.meta["input_fingerprint"] == ref.meta["input_fingerprint"] == input_fingerprint(X)
        assert len(sel.meta["shards"]) == 5 and "shards" not in ref.meta


@pytest.mark.parametrize("partition", ["random", "contiguous", "kmeans"])
def test_greedi_on_shards_matches_the_single_file(shards, X, partition):
    def fit(data):
        return GreeDi(SubmodularSelector(similarity="dense"), 3, partition=partition, n_select=20,
                      random_state=1).fit(data).selection_

    ref = fit(X)
    for data in (shards["npy"], str(shards["parquet"] / "*.parquet")):
        sel = fit(data)
        assert np.array_equal(sel.indices, ref.indices)
        assert np.array_equal(sel.weights, ref.weights)
        assert sel.objective == ref.objective
        assert sel.meta["input_fingerprint"] == ref.meta["input_fingerprint"]
        assert [s["n_rows"] for s in sel.meta["shards"]] == list(np.diff(CUTS))


def test_dedup_cli_on_shards(shards, X, tmp_path):
    runner = CliRunner()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for src, out in ((shards["all"], a), (shards["parquet"], b)):
        res = runner.invoke(app, ["dedup", str(src), "--threshold", "0.999", "-o", str(out), "--quiet"])
        assert res.exit_code == 0, res.output
    sa, sb = load_selection(a), load_selection(b)
    assert np.array_equal(sa.indices, sb.indices)
    assert sb.meta["input_fingerprint"] == input_fingerprint(X) and len(sb.meta["shards"]) == 5


# ------------------------------------------------------------------ bad input
def one_error(res, *fragments, code=1):
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    text = " ".join(res.stderr.replace("│", " ").split())  # a usage error's box folds its lines
    for f in fragments:
        assert f in text, (f, res.stderr)


def test_shards_of_different_widths_or_types_name_the_shard(tmp_path):
    (tmp_path / "w").mkdir()
    np.save(tmp_path / "w" / "0.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "w" / "1.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(InputFileError, match=r"1\.npy'.*shard 1 .* has 5 numbers per row, shard 0 .* has 4"):
        as_source(tmp_path / "w")
    (tmp_path / "t").mkdir()
    np.save(tmp_path / "t" / "0.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "t" / "1.npy", np.zeros((3, 4), np.float64))
    with pytest.raises(InputFileError, match=r"1\.npy'.*holds float64 values, shard 0 .* holds float32"):
        as_source(tmp_path / "t")
    (tmp_path / "p").mkdir()
    to_parquet(tmp_path / "p" / "0.parquet", np.zeros((3, 4), np.float32))
    to_parquet(tmp_path / "p" / "1.parquet", np.zeros((3, 6), np.float32))
    res = CliRunner().invoke(app, ["select", str(tmp_path / "p"), "--n-select", "2", "-o", str(tmp_path / "o.npz")])
    one_error(res, "1.parquet", "6 numbers per row")
    assert not (tmp_path / "o.npz").exists()


def test_empty_folder_glob_matching_nothing_and_mixed_kinds(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("not a shard")
    with pytest.raises(InputFileError, match="the folder holds no .npy or .parquet shards"):
        as_source(tmp_path / "empty")
    with pytest.raises(InputFileError, match="the glob matches no .npy or .parquet shards"):
        as_source(str(tmp_path / "nothing-*.npy"))
    (tmp_path / "mixed").mkdir()
    np.save(tmp_path / "mixed" / "a.npy", np.zeros((3, 4), np.float32))
    to_parquet(tmp_path / "mixed" / "b.parquet", np.zeros((3, 4), np.float32))
    with pytest.raises(InputFileError, match=r"mixes .npy \(1\) and parquet \(1\) shards"):
        as_source(tmp_path / "mixed")
    assert isinstance(as_source(str(tmp_path / "mixed" / "*.npy")), ShardedSource)  # a glob picks one kind
    res = CliRunner().invoke(app, ["select", str(tmp_path / "empty"), "--n-select", "2", "-o",
                                   str(tmp_path / "o.npz")])
    one_error(res, "empty", "no .npy or .parquet shards")


def test_a_shard_that_disappears_mid_run_is_named(tmp_path, X):
    folder = tmp_path / "s"
    folder.mkdir()
    for i, (a, b) in enumerate(zip(CUTS[:-1], CUTS[1:])):
        np.save(folder / f"part-{i}.npy", X[a:b])
    gone = folder / "part-3.npy"

    def remove(*_):
        if gone.exists():
            gone.unlink()

    with pytest.raises(InputFileError, match=r"shard 3 of .*part-3\.npy'.*removed or moved"):
        coreset.select_stream(folder, 5, chunk_size=100, reservoir=50, random_state=0, callback=remove)
    np.save(gone, X[CUTS[3]:CUTS[4]])
    with pytest.raises(InputFileError, match=r"part-3\.npy"):
        GreeDi(SubmodularSelector(similarity="dense"), 3, partition="contiguous", n_select=10,
               random_state=0).fit(folder, callback=remove)


def test_cli_names_an_unreadable_shard_and_writes_nothing(tmp_path, X):
    folder = tmp_path / "s"
    folder.mkdir()
    np.save(folder / "part-0.npy", X[:100])
    np.save(folder / "part-1.npy", X[100:200])
    raw = (folder / "part-1.npy").read_bytes()
    (folder / "part-1.npy").write_bytes(raw[:-64])  # truncated: its header promises more rows
    out = tmp_path / "o.npz"
    for extra in ([], ["--stream"], ["--partitions", "2"]):
        res = CliRunner().invoke(app, ["select", str(folder), "--n-select", "5", "-o", str(out), *extra])
        one_error(res, "part-1.npy", "truncated")
        assert not out.exists()


def test_uri_without_a_filesystem_names_what_to_install(tmp_path, monkeypatch):
    with pytest.raises(InputFileError, match=r"'nosuchfs://bucket/x': no filesystem for nosuchfs:// URIs .*install"):
        as_source("nosuchfs://bucket/x")
    monkeypatch.setitem(sys.modules, "pyarrow.fs", None)  # pyarrow's filesystems not installed
    with pytest.raises(InputFileError, match=r"s3:// URI needs pyarrow: pip install pyarrow"):
        as_source("s3://bucket/shards/")


def test_uri_folded_by_pathlib_and_what_counts_as_sharded(tmp_path, shards):
    assert input_spec(Path("file:///data/x")) == "file:///data/x"
    assert input_spec(Path("s3://bucket/a/*.parquet")) == "s3://bucket/a/*.parquet"
    assert input_spec(Path("a/b.npy")) == Path("a/b.npy")
    assert is_sharded(shards["npy"]) and is_sharded("x/*.npy") and is_sharded("gs://b/x")
    assert not is_sharded(shards["all"])
    np.save(tmp_path / "emb[1].npy", np.zeros((2, 3), np.float32))  # a file whose name looks like a glob
    assert not is_sharded(tmp_path / "emb[1].npy") and as_source(tmp_path / "emb[1].npy").n_rows == 2
    src = as_source("file://" + str(shards["all"]))  # a URI naming one file: that file
    assert not isinstance(src, ShardedSource) and src.n_rows == 900
    res = CliRunner().invoke(app, ["select", str(shards["npy"]), "--n-select", "2", "--labels-column", "y", "-o",
                                   str(tmp_path / "o.npz")])
    one_error(res, "--labels", code=2)
    res = CliRunner().invoke(app, ["select", str(shards["npy"]), "--n-select", "2", "-o",
                                   str(shards["npy"] / "sel.npy")])
    one_error(res, "inside the shard folder", code=2)


# ------------------------------------------------------------------ ragged parquet row groups
def test_parquet_ragged_row_group_names_file_and_group(tmp_path):
    """A row group whose lists have different lengths (3 and 5 numbers: 8 values, so
    reshape(2, -1) would silently give 2 rows of 4) is refused, naming the row group."""
    p = tmp_path / "r.parquet"
    t = pa.table({"emb": pa.array([[0.0] * 4, [0.0] * 4, [1.0] * 3, [2.0] * 5], type=pa.list_(pa.float32()))})
    pq.write_table(t, p, row_group_size=2)
    src = ParquetSource(p)
    assert src.read([0, 1]).shape == (2, 4)
    with pytest.raises(InputFileError, match=r"r\.parquet'.*different lengths.*row group 1, rows 2 to 3"):
        src.read([2])
    q = tmp_path / "q.parquet"  # uniform inside each group, different between groups
    with pq.ParquetWriter(q, pa.schema([("emb", pa.list_(pa.float32()))])) as w:
        for width in (4, 5):
            w.write_table(pa.table({"emb": pa.array([[0.0] * width] * 3, type=pa.list_(pa.float32()))}))
    src = ParquetSource(q)
    with pytest.raises(InputFileError, match=r"q\.parquet'.*row group 1 \(rows 3 to 5\) has 5 numbers per row, "
                                             r"row group 0 has 4"):
        src.read(np.arange(6))


def test_select_stream_resumes_mid_shard(shards, tmp_path):
    kw = dict(chunk_size=100, reservoir=300, random_state=0)
    ref = coreset.select_stream(shards["parquet"], 20, **kw)
    ckpt = tmp_path / "run.ckpt"

    class Stop(Exception):
        pass

    def stop(stage, done, total):
        if done >= 400:  # row 400: inside the shard of rows 131-499
            raise Stop

    with pytest.raises(Stop):
        coreset.select_stream(shards["parquet"], 20, checkpoint=ckpt, checkpoint_every=1, callback=stop, **kw)
    sel = coreset.select_stream(shards["parquet"], 20, checkpoint=ckpt, **kw)
    assert sel.meta["stream"]["resumed"]
    assert np.array_equal(sel.indices, ref.indices) and np.array_equal(sel.weights, ref.weights)

"""The stream-checkpoint reader (coreset._checkpoint): every field validated
before the state reaches compiled code; anything wrong is one CheckpointError
naming the checkpoint and the field. A checkpoint that passes resumes to
exactly the uninterrupted run's result (tests/test_stream.py); mutated
checkpoints in bulk: tests/test_fuzz_readers.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

import coreset
from coreset._checkpoint import CHECKPOINT_VERSION, CheckpointError, _digest
from coreset.exceptions import CoresetError

KW = dict(reservoir=300, chunk_size=250, random_state=0, checkpoint_every=2)
K = 20


class Stop(Exception):
    pass


def _stopper(after_rows):
    def cb(stage, done, total):
        if done >= after_rows:
            raise Stop
    return cb


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An input, a checkpoint written at chunk 4 (1,000 of 3,000 rows) and the uninterrupted result."""
    tmp = tmp_path_factory.mktemp("ckpt")
    X = np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32)
    npy = tmp / "x.npy"
    np.save(npy, X)
    ck = tmp / "run.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream(npy, K, checkpoint=ck, callback=_stopper(1500), **KW)
    return dict(X=X, npy=npy, ck=ck.read_bytes(), ref=coreset.select_stream(npy, K, **KW))


def rewrite(src: bytes, dst, header=None, arrays=None, redigest=True):
    """Write ``src`` (checkpoint bytes) to ``dst`` with ``header(h)`` / ``arrays(a)``
    applied; ``redigest``: recompute its sha256 as a deliberate editor would."""
    dst.write_bytes(src)
    with np.load(dst) as z:
        a = {k: z[k] for k in z.files}
    h = json.loads(str(a.pop("header")))
    if header:
        header(h)
    if arrays:
        arrays(a)
    if redigest:
        h["sha256"] = _digest(h, a)
    with open(dst, "wb") as fh:
        np.savez(fh, header=np.array(json.dumps(h)), **a)
    return dst


def resume(run, ck):
    return coreset.select_stream(run["npy"], K, checkpoint=ck, **KW)


def same(a, b):
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.weights, b.weights)
    assert np.array_equal(a.gains, b.gains) and a.objective == b.objective


def test_untouched_checkpoint_resumes_exactly(run, tmp_path):
    got = resume(run, rewrite(run["ck"], tmp_path / "c.ckpt"))
    assert got.meta["stream"]["resumed"]
    same(run["ref"], got)


def test_rows_done_beyond_the_input_refused(run, tmp_path):
    """Issue 17: rows_done edited to 1e9 resumed and exited 0 with n_samples = weight sum = 1e9."""
    def edit(h):
        h["rows_done"] = 10 ** 9
    with pytest.raises(CheckpointError, match=r"'rows_done' must be an integer in \[1, 3000\]; got 1000000000"):
        resume(run, rewrite(run["ck"], tmp_path / "c.ckpt", header=edit))
    # the same edit without a new digest: refused as changed since written
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        resume(run, rewrite(run["ck"], tmp_path / "d.ckpt", header=edit, redigest=False))


@pytest.mark.parametrize("field, value, match", [
    ("rows_done", 750, r"'rows_done' is 750; 4 chunks of 250 rows of an input of 3000 rows hold 1000"),
    ("chunks_done", -3, r"'chunks_done' must be an integer in \[1, 12\]; got -3"),
    ("chunks_done", 13, r"'chunks_done' must be an integer in \[1, 12\]; got 13"),
    ("chunks_done", "4", r"'chunks_done' must be an integer in \[1, 12\]; got '4'"),
    ("rows_done", 1000.0, r"'rows_done' must be an integer"),
    ("rows_done", True, r"'rows_done' must be an integer"),
    ("d", 9, r"'d' is 9; the input has 8 columns"),
    ("input", [1], r"'input' must be a JSON object; got list"),
    ("settings", None, r"'settings' must be a JSON object"),
    ("extra", 1, r"unexpected \['extra'\]"),
])
def test_edited_counters_and_fields_refused(run, tmp_path, field, value, match):
    """Issue 17: edited counters gave a raw ValueError / IndexError (or a wrong result)."""
    def edit(h):
        h[field] = value
    with pytest.raises(CheckpointError, match=match) as exc:
        resume(run, rewrite(run["ck"], tmp_path / "c.ckpt", header=edit))
    assert "c.ckpt" in str(exc.value)


@pytest.mark.parametrize("name, edit, match", [
    # issue 17: a wrong-shape array crashed the process (SIGSEGV / SIGABRT in compiled code)
    ("cur", lambda a: a.__setitem__("cur", a["cur"][:, :100]), r"'cur' must be float32 of shape \(\d+, 300\)"),
    ("pool_nbr", lambda a: a.__setitem__("pool_nbr", a["pool_nbr"][:, :5]), r"'pool_nbr' must be int64"),
    ("cur dtype", lambda a: a.__setitem__("cur", a["cur"].astype(np.float64)), r"'cur' must be float32"),
    ("big-endian", lambda a: a.__setitem__("val", a["val"].astype(">f8")), r"'val' must be float64 .* got >f8"),
    ("members", lambda a: a["members"].__setitem__(slice(None), 10 ** 6), r"'members' must hold strictly"),
    ("size", lambda a: a["size"].__setitem__(0, K + 1), r"'size' must hold values in \[0, 20\]"),
    ("pool_nbr range", lambda a: a["pool_nbr"].__setitem__((0, 0), 300), r"'pool_nbr' must hold reservoir rows"),
    ("nan", lambda a: a["pool_sim"].__setitem__((1, 1), np.nan), r"'pool_sim' holds a non-finite value"),
    ("similarity", lambda a: a["pool_sim"].__setitem__((0, 0), a["pool_sim"][0, 0] / 2), r"'pool_sim' \[0, 0\] is"),
    ("reservoir", lambda a: a["reservoir"].__setitem__((0, 0), 5.0), r"'reservoir' must hold values in"),
    ("reservoir rows", lambda a: a["reservoir_rows"].__setitem__(0, 1), r"'reservoir_rows' must be the rows the "
                                                                         "seed draws"),
    ("pool_n", lambda a: a["pool_n"].__setitem__(0, 10 ** 9), r"'pool_n' must be in \[0, 1000\]"),
    ("pool_row", lambda a: a["pool_row"].__setitem__(-1, 2999), r"'pool_row' must hold strictly increasing"),
    ("coverage", lambda a: a["cur"].__setitem__((a["expo"] != -(2 ** 62), 0), 0.99), r"'cur' row \d+ must be its "),
    ("missing", lambda a: a.pop("scal"), r"missing \['scal'\]"),
    ("extra", lambda a: a.__setitem__("index", np.zeros(10, np.uint8)), r"unexpected \['index'\]"),
])
def test_edited_arrays_refused(run, tmp_path, name, edit, match):
    with pytest.raises(CheckpointError, match=match):
        resume(run, rewrite(run["ck"], tmp_path / "c.ckpt", arrays=edit))


def test_old_layout_and_foreign_files_refused(run, tmp_path):
    def old(h):
        h["settings"]["version"] = 1
        del h["sha256"]
    with pytest.raises(CheckpointError, match=f"layout version 1; this coreset reads version {CHECKPOINT_VERSION}"):
        resume(run, rewrite(run["ck"], tmp_path / "a.ckpt", header=old, redigest=False))
    for name, content in (("b.ckpt", b"not a zip"), ("c.ckpt", run["ck"][: len(run["ck"]) // 2])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="cannot be read"):
            resume(run, tmp_path / name)
    np.savez(tmp_path / "d.npz", header=np.array([1, 2]))
    with pytest.raises(CheckpointError, match="header must be a 0-d unicode array"):
        resume(run, tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", header=np.array('{"a": NaN}'))
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        resume(run, tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", header=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        resume(run, tmp_path / "f.npz")


def test_iterator_shorter_than_the_checkpoint_refused(run, tmp_path):
    """A resumed iterator that ends before the chunks the checkpoint counted
    used to finish with the checkpoint's row count (n_samples beyond the data)."""
    X = run["X"]
    kw = dict(reservoir=300, random_state=0, checkpoint_every=2)
    ck = tmp_path / "it.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream((X[i:i + 250] for i in range(0, 3000, 250)), K, checkpoint=ck,
                              callback=_stopper(1500), **kw)
    with np.load(ck) as z:
        assert json.loads(str(z["header"]))["chunks_done"] == 4
    short = (X[i:i + 250] for i in range(0, 750, 250))  # 3 chunks: the same first ones
    with pytest.raises(CheckpointError, match="the iterator has 3 chunks of 750 rows in all, the checkpoint counted "
                                              "4 chunks of 1000 rows"):
        coreset.select_stream(short, K, checkpoint=ck, **kw)
    full = coreset.select_stream((X[i:i + 250] for i in range(0, 3000, 250)), K, checkpoint=ck, **kw)
    same(coreset.select_stream((X[i:i + 250] for i in range(0, 3000, 250)), K, **kw), full)


def test_cli_edited_checkpoint_one_error_line(run, tmp_path):
    from typer.testing import CliRunner

    from coreset.cli._app import app

    def edit(h):
        h["rows_done"] = 10 ** 9
    ck = rewrite(run["ck"], tmp_path / "c.ckpt", header=edit)
    out = tmp_path / "sel.npz"
    r = CliRunner().invoke(app, ["select", str(run["npy"]), "--stream", "--n-select", str(K), "--chunk-size", "250",
                                 "--reservoir", "300", "--seed", "0", "--checkpoint", str(ck),
                                 "--checkpoint-every", "2", "-o", str(out)])
    assert r.exit_code == 1, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rows_done" in errors[0] and "Traceback" not in r.output
    assert not out.exists()


def test_every_error_is_a_coreset_error():
    assert issubclass(CheckpointError, CoresetError)

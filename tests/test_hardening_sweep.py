"""Found by an independent sweep of issue 17's items and the bad inputs next
to them: bfloat16 tensors in the stream, a TorchScript backbone given an input
of another dtype or shape in ``coreset embed``, and a ``localhost:PORT`` Ray
address that skipped the probe (it began with "local")."""

import socket
import threading

import numpy as np
import pytest

import coreset
from coreset.data import input_fingerprint
from coreset.exceptions import ValidationError
from coreset.executors._ray import check_address

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from coreset.cli import app  # noqa: E402


@pytest.fixture(scope="module")
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by itself
        return CliRunner()


def one_error(res, text):
    assert res.exit_code == 1, (res.exit_code, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and text in lines[0], res.stderr


# ------------------------------------------------------------ select_stream on bfloat16

def _bf16(n=120, d=8):
    return torch.from_numpy(np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)).bfloat16()


def test_select_stream_reads_a_bfloat16_tensor_as_its_exact_float32_values():
    t = _bf16()
    x = t.float().numpy()  # float32 holds every bfloat16 exactly
    kw = dict(chunk_size=40, reservoir=60, random_state=0)
    got, want = coreset.select_stream(t, 6, **kw), coreset.select_stream(x, 6, **kw)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.weights, want.weights)
    assert got.weights.sum() == pytest.approx(120)
    # one fingerprint: the tensor's, which is that of its float32 values
    assert got.meta["input_fingerprint"] == input_fingerprint(t) == input_fingerprint(x)


def test_select_stream_reads_an_iterator_of_bfloat16_chunks():
    t = _bf16()
    x = t.float().numpy()
    got = coreset.select_stream(iter([t[:50], t[50:]]), 6, reservoir=60, random_state=0)
    want = coreset.select_stream(iter([x[:50], x[50:]]), 6, reservoir=60, random_state=0)
    np.testing.assert_array_equal(got.indices, want.indices)


# ------------------------------------------------------------ coreset embed: dtype and shape

@pytest.fixture()
def backbone(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    path = tmp_path / "bb.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    return path, net


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_embed_a_narrow_float_tensor_with_a_float32_backbone(runner, backbone, tmp_path, dtype):
    path, net = backbone
    x = torch.rand(10, 3, 4).to(getattr(torch, dtype))
    torch.save(x, tmp_path / "x.pt")
    out = tmp_path / "e.npy"
    res = runner.invoke(app, ["embed", str(tmp_path / "x.pt"), "-b", str(path), "-o", str(out), "--device", "cpu",
                              "-q"])
    assert res.exit_code == 0, res.stderr
    np.testing.assert_allclose(np.load(out), net(x.float()).detach().numpy(), atol=1e-5)


def test_embed_an_input_the_backbone_cannot_take_is_one_error(runner, backbone, tmp_path):
    path, _ = backbone
    torch.save(torch.rand(10, 5), tmp_path / "x.pt")  # 5 features; the backbone takes 12
    out = tmp_path / "e.npy"
    res = runner.invoke(app, ["embed", str(tmp_path / "x.pt"), "-b", str(path), "-o", str(out), "--device", "cpu"])
    one_error(res, "failed on a batch of shape (10, 5)")
    assert "cannot be multiplied" in res.stderr and not out.exists()


# ------------------------------------------------------------ --ray-address localhost:PORT

def test_a_localhost_address_is_probed_like_any_other():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve():  # answers like the Ray dashboard (HTTP), not like a GCS (gRPC)
        try:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(2)
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(ValidationError, match=rf"ray_address='localhost:{port}'.*is not a Ray cluster"):
            check_address(f"localhost:{port}", timeout=5.0)
    finally:
        srv.close()
    with pytest.raises(ValidationError, match="must be 'host:port'"):
        check_address("localhostX")  # no port: malformed, not Ray's "local" keyword

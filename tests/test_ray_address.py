"""A Ray address where no Ray cluster answers is one clear error within
seconds, from the API and the CLI, instead of Ray's start-up retry loop
(which never ends when something else listens there): real sockets, a
real HTTP-speaking listener, a silent one, a closed port, and a real GCS."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from coreset.exceptions import ValidationError
from coreset.executors._ray import check_address


class Listener:
    """A TCP server on 127.0.0.1 that accepts connections and, with
    ``reply``, answers each with it (e.g. an HTTP response, as the Ray
    dashboard would), else says nothing."""

    def __init__(self, reply: bytes | None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.reply = reply
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.reply is not None:
                try:
                    conn.settimeout(2)
                    conn.recv(4096)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


HTTP = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def http_listener():
    srv = Listener(HTTP)
    yield srv
    srv.close()


@pytest.fixture
def silent_listener():
    srv = Listener(None)
    yield srv
    srv.close()


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"127.0.0.1:{port}"


def _raises_quickly(fn, match, limit=30.0):
    """``fn()`` raises a ValidationError matching ``match``; ``limit`` only
    guards against the hang the check exists for."""
    t0 = time.monotonic()
    with pytest.raises(ValidationError, match=match):
        fn()
    assert time.monotonic() - t0 < limit


def test_http_listener_is_not_a_ray_cluster(http_listener):
    addr = http_listener.address
    _raises_quickly(lambda: check_address(addr), rf"ray_address='{addr}' \(--ray-address\) accepts connections but "
                                                 r"is not a Ray cluster: it answered 'HTTP/1.1 200 OK'")


def test_silent_listener_is_not_a_ray_cluster(silent_listener):
    addr = silent_listener.address
    _raises_quickly(lambda: check_address(addr, timeout=2.0), rf"'{addr}'.*is not a Ray cluster: it answered nothing")


def test_closed_port_cannot_be_reached():
    addr = _closed_port()
    _raises_quickly(lambda: check_address(addr), rf"cannot reach the Ray cluster at '{addr}' \(ray_address, "
                                                 r"--ray-address\) within 5 s")


@pytest.mark.parametrize("bad", ["", "nohostport", "host:", ":6379", "host:notaport", "host:70000", 6379])
def test_malformed_address(bad):
    with pytest.raises(ValidationError, match=r"ray_address \(--ray-address\) must be 'host:port'"):
        check_address(bad)


def test_greedi_on_ray_names_the_address(http_listener):
    """The Python API: the address is checked before Ray is imported or started."""
    from coreset.selectors import SubmodularSelector
    from coreset.selectors._greedi import GreeDi

    X = np.random.default_rng(0).standard_normal((200, 6)).astype(np.float32)
    addr = http_listener.address
    model = GreeDi(SubmodularSelector(), 2, executor="ray", ray_address=addr, n_select=10)
    _raises_quickly(lambda: model.fit(X), rf"ray_address='{addr}'.*is not a Ray cluster")
    closed = _closed_port()
    model = GreeDi(SubmodularSelector(), 2, executor="ray", ray_address=closed, n_select=10)
    _raises_quickly(lambda: model.fit(X), rf"cannot reach the Ray cluster at '{closed}'")


@pytest.mark.parametrize("which", ["http", "closed"])
def test_cli_ray_address_is_one_error_line(tmp_path, http_listener, which):
    from typer.testing import CliRunner

    from coreset.cli import app

    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((300, 6)).astype(np.float32))
    addr = http_listener.address if which == "http" else _closed_port()
    out = tmp_path / "o.npz"
    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "10", "--partitions", "2",
                                 "--executor", "ray", "--ray-address", addr, "-o", str(out)])
    assert time.monotonic() - t0 < 30
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "--ray-address" in lines[0] and addr in lines[0]
    assert not out.exists()


@pytest.mark.distributed
@pytest.mark.slow
def test_a_real_gcs_answers_the_probe():
    """The probe accepts Ray's own GCS (gRPC over HTTP/2), by host:port and ray://."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        gcs = ray.get_runtime_context().gcs_address
        check_address(gcs)
        check_address(f"ray://{gcs}")
    finally:
        ray.shutdown()

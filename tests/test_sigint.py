"""Ctrl-C (SIGINT) stops every CLI command within 2 s at any point of a long
run: exit 130, one ``Interrupted.`` line and no traceback on stderr, nothing
written (no output file, no temporary file beside it).

Each test starts the real command in a subprocess on an input generated in
``tmp_path``, big enough to run for well over 10 s, with stderr on a
pseudo-terminal so that the progress bar names the stage running. The signal
is sent once the bar shows the stage under test (the kNN search, the greedy
loop, the stream, the partitions, ...): inside the compiled loops and the
FAISS calls, which must return to Python often enough for the interrupt to
raise (``coreset._pace``). The select cases and one dedup case run by
default; the rest of the commands are marked slow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import coreset

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pseudo-terminals")

#: the most seconds from SIGINT to the end of the process
LIMIT = 2.0
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


class Cli:
    """``python -m coreset.cli ARGS``, stdout on a pipe; stderr on a pipe
    (no progress bar: the library runs without a progress callback, as
    under ``--quiet`` or in a batch job) or with ``tty`` on a
    pseudo-terminal (a wide one, so that the progress bar shows every stage
    name)."""

    def __init__(self, args, cwd, tty=False):
        env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm", "PYTHONUNBUFFERED": "1"}
        if tty:
            import pty

            master, slave = pty.openpty()
        else:
            master, slave = os.pipe()
        self.p = subprocess.Popen([sys.executable, "-m", "coreset.cli", *map(str, args)], cwd=cwd, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        self._master = master
        self._err = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            self._err += chunk

    @property
    def stderr(self) -> str:
        return _ANSI.sub(b"", bytes(self._err)).decode("utf-8", "replace")

    def wait_for(self, pattern: str, timeout: float = 120.0) -> None:
        """Until the progress bar (stderr) shows ``pattern`` (a regex)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, self.stderr):
                return
            if self.p.poll() is not None:
                pytest.fail(f"the command ended (exit {self.p.returncode}) before {pattern!r} showed:\n{self.stderr}")
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"{pattern!r} did not show within {timeout} s:\n{self.stderr[-2000:]}")

    def interrupt(self) -> tuple[int, float]:
        """Send SIGINT; ``(exit status, seconds until the process ended)``."""
        assert self.p.poll() is None, f"the command had ended already:\n{self.stderr}"
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(timeout=LIMIT + 30)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running {LIMIT + 30} s after SIGINT:\n{self.stderr[-2000:]}")
        took = time.monotonic() - t0
        self._reader.join(5)
        os.close(self._master)
        return rc, took

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def assert_interrupted(cli: Cli, before: set, folder: Path, *outputs: Path, allowed=()):
    """SIGINT now: exit 130 within LIMIT, one Interrupted. line, no traceback,
    none of ``outputs`` and no new file in ``folder`` but the ``allowed``
    names (a checkpoint, a resume state)."""
    rc, took = cli.interrupt()
    err = cli.stderr
    assert rc == 130, f"exit {rc}:\n{err[-3000:]}"
    assert took <= LIMIT, f"took {took:.2f} s to stop after SIGINT"
    assert err.count("Interrupted.") == 1 and "Traceback" not in err, err[-3000:]
    assert cli.p.stdout.read() == b""  # no summary: the command did not finish
    for out in outputs:
        assert not out.exists(), f"{out} was written"
    new = set(os.listdir(folder)) - before
    assert new <= set(allowed), f"new files: {new}"


def _npy(path: Path, n: int, d: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.save(path, rng.standard_normal((n, d)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Inputs shared by the tests (12.8 MB and 0.6 MB)."""
    root = tmp_path_factory.mktemp("sigint")
    return {"big": _npy(root / "big.npy", 100_000, 32), "dense": _npy(root / "dense.npy", 5_000, 32, 1)}


def _run(tmp_path, args, stage, *outputs, tty=False, after=1.5, timeout=120.0):
    """Run ``args``; once stderr shows ``stage`` and ``after`` more seconds
    have passed (the stage's compiled work under way), SIGINT."""
    before = set(os.listdir(tmp_path))
    cli = Cli(args, tmp_path, tty)
    try:
        cli.wait_for(stage, timeout)
        time.sleep(after)
        assert_interrupted(cli, before, tmp_path, *outputs)
    finally:
        cli.kill()


def _warm(fn):
    """Compile (or load from numba's disk cache) the kernels a test runs, in
    this process, so that the command under test finds them cached: the signal
    must land in the work, not in a first compilation (see docs/cli.md)."""
    fn()


# ---------------------------------------------------------------- select, by default
def test_select_stops_during_the_knn_search(data, tmp_path):
    """An exact kNN graph of 100,000 points (FAISS, about 3e11 multiply-adds)
    in batches of 50,000 rows: interrupted inside it (``-v`` logs the start of
    each stage)."""
    out = tmp_path / "sel.npz"
    _run(tmp_path, ["select", data["big"], "--exact", "--batch-size", "50000", "--n-select", "100", "-v", "-o", out],
         r"kNN graph", out)


def test_select_stops_during_the_greedy_loop(data, tmp_path):
    """Naive greedy, 2,000 picks on the dense similarity of 5,000 points, in
    compiled loops: interrupted inside them."""
    X = np.load(data["dense"])
    _warm(lambda: coreset.select(X[:300], 5, n_neighbors=None, optimizer="naive_greedy"))
    out = tmp_path / "sel.npz"
    _run(tmp_path, ["select", data["dense"], "--n-neighbors", "dense", "--optimizer", "naive_greedy",
                    "--n-select", "2000", "-v", "-o", out], r"naive_greedy: 2000 picks", out)


def test_dedup_stops_during_the_pair_search(data, tmp_path):
    """Every pair of 100,000 points compared (progress bar on a terminal)."""
    out = tmp_path / "dedup.npz"
    _run(tmp_path, ["dedup", data["big"], "--exact", "-o", out], r"graph\s", out, tty=True)


# ---------------------------------------------------------------- every other command (slow)
@pytest.mark.slow
def test_select_stops_during_stochastic_greedy(data, tmp_path):
    X = np.load(data["dense"])
    _warm(lambda: coreset.select(X[:300], 5, n_neighbors=None, optimizer="stochastic_greedy"))
    out = tmp_path / "sel.npz"
    _run(tmp_path, ["select", data["dense"], "--n-neighbors", "dense", "--optimizer", "stochastic_greedy",
                    "--epsilon", "1e-300", "--n-select", "2500", "-v", "-o", out], r"stochastic_greedy: 2500 picks", out)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["pass", "finish"])
def test_select_stream_stops(data, tmp_path, moment):
    """The stream: during its pass over the chunks (searches against the
    reservoir, sieves), and during the final greedy over the kept candidates
    (20,000 picks: tens of seconds of compiled loops)."""
    X = np.load(data["big"], mmap_mode="r")
    _warm(lambda: coreset_select_stream(X[:3000], 50))
    out = tmp_path / "sel.npz"
    args = ["select", data["big"], "--stream", "--n-select", "20000", "--chunk-size", "10000", "-o", out]
    if moment == "pass":
        _run(tmp_path, args, r"stream\s", out, tty=True, after=1.0)
    else:  # the bar reaches all rows, then the final greedy runs
        _run(tmp_path, args, r"100000/100000", out, tty=True, after=1.0, timeout=300)


def coreset_select_stream(X, k):
    return coreset.select_stream(np.ascontiguousarray(X), k, random_state=0)


@pytest.mark.slow
def test_stream_checkpoint_stays_consistent(data, tmp_path):
    """Interrupted between checkpoints: no output; rerun with the same
    checkpoint resumes and gives what an uninterrupted run gives."""
    from coreset import Selection

    out, ck = tmp_path / "sel.npz", tmp_path / "state.ck"
    args = ["select", data["big"], "--stream", "--n-select", "300", "--chunk-size", "2000", "--checkpoint", ck,
            "--checkpoint-every", "2", "-o", out]
    before = set(os.listdir(tmp_path))
    cli = Cli(args, tmp_path, tty=True)
    try:
        cli.wait_for(r"stream\s")
        end = time.monotonic() + 120
        while not ck.exists() and time.monotonic() < end:  # a checkpoint written: the run is under way
            time.sleep(0.05)
        time.sleep(0.5)
        assert_interrupted(cli, before, tmp_path, out, allowed={ck.name})
        assert ck.exists()
    finally:
        cli.kill()
    r = subprocess.run([sys.executable, "-m", "coreset.cli", *map(str, args)], capture_output=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    fresh = tmp_path / "fresh.npz"
    r = subprocess.run([sys.executable, "-m", "coreset.cli", "select", str(data["big"]), "--stream", "--n-select",
                        "300", "--chunk-size", "2000", "-o", str(fresh)], capture_output=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    a, b = Selection.load(out), Selection.load(fresh)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, b.weights)


@pytest.mark.slow
def test_select_partitions_local_stops(data, tmp_path):
    X = np.load(data["big"], mmap_mode="r")
    _warm(lambda: coreset.select(np.array(X[:3000]), 5, n_neighbors=16, optimizer="naive_greedy"))
    out = tmp_path / "sel.npz"
    _run(tmp_path, ["select", data["big"], "--partitions", "4", "--optimizer", "naive_greedy", "--n-select", "4000",
                    "-v", "-o", out], r"naive_greedy: \d+ picks", out)


@pytest.mark.slow
@pytest.mark.distributed
def test_select_partitions_ray_stops(data, tmp_path):
    """GreeDi on a local Ray cluster: the driver waits in short steps, cancels
    the tasks, and the cluster started for the run ends with the process."""
    pytest.importorskip("ray")
    out = tmp_path / "sel.npz"
    _run(tmp_path, ["select", data["big"], "--partitions", "2", "--executor", "ray", "--optimizer", "naive_greedy",
                    "--n-select", "4000", "-v", "-o", out], r"ray: connected", out, after=2.0, timeout=300)


@pytest.mark.slow
def test_dedup_stops_during_the_partitioned_search(data, tmp_path):
    out = tmp_path / "dedup.npz"
    _run(tmp_path, ["dedup", data["big"], "--approximate", "--n-probe", "16", "-o", out], r"graph\s", out, tty=True,
         after=0.5)


@pytest.mark.slow
def test_embed_stops(tmp_path):
    """Sentences through the packaged MiniLM: no output file; the resume state
    (OUTPUT.partial/, documented) holds only whole chunks."""
    words = "alpha beta gamma delta model data tail class coreset train image text".split()
    rng = np.random.default_rng(0)
    (tmp_path / "texts.txt").write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(20000)))
    out = tmp_path / "emb.npy"
    before = set(os.listdir(tmp_path))
    cli = Cli(["embed", tmp_path / "texts.txt", "-o", out, "--checkpoint-every", "256"], tmp_path, tty=True)
    try:
        cli.wait_for(r"embed\s", timeout=300)
        time.sleep(2.0)
        assert_interrupted(cli, before, tmp_path, out, allowed={"emb.npy.partial"})
    finally:
        cli.kill()
    partial = tmp_path / "emb.npy.partial"
    if partial.exists():  # every saved chunk loads whole
        for f in partial.iterdir():
            if f.suffix == ".npy":
                assert np.load(f).shape[1] > 0
            else:
                json.loads(f.read_text())


@pytest.mark.slow
def test_compare_stops(tmp_path):
    """During the second training cell: the finished cell's results stay
    (resumable), whole; nothing half-written."""
    out = tmp_path / "cmp"
    before = set(os.listdir(tmp_path))
    cli = Cli(["compare", "--dataset", "zipf_hard", "--methods", "random,full", "--fractions", "0.05", "--seeds", "0",
               "--epochs", "100", "--no-plots", "--out", out], tmp_path, tty=True)
    try:
        cli.wait_for(r"cells\s", timeout=300)
        time.sleep(1.0)
        assert_interrupted(cli, before, tmp_path, allowed={"cmp"})
    finally:
        cli.kill()
    for f in out.iterdir():
        assert not f.name.startswith(".") and "tmp" not in f.name, f
        if f.suffix == ".json":
            json.loads(f.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("args", [["inspect", "IDX"], ["list"], ["datasets"], ["select", "BIG", "--n-select", "10",
                                                                             "-o", "OUT"]])
def test_short_commands_stop_at_any_moment(data, tmp_path, args):
    """A short command interrupted at moments spread over its run: it ends
    within 2 s either finished (exit 0) or with exit 130 and one
    ``Interrupted.`` line. A signal that lands before the package is loaded
    (``import coreset``, the first tenths of a second) or after the command
    has finished (while the interpreter shuts down) ends the process by
    SIGINT itself (a shell shows 130 too)."""
    from coreset import Selection

    idx = tmp_path / "idx.npz"
    Selection(indices=np.arange(50), weights=np.ones(50), gains=np.ones(50)).save(idx)
    out = tmp_path / "out.npz"
    args = [{"IDX": idx, "BIG": data["big"], "OUT": out}.get(a, a) for a in args]
    outcomes = set()
    for delay in (0.3, 0.6, 0.9, 1.2, 1.6, 2.0):
        if out.exists():
            out.unlink()
        cli = Cli(args, tmp_path)
        try:
            time.sleep(delay)
            if cli.p.poll() is not None:
                outcomes.add("finished")
                continue
            rc, took = cli.interrupt()
            assert took <= LIMIT, f"took {took:.2f} s to stop after SIGINT at {delay} s"
            assert rc in (0, 130, -signal.SIGINT), (rc, cli.stderr)
            if rc == 130:
                assert cli.stderr.count("Interrupted.") == 1 and "Traceback" not in cli.stderr, cli.stderr
                assert not out.exists()
            outcomes.add(rc)
        finally:
            cli.kill()
    assert 130 in outcomes or "finished" in outcomes


def test_an_error_raised_while_a_ctrl_c_was_pending_is_an_interrupt():
    """Ctrl-C inside numba's dispatcher surfaces as SystemError("... returned a
    result with an exception set") whose cause is the KeyboardInterrupt (seen in
    CI): the CLI reports it as an interrupt (exit 130), not as a crash; an error
    with no interrupt in its chain still propagates."""
    import typer

    from coreset.cli._common import cli_errors

    def pending_interrupt():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("CPUDispatcher(<f>) returned a result with an exception set") from ki

    with pytest.raises(typer.Exit) as ex:
        with cli_errors(debug=False):
            pending_interrupt()
    assert ex.value.exit_code == 130
    with pytest.raises(SystemError):
        with cli_errors(debug=False):
            raise SystemError("a real bug")
    with pytest.raises(SystemError):  # --debug shows the traceback
        with cli_errors(debug=True):
            pending_interrupt()

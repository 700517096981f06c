"""``RayExecutor``: one Ray task per shard on a real Ray cluster.

``address=None`` starts a local cluster (``num_cpus`` CPUs) unless this
process is already connected to one, which is then used as is; an address
("host:port", "ray://host:port" or "auto") joins an existing cluster. A
"host:port" address is first probed (:func:`check_address`): a TCP connection
(``connect_timeout`` seconds), then the opening of an HTTP/2 (gRPC) session,
which Ray's GCS and its client server answer at once. So an unreachable
address, or one where something else listens (the dashboard's port 8265
instead of the GCS's 6379, say), is one clear error within seconds rather
than Ray's retry loop, which never ends there.

Tasks run with ``max_retries`` (a worker killed mid-task is restarted and the
task re-run from its arguments; tasks are pure functions of their arguments,
so a retried task returns what the first attempt would have) and
``max_calls`` (default 0: workers are reused; 1: a fresh worker process per task,
so that each task's peak memory is its own). Results are returned in task order whatever order they finish in.
The driver waits for them in steps of ``WAIT_SECONDS``, so Ctrl-C raises
within a fraction of a second; the pending tasks are then cancelled.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from ..exceptions import BackendUnavailableError, CoresetError, ValidationError
from ._base import Executor

__all__ = ["RayExecutor", "check_address", "end_ray_for_exit"]

log = logging.getLogger(__name__)

#: the driver waits for its tasks in steps of this many seconds (Ctrl-C raises between them)
WAIT_SECONDS = 0.1
#: what a client sends to open an HTTP/2 session: the connection preface and an empty SETTINGS frame
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_ADDRESS_FORMS = "'host:port' (the head node's GCS port, 6379 by default), 'ray://host:port' or 'auto'"


def _ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError("the ray executor needs Ray: pip install 'coreset[ray]' "
                                      "(or pip install 'ray[data]>=2.40')") from None
    return ray


def _answers_http2(sock, timeout: float) -> tuple[bool, bytes]:
    """Open an HTTP/2 session on ``sock``: True when the first frame back is
    the server's SETTINGS frame (type 4 on stream 0), with the bytes read."""
    sock.settimeout(timeout)
    sock.sendall(_H2_PREFACE)
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < 9:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(9 - len(got))
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    ok = len(got) == 9 and got[3] == 0x04 and got[5:9] == b"\x00\x00\x00\x00"
    if got and not ok:  # for the message: the rest of the first line, if it comes at once
        try:
            sock.settimeout(0.2)
            got += sock.recv(64)
        except OSError:
            pass
    return ok, got


def check_address(address: str, timeout: float = 5.0, *, handshake: bool = True) -> None:
    """Raise a :class:`ValidationError` naming ``ray_address`` within about
    ``timeout`` seconds when ``address`` does not accept a TCP connection, or
    (``handshake``) accepts one but does not answer as a Ray cluster: Ray's
    GCS and its client server (``ray://``) speak gRPC, whose HTTP/2 server
    answers the opening of a session with a SETTINGS frame at once. "auto" and
    "local" are left to Ray; so is the handshake when ``RAY_USE_TLS`` is set
    (a TLS server waits for a TLS hello)."""
    if not isinstance(address, str) or not address.strip():
        raise ValidationError(f"ray_address (--ray-address) must be {_ADDRESS_FORMS}; got {address!r}")
    if address in ("auto", "local"):  # Ray's keywords; "localhost:PORT" is an address like any other
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValidationError(f"ray_address (--ray-address) must be {_ADDRESS_FORMS}; got {address!r}")
    where = f"the Ray cluster at {address!r} (ray_address, --ray-address)"
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as exc:
        raise ValidationError(f"cannot reach {where} within {timeout:g} s "
                              f"({exc.strerror or type(exc).__name__}); is `ray start --head` running there?") from None
    with sock:
        if not handshake or os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true", "yes"):
            return
        try:
            ok, got = _answers_http2(sock, min(timeout, 3.0))
        except OSError:
            ok, got = False, b""
    if not ok:
        said = "nothing" if not got else repr(got[:60].split(b"\r\n")[0].decode("latin-1"))
        raise ValidationError(
            f"ray_address={address!r} (--ray-address) accepts connections but is not a Ray cluster: it "
            f"answered {said} to the opening of a "
            "gRPC session. Give the head node's GCS address (port 6379 by default; 8265 is the dashboard's) "
            "or ray://host:10001 for a Ray client server")


def end_ray_for_exit() -> None:
    """For a process about to end at once (the CLI after Ctrl-C): instead of
    Ray's ``atexit`` shutdown, which sleeps 0.5 s and then stops a local
    cluster process by process (about 2 s), disconnect the driver, drop that
    ``atexit`` hook and have the raylet of a local cluster this process
    started stopped once this process has ended (SIGTERM from a small detached
    process: it stops its workers and agents at once). Stopping it earlier
    lets the driver's core worker end the process with status 1 first. The other processes of
    the cluster share this process's fate (Linux ``PR_SET_PDEATHSIG``, a
    reaper process elsewhere) and end with it; a remote cluster sees its
    driver leave. Best effort: a Ray without these internals is left as is."""
    import atexit
    import sys

    worker = sys.modules.get("ray._private.worker")
    if worker is None or not hasattr(worker, "shutdown"):
        return
    try:
        node = getattr(worker, "_global_node", None)
        worker.disconnect()
        pids = []
        if node is not None and getattr(node, "all_processes", None) and "raylet" in node.all_processes:
            pids = [info.process.pid for info in node.all_processes["raylet"] if getattr(info, "process", None)]
        atexit.unregister(worker.shutdown)
        if pids:  # stopped only once this process has gone: the driver's core worker, which may still watch
            _term_after_exit(pids)  # its raylet, would otherwise end this process with exit status 1 first
    except Exception:  # pragma: no cover - another Ray version: its own shutdown runs
        log.debug("ray: fast shutdown not available", exc_info=True)


def _term_after_exit(pids) -> None:
    """SIGTERM ``pids`` from a small detached process once this one has
    ended (polled every 20 ms; gives up after 30 s)."""
    import os
    import subprocess
    import sys

    code = ("import os, signal, sys, time\n"
            "parent, pids = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]\n"
            "end = time.monotonic() + 30\n"
            "while time.monotonic() < end:\n"
            "    try:\n"
            "        os.kill(parent, 0)\n"
            "    except ProcessLookupError:\n"
            "        break\n"
            "    time.sleep(0.02)\n"
            "for p in pids:\n"
            "    try:\n"
            "        os.kill(p, signal.SIGTERM)\n"
            "    except OSError:\n"
            "        pass\n")
    subprocess.Popen([sys.executable, "-c", code, str(os.getpid()), *map(str, pids)], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     close_fds=True)


class RayExecutor(Executor):
    """Run tasks on Ray. Parameters: ``address`` (None: local cluster),
    ``num_cpus`` (local cluster only; default all), ``max_retries`` (3),
    ``max_calls`` (0: workers are reused; 1: a fresh worker process per task, so
    each task's peak RSS is its own), ``num_cpus_per_task`` (1),
    ``connect_timeout`` (5 s)."""

    name = "ray"
    shares_memory = False

    def __init__(self, address=None, *, num_cpus=None, max_retries=3, max_calls=0, num_cpus_per_task=1,
                 connect_timeout=5.0):
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.max_calls = max_calls
        self.num_cpus_per_task = num_cpus_per_task
        self.connect_timeout = connect_timeout
        self._started = False

    def _connect(self):
        if self.address is not None:  # before importing Ray: a wrong address fails in seconds
            check_address(self.address, self.connect_timeout)
        ray = _ray()
        if ray.is_initialized():
            return ray
        kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                      configure_logging=False)
        try:
            if self.address is None:
                ray.init(num_cpus=self.num_cpus, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, TimeoutError, RuntimeError) as exc:
            raise CoresetError(f"cannot start or join a Ray cluster (address={self.address!r}): {exc}") from None
        self._started = True
        log.info("ray: connected (%s CPUs)", ray.cluster_resources().get("CPU"))
        return ray

    def map(self, fn, tasks, *, stage="tasks", callback=None):
        ray = self._connect()
        remote = ray.remote(max_retries=int(self.max_retries), max_calls=int(self.max_calls),
                            num_cpus=self.num_cpus_per_task, retry_exceptions=False)(fn)
        refs = []
        pending, done = [], 0
        try:
            refs = [remote.remote(ray.put(t)) for t in tasks]
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=WAIT_SECONDS)
                if not ready:
                    continue
                done += len(ready)
                if callback is not None:
                    callback(stage, done, len(refs))
        except KeyboardInterrupt:  # Ctrl-C: stop the tasks still running, then let it through
            for ref in refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # finished, or the cluster is gone
                    pass
            raise
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:  # the task's own error: re-raise it as is
            cause = getattr(exc, "cause", None)
            if isinstance(cause, CoresetError):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:  # a worker or node lost more often than max_retries allows
            first = (str(exc).strip().splitlines() or [""])[0]
            raise CoresetError(f"a Ray task failed after max_retries={self.max_retries} retries: "
                               f"{type(exc).__name__}: {first}") from None

    def describe(self):
        d = {"executor": "ray", "ray_address": self.address, "max_retries": int(self.max_retries)}
        try:
            ray = _ray()
            if ray.is_initialized():
                d["ray_cpus"] = float(ray.cluster_resources().get("CPU", 0))
        except BackendUnavailableError:
            pass
        return d

    def close(self):
        if self._started:
            _ray().shutdown()
            self._started = False


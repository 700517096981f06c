"""``RayExecutor``: one Ray task per shard on a real Ray cluster.

``address=None`` starts a local cluster (``num_cpus`` CPUs) unless this
process is already connected to one, which is then used as is; an address
("host:port", "ray://host:port" or "auto") joins an existing cluster. A
"host:port" address is first probed with a plain TCP connection
(``connect_timeout`` seconds), so an unreachable cluster is one clear error
at once rather than Ray's long retry loop.

Tasks run with ``max_retries`` (a worker killed mid-task is restarted and the
task re-run from its arguments; tasks are pure functions of their arguments,
so a retried task returns what the first attempt would have) and
``max_calls`` (default 0: workers are reused; 1: a fresh worker process per task,
so that each task's peak memory is its own). Results are returned in task order whatever order they finish in.
"""

from __future__ import annotations

import logging
import socket

from ..exceptions import BackendUnavailableError, CoresetError, ValidationError
from ._base import Executor

__all__ = ["RayExecutor", "check_address"]

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError("the ray executor needs Ray: pip install 'coreset[ray]' "
                                      "(or pip install 'ray>=2.9')") from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Raise a :class:`CoresetError` at once when ``host:port`` does not accept
    a TCP connection within ``timeout`` seconds ("auto" is left to Ray)."""
    if not isinstance(address, str) or not address.strip():
        raise ValidationError(f"ray_address must be 'host:port', 'ray://host:port' or 'auto'; got {address!r}")
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValidationError(f"ray_address must be 'host:port', 'ray://host:port' or 'auto'; got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise CoresetError(f"cannot reach the Ray cluster at {address!r} within {timeout:g} s "
                           f"({exc.strerror or type(exc).__name__}); is `ray start --head` running there?") from None


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
        ray = _ray()
        if self.address is not None:
            check_address(self.address, self.connect_timeout)
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
        refs = [remote.remote(ray.put(t)) for t in tasks]
        pending, done = list(refs), 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += len(ready)
            if callback is not None:
                callback(stage, done, len(refs))
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


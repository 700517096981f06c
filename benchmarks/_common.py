"""Shared helpers for the benchmark scripts: machine description, memory
readings, timing statistics, JSON output. Not part of the library."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

try:  # run from a checkout without `pip install -e .`: use the repository's package
    import coreset  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(1, str(HERE.parent))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return float("nan")


def n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def default_machine_name() -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    return f"{n_cpus()}cpu-{slug}"


def _version(mod):
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception:  # noqa: BLE001 - a missing optional package is just recorded
        return None


def gpu_description() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.SubprocessError):
        pass
    return "none"


def machine_info(name: str | None = None) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def dist(n):
        try:
            return version(n)
        except PackageNotFoundError:
            return None

    return {
        "name": name or default_machine_name(),
        "cpu": cpu_model(),
        "cpus": n_cpus(),
        "ram_gib": ram_gib(),
        "gpu": gpu_description(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "versions": {
            "coreset": _version("coreset"),
            "numpy": _version("numpy"),
            "scipy": _version("scipy"),
            "faiss": _version("faiss"),
            "torch": _version("torch"),
            "numba": _version("numba"),
            "apricot-select": dist("apricot-select"),
            "submodlib-py": dist("submodlib-py"),
        },
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")},
    }


def median(xs):
    return float(statistics.median(xs))


# -- memory ---------------------------------------------------------------------
def ru_maxrss_mb() -> float:
    """Peak RSS of this process so far (Linux reports KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def _status(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    return _status("VmRSS")


def hwm_mb() -> float | None:
    return _status("VmHWM")


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux >= 4.0: write 5 to clear_refs) so a later hwm_mb()
    is the peak of what follows. ``ru_maxrss`` cannot be reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def exact_objective(source, indices, block: int = 100_000) -> float:
    """Sum over all rows of ``source`` (a row source: ``read`` / ``chunks``) of
    the cosine to the nearest of the rows ``indices`` (exact, FAISS flat inner
    product on normalised rows): the facility-location value a distributed run
    is scored by."""
    import faiss
    import numpy as np

    S = source.read(np.sort(indices)).astype(np.float32)
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(S.shape[1])
    index.add(S)
    total = 0.0
    for _, Xb in source.chunks(block):
        Xb = Xb.astype(np.float32)
        Xb /= np.linalg.norm(Xb, axis=1, keepdims=True)
        D, _ = index.search(Xb, 1)
        total += float(D[:, 0].astype(np.float64).sum())
    return total

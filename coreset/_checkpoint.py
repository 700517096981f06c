"""Stream checkpoints on disk: one atomic writer and one validating reader.

A checkpoint is an ``.npz`` (``allow_pickle=False``) of the sieve state's
arrays (:meth:`coreset.optimizers._sieve_state.SieveState.to_arrays`) plus ``header``: a 0-d
unicode array holding a JSON object with the input's fingerprint, the
settings, the counters (``rows_done``, ``chunks_done``, ``d``) and ``sha256``,
a digest of everything else in the file. :func:`read_checkpoint` checks every
field before any of it reaches compiled code: the digest, the settings and the
input, the counters against the input, and every array's dtype, shape, range
and consistency with the others (:func:`check_sieve_state`). Anything wrong is
one :class:`CheckpointError` naming the checkpoint and the field. What is
guaranteed and what is refused: ``docs/streaming.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from .exceptions import CheckpointError

__all__ = ["CheckpointError", "CHECKPOINT_VERSION", "write_checkpoint", "read_checkpoint", "check_sieve_state"]

#: layout version; a checkpoint of another version is refused (never converted)
CHECKPOINT_VERSION = 2
_HEADER_KEYS = {"input", "settings", "rows_done", "chunks_done", "d", "sha256"}
_STATE = ("scal", "cur", "size", "members", "val", "expo", "pool_n", "pool_row", "pool_nbr", "pool_sim", "pool_X",
          "reservoir", "reservoir_rows")
_OPTIONAL = ("ivf_centroids",)
#: cosines of float32 unit rows may exceed 1 by rounding
_TOL = 1e-3


# ---------------------------------------------------------------- writing

def _savez(fh, **arrays):  # the low-level write (the tests make it fail to simulate a full disk)
    np.savez(fh, **arrays)


def _digest(header: dict, arrays: dict) -> str:
    """sha256 of the header (without ``sha256``) and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def write_checkpoint(path, header: dict, arrays: dict) -> None:
    """Write ``arrays`` and ``header`` (plus its digest) to ``path`` atomically;
    a failed write raises :class:`CheckpointError` and leaves the previous file."""
    from ._io import atomic_write

    path = Path(path)
    header = dict(header, sha256=_digest(header, arrays))
    out = dict(arrays, header=np.array(json.dumps(header, allow_nan=False)))
    try:
        with atomic_write(path) as tmp:
            with open(tmp, "wb") as fh:
                _savez(fh, **out)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: cannot write ({exc.strerror or exc}); "
                              "the previous checkpoint is left as it was") from None


# ---------------------------------------------------------------- reading

def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _load(path: Path) -> tuple[dict, dict]:
    where = f"checkpoint {str(path)!r}"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zip / npy / zlib errors, pickles refused, MemoryError from a forged shape
        raise CheckpointError(f"{where} cannot be read ({type(exc).__name__}: {exc}); "
                              "remove it or give another path") from None
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise CheckpointError(f"{where}: member {name!r} is not a .npy array; remove the checkpoint")
    h = arrays.pop("header", None)
    if h is None or h.shape != () or h.dtype.kind != "U":
        got = "missing" if h is None else f"dtype {h.dtype}, shape {h.shape}"
        raise CheckpointError(f"{where}: header must be a 0-d unicode array; got {got}")
    try:
        header = json.loads(str(h), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{where}: header is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: header must be a JSON object; got {type(header).__name__}")
    return header, arrays


def _int(where, header, key, low, high=None):
    v = header[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise CheckpointError(f"{where}: header field {key!r} must be an integer {rng}; got {v!r}")
    return v


def _differences(a: dict, b: dict) -> list[str]:
    return [f"{k}: checkpoint {a.get(k)!r}, now {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def read_checkpoint(path, *, fingerprint: dict, settings: dict, n_rows: int | None, d: int | None,
                    ivf_above: int, reservoir_rows: np.ndarray | None = None) -> tuple[dict, dict]:
    """The validated ``(header, arrays)`` of the checkpoint at ``path`` for a
    run on an input with this ``fingerprint`` (``n_rows`` rows of width ``d``;
    None when unknown: an iterator) and these ``settings``. ``reservoir_rows``:
    the rows a seeded run draws (checked against the checkpoint's), or None;
    ``ivf_above``: the reservoir size above which IVF centroids are kept.
    For an iterator (``n_rows`` None) the rows done are checked while the
    resumed run skips them (``coreset._stream``)."""
    path = Path(path)
    where = f"checkpoint {str(path)!r}"
    header, arrays = _load(path)
    for key in ("input", "settings"):
        if not isinstance(header.get(key), dict):
            raise CheckpointError(f"{where}: header field {key!r} must be a JSON object; "
                                  f"got {type(header.get(key)).__name__}")
    version = header["settings"].get("version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{where} has layout version {version!r}; this coreset reads version "
                              f"{CHECKPOINT_VERSION}; remove it (the run starts over) or give another path")
    keys = set(header)
    if keys != _HEADER_KEYS:
        missing, extra = sorted(_HEADER_KEYS - keys), sorted(keys - _HEADER_KEYS)
        raise CheckpointError(f"{where}: header fields must be {', '.join(sorted(_HEADER_KEYS))}; "
                              f"missing {missing or 'none'}, unexpected {extra or 'none'}")
    if header["sha256"] != _digest(header, arrays):
        raise CheckpointError(f"{where}: its content does not match its sha256 (changed or damaged since it was "
                              "written); remove it or give another path")
    diff = _differences(header["input"], fingerprint) + _differences(header["settings"], settings)
    if diff:
        raise CheckpointError(f"{where} was written for another input or other settings "
                              f"({'; '.join(diff)}); remove it or give another path")
    dd = _int(where, header, "d", 1)
    if d is not None and dd != d:
        raise CheckpointError(f"{where}: header field 'd' is {dd}; the input has {d} columns")
    chunk_size = settings["chunk_size"]
    if n_rows is None:
        rows_done = _int(where, header, "rows_done", 0)
        chunks_done = _int(where, header, "chunks_done", 1)
    else:
        n_chunks = -(-n_rows // chunk_size)
        chunks_done = _int(where, header, "chunks_done", 1, n_chunks)
        rows_done = _int(where, header, "rows_done", 1, n_rows)
        if rows_done != min(chunks_done * chunk_size, n_rows):
            raise CheckpointError(f"{where}: header field 'rows_done' is {rows_done}; {chunks_done} chunks of "
                                  f"{chunk_size} rows of an input of {n_rows} rows hold "
                                  f"{min(chunks_done * chunk_size, n_rows)}")
    arrays = check_sieve_state(arrays, where=where, k=settings["n_select"], epsilon=settings["epsilon"],
                               n_neighbors=settings["n_neighbors"], reservoir=settings["reservoir"], d=dd,
                               rows_done=rows_done, n_rows=n_rows, reservoir_rows=reservoir_rows,
                               ivf_above=ivf_above)
    return header, arrays


# ---------------------------------------------------------------- the sieve state

def _array(where, arrays, name, dtype, shape):
    a = arrays[name]
    ok = a.dtype == np.dtype(dtype) and a.ndim == len(shape) and all(s is None or s == t
                                                                       for s, t in zip(shape, a.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise CheckpointError(f"{where}: array {name!r} must be {np.dtype(dtype).name} of shape {want}; "
                              f"got {a.dtype.str} of shape {a.shape}")
    return np.ascontiguousarray(a)


def _require(where, ok, name, what, got):
    if not ok:
        raise CheckpointError(f"{where}: array {name!r} {what}; got {got}")


def _finite(where, name, a, low, high):
    bad = ~np.isfinite(a)
    if bad.any():
        raise CheckpointError(f"{where}: array {name!r} holds a non-finite value ({a[bad][0]})")
    if a.size:
        lo, hi = a.min(), a.max()
        _require(where, lo >= low and hi <= high, name, f"must hold values in [{low:g}, {high:g}]",
                 f"values from {lo:g} to {hi:g}")


def _increasing(where, name, a, low, high, what):
    if a.size:
        _require(where, a[0] >= low and a[-1] < high and bool(np.all(a[1:] > a[:-1])), name,
                 f"must hold strictly increasing {what} in [{low}, {high})", f"{a[:8].tolist()}...")


def check_sieve_state(arrays: dict, *, where: str, k: int, epsilon: float, n_neighbors: int, reservoir: int, d: int,
                      rows_done: int, n_rows: int | None, reservoir_rows: np.ndarray | None, ivf_above: int) -> dict:
    """The arrays of a saved :class:`~coreset.optimizers._sieve_state.SieveState`, checked for
    what ``n_select=k``, ``epsilon``, ``n_neighbors``, ``reservoir`` and the
    input (``d`` columns, ``n_rows`` rows or None, ``rows_done`` fed) imply
    (``ivf_above``: IVF centroids are kept for larger reservoirs); returned
    C-contiguous. Any field wrong: :class:`CheckpointError`."""
    from .optimizers._sieve_kernels import EMPTY, n_slots
    from .optimizers._sieve_kernels import window as _window

    names = set(arrays)
    need = set(_STATE)
    if not need <= names or not names <= need | set(_OPTIONAL):
        raise CheckpointError(f"{where}: arrays must be {', '.join(sorted(need))} (and {', '.join(_OPTIONAL)} for "
                              f"a reservoir over {ivf_above} rows); missing {sorted(need - names) or 'none'}, "
                              f"unexpected {sorted(names - need - set(_OPTIONAL)) or 'none'}")
    T = n_slots(k, epsilon)
    out = {}
    R = out["reservoir"] = _array(where, arrays, "reservoir", np.float32, (None, d))
    r = R.shape[0]
    r_want = min(reservoir, n_rows) if n_rows is not None else None
    _require(where, 1 <= r <= reservoir and (r_want is None or r == r_want), "reservoir",
             f"must have {r_want if r_want is not None else f'1 to {reservoir}'} rows", f"{r} rows")
    _finite(where, "reservoir", R, -1 - _TOL, 1 + _TOL)
    norms = np.linalg.norm(R, axis=1)
    _require(where, bool(np.all(np.abs(norms - 1) <= _TOL)), "reservoir", "must hold unit rows",
             f"a row of norm {norms[np.argmax(np.abs(norms - 1))]:g}")
    rr = out["reservoir_rows"] = _array(where, arrays, "reservoir_rows", np.int64, (r,))
    if reservoir_rows is not None:
        _require(where, np.array_equal(rr, reservoir_rows), "reservoir_rows",
                 "must be the rows the seed draws", "other rows")
    elif n_rows is None:  # an iterator's reservoir is its first rows
        _require(where, np.array_equal(rr, np.arange(r)), "reservoir_rows", f"must be 0 to {r - 1}", "other rows")
    else:
        _increasing(where, "reservoir_rows", rr, 0, n_rows, "row numbers")
    m = min(n_neighbors, r)

    scal = out["scal"] = _array(where, arrays, "scal", np.float64, (2,))
    cur = out["cur"] = _array(where, arrays, "cur", np.float32, (T, r))
    size = out["size"] = _array(where, arrays, "size", np.int64, (T,))
    members = out["members"] = _array(where, arrays, "members", np.int64, (T, k))
    val = out["val"] = _array(where, arrays, "val", np.float64, (T,))
    expo = out["expo"] = _array(where, arrays, "expo", np.int64, (T,))
    pool_n = out["pool_n"] = _array(where, arrays, "pool_n", np.int64, (1,))
    n = int(pool_n[0])
    _require(where, 0 <= n <= rows_done, "pool_n", f"must be in [0, {rows_done}] (the rows done)", n)
    prow = out["pool_row"] = _array(where, arrays, "pool_row", np.int64, (n,))
    pnbr = out["pool_nbr"] = _array(where, arrays, "pool_nbr", np.int64, (n, m))
    psim = out["pool_sim"] = _array(where, arrays, "pool_sim", np.float32, (n, m))
    pX = out["pool_X"] = _array(where, arrays, "pool_X", np.float32, (n, d))

    _increasing(where, "pool_row", prow, 0, rows_done, "row numbers (rows done)")
    first = prow[prow < k]
    _require(where, np.array_equal(first, np.arange(min(k, rows_done))), "pool_row",
             f"must hold the first {min(k, rows_done)} rows (the fallback candidates)", f"{first[:8].tolist()}...")
    if n:
        _require(where, pnbr.min() >= 0 and pnbr.max() < r, "pool_nbr", f"must hold reservoir rows in [0, {r})",
                 f"values from {pnbr.min()} to {pnbr.max()}")
    _finite(where, "pool_sim", psim, -1 - _TOL, 1 + _TOL)
    _finite(where, "pool_X", pX, -1 - _TOL, 1 + _TOL)
    if n:
        norms = np.linalg.norm(pX, axis=1)
        _require(where, bool(np.all(np.abs(norms - 1) <= _TOL)), "pool_X", "must hold unit rows",
                 f"a row of norm {norms[np.argmax(np.abs(norms - 1))]:g}")

    for lo_ in range(0, n, 256):  # each kept row's similarities are its inner products with those reservoir rows
        hi_ = min(n, lo_ + 256)
        nb, sm = pnbr[lo_:hi_], psim[lo_:hi_]
        dots = np.einsum("tpd,td->tp", R[nb], pX[lo_:hi_], dtype=np.float64)
        off = (np.abs(dots - sm) > 1e-4) & ~((nb == 0) & (sm == 0))  # (0, 0.0): a short IVF probe's padding
        if off.any():
            t, q = np.argwhere(off)[0]
            raise CheckpointError(f"{where}: array 'pool_sim' [{lo_ + t}, {q}] is {sm[t, q]:.6g}, but kept row "
                                  f"{lo_ + t} and reservoir row {nb[t, q]} have inner product {dots[t, q]:.6g}")
    _finite(where, "scal", scal, 0.0, m * (1 + _TOL) + r * (1 + _TOL))
    delta, lb = float(scal[0]), float(scal[1])
    _require(where, delta <= m * (1 + _TOL) and lb <= r * (1 + _TOL), "scal",
             f"must be [Delta <= {m}, LB <= {r}] (n_neighbors, reservoir rows)", scal.tolist())
    if n:
        singles = np.where(psim > 0, psim, 0).astype(np.float64).sum(axis=1)
        _require(where, delta >= singles.max() * (1 - 1e-6), "scal",
                 "[0] (Delta) must be at least every kept row's singleton value",
                 f"{delta:g} < {singles.max():g}")
    _finite(where, "cur", cur, 0.0, 1 + _TOL)
    _finite(where, "val", val, 0.0, r * (1 + _TOL))
    _require(where, size.min() >= 0 and size.max() <= k, "size", f"must hold values in [0, {k}]",
             f"values from {size.min()} to {size.max()}")
    # live thresholds: every exponent from some a to hi, where a lies between the window's lower end
    # without LB and with it (LB may have grown during the last row, after the window was set)
    live = np.flatnonzero(expo != EMPTY)
    exps = sorted(int(e) for e in expo[live])
    lo0, hi = _window(delta, 0.0, k, epsilon)
    lo1, _ = _window(delta, lb, k, epsilon)
    ok = not exps if delta <= 0 else (bool(exps) and lo0 <= exps[0] <= lo1 and exps == list(range(exps[0], hi + 1)))
    _require(where, ok and len(exps) <= T and all(int(expo[q]) % T == q for q in live), "expo",
             f"must hold the exponents a to {hi} for some a in [{lo0}, {lo1}] (the thresholds Delta and LB "
             f"imply), each in slot e % {T}", exps[:8])
    for q in live:
        s = int(size[q])
        mem = members[q, :s]
        _increasing(where, "members", mem, 0, n, f"candidate slots (pool_n) in sieve {q}")
        cover = np.zeros(r, np.float32)
        np.maximum.at(cover, pnbr[mem].ravel(), psim[mem].ravel())
        _require(where, np.array_equal(cover, cur[q]), "cur", f"row {q} must be its sieve's coverage",
                 "other values")
        total = float(cover.astype(np.float64).sum())
        _require(where, abs(val[q] - total) <= 1e-6 * max(1.0, total), "val",
                 f"[{q}] must be its sieve's value ({total:.9g})", f"{val[q]:.9g}")
        _require(where, val[q] <= lb * (1 + 1e-9), "scal", f"[1] (LB) must be at least sieve {q}'s value",
                 f"{lb:g} < {val[q]:g}")

    if "ivf_centroids" in arrays:
        _require(where, r > ivf_above, "ivf_centroids", f"is only kept for a reservoir over "
                 f"{ivf_above} rows", f"{r} rows")
        C = out["ivf_centroids"] = _array(where, arrays, "ivf_centroids", np.float32, (int(4 * math.sqrt(r)), d))
        _finite(where, "ivf_centroids", C, -np.inf, np.inf)
    elif r > ivf_above:
        raise CheckpointError(f"{where}: array 'ivf_centroids' is missing (a reservoir of {r} rows is searched "
                              "with an IVF index)")
    return out

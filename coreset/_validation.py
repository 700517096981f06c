"""Validation at the public boundary, done once. Messages name the parameter,
the allowed range and the value received."""

from __future__ import annotations

import numbers

import numpy as np

from .exceptions import DegenerateInputError, ValidationError

__all__ = [
    "as_embeddings",
    "check_labels",
    "resolve_n_select",
    "check_int",
    "check_float",
    "check_random_state",
    "check_magnitude",
    "check_gamma",
]

#: float32 limits: every kNN search runs in float32
_F32 = np.finfo(np.float32)


def _is_torch_tensor(x) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "detach")


def _is_scipy_sparse(x) -> bool:
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "toarray")


def as_embeddings(X, *, name: str = "X", allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``X`` as a 2-D float32/float64 numpy array (float32 and float64 are
    preserved, other numeric types become float32: also a torch tensor's
    float16, bfloat16 and float8, which float32 holds exactly), raising a
    :class:`ValidationError` naming ``name`` when it is unusable.

    The size of the (finite) values is not checked here: cosine is
    scale-invariant and handles any finite value, subnormal ones included.
    For ``inner_product`` and ``euclidean`` the similarity builders call
    :func:`check_magnitude`, which refuses rows whose squared norms would
    overflow (or wholly underflow) float32 instead of returning garbage.
    A scipy sparse matrix is refused: sparse input is a similarity, accepted
    only with ``metric="precomputed"``."""
    if _is_scipy_sparse(X):
        raise ValidationError(
            f"{name} is a scipy sparse {type(X).__name__} of shape {X.shape}; sparse input is accepted "
            f"only as a precomputed similarity (metric='precomputed'). For embeddings, convert it "
            f"with {name}.toarray()"
        )
    if _is_torch_tensor(X):
        X = X.detach().cpu()
        if X.is_floating_point() and X.element_size() < 4 and str(X.dtype) != "torch.float16":
            X = X.float()  # bfloat16 / float8: numpy has no such dtype; float32 holds them exactly
        X = X.numpy()
    if isinstance(X, np.memmap):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValidationError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValidationError(
            f"{name} must hold real numbers (float32/float64); got dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise ValidationError(
            f"{name} must be 2-D (n_samples x n_features); got ndim={arr.ndim} with shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValidationError(f"{name} is empty: shape {arr.shape}; need at least 1 row and 1 column")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    if not allow_nonfinite:
        # in row blocks of ~64 MB: a memory-mapped input is never materialised whole here
        step = max(1, (64 * 2**20) // max(1, arr.shape[1] * arr.itemsize))
        for start in range(0, arr.shape[0], step):
            block = np.asarray(arr[start:start + step])
            finite = np.isfinite(block)
            if not finite.all():
                bad = np.argwhere(~finite)[0]
                raise ValidationError(
                    f"{name} must be finite; found {block[bad[0], bad[1]]} at row {start + bad[0]}, column {bad[1]}"
                )
    return arr


def check_not_all_identical(X: np.ndarray, *, name: str = "X") -> None:
    if X.shape[0] > 1 and np.array_equal(X[1], X[0]) and np.all(X == X[0]):
        raise DegenerateInputError(
            f"all {X.shape[0]} rows of {name} are identical: every subset represents the data "
            "equally well, so there is nothing to select on"
        )


def _is_missing(v) -> bool:
    """None, a float NaN, or pandas' NA / NaT."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(v, (float, np.floating)) and v != v


def _refuse_missing(values, name: str) -> None:
    missing = next((i for i, v in enumerate(values) if _is_missing(v)), None)
    if missing is not None:
        raise ValidationError(
            f"{name} has a missing label ({values[missing]!r}) at position {missing}; every point needs "
            "an integer or string label"
        )


def check_labels(y, n: int, *, name: str = "y") -> np.ndarray:
    """``y`` as a 1-D array of ``n`` integer, boolean or string labels.

    Floats holding whole numbers (``0.0, 1.0, ...``) become int64; any other
    float (``0.5``, NaN, inf, beyond the int64 range) is refused. An object
    array becomes strings, after refusing missing labels (``None``, NaN).
    Other dtypes (complex, datetime, ...) are refused."""
    if _is_torch_tensor(y):
        y = y.detach().cpu()
        if str(y.dtype) == "torch.bfloat16":  # numpy has no bfloat16; float32 holds it exactly
            y = y.float()
        y = y.numpy()
    if isinstance(y, (list, tuple)):  # numpy would turn ["a", None] / ["a", nan] into strings
        _refuse_missing(y, name)
    try:
        y = np.asarray(y)
    except Exception as exc:  # ragged lists and the like
        raise ValidationError(f"{name} could not be read as an array of labels: {exc}") from None
    if y.ndim != 1:
        raise ValidationError(f"{name} must be 1-D; got ndim={y.ndim} with shape {y.shape}")
    if y.shape[0] != n:
        raise ValidationError(f"{name} has {y.shape[0]} labels but X has {n} rows; they must match")
    kind = y.dtype.kind
    if kind == "f":
        return _integral_labels(y, name)
    if kind == "O":
        _refuse_missing(y, name)
        try:
            return y.astype(str)
        except Exception:
            raise ValidationError(f"{name} must hold integers or strings; got dtype object") from None
    if kind not in "biuUS":
        raise ValidationError(
            f"{name} must hold integer, boolean or string labels; got dtype {y.dtype}"
        )
    return y


def _integral_labels(y: np.ndarray, name: str) -> np.ndarray:
    """Float labels that are all whole numbers, as int64; a clear error otherwise."""
    finite = np.isfinite(y)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise ValidationError(
            f"{name} must not contain NaN or inf labels; found {y[i].item()} at position {i} "
            "(labels must be integers or strings)"
        )
    whole = y == np.round(y)
    if not whole.all():
        i = int(np.flatnonzero(~whole)[0])
        raise ValidationError(
            f"{name} must hold integer or string labels; found non-integer value {y[i].item()!r} at position {i}"
        )
    big = np.abs(y.astype(np.float64)) >= 2.0**63
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise ValidationError(
            f"{name} must hold integer or string labels that fit int64; found {y[i].item()!r} at position {i}"
        )
    return y.astype(np.int64)


def _row_norms(X) -> np.ndarray:
    """Euclidean row norms in float64 that neither overflow nor underflow for
    any finite input: each row is divided by its largest absolute value first.
    Works in row blocks of ~64 MB (a memory map is not materialised whole)."""
    n = X.shape[0]
    out = np.empty(n, np.float64)
    step = max(1, (64 * 2**20) // max(1, X.shape[1] * 8))
    with np.errstate(over="ignore", under="ignore"):
        for start in range(0, n, step):
            B = np.asarray(X[start:start + step], dtype=np.float64)
            m = np.abs(B).max(axis=1)
            safe = np.where(m > 0, m, 1.0)
            out[start:start + step] = m * np.sqrt(np.einsum("ij,ij->i", B / safe[:, None], B / safe[:, None]))
    return out


def check_magnitude(X, metric: str, *, name: str = "X", dtype=np.float32) -> None:
    """Refuse finite values whose similarities cannot be represented in ``dtype``
    (float32 by default: every kNN search runs in float32).

    ``cosine`` and ``precomputed`` never need it: cosine is scale-invariant.
    ``inner_product`` needs ``|x|^2`` (the largest similarity) to fit and
    ``euclidean`` needs ``|x - x'|^2 <= 4 max|x|^2`` to fit; both also need the
    largest ``|x|^2`` above the smallest normal number, or every similarity
    would underflow to (sub)normal noise. Raises a :class:`ValidationError`
    naming ``name``, the metric and the largest row norm, suggesting to rescale.
    Cost: one pass of ``max(|X|)``; row norms only when that is inconclusive."""
    if metric not in ("inner_product", "euclidean"):
        return
    info = np.finfo(dtype)
    factor = 1.0 if metric == "inner_product" else 4.0  # bound on the quantity squared
    high = float(np.sqrt(float(info.max) / factor))
    low = float(np.sqrt(float(info.tiny)))
    X = X if hasattr(X, "shape") and hasattr(X, "dtype") else np.asarray(X)
    if X.ndim != 2 or X.size == 0:
        return
    step = max(1, (64 * 2**20) // max(1, X.shape[1] * X.dtype.itemsize))
    amax = 0.0
    for start in range(0, X.shape[0], step):
        amax = max(amax, float(np.abs(np.asarray(X[start:start + step])).max()))
    if amax == 0.0 or (amax * np.sqrt(X.shape[1]) <= high and amax >= low):
        return  # the largest row norm lies in [amax, amax * sqrt(d)]: no overflow, no underflow
    norms = _row_norms(X)
    row = int(np.argmax(norms))
    top = float(norms[row])
    if metric == "inner_product":
        what, where = "|x|^2", "|x|^2 (the similarity of a row with itself)"
    else:
        what, where = "|x - x'|^2", "|x - x'|^2 (up to 4 times the largest |x|^2)"
    fix = (f"Rescale {name} (e.g. divide it by {amax:.4g}, its largest absolute value) "
           "or use metric='cosine', which is scale-invariant")
    if top > high:
        raise ValidationError(
            f"{name} is too large for metric={metric!r}: its largest row norm is {top:.4g} (row {row}), "
            f"so {where} overflows {info.dtype} (largest {float(info.max):.4g}); row norms must be at most "
            f"{high:.4g}. {fix}"
        )
    if top < low:
        raise ValidationError(
            f"{name} is too small for metric={metric!r}: its largest row norm is {top:.4g} (row {row}), "
            f"so every {what} is below {info.dtype}'s smallest normal number ({float(info.tiny):.4g}) "
            f"and loses its precision; the largest row norm must be at least {low:.4g}. {fix}"
        )


def check_gamma(gamma, name: str = "gamma", *, dtype=np.float32) -> float | None:
    """``gamma`` of the euclidean (RBF) kernel ``exp(-gamma * |x - x'|^2)``:
    None, or a finite number > 0 within the normal range of ``dtype``, where
    the kernel is evaluated (float32 for kNN graphs): outside it, gamma itself
    rounds to 0 or inf there."""
    if gamma is None:
        return None
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, numbers.Real):
        raise ValidationError(f"{name} (the euclidean kernel width) must be a number > 0 or None; got {gamma!r}")
    value = float(gamma)
    info = np.finfo(dtype)
    lo, hi = float(info.tiny), float(info.max)
    if not (np.isfinite(value) and lo <= value <= hi):
        raise ValidationError(
            f"{name} (the euclidean kernel width in exp(-{name} * |x - x'|^2)) must be a finite number > 0, "
            f"within {info.dtype}'s range [{lo:.4g}, {hi:.4g}]; got {value!r} (left as None, it is "
            "1 / the median squared distance between rows of X: rescale X if that is out of range)"
        )
    return value


def check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValidationError(f"{name} must be in {rng}; got {value}")
    return value


def check_float(value, name: str, *, low=None, high=None, low_open=False, high_open=False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValidationError(f"{name} must be a number; got {value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise ValidationError(
            f"{name} must be in {lb}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hb}; got {value}"
        )
    return value


def resolve_n_select(n: int, n_select=None, fraction=None) -> int:
    """Turn ``n_select`` or ``fraction`` into a count in [1, n]."""
    if n_select is None and fraction is None:
        raise ValidationError("give exactly one of n_select or fraction; got neither")
    if n_select is not None and fraction is not None:
        raise ValidationError(
            f"give exactly one of n_select or fraction; got n_select={n_select!r} and fraction={fraction!r}"
        )
    if n_select is not None:
        return check_int(n_select, "n_select", low=1, high=n)
    f = check_float(fraction, "fraction", low=0.0, high=1.0, low_open=True)
    return max(1, int(round(f * n)))


def check_random_state(random_state) -> np.random.Generator:
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, (bool, np.bool_)):
            raise ValidationError(f"random_state must be None, an int or a Generator; got {random_state!r}")
        if isinstance(random_state, numbers.Integral) and random_state < 0:
            raise ValidationError(f"random_state must be >= 0; got {random_state}")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValidationError(f"random_state must be None, an int or a numpy Generator; got {random_state!r}")

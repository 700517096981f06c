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
]


def _is_torch_tensor(x) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "detach")


def as_embeddings(X, *, name: str = "X", allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``X`` as a 2-D float32/float64 numpy array (float32 and float64 are
    preserved, other numeric types become float32), raising a
    :class:`ValidationError` naming ``name`` when it is unusable."""
    if _is_torch_tensor(X):
        X = X.detach().cpu().numpy()
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


def check_labels(y, n: int, *, name: str = "y") -> np.ndarray:
    if _is_torch_tensor(y):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValidationError(f"{name} must be 1-D; got ndim={y.ndim} with shape {y.shape}")
    if y.shape[0] != n:
        raise ValidationError(f"{name} has {y.shape[0]} labels but X has {n} rows; they must match")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValidationError(f"{name} must not contain NaN or inf labels")
    if y.dtype == object:
        try:
            y = y.astype(str)
        except Exception:
            raise ValidationError(f"{name} must hold integers or strings; got dtype object") from None
    return y


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

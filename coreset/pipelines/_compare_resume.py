"""Reading the ``results.json`` of an earlier ``compare`` run to resume it:
every field is checked before a row is reused, and anything wrong is one
:class:`~coreset.exceptions.ValidationError` naming the file and the field
(``rows[3].fraction``), never a raw exception."""

from __future__ import annotations

import json
import math
from numbers import Integral, Real

from ..exceptions import ValidationError

__all__ = ["load_previous", "METRICS", "TIMING", "NOISE_COLUMNS", "AUGMENT_COLUMNS", "COLUMNS"]

#: metric columns of a row (besides dataset, method, fraction, seed)
METRICS = ("balanced_accuracy", "accuracy", "head_accuracy", "torso_accuracy", "tail_accuracy",
           "worst_class_accuracy", "breadth", "n_train_rows", "sample_gradients", "selection_gradients",
           "selection_forward", "total_compute", "selection_seconds", "training_seconds", "total_seconds")
#: columns that vary from run to run (wall time); everything else is deterministic
TIMING = ("selection_seconds", "training_seconds", "total_seconds")
#: the training split's label noise / near-duplicates (coreset.data._noise), recorded in every row
NOISE_COLUMNS = ("label_noise", "noise_model", "duplicates")
#: sample-gradients spent on augmented copies (``+aug`` methods, _compare_augment; 0 otherwise)
AUGMENT_COLUMNS = ("augment_gradients",)
COLUMNS = ("dataset", "method", "fraction", "seed") + NOISE_COLUMNS + METRICS + AUGMENT_COLUMNS

#: the columns that name a cell
_KEY = ("dataset", "method", "fraction", "seed")
#: metrics that are fractions of the test rows or classes
_UNIT = ("balanced_accuracy", "accuracy", "head_accuracy", "torso_accuracy", "tail_accuracy", "worst_class_accuracy")
#: metrics that count something (whole numbers)
_COUNTS = ("breadth", "n_train_rows", "sample_gradients", "selection_gradients", "selection_forward")


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _is_int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    try:
        return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def load_previous(path, config: dict, classes=None, class_counts=None) -> list:
    """The rows of an earlier run in the same folder, checked field by field;
    ``[]`` when there is none. Refused when its configuration, classes or
    class sizes differ from this run's (its cells would not be comparable)."""
    if not path.exists():
        return []
    where = f"cannot resume from {str(path)!r}"

    def bad(field, want, got):
        shown = repr(got)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ValidationError(f"{where}: {field} must be {want}; got {shown}")

    try:
        old = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValidationError(f"{where}: not a compare results file ({type(exc).__name__}: {exc})") from None
    if not isinstance(old, dict):
        raise bad("the file", "a JSON object", type(old).__name__)
    for key, kind in (("config", dict), ("rows", list), ("classes", list), ("class_counts", list)):
        if key not in old:
            raise ValidationError(f"{where}: not a compare results file (no {key!r})")
        if not isinstance(old[key], kind):
            raise bad(key, f"a JSON {'object' if kind is dict else 'list'}", type(old[key]).__name__)
    old_config = old["config"]
    diff = sorted(k for k in set(config) | set(old_config) if config.get(k) != old_config.get(k))
    if diff:
        raise ValidationError(f"{str(path)!r} holds results of another configuration (differs in {', '.join(diff)}); "
                              "use another out folder or remove it")
    if classes is not None and old["classes"] != list(classes):
        raise ValidationError(f"{str(path)!r} holds results for other classes ({len(old['classes'])} classes, this "
                              f"run has {len(classes)}); use another out folder or remove it")
    if class_counts is not None and old["class_counts"] != list(class_counts):
        raise ValidationError(f"{str(path)!r} holds results for other class sizes; use another out folder or "
                              "remove it")
    n_classes = len(old["classes"]) if classes is None else len(classes)
    seen = set()
    for i, row in enumerate(old["rows"]):
        f = f"rows[{i}]"
        if not isinstance(row, dict):
            raise bad(f, "a JSON object", type(row).__name__)
        missing = [c for c in _KEY + METRICS + ("per_class_accuracy",) if c not in row]
        if missing:
            raise ValidationError(f"{where}: {f} lacks {', '.join(missing)}")
        for c in COLUMNS:  # the other columns (the noise settings) are written back to the CSV as they are
            v = row.get(c)
            if c not in _KEY + METRICS and not (v is None or isinstance(v, (str, bool)) or _is_real(v)):
                raise bad(f"{f}.{c}", "a string, a finite number or null", v)
        for c in ("dataset", "method"):
            if not isinstance(row[c], str) or not row[c]:
                raise bad(f"{f}.{c}", "a non-empty string", row[c])
        if row["dataset"] != config.get("dataset", row["dataset"]):
            raise bad(f"{f}.dataset", f"{config['dataset']!r} (the dataset of this run)", row["dataset"])
        if not _is_real(row["fraction"]) or not 0 < row["fraction"] <= 1:
            raise bad(f"{f}.fraction", "a number in (0, 1]", row["fraction"])
        if not _is_int(row["seed"]) or row["seed"] < 0:
            raise bad(f"{f}.seed", "an integer >= 0", row["seed"])
        for m in METRICS:
            v = row[m]
            if v is None:
                continue
            if not _is_real(v) or v < 0:
                raise bad(f"{f}.{m}", "a finite number >= 0 or null", v)
            if m in _UNIT and v > 1:
                raise bad(f"{f}.{m}", "a number in [0, 1] or null", v)
            if m in _COUNTS and v != int(v):
                raise bad(f"{f}.{m}", "a whole number or null", v)
        pca = row["per_class_accuracy"]
        if not isinstance(pca, list) or len(pca) != n_classes:
            raise bad(f"{f}.per_class_accuracy", f"a list of {n_classes} numbers (one per class)",
                      pca if not isinstance(pca, list) else f"a list of {len(pca)}")
        for j, a in enumerate(pca):
            if a is not None and (not _is_real(a) or not 0 <= a <= 1):
                raise bad(f"{f}.per_class_accuracy[{j}]", "a number in [0, 1] or null", a)
        key = (row["dataset"], row["method"], round(float(row["fraction"]), 10), int(row["seed"]))
        if key in seen:
            raise ValidationError(f"{where}: {f} repeats the cell {key}")
        seen.add(key)
    return old["rows"]

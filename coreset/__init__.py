"""coreset: small, informative, weighted training subsets.

``import coreset`` is light: numpy only. torch, faiss and numba load when first
needed.
"""

from __future__ import annotations

from ._version import __version__
from .exceptions import (  # noqa: E402
    BackendUnavailableError,
    CoresetError,
    DegenerateInputError,
    IndexFileError,
    InputFileError,
    UnknownNameError,
    ValidationError,
)
from .selection import Selection  # noqa: E402

__all__ = [
    "__version__",
    "select",
    "select_stream",
    "knee",
    "SubmodularSelector",
    "RandomSelector",
    "StratifiedRandomSelector",
    "KCenterSelector",
    "ClassBalanced",
    "GreeDi",
    "find_label_suspects",
    "Selection",
    "CoresetError",
    "ValidationError",
    "UnknownNameError",
    "DegenerateInputError",
    "BackendUnavailableError",
    "IndexFileError",
    "InputFileError",
]


def __getattr__(name):  # lazy: keeps `import coreset` free of numba/torch/faiss
    if name == "knee":
        from ._knee import knee

        return knee
    if name == "select_stream":
        from ._stream import select_stream

        return select_stream
    if name in ("select", "SubmodularSelector", "RandomSelector", "StratifiedRandomSelector", "KCenterSelector",
                "ClassBalanced", "GreeDi", "find_label_suspects"):
        from . import selectors

        return getattr(selectors, name)
    if name in ("similarity", "objectives", "optimizers", "selectors", "data", "testing", "pipelines", "executors",
                "report"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'coreset' has no attribute {name!r}")

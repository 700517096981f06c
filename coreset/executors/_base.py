"""Executors: run one function over a list of tasks and return the results
in task order. ``LocalExecutor`` runs them one after the other in this
process; ``RayExecutor`` (``_ray.py``) runs them as Ray tasks. A task's
arguments should be small (a source path, row numbers, a configured
selector): the data are read where the task runs."""

from __future__ import annotations

__all__ = ["Executor", "LocalExecutor", "make_executor"]


class Executor:
    """Run ``fn(task)`` for every task; results in task order.

    ``callback(stage, done, total)`` is called as tasks finish (in any order);
    ``name`` is recorded in the selection's provenance."""

    name = "executor"
    #: the driver may hand in-memory arrays to the tasks as they are
    shares_memory = False

    def map(self, fn, tasks, *, stage="tasks", callback=None) -> list:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"executor": self.name}

    def close(self) -> None:
        """Release what this executor started (a local Ray cluster)."""


class LocalExecutor(Executor):
    """Runs the tasks in this process, one after the other."""

    name = "local"
    shares_memory = True

    def map(self, fn, tasks, *, stage="tasks", callback=None):
        out = []
        for i, task in enumerate(tasks):
            out.append(fn(task))
            if callback is not None:
                callback(stage, i + 1, len(tasks))
        return out


def make_executor(executor="local", **params) -> Executor:
    """An executor from a registry name (``EXECUTORS``) with ``params``, or an
    :class:`Executor` instance as is."""
    from .._registry import EXECUTORS
    from ..exceptions import ValidationError

    if isinstance(executor, Executor):
        if params:
            raise ValidationError(f"executor is an instance ({type(executor).__name__}); "
                                  f"{sorted(params)} cannot apply to it")
        return executor
    if not isinstance(executor, str) and hasattr(executor, "map"):
        return executor  # duck-typed executors
    cls = EXECUTORS.get(executor)
    import inspect

    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in params.items() if k in accepted and v is not None})

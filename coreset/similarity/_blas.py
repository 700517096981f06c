"""BLAS threads: when numpy's products run on one BLAS thread, and a pool of
Python threads that runs many single-threaded products side by side.

OpenBLAS splits one product's rows and columns among its threads; for small
and mid-sized products, waking its thread pool costs more than it saves
(far more on a loaded machine), while one Python thread per CPU, each
running single-threaded products and ``nogil`` numba kernels, keeps every
core busy. Results never depend on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

__all__ = ["SMALL_DENSE_WORK", "OPENBLAS_SINGLE_WORK", "one_blas_thread", "small_product_guard", "workers", "pmap"]

#: a dense similarity of at most this many multiply-adds (n * n * d) is computed on one BLAS
#: thread: waking BLAS's thread pool costs more than it saves on a small product, far more on a
#: loaded machine (one class of 100 x 100-d: 8 ms on OpenBLAS's 2 threads, 0.1 ms on one)
SMALL_DENSE_WORK = 2**25
#: below this many, OpenBLAS runs a product on one thread by itself (checked on numpy's OpenBLAS
#: over n in 8..512 and d in 2..4096: no product under 2^18 used a second thread; 64 x 64-d, at
#: 2^18, did), so the limiter's ~13 us of threadpoolctl calls is skipped there: 10 us instead of
#: 20 us for a 64-row class, the common case of a long tail's many small classes
OPENBLAS_SINGLE_WORK = 2**18

_BLAS = []  # the threadpoolctl selection of numpy's BLAS, made once (1.5 ms); [None] without one


def _blas():
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController().select(user_api="blas"))
        except Exception:  # pragma: no cover - threadpoolctl missing or unable to drive this BLAS
            _BLAS.append(None)
    return _BLAS[0]


@contextmanager
def one_blas_thread():
    """numpy's BLAS on one thread inside the block (the same products: OpenBLAS
    splits a product's rows and columns among its threads, not its sums)."""
    blas = _blas()
    if blas is None:  # pragma: no cover
        yield
        return
    with blas.limit(limits=1):
        yield


def small_product_guard(work: int):
    """The limiter for a dense product of ``work`` multiply-adds: none above
    ``SMALL_DENSE_WORK`` (threads pay off), none below ``OPENBLAS_SINGLE_WORK``
    when numpy's BLAS is OpenBLAS (one thread anyway), one BLAS thread between."""
    if work > SMALL_DENSE_WORK:
        return nullcontext()
    if work < OPENBLAS_SINGLE_WORK:
        blas = _blas()
        if blas is not None and blas.lib_controllers and all(
                c.internal_api == "openblas" for c in blas.lib_controllers):
            return nullcontext()
    return one_blas_thread()


def workers() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pmap(work, tasks, *, parallel=True):
    """``work(task)`` for every task, lazily, results in task order; with
    ``parallel`` on one thread per CPU. Callers limit BLAS to one thread
    (:func:`one_blas_thread`): on a busy machine many small single-threaded
    products run several times faster than multi-threaded ones.

    Ctrl-C: the caller's loop over the results runs in the main thread, where
    ``KeyboardInterrupt`` raises; closing this generator cancels the tasks not
    started, and the pool waits only for those running (keep each short)."""
    if not parallel or workers() == 1:
        yield from map(work, tasks)
        return
    with ThreadPoolExecutor(workers()) as pool:
        yield from pool.map(work, tasks)

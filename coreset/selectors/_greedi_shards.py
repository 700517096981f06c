"""GreeDi's merges for a sharded input on Ray: the function that the Ray Data
plane (``coreset/executors/_ray_data.py``) runs in one Ray task, on the
union of the partitions' picks taken from the object store, so that neither
the driver nor the merge reads the shards.

It is the driver's merge phase of :class:`~coreset.selectors.GreeDi`
(``_greedi_tree.run_levels`` then ``merge_union``), with the intermediate
levels of a merge tree (``merge_cap``) run one after the other in the task.
"""

from __future__ import annotations

import time

from ._greedi_tree import merge_union, run_levels

__all__ = ["merge_on_picks"]


def merge_on_picks(source, selector, results, plan, k, budgets, oversample, rng, metric):
    """``(result, info)`` of GreeDi's merge(s) over ``results`` (the partitions'
    picks), the rows read from ``source`` (the picks' rows)."""
    from ..executors import LocalExecutor

    last, levels = run_levels(selector, source, LocalExecutor(), results, plan, k, budgets, oversample, rng, metric,
                              None)
    t = time.perf_counter()
    res, info = merge_union(selector, source.read, source.d, source.dtype, last, k, budgets, rng, metric)
    info.pop("codes", None)
    levels.append({"level": len(plan), "n_nodes": 1, "fan_in": len(last), "picks": k,
                   "ground_sizes": [info["union_size"]], "seconds": [round(time.perf_counter() - t, 4)]})
    info["levels"] = levels
    return res, info

"""Executors run one function over shards: ``LocalExecutor`` in this
process, ``RayExecutor`` on a Ray cluster; sources say where a shard's rows
come from (an array, a ``.npy`` or ``.parquet`` file) so that the driver
never ships nor holds the full matrix."""

from ._base import Executor, LocalExecutor, make_executor
from ._ray import RayExecutor, check_address
from ..data._shards import ShardedSource
from ..data._shards import as_source
from ..data._sources import ArraySource, NpySource, ParquetSource, Source

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "check_address", "make_executor", "Source", "ArraySource",
           "NpySource", "ParquetSource", "ShardedSource", "as_source"]

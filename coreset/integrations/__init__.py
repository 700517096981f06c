"""Bridges to the tools users keep their data and training loops in.

* :mod:`coreset.integrations.huggingface`: select on a ``datasets.Dataset``
  (an embedding column, or embeddings computed by a backbone) and get the
  weighted subset back as a ``Dataset``.
* :mod:`coreset.integrations.lightning`: Lightning callbacks that drive the
  training rows of each epoch from a schedule (dynamic pruning, adaptive
  reselection, per-epoch resampling).

Nothing is imported here: each module imports its package (``datasets``,
``lightning``) when it is imported itself. See docs/integrations.md.
"""

__all__: list[str] = []

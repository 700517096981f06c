"""The ``coreset`` command line: thin commands over the public API.

``coreset select`` turns embeddings on disk into an index file,
``coreset inspect`` describes one, ``coreset datasets`` lists the embedded
datasets. See ``docs/cli.md``.
"""

from ._app import app, main

__all__ = ["app", "main"]

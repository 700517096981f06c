"""Defaults that more than one entry point shares, typed once: the library's
functions, the estimators and the CLI import them from here."""

__all__ = ["CHUNK_SIZE", "RESERVOIR", "STREAM_NEIGHBORS", "CHECKPOINT_EVERY"]

#: rows a stream reads at a time (``select_stream``, ``coreset select --stream``)
CHUNK_SIZE = 65536
#: rows of a stream's reservoir: the ground set its facility location measures coverage on
RESERVOIR = 10_000
#: a streamed row's gain is taken over this many most similar reservoir rows
STREAM_NEIGHBORS = 32
#: chunks between two checkpoints of a stream
CHECKPOINT_EVERY = 10

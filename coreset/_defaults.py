"""Defaults that more than one entry point shares, typed once: the library's
functions, the estimators and the CLI import them from here."""

__all__ = ["CHUNK_SIZE", "RESERVOIR", "STREAM_NEIGHBORS", "CHECKPOINT_EVERY", "METHOD", "OBJECTIVE", "OPTIMIZER",
           "METRIC", "BACKEND", "DEVICE", "LABEL_FILTER", "ALPHA", "MIN_PER_CLASS", "EPSILON", "SAMPLE_FRACTION",
           "EXECUTOR", "PARTITION", "CCS_BETA", "CCS_N_STRATA"]

#: rows a stream reads at a time (``select_stream``, ``coreset select --stream``)
CHUNK_SIZE = 65536
#: rows of a stream's reservoir: the ground set its facility location measures coverage on
RESERVOIR = 10_000
#: a streamed row's gain is taken over this many most similar reservoir rows
STREAM_NEIGHBORS = 32
#: chunks between two checkpoints of a stream
CHECKPOINT_EVERY = 10

# What a selection uses when not told otherwise: the library's signatures and the CLI's options read these
# (tests/test_cli_defaults.py checks every routed CLI option against the signature it reaches).
#: ``select``'s method
METHOD = "submodular"
#: the submodular selector's objective and optimizer
OBJECTIVE = "facility_location"
OPTIMIZER = "lazy_greedy"
#: the similarity's metric, search backend and device
METRIC = "cosine"
BACKEND = "auto"
DEVICE = "auto"
#: the label filter when labels are given (docs/label-noise.md)
LABEL_FILTER = "auto"
#: class budgets: the tempered exponent and the per-class floor
ALPHA = 0.5
MIN_PER_CLASS = 0
#: stochastic greedy's epsilon and the sample optimizer's share of candidates
EPSILON = 0.01
SAMPLE_FRACTION = 0.5
#: GreeDi: where the partitions run and how rows are split
EXECUTOR = "local"
PARTITION = "random"
#: coverage over difficulty (CCS): the share of each class's hardest rows dropped, and the strata
CCS_BETA = 0.4
CCS_N_STRATA = 50

"""The CLI's defaults are the library's: every option that reaches the library
has, as its default, the default of the parameter it sets (read here from the
library's own signatures), so `coreset select` without an option and
`coreset.select` without the keyword mean the same thing, and `--help` shows
the value the library uses."""

from __future__ import annotations

import inspect

import pytest

from coreset.cli._select import GROUPS
from coreset.optimizers._sample import SampleGreedy
from coreset.optimizers._stochastic import StochasticGreedy
from coreset.selectors import ClassBalanced, SubmodularSelector
from coreset.selectors._ccs import CCSSelector
from coreset.selectors._greedi import GreeDi
from coreset.selectors._select import select
from coreset.similarity import AutoSimilarity, KNNGraph

#: CLI option -> (library callable, its parameter)
LIBRARY = {
    "method": (select, "method"),
    "objective": (SubmodularSelector, "objective"),
    "optimizer": (SubmodularSelector, "optimizer"),
    "metric": (AutoSimilarity, "metric"),
    "label_filter": (SubmodularSelector, "label_filter"),
    "label_filter_threshold": (SubmodularSelector, "label_filter_threshold"),
    "min_per_class": (ClassBalanced, "min_per_class"),
    "alpha": (ClassBalanced, "alpha"),
    "epsilon": (StochasticGreedy, "epsilon"),
    "sample_fraction": (SampleGreedy, "fraction"),
    "backend": (KNNGraph, "backend"),
    "device": (SubmodularSelector, "device"),
    "exact": (KNNGraph, "exact"),
    "n_probe": (KNNGraph, "n_probe"),
    "n_clusters": (KNNGraph, "n_clusters"),
    "batch_size": (KNNGraph, "batch_size"),
    "gamma": (KNNGraph, "gamma"),
    "objective_device": (SubmodularSelector, "objective_device"),
    "executor": (GreeDi, "executor"),
    "partition_by": (GreeDi, "partition"),
    "merge_cap": (GreeDi, "merge_cap"),
}
OPTS = {o.name: o for g in GROUPS for o in g}


def _default(target, name):
    return inspect.signature(target).parameters[name].default


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_cli_default_is_the_library_default(name):
    target, param = LIBRARY[name]
    assert OPTS[name].default == _default(target, param), f"--{name.replace('_', '-')}"


def test_every_routed_option_is_checked():
    """A new option routed to select needs a line above (or is a documented
    exception: a size or a per-method knob whose default is None here)."""
    routed = {o.name for o in OPTS.values() if o.route == "select"}
    per_method = {"fraction", "n_select", "score", "beta", "n_strata", "n_neighbors", "class_budget"}
    assert routed - per_method <= set(LIBRARY), sorted(routed - per_method - set(LIBRARY))


@pytest.mark.parametrize("opt,param", [("beta", "beta"), ("n_strata", "n_strata")])
def test_ccs_defaults_in_the_help_are_the_selectors(opt, param):
    """--beta / --n-strata default to None (the method's own); their help names the value CCS uses."""
    value = _default(CCSSelector, param)
    assert f"default {value}" in OPTS[opt].param.help

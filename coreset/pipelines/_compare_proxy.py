"""What ``compare``'s selection methods see: the training inputs themselves
(``select_on="inputs"``), or a **proxy's** features (``select_on="proxy"``:
selection via proxy, Coleman et al., ICLR 2020).

The proxy is the cell's own model trained briefly (``proxy_epochs``) on every
training row with the class-balanced loss of ``full_balanced``; its features
are the input of its last ``nn.Linear``, L2-normalised. Trained briefly on
noisy labels, a network has learnt the clean patterns first (early learning),
so in its feature space a flipped row sits with its true class: the label
filter finds it where raw inputs (e.g. ``mnist1d_lt``'s signals, where classes
overlap) hide it. One proxy per seed serves every method and fraction of that
seed; its cost (``proxy_epochs x n`` sample-gradients, ``n`` forward rows and
its seconds) is counted in every cell whose method reads the inputs, as that
cell would pay it alone. Methods that read only the labels (random, class
budgets, resampling quotas) pay nothing.
"""

from __future__ import annotations

import time

import numpy as np

from .._registry import check_name
from ..exceptions import ValidationError

__all__ = ["SELECT_ON", "check_select_on", "select_rows", "reads_inputs"]

#: what the selection methods see
SELECT_ON = ("inputs", "proxy")


def check_select_on(select_on, proxy_epochs, factory, n_features, n_classes):
    """Validate ``select_on`` / ``proxy_epochs`` before any training; for a
    proxy, the model must have a hidden layer (a last ``nn.Linear`` whose input
    is not the raw row)."""
    from .._validation import check_int

    check_name("select_on", select_on, SELECT_ON)
    proxy_epochs = check_int(proxy_epochs, "proxy_epochs", low=1)
    if select_on == "proxy":
        import torch

        from ._hooks import find_last_linear

        net = factory(n_features, n_classes)
        try:
            _, lin = find_last_linear(net)
        except ValidationError:
            lin = None
        if lin is None or not any(isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))
                                  for m in net.modules() if m is not lin):
            raise ValidationError("select_on='proxy' needs a model with a hidden layer before its last nn.Linear "
                                  "(mlp, cnn1d, cnn2d or such a callable): the last layer's input is the feature; "
                                  "a linear model's is the raw row")
    return proxy_epochs


def reads_inputs(spec) -> bool:
    """Whether a method's selection reads the rows' inputs (not only their labels)."""
    return spec.kind in ("objective", "ccs", "random_kept", "k_center_greedy", "score") or \
        getattr(spec, "policy", None) == "drop"


def select_rows(spec, seed, ctx, k):
    """``run_selection`` on what ``ctx["select_on"]`` says, the proxy's cost added."""
    from ._compare_methods import run_selection

    X, y, C = ctx["X"], ctx["y"], ctx["n_classes"]
    if ctx.get("select_on", "inputs") != "proxy" or not reads_inputs(spec):
        return run_selection(spec, X, y, C, k, seed, ctx["select_params"])
    F, seconds = _proxy_features(ctx, seed)
    chosen = run_selection(spec, F, y, C, k, seed, ctx["select_params"])
    chosen.seconds += seconds
    chosen.gradients += ctx["proxy_epochs"] * int(y.size)
    chosen.forward += int(y.size)
    return chosen


def _proxy_features(ctx, seed):
    """(features, seconds) of the seed's proxy, trained once and kept in ``ctx``."""
    cache = ctx.setdefault("_proxies", {})
    if seed in cache:
        return cache[seed]
    import torch

    from ._hooks import LastLayerCapture
    from ._train import train

    t0 = time.perf_counter()
    X, y, C = ctx["X"], ctx["y"], ctx["n_classes"]
    counts = np.bincount(y, minlength=C).astype(np.float64)
    w = np.where(counts > 0, y.size / (C * np.maximum(counts, 1)), 0.0)
    loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32), reduction="none")
    torch.manual_seed(seed)
    net = ctx["factory"](X.shape[1], C)
    train(net, ctx["train_set"], epochs=ctx["proxy_epochs"], batch_size=ctx["batch_size"], optimizer=ctx["optimizer"],
          lr=ctx["lr"], loss=loss, device="cpu", random_state=seed)
    feats = []
    net.eval()
    with LastLayerCapture(net) as cap, torch.inference_mode():
        for start in range(0, y.size, 1024):
            net(torch.from_numpy(X[start:start + 1024]))
            feats.append(cap.take()[0].flatten(1).float())
    F = torch.cat(feats).numpy()
    F /= np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)
    cache[seed] = (F, time.perf_counter() - t0)
    return cache[seed]

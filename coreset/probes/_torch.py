"""The lazy torch import and forward hooks on a model's last linear layer,
shared by the probes (:mod:`coreset.probes._scoring`) and the training
pipelines (re-exported by ``coreset.pipelines._hooks``)."""

from __future__ import annotations

from ..exceptions import BackendUnavailableError, ValidationError

__all__ = ["require_torch", "find_last_linear", "LastLayerCapture"]


def require_torch():
    """``torch``, or a :class:`BackendUnavailableError` with the pip command."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed in the test environment
        raise BackendUnavailableError(
            "coreset.pipelines needs PyTorch: pip install torch (or pip install 'coreset[torch]')"
        ) from None
    return torch


def find_last_linear(model, layer=None):
    """``(name, module)`` of the ``nn.Linear`` named ``layer``, or the last one
    registered in ``model`` when ``layer`` is None."""
    torch = require_torch()
    if isinstance(model, torch.jit.ScriptModule):
        raise ValidationError(
            "model is a TorchScript module: forward hooks cannot reach its layers; pass the eager nn.Module")
    if not isinstance(model, torch.nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    modules = dict(model.named_modules())
    if layer is not None:
        if layer not in modules:
            linear = [n for n, m in modules.items() if isinstance(m, torch.nn.Linear)]
            raise ValidationError(
                f"layer={layer!r} is not a submodule of the model; its nn.Linear layers are {linear or 'none'}")
        mod = modules[layer]
        if not isinstance(mod, torch.nn.Linear):
            raise ValidationError(f"layer={layer!r} must be an nn.Linear (the classifier); got {type(mod).__name__}")
        return layer, mod
    linear = [(n, m) for n, m in modules.items() if isinstance(m, torch.nn.Linear)]
    if not linear:
        raise ValidationError(
            "the model has no nn.Linear submodule that a forward hook can reach (a functional or fused "
            "classifier?): gradient proxies need the last linear layer; wrap the classifier in an nn.Linear "
            "or pass layer='name'")
    return linear[-1]


class LastLayerCapture:
    """Context manager: a forward hook on the last linear layer that keeps its
    input (penultimate features) and output (logits) of the latest forward."""

    def __init__(self, model, layer=None):
        self.name, self.module = find_last_linear(model, layer)
        self.features = self.logits = None
        self._handle = None

    def _hook(self, module, inputs, output):
        self.features = inputs[0].detach()
        self.logits = output.detach()

    def __enter__(self):
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        return False

    def take(self):
        if self.logits is None:
            raise ValidationError(
                f"the forward hook on layer {self.name!r} never ran: the model's forward does not call that "
                "module (a functional classifier, or a compiled graph hooks cannot reach); pass layer= naming "
                "the nn.Linear that produces the logits")
        out = self.features, self.logits
        self.features = self.logits = None
        return out

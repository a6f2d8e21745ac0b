"""Name the culprit when the training loss goes non-finite."""

from __future__ import annotations

import math

import pyro
import torch
from pyro import poutine

__all__ = ["NonFiniteLossError", "nonfinite_sites", "nonfinite_loss_error", "gradients_finite", "restore"]


class NonFiniteLossError(RuntimeError):
    """The ELBO loss became NaN or infinite; the message names the step and the terms."""


def nonfinite_sites(model, guide, *args, **kwargs) -> dict[str, float]:
    """Per-site log-probability sums of one model/guide trace that are not finite.

    Parameters
    ----------
    model, guide
        Callables with the same signature; ``args``/``kwargs`` are passed to both.

    Returns
    -------
    dict
        ``"model:<site>"`` / ``"guide:<site>"`` -> the non-finite log-prob sum (sample
        and factor sites), plus ``"param:<name>"`` for parameters holding NaN/inf.
    """
    bad: dict[str, float] = {}
    for prefix, mod in (("guide", guide), ("model", model)):
        if isinstance(mod, torch.nn.Module):
            for pname, p in mod.named_parameters():
                if not torch.isfinite(p).all():
                    bad[f"param:{prefix}.{pname}"] = float("nan")
    with torch.no_grad(), pyro.validation_enabled(False):  # validation would stop at the first bad site
        try:
            guide_tr = poutine.trace(guide).get_trace(*args, **kwargs)
            model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(*args, **kwargs)
        except (ValueError, RuntimeError) as err:  # e.g. a distribution rejected NaN parameters
            bad[f"trace failed ({type(err).__name__}: {str(err).splitlines()[0]})"] = float("nan")
            return bad
        for prefix, tr in (("guide", guide_tr), ("model", model_tr)):
            for name, site in tr.nodes.items():
                if site["type"] != "sample":
                    continue
                value = site["fn"].log_prob(site["value"])
                total = float(value.sum()) if isinstance(value, torch.Tensor) else float(value)
                if not math.isfinite(total):
                    bad[f"{prefix}:{name}"] = total
    return bad


def nonfinite_loss_error(loss: float, epoch: int, step: int, sites: dict[str, float]) -> NonFiniteLossError:
    """Build the error raised when the loss is not finite.

    Parameters
    ----------
    loss
        The offending loss value.
    epoch, step
        0-based epoch and step within the epoch.
    sites
        Output of :func:`nonfinite_sites`.
    """
    if sites:
        where = ", ".join(f"{k} = {v}" for k, v in sites.items())
    else:
        where = "no single site is non-finite in a fresh trace (the sampled step overflowed)"
    return NonFiniteLossError(
        f"the ELBO loss is {loss} at epoch {epoch}, step {step}; non-finite terms: {where}. "
        "Try a smaller learning_rate, a smaller clip_norm, or standardised data"
    )


def gradients_finite(params) -> bool:
    """Whether every gradient of ``params`` (an iterable of tensors) is finite; missing gradients count as finite.

    A finite loss can still have a NaN gradient: Pyro's rational-linear spline takes the
    log of its derivative, whose gradient is NaN where that derivative underflows to 0.
    An optimizer step on such a gradient turns every parameter NaN, so callers skip the
    step (as ``torch.amp.GradScaler`` does) and stop when it keeps happening.
    """
    by_device: dict = {}
    for p in params:
        if p.grad is not None:
            by_device.setdefault(p.grad.device, []).append(torch.isfinite(p.grad).all())
    return all(bool(torch.stack(flags).all()) for flags in by_device.values())  # one sync per device


def restore(params, values) -> None:
    """Copy ``values`` back into ``params`` in place (pairwise, same shapes), outside autograd.

    Used to return parameters to a saved state (``[p.detach().clone() for p in params]``)
    after a trial fit or a step that went non-finite.
    """
    with torch.no_grad():
        for p, value in zip(params, values, strict=True):
            p.copy_(value)

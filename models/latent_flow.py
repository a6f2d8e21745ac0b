"""The causal latents given a graph: a DAG-structured normalizing flow.

Exogenous noise ``eps ~ N(0, I)`` passes through a per-dimension monotone flow
``tau_j`` and the structural equations of the graph ``A`` (``A[i, j]`` = edge
i -> j, see :mod:`pyro_personax.graph`)::

    u_j = tau_j(eps_j)                      # monotone 1-D noise flow
    y_j = f_j(A[:, j] * y) + exp(s_j(A[:, j] * y)) u_j   # f_j, s_j: mechanism of node j
    z_j = h_j(y_j)                          # optional monotone output map (post-nonlinear)

(``s = 0`` for linear mechanisms; without an output map ``z = y``). Under a DAG the map
``y -> u`` is triangular, with diagonal ``exp(-s_j)`` depending on the parents only, so

    log p(z | A) = sum_j [log p_tau_j((y_j - f_j) exp(-s_j)) - s_j - log h_j'(y_j)]

is exact and needs no topological order; ancestral sampling needs ``D`` passes. The
output map does not depend on the graph: it lets the graph score stay the same when a
latent is replaced by a monotone function of itself, the freedom the measurements leave
in each latent.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution, constraints
from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms import Spline
from pyro.distributions.transforms.spline import ConditionedSpline
from torch import nn

__all__ = [
    "DAGFlowLatent",
    "frozen",
    "Mechanisms",
    "MonotoneNoiseFlow",
    "mechanisms",
    "monotone_noise_flow",
]

MECHANISMS = ("mlp", "mlp_additive", "linear")
NOISE_FLOWS = ("spline", "parent_spline", "affine", "identity")
#: Effective number of parameters of one network edge, per mechanism kind: twice the mean
#: in-sample log-likelihood gain of an edge between independent latents when the mechanisms
#: are fitted on random parent sets (Wilks), at the default width;
#: ``benchmarks/edge_penalty.py --mechanism KIND`` measures it.
MLP_EFFECTIVE_EDGE_PARAMS = {"mlp": 7.4, "mlp_additive": 3.6}
_LOG_2PI = math.log(2 * math.pi)


class MonotoneNoiseFlow(TransformModule):
    """Per-dimension monotone bijection ``u_j = tau_j(eps_j)`` of standard-normal noise.

    ``"spline"``: ``u = loc + exp(log_scale) * spline(eps)`` with Pyro's elementwise
    rational-linear spline (identity outside ``[-bound, bound]``, initialised close to the
    identity); ``"affine"``: ``u = loc + exp(log_scale) * eps``; ``"identity"``:
    ``u = eps`` (no parameters). ``"parent_spline"``: the spline's shape also depends on
    the node's parent set: its unnormalised parameters for node ``j`` are the node's own
    plus one learned offset per present parent ``i`` (``A[i, j]`` times an offset, zero at
    the start), so a node whose noise is, say, uniform given its true parents is not held
    to the shape its other parent sets need. The methods take the graph as ``adjacency``
    ``(..., D, D)``; without it they use the node's own shape (the empty parent set).

    A Pyro :class:`~pyro.distributions.torch_transform.TransformModule` (elementwise,
    bijective, increasing), so ``dist.TransformedDistribution(Normal(0, 1), [flow])`` is
    the noise distribution; it keeps no cache, because one module is evaluated under
    several parameter sets (the frozen copies of the graph stage) on the same tensors.
    The spline is evaluated by Pyro's stateless ``Spline.spline_op``: the module call and
    ``log_abs_det_jacobian`` of Pyro's ``Spline`` share an identity-keyed cache, which
    such evaluations would read stale.

    Parameters
    ----------
    latent_dim
        Number ``D`` of dimensions (one 1-D flow each).
    kind
        ``"spline"``, ``"parent_spline"``, ``"affine"`` or ``"identity"``.
    count_bins, bound
        Spline bins and half-width of its bounding box.
    affine
        Learn ``loc`` and ``log_scale``; ``False`` holds them at 0 (a pure spline).

    Examples
    --------
    >>> flow = MonotoneNoiseFlow(3)
    >>> eps = torch.randn(5, 3)
    >>> torch.allclose(flow.inverse(flow(eps)), eps, atol=1e-5)
    True
    >>> import pyro.distributions as dist
    >>> noise = dist.TransformedDistribution(dist.Normal(torch.zeros(3), 1.0), [flow])
    >>> torch.allclose(noise.log_prob(flow(eps)), flow.log_prob(flow(eps)), atol=1e-5)
    True
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1

    def __init__(
        self, latent_dim: int, kind: str = "spline", *, count_bins: int = 8, bound: float = 3.0, affine: bool = True
    ):
        super().__init__(cache_size=0)
        if kind not in NOISE_FLOWS:
            raise ValueError(f"noise_flow: expected one of {NOISE_FLOWS}; found {kind!r}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1; found {latent_dim}")
        self.latent_dim, self.kind = int(latent_dim), kind
        self.spline = None
        if kind != "identity" and affine:
            self.loc = nn.Parameter(torch.zeros(latent_dim))
            self.log_scale = nn.Parameter(torch.zeros(latent_dim))
        elif kind != "identity":
            self.register_buffer("loc", torch.zeros(latent_dim))
            self.register_buffer("log_scale", torch.zeros(latent_dim))
        if kind in ("spline", "parent_spline"):
            if count_bins < 2:
                raise ValueError(f"count_bins must be >= 2; found {count_bins}")
            self.spline = Spline(latent_dim, count_bins=count_bins, bound=bound, order="linear")
            with torch.no_grad():  # close to the identity: equal bins, unit slopes
                self.spline.unnormalized_widths.zero_()
                self.spline.unnormalized_heights.zero_()
                self.spline.unnormalized_derivatives.fill_(math.log(math.e - 1.0))
                self.spline.unnormalized_lambdas.fill_(0.5)
        if kind == "parent_spline":  # [j, i, k]: offset of parameter k of child j's spline when parent i is present
            D, K = self.latent_dim, int(count_bins)
            self.parent_offsets = nn.ParameterList([nn.Parameter(torch.zeros(D, D, k)) for k in (K, K, K - 1, K)])

    def forward(self, eps: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """``u = tau(eps)``; ``eps`` and the result have shape ``(..., D)``; ``adjacency`` ``(..., D, D)`` or ``None``
        (only ``"parent_spline"`` reads it)."""
        return self._forward_and_logdet(eps, adjacency)[0]

    def _call(self, eps: torch.Tensor) -> torch.Tensor:
        return self._forward_and_logdet(eps)[0]

    def _inverse(self, u: torch.Tensor) -> torch.Tensor:
        return self._inverse_and_logdet(u)[0]

    def _spline_op(self, x: torch.Tensor, adjacency: torch.Tensor | None, inverse: bool = False):
        """The spline (or its inverse) at ``x`` ``(..., D)``, with the parent set's shape where one is learned."""
        if self.kind != "parent_spline" or adjacency is None:
            return self.spline.spline_op(x, inverse=inverse)
        At = adjacency.transpose(-1, -2).to(x.dtype)  # (..., j, i)
        s = self.spline
        raw = [base + torch.einsum("...ji,jik->...jk", At, offset) for base, offset in zip(
            (s.unnormalized_widths, s.unnormalized_heights, s.unnormalized_derivatives, s.unnormalized_lambdas),
            self.parent_offsets)]
        params = (F.softmax(raw[0], -1), F.softmax(raw[1], -1), F.softplus(raw[2]), torch.sigmoid(raw[3]))
        return ConditionedSpline(params, bound=s.bound, order="linear").spline_op(x, inverse=inverse)

    def _forward_and_logdet(self, eps, adjacency=None):
        if self.kind == "identity":
            return eps, torch.zeros_like(eps)
        y, logdet = eps, torch.zeros_like(eps)
        if self.spline is not None:
            y, logdet = self._spline_op(eps, adjacency)
        return self.loc + self.log_scale.exp() * y, logdet + self.log_scale

    def inverse(self, u: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """``eps = tau^{-1}(u)``, shape ``(..., D)`` (``adjacency`` as in :meth:`forward`)."""
        return self._inverse_and_logdet(u, adjacency)[0]

    def _inverse_and_logdet(self, u, adjacency=None):
        """``eps`` and ``log |d tau / d eps|`` at ``eps``, both ``(..., D)``."""
        if self.kind == "identity":
            return u, torch.zeros_like(u)
        y = (u - self.loc) * torch.exp(-self.log_scale)
        logdet = self.log_scale.expand_as(u)
        if self.spline is None:
            return y, logdet
        eps, inv_logdet = self._spline_op(y, adjacency, inverse=True)
        return eps, logdet - inv_logdet

    def log_abs_det_jacobian(self, eps: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Elementwise ``log |d tau_j / d eps_j|`` at ``eps``, shape ``(..., D)`` (``u = tau(eps)`` is not needed)."""
        return self._forward_and_logdet(eps)[1]

    def log_prob(self, u: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """Elementwise log density of ``u = tau(eps)``, ``eps ~ N(0, 1)``; shape ``(..., D)`` (``adjacency`` as in
        :meth:`forward`)."""
        eps, logdet = self._inverse_and_logdet(u, adjacency)
        return -0.5 * (eps * eps + _LOG_2PI) - logdet


def monotone_noise_flow(latent_dim: int, kind: str = "spline", **kwargs) -> MonotoneNoiseFlow:
    """Build a :class:`MonotoneNoiseFlow` (``kind``: ``"spline"``, ``"parent_spline"``, ``"affine"``, ``"identity"``).

    The lowercase builder, in the manner of Pyro's ``spline`` / ``affine_autoregressive``.
    """
    return MonotoneNoiseFlow(latent_dim, kind, **kwargs)


class Mechanisms(nn.Module):
    """All mechanisms ``f_j(A[:, j] * z)`` at once, batched over the child ``j``.

    ``"linear"``: ``f_j = sum_i A_ij W_ij z_i``. ``"mlp"``: the linear term plus a
    one-hidden-layer tanh network per child, with per-child weights applied by
    ``einsum`` (cost ``O(N D^2 H)``). The network also reads the parent mask ``A[:, j]``
    (a learned embedding per present parent), so a parent that is absent differs from a
    parent whose value is 0, and it has a second head, a log-scale ``s_j``: the noise of
    ``z_j`` is ``exp(s_j)`` times its noise flow (a location-scale model per parent set,
    :meth:`loc_and_log_scale`). ``"mlp_additive"``: the same network without the
    log-scale head (``s_j = 0``), so each latent's noise is added to ``f_j`` and does not
    depend on its parents (an additive noise model). The output weights are initialised
    to 0, so every mechanism starts as ``f_j = 0``, ``s_j = 0``.

    Parameters
    ----------
    latent_dim
        Number ``D`` of nodes.
    kind
        ``"mlp"``, ``"mlp_additive"`` or ``"linear"``.
    hidden_dim
        Hidden width ``H`` of each child's network (not used by ``"linear"``).

    Examples
    --------
    >>> f = Mechanisms(3, "linear")
    >>> f(torch.randn(10, 3), torch.zeros(3, 3)).abs().max().item()
    0.0
    """

    def __init__(self, latent_dim: int, kind: str = "mlp", *, hidden_dim: int = 16):
        super().__init__()
        if kind not in MECHANISMS:
            raise ValueError(f"mechanism: expected one of {MECHANISMS}; found {kind!r}")
        if hidden_dim < 1:
            raise ValueError(f"mechanism_hidden_dim must be >= 1; found {hidden_dim}")
        D, H = int(latent_dim), int(hidden_dim)
        self.latent_dim, self.kind = D, kind
        # The output weights start at 0 (f = 0): the straight-through gradient of an edge
        # that is switched off is then 0 instead of the sign of a random, untrained weight,
        # which otherwise switches off true edges whose initial weight has the wrong sign.
        self.weight = nn.Parameter(torch.zeros(D, D))  # [i, j]: parent i -> child j
        if kind != "linear":
            self.w1 = nn.Parameter(torch.randn(D, D, H))  # [j, i, h]
            self.u1 = nn.Parameter(0.1 * torch.randn(D, D, H))  # [j, i, h]: parent i present
            self.b1 = nn.Parameter(torch.randn(D, H))
            self.w2 = nn.Parameter(torch.zeros(D, H))
        if kind == "mlp":
            self.w3 = nn.Parameter(torch.zeros(D, H))  # log-scale head

    @property
    def params_per_edge(self) -> int:
        """Parameters one edge ``i -> j`` switches on.

        ``W_ij``, plus the ``2 H`` weights ``w1[j, i]`` and ``u1[j, i]`` of a network.
        """
        return 1 + (2 * self.w1.shape[-1] if self.kind != "linear" else 0)

    @property
    def effective_params_per_edge(self) -> float:
        """Effective parameters of one edge (the ``k`` of the BIC edge penalty).

        1 for a linear mechanism. For a network, most of its weights are poorly determined
        by the data, so the raw count :attr:`params_per_edge` would overstate the
        Occam factor; ``MLP_EFFECTIVE_EDGE_PARAMS[kind]`` is twice the mean in-sample gain
        of an edge between independent latents (measured by simulation at the default
        width).
        """
        return 1.0 if self.kind == "linear" else MLP_EFFECTIVE_EDGE_PARAMS[self.kind]

    def forward(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Evaluate every mechanism.

        Parameters
        ----------
        z
            Latents ``(..., D)``.
        adjacency
            Graph ``(..., D, D)`` (``[i, j]`` = i -> j), broadcastable against ``z``'s batch.

        Returns
        -------
        torch.Tensor
            ``(..., D)``: ``f_j(A[:, j] * z)`` for every child ``j``.
        """
        return self.loc_and_log_scale(z, adjacency)[0]

    def _hidden(self, masked: torch.Tensor, At: torch.Tensor) -> torch.Tensor:
        """Hidden units ``(..., j, h)`` of the children's networks (masked inputs and the mask)."""
        pre = torch.einsum("...ji,jih->...jh", masked, self.w1) + torch.einsum("...ji,jih->...jh", At, self.u1)
        return torch.tanh(pre + self.b1)

    def loc_and_log_scale(self, z: torch.Tensor, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``f_j(A[:, j] * z)`` and the log noise scale ``s_j``, each ``(..., D)`` (``s = 0`` unless ``"mlp"``).

        Parameters
        ----------
        z
            Latents ``(..., D)``.
        adjacency
            Graph ``(..., D, D)``, broadcastable against ``z``'s batch.
        """
        At = adjacency.transpose(-1, -2)  # (..., j, i)
        masked = z.unsqueeze(-2) * At
        out = (masked * self.weight.transpose(0, 1)).sum(-1)
        if self.kind == "linear":
            return out, torch.zeros_like(out)
        hidden = self._hidden(masked, At.expand(masked.shape))
        loc = out + (hidden * self.w2).sum(-1)
        return loc, (hidden * self.w3).sum(-1) if self.kind == "mlp" else torch.zeros_like(loc)

    def jacobian(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Per-row Jacobian ``J[..., j, i] = d f_j / d z_i``, shape ``(..., D, D)``.

        Parameters
        ----------
        z
            Latents ``(..., D)``.
        adjacency
            Graph ``(..., D, D)``, broadcastable against ``z``'s batch.
        """
        At = adjacency.transpose(-1, -2)  # (..., j, i)
        J = At * self.weight.transpose(0, 1)
        if self.kind != "linear":
            masked = z.unsqueeze(-2) * At
            hidden = self._hidden(masked, At.expand(masked.shape))
            slope = (1 - hidden * hidden) * self.w2  # (..., j, h)
            J = J + At * torch.einsum("...jh,jih->...ji", slope, self.w1)
        return J

    def strength(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Mean absolute partial derivative ``|d f_j / d z_i|`` over rows.

        Parameters
        ----------
        z
            Latents ``(N, D)``.
        adjacency
            Graph ``(D, D)``.

        Returns
        -------
        torch.Tensor
            ``(D, D)``, ``[i, j]`` = mean over rows of ``|d f_j / d z_i|`` (0 off the graph).
        """
        if z.dim() != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z: expected shape (N, {self.latent_dim}); found {tuple(z.shape)}")
        if adjacency.shape != (self.latent_dim, self.latent_dim):
            raise ValueError(
                f"edges: expected shape ({self.latent_dim}, {self.latent_dim}); found {tuple(adjacency.shape)}"
            )
        with torch.enable_grad():
            z = z.detach().clone().requires_grad_(True)
            f = self(z, adjacency.detach())
            cols = []
            for j in range(self.latent_dim):
                (grad,) = torch.autograd.grad(f[:, j].sum(), z, retain_graph=True)
                cols.append(grad.abs().mean(0))
        return torch.stack(cols, dim=-1).detach()


def mechanisms(latent_dim: int, kind: str = "mlp", **kwargs) -> Mechanisms:
    """Build a :class:`Mechanisms` module (``kind``: ``"mlp"``, ``"mlp_additive"`` or ``"linear"``)."""
    return Mechanisms(latent_dim, kind, **kwargs)


class DAGFlowLatent(TorchDistribution):
    """Distribution ``p(z | A)`` of the causal latents under the structural equations.

    ``z_j = f_j(A[:, j] * z) + tau_j(eps_j)``, ``eps ~ N(0, I)``. :meth:`log_prob` is
    exact when ``A`` is acyclic (for a cyclic ``A`` it is a score, not a density);
    :meth:`rsample` runs ``D`` ancestral passes.

    Parameters
    ----------
    adjacency
        Graph ``(*batch, D, D)`` (``[i, j]`` = i -> j), 0/1 or weighted.
    mechanism
        A :class:`Mechanisms` (or any module ``(z (..., D), A (..., D, D)) -> (..., D)``).
    noise_flow
        A :class:`MonotoneNoiseFlow` of dimension ``D``.
    cyclic_logdet
        Add ``log |det(I - J)|`` (``J`` the Jacobian of the mechanisms), the change of
        variables of ``z -> u`` for a cyclic graph; it is 0 under a DAG, and keeps a cyclic
        sample from scoring higher than its acyclic versions.
    output_flow
        Optional per-latent monotone map ``h`` (a :class:`MonotoneNoiseFlow`): the
        structural equations hold for ``y`` and ``z_j = h_j(y_j)`` (a post-nonlinear
        model). ``None``: ``z = y``.
    standardise
        Optional ``(loc, scale)``, each ``(D,)``: the structural equations hold for the
        standardised latents ``(z - loc) / scale`` (after ``h^{-1}``; ``z = loc + scale *
        h(y)``), so the mechanisms see latents of unit scale whatever scale the decoders
        gave them. ``None``: ``loc = 0``, ``scale = 1``.

    Examples
    --------
    >>> A = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    >>> d = DAGFlowLatent(A, Mechanisms(2, "linear"), MonotoneNoiseFlow(2, "identity"))
    >>> d.rsample((4,)).shape
    torch.Size([4, 2])
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        adjacency: torch.Tensor,
        mechanism: nn.Module,
        noise_flow: MonotoneNoiseFlow,
        cyclic_logdet: bool = False,
        output_flow: MonotoneNoiseFlow | None = None,
        standardise: tuple[torch.Tensor, torch.Tensor] | None = None,
        validate_args=None,
    ):
        self.cyclic_logdet = bool(cyclic_logdet)
        self.output_flow = output_flow
        self.standardise = standardise
        if adjacency.dim() < 2 or adjacency.shape[-1] != adjacency.shape[-2]:
            raise ValueError(f"adjacency: expected shape (..., D, D); found {tuple(adjacency.shape)}")
        D = adjacency.shape[-1]
        for name, flow in (("noise_flow", noise_flow), ("output_flow", output_flow)):
            if flow is not None and flow.latent_dim != D:
                raise ValueError(f"{name}: has dimension {flow.latent_dim}; the graph has {D} nodes")
        self.adjacency, self.mechanism, self.noise_flow = adjacency, mechanism, noise_flow
        super().__init__(adjacency.shape[:-2], torch.Size([D]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        D = self.event_shape[0]
        adjacency = self.adjacency.expand(batch_shape + (D, D))
        return DAGFlowLatent(adjacency, self.mechanism, self.noise_flow, self.cyclic_logdet, self.output_flow,
                             self.standardise)

    def structural(self, z: torch.Tensor):
        """``y = h^{-1}((z - loc) / scale)`` and ``log |d z / d y|`` elementwise (``z`` and 0 by default)."""
        if self.standardise is not None:
            loc, scale = self.standardise
            z = (z - loc) / scale
        if self.output_flow is None:
            y, log_det = z, torch.zeros_like(z)
        else:
            y, log_det = self.output_flow._inverse_and_logdet(z)
        return (y, log_det) if self.standardise is None else (y, log_det + torch.log(self.standardise[1]))

    def to_latent(self, y: torch.Tensor) -> torch.Tensor:
        """``z = loc + scale * h(y)`` of structural values ``y (..., D)`` (the inverse of :meth:`structural`)."""
        z = y if self.output_flow is None else self.output_flow(y)
        return z if self.standardise is None else self.standardise[0] + self.standardise[1] * z

    def _loc_and_log_scale(self, z: torch.Tensor):
        if hasattr(self.mechanism, "loc_and_log_scale"):
            return self.mechanism.loc_and_log_scale(z, self.adjacency)
        loc = self.mechanism(z, self.adjacency)
        return loc, torch.zeros_like(loc)

    def noise(self, z: torch.Tensor) -> torch.Tensor:
        """Exogenous noise ``u = (y - f(A * y)) exp(-s)``, ``y = h^{-1}(z)`` (after the noise flow); ``(..., D)``."""
        y = self.structural(z)[0]
        loc, log_scale = self._loc_and_log_scale(y)
        return (y - loc) * torch.exp(-log_scale)

    def node_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Per-node terms ``log p_tau_j(z_j - f_j(A[:, j] * z))``, shape ``(*sample, *batch, D)``.

        Under a DAG their sum over ``j`` is :meth:`log_prob`; term ``j`` depends on the
        graph only through the parents of ``j``.
        """
        y, log_det = self.structural(value)
        loc, log_scale = self._loc_and_log_scale(y)
        return self.noise_flow.log_prob((y - loc) * torch.exp(-log_scale), self.adjacency) - log_scale - log_det

    def column_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """:meth:`node_log_prob`: term ``j`` depends on the edges into ``j`` (column ``j``) only."""
        return self.node_log_prob(value)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``sum_j [log p_tau_j((z_j - f_j) exp(-s_j)) - s_j]``, shape ``(*sample, *batch)``."""
        if self._validate_args:
            self._validate_sample(value)
        lp = self.node_log_prob(value).sum(-1)
        return lp + self._cyclic_logdet(value) if self.cyclic_logdet else lp

    def _cyclic_logdet(self, z):
        """``log |det(I - J)|`` of the map ``y -> u`` (0 under a DAG), shape ``(...)``."""
        J = self.mechanism.jacobian(self.structural(z)[0], self.adjacency)
        eye = torch.eye(J.shape[-1], dtype=J.dtype, device=J.device)
        return torch.linalg.slogdet(eye - J)[1]

    def rsample(self, sample_shape=()) -> torch.Tensor:
        """Ancestral sample ``(*sample_shape, *batch, D)`` (``D`` passes)."""
        shape = self._extended_shape(sample_shape)
        A = self.adjacency
        eps = torch.randn(shape, dtype=A.dtype, device=A.device)
        return self.from_noise(self.noise_flow.forward(eps, self.adjacency))

    def from_noise(self, u: torch.Tensor) -> torch.Tensor:
        """Solve the structural equations ``y = f(A * y) + exp(s) u`` (``D`` passes); return ``z = h(y)``."""
        y = u
        for _ in range(self.event_shape[0]):  # node at depth k is exact after k + 1 passes
            loc, log_scale = self._loc_and_log_scale(y)
            y = loc + torch.exp(log_scale) * u
        return self.to_latent(y)


class _MethodCall(nn.Module):
    """``forward(method, *args)`` calls ``inner.<method>(*args)`` (for :func:`torch.func.functional_call`)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, method: str, *args):
        return getattr(self.inner, method)(*args)


class _Frozen(nn.Module):
    """A view of a module whose calls use its parameters detached (gradients reach inputs only)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.caller = _MethodCall(module)
        self.latent_dim = getattr(module, "latent_dim", None)

    def _call(self, method: str, *args):
        params = {f"inner.{k}": v.detach() for k, v in self.caller.inner.named_parameters()}
        return torch.func.functional_call(self.caller, params, (method, *args))

    def forward(self, *args):
        return self._call("forward", *args)

    def log_prob(self, u: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        return self._call("log_prob", u, adjacency)

    def _inverse_and_logdet(self, u: torch.Tensor):
        return self._call("_inverse_and_logdet", u)

    def jacobian(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return self._call("jacobian", z, adjacency)

    def loc_and_log_scale(self, z: torch.Tensor, adjacency: torch.Tensor):
        return self._call("loc_and_log_scale", z, adjacency)


def frozen(module: nn.Module) -> nn.Module:
    """``module`` with its parameters held fixed: same calls (``forward``, ``log_prob``,
    ``jacobian``, ``loc_and_log_scale``), no gradient to its parameters."""
    return _Frozen(module)

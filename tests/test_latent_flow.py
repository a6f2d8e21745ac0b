"""Tests of the DAG-structured flow p(z | G): exact densities, ancestral sampling, noise flow."""
import pytest
import torch

from pyro_personax.models import (
    DAGFlowLatent,
    Mechanisms,
    MonotoneNoiseFlow,
    mechanisms,
    monotone_noise_flow,
)


def _random_dag(D, seed, p=0.6):
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu((torch.rand(D, D, generator=g) < p).double(), diagonal=1)
    perm = torch.randperm(D, generator=g)
    return upper[perm][:, perm]


def _random_mechanisms(D, kind, seed=0):
    """Mechanisms with random (non-zero) output weights; a fresh module starts at f = 0."""
    f = mechanisms(D, kind).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in f.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.7)
    return f


def _perturbed_flow(D, kind="spline", seed=0):
    flow = monotone_noise_flow(D, kind).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_gaussian_log_prob_is_the_multivariate_normal(seed):
    D = 5
    G = _random_dag(D, seed)
    assert G.sum() >= 3
    f = _random_mechanisms(D, "linear", seed)
    d = DAGFlowLatent(G, f, monotone_noise_flow(D, "identity"))
    A = G * f.weight.detach()
    eye = torch.eye(D, dtype=torch.float64)
    cov = torch.linalg.inv(eye - A.T) @ torch.linalg.inv(eye - A)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(D, dtype=torch.float64), covariance_matrix=cov)
    z = torch.randn(50, D, dtype=torch.float64) * 2
    torch.testing.assert_close(d.log_prob(z), mvn.log_prob(z), atol=1e-6, rtol=0)
    # a wrong graph gives a different density
    wrong = DAGFlowLatent(G.T, f, monotone_noise_flow(D, "identity"))
    assert (wrong.log_prob(z) - mvn.log_prob(z)).abs().max() > 1e-2


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_rsample_satisfies_the_structural_equations(kind):
    D = 5
    G = _random_dag(D, 3)
    f = _random_mechanisms(D, kind)
    flow = _perturbed_flow(D)
    d = DAGFlowLatent(G, f, flow)
    torch.manual_seed(11)
    z = d.rsample((200,))
    torch.manual_seed(11)
    eps = torch.randn(200, D, dtype=torch.float64)
    u = flow(eps)
    # z_j = f_j(G[:, j] * z) + exp(s_j) tau_j(eps_j) for every j (s = 0 when linear)
    loc, log_scale = f.loc_and_log_scale(z, G)
    torch.testing.assert_close(loc, f(z, G))
    if kind == "linear":
        assert float(log_scale.abs().max()) == 0.0
    torch.testing.assert_close(z, loc + log_scale.exp() * u, atol=1e-10, rtol=0)
    torch.testing.assert_close(d.noise(z), u, atol=1e-10, rtol=0)
    assert z.shape == (200, D) and z.requires_grad  # reparametrised


def test_log_prob_is_a_normalised_density_in_one_dimension():
    flow = _perturbed_flow(1)
    d = DAGFlowLatent(torch.zeros(1, 1, dtype=torch.float64), _random_mechanisms(1, "mlp"), flow)
    grid = torch.linspace(-15, 15, 240001, dtype=torch.float64).unsqueeze(-1)  # quadrature error ~1e-7
    with torch.no_grad():
        mass = torch.trapezoid(d.log_prob(grid).exp(), grid[:, 0])
    assert mass.item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["spline", "affine", "identity"])
def test_noise_flow_round_trip_and_log_det(kind):
    flow = _perturbed_flow(3, kind)
    eps = torch.randn(400, 3, dtype=torch.float64) * 2.5  # inside and outside the spline box
    with torch.no_grad():
        u = flow(eps)
        torch.testing.assert_close(flow.inverse(u), eps, atol=1e-9, rtol=0)
        h = 1e-6
        fd = (flow(eps + h) - flow(eps - h)) / (2 * h)
        torch.testing.assert_close(flow.log_abs_det_jacobian(eps), fd.log(), atol=1e-6, rtol=0)
        assert (fd > 0).all()  # monotone increasing
        # density of u: standard normal at eps minus the log-det
        expected = torch.distributions.Normal(0.0, 1.0).log_prob(eps) - flow.log_abs_det_jacobian(eps)
        torch.testing.assert_close(flow.log_prob(u), expected, atol=1e-9, rtol=0)


def test_spline_noise_flow_starts_near_the_identity_and_can_bend():
    flow = MonotoneNoiseFlow(2).double()
    eps = torch.linspace(-4, 4, 101, dtype=torch.float64).unsqueeze(-1).expand(-1, 2)
    with torch.no_grad():
        assert (flow(eps) - eps).abs().max() < 1e-3
    bent = _perturbed_flow(2)
    with torch.no_grad():
        slope = (bent(eps + 1e-6) - bent(eps - 1e-6)) / 2e-6
    assert slope[:, 0].std() > 1e-2  # the spline bends: a non-Gaussian noise family


def test_batched_adjacency_broadcasts_like_predictive():
    D, S, B = 4, 3, 7
    G = torch.stack([_random_dag(D, s) for s in range(S)]).unsqueeze(1)  # (S, 1, D, D)
    f = _random_mechanisms(D, "mlp")
    d = DAGFlowLatent(G, f, _perturbed_flow(D)).expand((S, B))
    z = d.rsample()
    assert d.batch_shape == (S, B) and z.shape == (S, B, D)
    lp = d.log_prob(z)
    assert lp.shape == (S, B)
    single = DAGFlowLatent(G[1, 0], f, d.noise_flow)
    torch.testing.assert_close(lp[1], single.log_prob(z[1]))


def test_mechanisms_only_read_parents_and_strength_matches():
    D = 4
    G = _random_dag(D, 5)
    f = _random_mechanisms(D, "mlp", seed=2)
    z = torch.randn(64, D, dtype=torch.float64)
    strength = f.strength(z, G)
    assert strength.shape == (D, D)
    assert (strength[G == 0] == 0).all()
    assert (strength[G == 1] > 0).all()
    # finite-difference check of one entry
    i, j = [int(x) for x in torch.nonzero(G)[0]]
    h = 1e-6
    dz = torch.zeros_like(z)
    dz[:, i] = h
    fd = ((f(z + dz, G) - f(z - dz, G))[:, j] / (2 * h)).abs().mean()
    assert strength[i, j].item() == pytest.approx(fd.item(), rel=1e-6)


def test_log_prob_differentiable_in_the_graph():
    D = 3
    G = _random_dag(D, 0).requires_grad_(True)
    d = DAGFlowLatent(G, _random_mechanisms(D, "mlp"), _perturbed_flow(D))
    d.log_prob(torch.randn(10, D, dtype=torch.float64)).sum().backward()
    assert G.grad is not None and torch.isfinite(G.grad).all() and G.grad.abs().sum() > 0


def test_fresh_mechanisms_start_at_zero():
    f = Mechanisms(3, "mlp")
    assert f(torch.randn(5, 3), torch.ones(3, 3)).abs().max().item() == 0.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mechanism"):
        Mechanisms(3, "quadratic")
    with pytest.raises(ValueError, match="noise_flow"):
        MonotoneNoiseFlow(3, "gaussian")
    with pytest.raises(ValueError, match="adjacency"):
        DAGFlowLatent(torch.zeros(3, 2), Mechanisms(3), MonotoneNoiseFlow(3))
    with pytest.raises(ValueError, match="noise_flow: has dimension 2"):
        DAGFlowLatent(torch.zeros(3, 3), Mechanisms(3), MonotoneNoiseFlow(2))
    with pytest.raises(ValueError, match=r"z: expected shape \(N, 3\)"):
        Mechanisms(3).strength(torch.zeros(4, 2), torch.zeros(3, 3))


def test_cyclic_logdet_makes_a_cyclic_linear_sem_a_density_and_is_zero_on_dags():
    D = 4
    f = _random_mechanisms(D, "linear", seed=6)
    with torch.no_grad():
        f.weight.mul_(0.5)
    cyclic = torch.ones(D, D, dtype=torch.float64) - torch.eye(D, dtype=torch.float64)
    A = cyclic * f.weight.detach()
    eye = torch.eye(D, dtype=torch.float64)
    cov = torch.linalg.inv(eye - A.T) @ torch.linalg.inv(eye - A)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(D, dtype=torch.float64), covariance_matrix=cov)
    z = torch.randn(30, D, dtype=torch.float64)
    flow = monotone_noise_flow(D, "identity")
    d = DAGFlowLatent(cyclic, f, flow, cyclic_logdet=True)
    torch.testing.assert_close(d.log_prob(z), mvn.log_prob(z), atol=1e-9, rtol=0)
    assert (DAGFlowLatent(cyclic, f, flow).log_prob(z) - mvn.log_prob(z)).abs().max() > 1e-3
    G = _random_dag(D, 1)
    g = _random_mechanisms(D, "mlp", seed=1)
    with_det = DAGFlowLatent(G, g, _perturbed_flow(D), cyclic_logdet=True)
    torch.testing.assert_close(
        with_det.log_prob(z), DAGFlowLatent(G, g, with_det.noise_flow).log_prob(z), atol=1e-10, rtol=0
    )


def test_additive_mechanisms_have_no_log_scale_and_the_same_location_as_the_mlp():
    """``"mlp_additive"``: the MLP's location network without its log-scale head, so ``s_j = 0`` for every parent set
    and the density is the noise flow's at ``z - f(z)``."""
    D = 4
    G = _random_dag(D, 3)
    mlp = _random_mechanisms(D, "mlp", seed=5)
    additive = Mechanisms(D, "mlp_additive").double()
    assert not hasattr(additive, "w3") and len(list(additive.parameters())) == len(list(mlp.parameters())) - 1
    with torch.no_grad():
        for name, p in additive.named_parameters():
            p.copy_(getattr(mlp, name))
    z = torch.randn(32, D, dtype=torch.float64)
    loc, log_scale = additive.loc_and_log_scale(z, G)
    mlp_loc, mlp_log_scale = mlp.loc_and_log_scale(z, G)
    torch.testing.assert_close(loc, mlp_loc)
    assert (log_scale == 0).all() and mlp_log_scale.abs().max() > 0
    flow = _perturbed_flow(D)
    torch.testing.assert_close(DAGFlowLatent(G, additive, flow).log_prob(z), flow.log_prob(z - loc).sum(-1))
    J = additive.jacobian(z[:3], G)
    ref = torch.stack([torch.autograd.functional.jacobian(lambda x: additive(x, G), z[n]) for n in range(3)])
    torch.testing.assert_close(J, ref, atol=1e-12, rtol=0)


def test_mechanism_jacobian_matches_autograd():
    D = 3
    f = _random_mechanisms(D, "mlp", seed=8)
    A = torch.rand(D, D, dtype=torch.float64)
    z = torch.randn(4, D, dtype=torch.float64)
    J = f.jacobian(z, A)
    ref = torch.stack([torch.autograd.functional.jacobian(lambda x: f(x, A), z[n]) for n in range(4)])
    torch.testing.assert_close(J, ref, atol=1e-12, rtol=0)


def test_output_flow_is_a_change_of_variables_of_the_structural_latents():
    """With an output map ``z = h(y)``: ``log p(z) = log p_Y(h^{-1}(z)) - log h'(y)``, and sampling inverts it."""
    D = 3
    G = _random_dag(D, 4)
    f, tau = _random_mechanisms(D, "mlp"), _perturbed_flow(D, seed=1)
    h = MonotoneNoiseFlow(D, "spline", affine=False).double()
    assert all(n.startswith("spline.") for n, _ in h.named_parameters())  # affine=False: loc and scale held at 0
    with torch.no_grad():
        for p in h.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2), dtype=p.dtype))
    with_h, without = DAGFlowLatent(G, f, tau, output_flow=h), DAGFlowLatent(G, f, tau)
    torch.manual_seed(0)
    z = with_h.rsample((200,))
    y, log_det = h._inverse_and_logdet(z)
    torch.testing.assert_close(with_h.log_prob(z), without.log_prob(y) - log_det.sum(-1))
    torch.testing.assert_close(with_h.noise(z), without.noise(y))
    torch.testing.assert_close(with_h.from_noise(with_h.noise(z)), z)


def test_standardise_reads_the_structural_equations_in_standard_units():
    """``standardise=(loc, scale)``: ``log p(z) = log p_X((z - loc) / scale) - sum log scale``; sampling maps back."""
    D = 3
    G = _random_dag(D, 5)
    f, tau = _random_mechanisms(D, "mlp"), _perturbed_flow(D, seed=2)
    loc = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    scale = torch.tensor([3.0, 1e-4, 0.2], dtype=torch.float64)
    scaled, unit = DAGFlowLatent(G, f, tau, standardise=(loc, scale)), DAGFlowLatent(G, f, tau)
    torch.manual_seed(0)
    x = unit.rsample((200,))
    z = loc + scale * x
    torch.testing.assert_close(scaled.log_prob(z), unit.log_prob(x) - scale.log().sum())
    torch.testing.assert_close(scaled.noise(z), unit.noise(x))
    torch.testing.assert_close(scaled.from_noise(unit.noise(x)), z)
    torch.testing.assert_close(scaled.expand((2,)).log_prob(z[:2]), scaled.log_prob(z[:2]))


def test_parent_spline_gives_each_parent_set_its_own_normalised_shape():
    D = 3
    flow = _perturbed_flow(D, "parent_spline", seed=4)
    base = _perturbed_flow(D, "spline", seed=4)  # the same node parameters drawn first, no offsets
    G = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    grid = torch.linspace(-20, 20, 200001, dtype=torch.float64).unsqueeze(-1).expand(-1, D)
    eps = torch.randn(400, D, dtype=torch.float64) * 2.5
    with torch.no_grad():
        for graph in (G, torch.zeros(D, D, dtype=torch.float64)):
            mass = torch.trapezoid(flow.log_prob(grid, graph).exp(), grid[:, 0], dim=0)
            torch.testing.assert_close(mass, torch.ones(D, dtype=torch.float64), atol=1e-5, rtol=0)
            torch.testing.assert_close(flow.inverse(flow.forward(eps, graph), graph), eps, atol=1e-9, rtol=0)
        # no parents: the node's own shape, the plain spline's with the same node parameters
        torch.testing.assert_close(flow.log_prob(eps), base.log_prob(eps), atol=1e-12, rtol=0)
        torch.testing.assert_close(flow.log_prob(eps, torch.zeros(D, D, dtype=torch.float64)), flow.log_prob(eps))
        # a root keeps its shape; a node with parents takes another
        differ = (flow.log_prob(eps, G) - flow.log_prob(eps)).abs().amax(0)
        assert differ[0] == 0 and (differ[1:] > 1e-2).all()
        # term j reads only the parents of j: removing the edge 0 -> 1 leaves node 2's term as it was
        H = G.clone()
        H[0, 1] = 0
        d_g, d_h = (DAGFlowLatent(A, _random_mechanisms(D, "mlp"), flow) for A in (G, H))
        z = torch.randn(50, D, dtype=torch.float64)
        torch.testing.assert_close(d_g.node_log_prob(z)[:, 2], d_h.node_log_prob(z)[:, 2])
        assert (d_g.node_log_prob(z)[:, 1] - d_h.node_log_prob(z)[:, 1]).abs().max() > 1e-3


def test_parent_spline_samples_follow_the_parent_sets_shape():
    D = 2
    G = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    flow = _perturbed_flow(D, "parent_spline", seed=1)
    d = DAGFlowLatent(G, _random_mechanisms(D, "mlp"), flow)
    torch.manual_seed(5)
    z = d.rsample((300,))
    torch.manual_seed(5)
    eps = torch.randn(300, D, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(d.noise(z), flow.forward(eps, G), atol=1e-9, rtol=0)
        assert (flow.forward(eps, G) - flow(eps)).abs()[:, 1].max() > 1e-2

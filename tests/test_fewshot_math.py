"""Few-shot lab, closed forms: MAML's inner step against a gradient step computed by hand (backprop
written out in numpy), the meta-gradient of quadratic tasks against its analytic value (second order
and first order), the batched meta-objective against one task at a time, and the sinusoid sampler."""
from __future__ import annotations

import math

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import numpy as np
import pytest
import torch

from playground.fewshot import model as M
from playground.fewshot import tasks

# a seed-0 MLP on a seed-1 meta-batch (2 tasks, K = 5 + 5): the meta-objective, and the norm of its
# meta-gradient second order and first order
GOLDEN_OBJECTIVE = (3.422255, 2.02823, 1.875563)   # regenerate: python tests/test_fewshot_math.py


def close(a: torch.Tensor, b: torch.Tensor, *, rtol: float, atol: float) -> None:
    """|a - b| <= atol + rtol |b| everywhere (torch.testing.assert_close costs seconds on its first call)."""
    assert a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol), float((a - b).abs().max())


def _mlp(seed: int = 0) -> M.SineMLP:
    torch.manual_seed(seed)
    return M.SineMLP(M.SineMLPConfig()).double()


def _hand_gradient(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Backprop of L = mean (f(x) - y)^2 through 1-40-40-1 (ReLU) written out: x, y (K, 1)."""
    w1, b1, w2, b2, w3, b3 = (p[f"layers.{i}.{n}"] for i in range(3) for n in ("weight", "bias"))
    z1 = x @ w1.T + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2.T + b2
    h2 = np.maximum(z2, 0)
    out = h2 @ w3.T + b3
    d_out = 2 * (out - y) / len(x)                       # dL/d out
    d_z2 = (d_out @ w3) * (z2 > 0)
    d_z1 = (d_z2 @ w2) * (z1 > 0)
    return {"layers.2.weight": d_out.T @ h2, "layers.2.bias": d_out.sum(0),
            "layers.1.weight": d_z2.T @ h1, "layers.1.bias": d_z2.sum(0),
            "layers.0.weight": d_z1.T @ x, "layers.0.bias": d_z1.sum(0)}


def test_inner_step_equals_a_hand_computed_gradient_step():
    """theta' = theta - alpha * grad L(theta; S): the step `inner_step` takes on K = 5 support points
    of a wave equals the one from the gradient computed by hand."""
    m, alpha = _mlp(), 0.01
    b = tasks.sample(1, 5, 0, torch.Generator().manual_seed(3))
    x, y = b.x[0].double(), b.y[0].double()                                        # (K, 1)
    params = m.params()
    stepped = M.inner_step(params, M.mse(M.functional(params, x), y), alpha)
    theta = {k: v.detach().numpy() for k, v in params.items()}
    grad = _hand_gradient(theta, x.numpy(), y.numpy())
    for k, v in stepped.items():
        np.testing.assert_allclose(v.detach().numpy(), theta[k] - alpha * grad[k], rtol=1e-12, atol=1e-14)
    assert max(np.abs(g).max() for g in grad.values()) > 1e-3           # the step moved something


def test_inner_step_gives_each_task_its_own_gradient():
    """With a task dimension, each copy of theta steps on its own task's loss only."""
    m, alpha = _mlp(), 0.05
    b = tasks.sample(3, 4, 0, torch.Generator().manual_seed(4))
    x, y = b.x.double(), b.y.double()
    theta = M.per_task(m.params(), 3)
    batched = M.inner_step(theta, M.support_loss(x, y)(theta), alpha)
    for t in range(3):
        one = M.inner_step(m.params(), M.mse(M.functional(m.params(), x[t]), y[t]), alpha)
        for k in one:
            close(batched[k][t], one[k], rtol=1e-12, atol=1e-14)


def _quadratic(n: int = 4, seed: int = 0):
    """Support loss 1/2 (theta - a)^T A (theta - a), query loss 1/2 (theta - c)^T C (theta - c), A, C SPD."""
    g = torch.Generator().manual_seed(seed)
    ra, rc = torch.randn(n, n, generator=g, dtype=torch.float64), torch.randn(n, n, generator=g, dtype=torch.float64)
    A, C = ra @ ra.T + torch.eye(n, dtype=torch.float64), rc @ rc.T + torch.eye(n, dtype=torch.float64)
    a, c, theta = (torch.randn(n, generator=g, dtype=torch.float64) for _ in range(3))
    return A, C, a, c, theta


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_meta_gradient_of_a_quadratic_task_matches_its_closed_form(inner_steps):
    """theta' = theta - alpha A (theta - a) is linear in theta, so d theta' / d theta = (I - alpha A) per step
    and the meta-gradient is (I - alpha A)^n C (theta_n - c) (equation 3 of model.py); first-order MAML
    gives C (theta_n - c) (equation 4)."""
    A, C, a, c, theta0 = _quadratic()
    alpha, eye = 0.05, torch.eye(len(a), dtype=torch.float64)
    expected_theta = theta0.clone()
    for _ in range(inner_steps):
        expected_theta = expected_theta - alpha * A @ (expected_theta - a)
    query_grad = C @ (expected_theta - c)
    closed = {False: torch.linalg.matrix_power(eye - alpha * A, inner_steps) @ query_grad, True: query_grad}
    for first_order in (False, True):
        theta = {"w": theta0.clone().requires_grad_()}
        p = theta
        for _ in range(inner_steps):
            d = p["w"] - a
            p = M.inner_step(p, 0.5 * d @ A @ d, alpha, create_graph=not first_order)
        close(p["w"].detach(), expected_theta, rtol=1e-12, atol=1e-12)
        q = p["w"] - c
        (meta,) = torch.autograd.grad(0.5 * q @ C @ q, [theta["w"]])
        close(meta, closed[first_order], rtol=1e-10, atol=1e-12)
    assert not torch.allclose(closed[False], closed[True])            # the Hessian term matters here


def test_batched_meta_objective_equals_one_task_at_a_time():
    """maml_objective's meta-gradient (all tasks at once) = the mean of the per-task meta-gradients
    computed one task at a time with plain autograd, second and first order."""
    m, alpha = _mlp(), 0.3
    b = tasks.sample(3, 5, 5, torch.Generator().manual_seed(1))
    x, y, qx, qy = (t.double() for t in (b.x, b.y, b.qx, b.qy))
    params = m.params()
    for first_order in (False, True):
        got = torch.autograd.grad(M.maml_objective(params, x, y, qx, qy, alpha, 2, first_order), list(params.values()))
        want = [torch.zeros_like(v) for v in params.values()]
        for t in range(3):
            th = dict(params)
            for _ in range(2):
                grads = torch.autograd.grad(M.mse(M.functional(th, x[t]), y[t]), list(th.values()),
                                            create_graph=not first_order)
                th = {k: v - alpha * g for (k, v), g in zip(th.items(), grads)}
            loss = M.mse(M.functional(th, qx[t]), qy[t]) / 3
            for i, g in enumerate(torch.autograd.grad(loss, list(params.values()))):
                want[i] += g
        for g, w in zip(got, want):
            close(g, w, rtol=1e-9, atol=1e-12)


def _objectives() -> tuple[float, float, float]:
    torch.manual_seed(0)
    m = M.SineMLP(M.SineMLPConfig())
    b = tasks.sample(2, 5, 5, torch.Generator().manual_seed(1))
    out = []
    for first_order in (False, True):
        loss = M.maml_objective(m.params(), b.x, b.y, b.qx, b.qy, 0.01, 1, first_order)
        grads = torch.autograd.grad(loss, list(m.parameters()))
        out.append(float(torch.cat([g.flatten() for g in grads]).norm()))
    return round(loss.item(), 6), round(out[0], 6), round(out[1], 6)


def test_meta_objective_golden():
    """The objective's value (the forward pass) is the same in both orders; its gradient is not."""
    value, second, first = _objectives()
    assert (value, second, first) == pytest.approx(GOLDEN_OBJECTIVE, abs=1e-5)
    assert second != pytest.approx(first, abs=1e-5)


def test_module_forward_is_the_functional_forward_and_finetune_keeps_the_start():
    m = _mlp()
    x = tasks.grid().double().view(-1, 1)
    close(m(x), M.functional(m.params(), x), rtol=0, atol=0)
    assert sum(p.numel() for p in m.parameters()) == 1 * 40 + 40 + 40 * 40 + 40 + 40 * 1 + 1
    b = tasks.sample(2, 5, 0, torch.Generator().manual_seed(2))
    out, losses = M.finetune(M.per_task(m.params(), 2), b.x.double(), b.y.double(), 0.01, 3, b.qx.double())
    assert out.shape == (4, 2, b.qx.shape[1], 1) and losses.shape == (4, 2)
    assert not out.requires_grad and not losses.requires_grad
    close(out[0], M.functional(m.params(), b.qx.double()).detach(), rtol=0, atol=0)       # step 0: theta itself
    close(losses[0], M.mse(M.functional(m.params(), b.x.double()), b.y.double()).detach(), rtol=0, atol=0)
    assert (losses[-1] < losses[0]).all()                                 # small steps go downhill


def test_finetune_steps_are_inner_steps_each_task_with_its_own_step_size():
    """The compiled loop is equation (1) repeated: against `inner_step` applied by hand, with two models
    stacked on the task dimension, each adapting with its own alpha."""
    a, b = _mlp(0).params(), _mlp(1).params()
    stacked = {k: torch.stack([a[k].detach(), b[k].detach()]) for k in a}
    alphas = torch.tensor([0.01, 0.03], dtype=torch.float64)
    t = tasks.sample(1, 5, 0, torch.Generator().manual_seed(4))
    x, y, at = t.x.double(), t.y.double(), tasks.grid().double().view(1, -1, 1)
    out, losses = M.finetune(stacked, x, y, alphas, 3, at)
    for i, params in enumerate((a, b)):
        theta = M.per_task({k: v.detach().requires_grad_() for k, v in params.items()}, 1)
        for step in range(4):
            close(out[step, i], M.functional(theta, at)[0].detach(), rtol=1e-10, atol=1e-12)
            loss = M.mse(M.functional(theta, x), y)
            close(losses[step, i], loss[0].detach(), rtol=1e-10, atol=1e-12)
            theta = M.inner_step(theta, loss.sum(), float(alphas[i]))
    assert not torch.allclose(out[3, 0], out[0, 0])                     # the steps moved the curve


def test_sinusoid_family_ranges_formula_and_seeds():
    b = tasks.sample(500, 10, 10, torch.Generator().manual_seed(0))
    assert tasks.AMPLITUDE[0] <= b.amplitude.min() and b.amplitude.max() <= tasks.AMPLITUDE[1]
    assert tasks.PHASE[0] <= b.phase.min() and b.phase.max() <= tasks.PHASE[1] == pytest.approx(math.pi)
    assert tasks.X_RANGE[0] <= b.x.min() and b.qx.max() <= tasks.X_RANGE[1]
    t = 7
    expected = b.amplitude[t] * torch.sin(b.x[t] - b.phase[t])
    close(b.y[t], expected, rtol=1e-6, atol=1e-6)
    again = tasks.sample(500, 10, 10, torch.Generator().manual_seed(0))
    assert torch.equal(again.y, b.y) and torch.equal(again.qx, b.qx)
    h = tasks.heldout(20, 10, seed=5)
    assert h.qx.shape == (20, tasks.GRID_POINTS, 1) and torch.equal(h.qx[3, :, 0], tasks.grid())
    close(h.qy, tasks.sine(h.amplitude, h.phase, h.qx), rtol=0, atol=0)


if __name__ == "__main__":
    print("GOLDEN_OBJECTIVE =", _objectives())

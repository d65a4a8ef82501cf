"""MAML on a small regression MLP: the network, a functional forward with explicit parameters, the
inner (adaptation) step and the meta-objective. Finn, Abbeel and Levine 2017, "Model-Agnostic
Meta-Learning for Fast Adaptation of Deep Networks" (algorithm 2, regression; section 5.1).

Notation (one task i, drawn from p(T)): support points S_i (K of them), query points Q_i of the same
task, squared error L(theta; D) = mean over (x, y) in D of (f_theta(x) - y)^2.

    inner step       theta'_i = theta - alpha * grad_theta L(theta; S_i)                            (1)
    meta-objective   min_theta  sum_i L(theta'_i; Q_i)                                               (2)
    meta-gradient    grad_theta L(theta'_i; Q_i) = (I - alpha * H_i) grad_theta' L(theta'_i; Q_i),
                     H_i = hessian_theta L(theta; S_i)                       (one inner step, chain rule) (3)
    first order      drop H_i: grad_theta L(theta'_i; Q_i) ~ grad_theta' L(theta'_i; Q_i)                (4)

Second-order MAML backpropagates through (1) (`create_graph=True`, so (3) holds exactly); first-order
MAML treats the inner gradient as a constant (4). The outer optimiser (Adam in the recipe) steps theta
on the mean of (3) or (4) over a meta-batch of tasks.

Tasks are batched: a parameter may carry a leading task dimension T (each task adapts its own copy of
theta, the "clone" of the algorithm), and `functional` broadcasts over it.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from playground.core import jit

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SineMLPConfig:
    hidden: tuple[int, ...] = (40, 40)   # the paper's two hidden layers of 40 ReLU units
    inputs: int = 1                      # x
    outputs: int = 1                     # y


class SineMLP(nn.Module):
    """inputs - hidden... - outputs, ReLU between layers, a linear output."""
    config_class = SineMLPConfig

    def __init__(self, config: SineMLPConfig = SineMLPConfig()):
        super().__init__()
        self.config = config
        sizes = (config.inputs, *config.hidden, config.outputs)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def params(self) -> Params:
        """The parameters by name (`layers.0.weight`, ...): the explicit theta of `functional`."""
        return dict(self.named_parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional(self.params(), x)


def functional(params: Params, x: torch.Tensor) -> torch.Tensor:
    """f_theta(x) with explicit parameters (in the module's order: layers.0.weight, layers.0.bias, ...):
    x (..., N, inputs) -> (..., N, outputs). A weight (out, in) and bias (out,) serve every task; a weight
    (T, out, in) and bias (T, out) give task t its own theta."""
    return layers(list(params.values()), x)


def layers(ws: List[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`functional` on the parameters as a list [weight 0, bias 0, weight 1, ...] (TorchScript's types)."""
    n = len(ws) // 2
    h = x
    for i in range(n):
        h = h @ ws[2 * i].transpose(-1, -2) + ws[2 * i + 1].unsqueeze(-2)   # (..., N, out)
        if i < n - 1:
            h = torch.relu(h)
    return h


def mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = mean over the points of (pred - y)^2: (T, N, 1) -> (T,) one loss per task; (N, 1) -> ()."""
    return (pred - y).pow(2).mean(dim=(-2, -1))


def per_task(params: Params, tasks: int) -> Params:
    """theta repeated for `tasks` tasks (T, ...): each task's copy gets its own inner gradient, and the
    gradients of all the copies flow back to the one theta."""
    return {k: v.expand(tasks, *v.shape) for k, v in params.items()}


def inner_step(params: Params, loss: torch.Tensor, alpha: float, create_graph: bool = False) -> Params:
    """Equation (1): theta' = theta - alpha * grad_theta L(theta; S). `loss` is the sum of the tasks'
    support losses, so a task's copy of theta gets its own task's gradient. `create_graph=True` keeps
    the gradient differentiable (second-order MAML); False makes it a constant (first order)."""
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return {k: p - alpha * g for (k, p), g in zip(params.items(), grads)}


def support_loss(x: torch.Tensor, y: torch.Tensor) -> Callable[[Params], torch.Tensor]:
    """theta -> sum over tasks of L(theta_t; S_t), for `inner_step`."""
    return lambda params: mse(functional(params, x), y).sum()


def maml_objective(params: Params, x: torch.Tensor, y: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor,
                   alpha: float, inner_steps: int = 1, first_order: bool = False) -> torch.Tensor:
    """Equation (2), averaged over the meta-batch: support x, y (T, K, 1), query qx, qy (T, Q, 1).
    Its gradient with respect to `params` is the meta-gradient: (3), or (4) when `first_order`."""
    theta = per_task(params, x.shape[0])
    loss = support_loss(x, y)
    for _ in range(inner_steps):
        theta = inner_step(theta, loss(theta), alpha, create_graph=not first_order)
    return mse(functional(theta, qx), qy).mean()


def joint_objective(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The baseline: one model regressed on the points of every task at once (no inner step)."""
    return mse(functional(params, x), y).mean()


def finetune(params: Params, x: torch.Tensor, y: torch.Tensor, alpha: float | torch.Tensor, steps: int,
             at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Test time: `steps` plain gradient steps (1) on the support points x, y from theta (per task when the
    parameters carry a task dimension T; `alpha` a number, or one step size per task (T,)). -> (f_theta_k(at)
    for k = 0..steps: (steps + 1, ..., N, outputs), L(theta_k; S) per task: (steps + 1, ...)), detached.

    Several models adapt as one batch when their parameters are stacked on T: the three initialisations
    of the lab each take their own step size. The loop runs compiled (core.jit): about 30 small operations
    a step, which as Python would each wait for the interpreter lock that a class's other requests hold."""
    ws = [p.detach() for p in params.values()]
    a = torch.as_tensor(alpha, dtype=ws[0].dtype)
    alphas = [a.reshape(a.shape + (1,) * (w.dim() - a.dim())) for w in ws]     # (T, 1, ...) against each (T, ...)
    with torch.enable_grad():
        return _finetune()(ws, alphas, x, y, steps, at)


def _finetune_loop(ws: List[torch.Tensor], alphas: List[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   steps: int, at: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    outs: List[torch.Tensor] = []
    losses: List[torch.Tensor] = []
    theta = [w.requires_grad_() for w in [v.clone() for v in ws]]
    for k in range(steps + 1):
        loss = mse(layers(theta, x), y)
        outs.append(layers([p.detach() for p in theta], at))
        losses.append(loss.detach())
        if k < steps:
            grads = torch.autograd.grad([loss.sum()], theta)
            nxt: List[torch.Tensor] = []
            for p, g, a in zip(theta, grads, alphas):
                assert g is not None
                nxt.append((p.detach() - a * g).requires_grad_())                  # (1), each task its own step
            theta = nxt
    return torch.stack(outs), torch.stack(losses)


@functools.lru_cache(maxsize=1)
def _finetune():
    return jit.script(_finetune_loop)

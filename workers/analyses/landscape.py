"""The loss landscape around a job's kept weights, and how sharp its minimum is.

1. Directions: random directions d₁, d₂ shaped like the weights (seeded by `seed`), filter-normalized (Li et
   al., 2018, "Visualizing the Loss Landscape of Neural Nets"): each filter of d (a row of a Linear weight, an
   output channel of a Conv weight) is scaled to the norm of the same filter of the weights, so that a step
   means as much in every layer; biases and batch-norm parameters get 0, as in the paper.
2. 1-D slices: the training and validation loss at θ + a·d₁ for `points` values of a from -1 to 1.
3. 2-D slice: the training loss at θ + a·d₁ + b·d₂ on a `grid` by `grid` mesh of the same range.
4. Top Hessian eigenvalue of the training loss at θ: power iteration on Hessian-vector products (autograd's
   double backward), `iterations` steps from a seeded random vector; the Rayleigh quotient vᵀHv of the last.
5. Hessian trace: Hutchinson's estimate, the mean of vᵀHv over `probes` seeded Rademacher vectors v.
6. ε-sharpness (Keskar et al., 2017): the largest rise of the training loss within the box |δᵢ| ≤ ε·(|θᵢ| + 1),
   as 100 · (max L(θ + δ) - L(θ)) / (1 + L(θ)). The maximum is approached by `ascent_steps` steps of projected
   sign-gradient ascent (Keskar et al. use L-BFGS-B), so it is a lower bound of the true sharpness.

Losses are the data loss in evaluation mode (dropout off, batch norm's running statistics), on at most
`analysis_rows` rows of each split; the same seed gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from core.spec.analysis import LandscapeOptions
from workers.analyses.context import Context

Loss = Callable[[], torch.Tensor]


def filter_normalized(direction: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Step 1: each filter (first dimension) of a ≥2-D direction scaled to the norm of the weights' filter; 1-D
    tensors (biases, batch norm) zeroed."""
    out = []
    for d, w in zip(direction, weights, strict=True):
        if w.dim() <= 1:
            out.append(torch.zeros_like(w))
            continue
        d_norm = d.flatten(1).norm(dim=1).clamp(min=1e-12)
        scale = (w.flatten(1).norm(dim=1) / d_norm).reshape(-1, *([1] * (w.dim() - 1)))
        out.append(d * scale)
    return out


def hessian_vector(loss: Loss, params: Sequence[torch.Tensor], vector: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """H·v of `loss` at `params` by double backward."""
    grads = torch.autograd.grad(loss(), params, create_graph=True)
    dot = torch.stack([(g * v).sum() for g, v in zip(grads, vector, strict=True)]).sum()
    return [h.detach() for h in torch.autograd.grad(dot, params)]


def top_eigenvalue(loss: Loss, params: Sequence[torch.Tensor], iterations: int, generator: torch.Generator) -> float:
    """Step 4: the Hessian's eigenvalue of largest magnitude, by power iteration."""
    vector = [torch.randn(p.shape, generator=generator).to(p) for p in params]
    value = 0.0
    for _ in range(iterations):
        norm = torch.stack([(v * v).sum() for v in vector]).sum().sqrt()
        vector = [v / norm for v in vector]
        product = hessian_vector(loss, params, vector)
        value = float(sum((h * v).sum() for h, v in zip(product, vector, strict=True)))
        vector = product
    return value


def hessian_trace(loss: Loss, params: Sequence[torch.Tensor], probes: int, generator: torch.Generator) -> float:
    """Step 5: Hutchinson's estimate of tr(H)."""
    total = 0.0
    for _ in range(probes):
        vector = [(torch.randint(0, 2, p.shape, generator=generator) * 2 - 1).to(p) for p in params]
        product = hessian_vector(loss, params, vector)
        total += float(sum((h * v).sum() for h, v in zip(product, vector, strict=True)))
    return total / probes


def run(context: Context) -> dict[str, Any]:
    options = LandscapeOptions.model_validate(context.options)
    seed, points, grid = options.seed, options.points, options.grid
    model = context.model()
    params = [p for p in model.parameters()]
    theta = [p.detach().clone() for p in params]
    train, val = context.split("train"), context.split("val")
    loss_fn = context.loss_fn()

    def loss_on(split: tuple[torch.Tensor, torch.Tensor]) -> Loss:
        return lambda: loss_fn(model(split[0]), split[1])

    generator = torch.Generator().manual_seed(seed)
    d1, d2 = (filter_normalized([torch.randn(t.shape, generator=generator).to(t) for t in theta], theta) for _ in "12")
    alphas = torch.linspace(-1, 1, points).tolist()
    mesh = torch.linspace(-1, 1, grid).tolist()

    @torch.no_grad()
    def at(alpha: float, beta: float, split: tuple[torch.Tensor, torch.Tensor]) -> float:
        for p, t, a, b in zip(params, theta, d1, d2, strict=True):
            p.copy_(t + alpha * a + beta * b)
        return float(loss_on(split)())

    one_d = {"alpha": alphas, "train": [], "val": []}
    for alpha in alphas:
        context.check_time()
        one_d["train"].append(at(alpha, 0.0, train))
        one_d["val"].append(at(alpha, 0.0, val))
    two_d = {"alpha": mesh, "beta": mesh, "train": []}
    for alpha in mesh:
        context.check_time()
        two_d["train"].append([at(alpha, beta, train) for beta in mesh])
    at(0.0, 0.0, train)  # back to θ

    context.check_time()
    eigenvalue = top_eigenvalue(loss_on(train), params, options.iterations, generator)
    context.check_time()
    trace = hessian_trace(loss_on(train), params, options.probes, generator)
    context.check_time()
    epsilon = options.epsilon
    sharpness = epsilon_sharpness(model, params, theta, loss_on(train), epsilon, options.ascent_steps)
    return {
        "seed": seed,
        "slices": {"1d": one_d, "2d": two_d},
        "top_eigenvalue": eigenvalue,
        "hessian_trace": trace,
        "sharpness": sharpness,
        "epsilon": epsilon,
        "loss": one_d["train"][points // 2] if points % 2 else None,
    }


def epsilon_sharpness(
    model: nn.Module,
    params: Sequence[torch.Tensor],
    theta: Sequence[torch.Tensor],
    loss: Loss,
    epsilon: float,
    steps: int,
) -> float:
    """Step 6: projected sign-gradient ascent inside the ε-box; 100 · (max - L) / (1 + L)."""
    with torch.no_grad():
        base = float(loss())
    bounds = [epsilon * (t.abs() + 1) for t in theta]
    highest = base
    for _ in range(steps):
        grads = torch.autograd.grad(loss(), params)
        with torch.no_grad():
            for p, t, g, bound in zip(params, theta, grads, bounds, strict=True):
                step = p + bound * g.sign() / 2
                p.copy_(torch.maximum(torch.minimum(step, t + bound), t - bound))
            highest = max(highest, float(loss()))
    with torch.no_grad():
        for p, t in zip(params, theta, strict=True):
            p.copy_(t)
    return 100 * (highest - base) / (1 + base)

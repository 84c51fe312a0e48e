"""The learning-rate range test (Smith, 2017, "Cyclical Learning Rates for Training Neural Networks", 3.3):
a short run raises the rate exponentially and records the loss, to choose `optimizer.lr` before a long run.

1. The network starts as the spec builds it (seeded), with the spec's optimizer, and trains on the data loss
   (regularizers off). The rate rises geometrically from `min_lr` to `max_lr` over `steps` batches of the
   spec's batch size, cycling through the shuffled training split.
2. Each step's loss is smoothed by an exponential moving average (`BETA`, bias-corrected).
3. The run stops early once the smoothed loss passes `DIVERGE` times its minimum, or is not finite.
4. The suggested rate is the one at the smoothed loss's minimum divided by `BACK_OFF` (10): the loss still
   falls fast there, well before it turns up. On the README's digits network (Adam) it suggests a rate within
   a factor of 10 of the 1e-3 that trains it (tests/analyses/test_formulas.py).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from core.spec.analysis import LrRangeOptions
from workers.analyses.context import Context
from workers.training.optim import build_optimizer, set_lr

BETA = 0.8  # a short memory: a longer one lags the rising rate and shifts the minimum to larger rates
DIVERGE = 4.0
BACK_OFF = 10.0


def run(context: Context) -> dict[str, Any]:
    options = LrRangeOptions.model_validate(context.options)
    min_lr, max_lr, steps = options.min_lr, options.max_lr, options.steps
    torch.manual_seed(context.spec.training.seed)
    model = context.model().train()
    optimizer = build_optimizer(context.spec.optimizer, list(model.parameters()))
    loss_fn = context.loss_fn()
    x, y = context.split("train")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(context.spec.training.seed))
    batches = order.split(context.spec.training.batch_size)
    rates, losses, average, lowest = [], [], 0.0, math.inf
    for step in range(steps):
        context.check_time()
        lr = min_lr * (max_lr / min_lr) ** (step / max(steps - 1, 1))
        set_lr(optimizer, lr)
        index = batches[step % len(batches)].to(x.device)
        loss = loss_fn(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        average = BETA * average + (1 - BETA) * float(loss.detach())
        smoothed = average / (1 - BETA ** (step + 1))
        if not math.isfinite(smoothed) or smoothed > DIVERGE * lowest:
            break
        rates.append(lr)
        losses.append(smoothed)
        lowest = min(lowest, smoothed)
    best = min(range(len(losses)), key=losses.__getitem__)
    return {
        "rates": rates,
        "losses": losses,
        "min_loss_lr": rates[best],
        "suggested_lr": rates[best] / BACK_OFF,
        "stopped_early": len(rates) < steps,
    }

"""What a regularization path answers: the strength with the lowest validation loss, and the largest strength
whose validation loss is within one standard error of it (the 1-SE rule of Breiman et al. and glmnet).

1. A point counts once its job has succeeded with a finite val_loss at its best epoch (the kept weights').
   The others are shown, not ranked.
2. `best` is the counted point with the lowest val_loss; between equal losses, the larger strength.
3. The bound is best.val_loss + best.val_loss_se: the best point's loss plus its standard error, which comes
   from its per-example validation losses (their standard deviation over √n).
4. `one_se` is the counted point with the largest strength whose val_loss is at most the bound: the most
   regularized model that is not clearly worse than the best. It is `best` itself when no stronger point
   comes within the bound. For all four strengths of a path (L1, L2, dropout, weight decay) larger means
   more regularized.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    value: float
    val_loss: float | None
    val_loss_se: float | None
    succeeded: bool


@dataclass(frozen=True)
class Answer:
    best: Point | None
    one_se: Point | None
    bound: float | None  # best.val_loss + best.val_loss_se


def choose(points: Sequence[Point]) -> Answer:
    counted = [p for p in points if p.succeeded and p.val_loss is not None and math.isfinite(p.val_loss)]
    if not counted:
        return Answer(None, None, None)
    best = min(counted, key=lambda p: (p.val_loss, -p.value))
    assert best.val_loss is not None
    bound = best.val_loss + (best.val_loss_se or 0.0)
    within = [p for p in counted if p.val_loss is not None and p.val_loss <= bound]
    return Answer(best, max(within, key=lambda p: p.value), bound)

"""Dead and saturated units, measured on the validation split while it is evaluated (forward hooks on the
activation modules: no extra pass). A unit is a hidden unit of a dense layer, or a channel of a convolution.

- dead_units: the fraction of ReLU units whose output is 0 on every validation example (and position): no
  gradient reaches their weights any more.
- saturated_units: the fraction of tanh and sigmoid units whose output is within `MARGIN` of a bound (±1 for
  tanh, 0 and 1 for sigmoid) on at least `MOSTLY` of the validation examples (and positions): their gradient
  is nearly 0 there.

Each is 0.0 for a network without such units.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

MARGIN = 0.01
MOSTLY = 0.9


class UnitProbe:
    def __init__(self, model: nn.Module) -> None:
        self.relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        self.squashing = [m for m in model.modules() if isinstance(m, nn.Tanh | nn.Sigmoid)]
        self._alive: dict[nn.Module, torch.Tensor] = {}
        self._near: dict[nn.Module, torch.Tensor] = {}  # per unit: outputs near a bound, and outputs seen
        self._seen: dict[nn.Module, int] = {}

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Within this, each forward pass through the activations is counted; counts start from zero."""
        self._alive, self._near, self._seen = {}, {}, {}
        handles = [m.register_forward_hook(self._relu) for m in self.relus]
        handles += [m.register_forward_hook(self._squashed) for m in self.squashing]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def values(self, device: torch.device) -> torch.Tensor:
        """[dead_units, saturated_units] as one device tensor (read with the epoch's other numbers)."""
        dead = [~alive for alive in self._alive.values()]
        saturated = [near / self._seen[m] >= MOSTLY for m, near in self._near.items()]
        return torch.stack([_fraction(dead, device), _fraction(saturated, device)])

    def _relu(self, _module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        alive = (output > 0).flatten(2).any(dim=2).any(dim=0) if output.dim() > 2 else (output > 0).any(dim=0)
        self._alive[_module] = alive | self._alive[_module] if _module in self._alive else alive

    def _squashed(self, module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        bounds = 1 - MARGIN
        near = output.abs() > bounds if isinstance(module, nn.Tanh) else (output < MARGIN) | (output > bounds)
        per_unit = near.transpose(0, 1).flatten(1).sum(dim=1) if output.dim() > 2 else near.sum(dim=0)
        positions = output.numel() // output.shape[1]
        self._near[module] = self._near.get(module, 0) + per_unit
        self._seen[module] = self._seen.get(module, 0) + positions


def _fraction(flags: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    if not flags:
        return torch.zeros((), device=device)
    joined = torch.cat(flags)
    return joined.float().mean()

"""Cutout (DeVries & Taylor, 2017): a square of side `cutout`, centred at a random pixel of each training image,
is set to zero in every channel, cut off at the image's edges (`augmentation.cutout`, image data sets)."""

from __future__ import annotations

from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.regularizers.augment_crop import ImageAugmentation


class Cutout(ImageAugmentation):
    def __init__(self, size: int) -> None:
        self.size = size

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        size = spec.augmentation.cutout if spec.augmentation else 0
        return cls(size) if size else None

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, (_, height, width) = len(inputs), self.shape
        cy = torch.randint(0, height, (n, 1, 1), device=inputs.device)
        cx = torch.randint(0, width, (n, 1, 1), device=inputs.device)
        top, left = cy - self.size // 2, cx - self.size // 2
        rows = torch.arange(height, device=inputs.device)[None, :, None]
        cols = torch.arange(width, device=inputs.device)[None, None, :]
        hole = (rows >= top) & (rows < top + self.size) & (cols >= left) & (cols < left + self.size)
        images = inputs.view(n, *self.shape).masked_fill(hole[:, None], 0.0)
        return images.reshape(n, -1), targets

    def epoch_metrics(self) -> dict[str, float]:
        return {"augmentation_cutout": float(self.size)}

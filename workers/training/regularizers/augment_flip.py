"""Horizontal flip: each training image is mirrored left to right with probability 1/2 (`augmentation.flip`,
image data sets)."""

from __future__ import annotations

from typing import Self

import torch

from core.spec.job import JobSpec
from workers.training.regularizers.augment_crop import ImageAugmentation


class HorizontalFlip(ImageAugmentation):
    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        return cls() if spec.augmentation and spec.augmentation.flip else None

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = inputs.view(len(inputs), *self.shape)
        flip = (torch.rand(len(inputs), device=inputs.device) < 0.5)[:, None, None, None]
        return torch.where(flip, images.flip(-1), images).reshape(len(inputs), -1), targets

    def epoch_metrics(self) -> dict[str, float]:
        return {"augmentation_flip": 1.0}

"""Random crop with padding: each training image is padded with `crop_padding` pixels of zeros on every side and
cut back to its size at an offset drawn per image, so its content shifts by up to that many pixels
(`augmentation.crop_padding`, image data sets)."""

from __future__ import annotations

from typing import Self

import torch
import torch.nn.functional as F

from core.spec.job import JobSpec
from workers.training.regularizers.base import Regularizer


class ImageAugmentation(Regularizer):
    """An augmentation of image batches: it learns the images' (channels, height, width) from the data (spec
    validation and admission made sure they are images)."""

    shape: tuple[int, int, int]

    def bind(self, input_shape: tuple[int, ...]) -> None:
        channels, height, width = input_shape
        self.shape = (channels, height, width)


class RandomCrop(ImageAugmentation):
    def __init__(self, padding: int) -> None:
        self.padding = padding

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Self | None:
        padding = spec.augmentation.crop_padding if spec.augmentation else 0
        return cls(padding) if padding else None

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, (channels, height, width), p = len(inputs), self.shape, self.padding
        padded = F.pad(inputs.view(n, channels, height, width), (p, p, p, p))
        dy, dx = (torch.randint(0, 2 * p + 1, (n, 1), device=inputs.device) for _ in "yx")
        rows = (dy + torch.arange(height, device=inputs.device))[:, :, None]  # (n, height, 1)
        cols = (dx + torch.arange(width, device=inputs.device))[:, None, :]  # (n, 1, width)
        cropped = padded[torch.arange(n, device=inputs.device)[:, None, None], :, rows, cols]  # (n, h, w, c)
        return cropped.permute(0, 3, 1, 2).reshape(n, -1), targets

    def epoch_metrics(self) -> dict[str, float]:
        return {"augmentation_crop_padding": float(self.padding)}

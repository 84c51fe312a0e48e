"""The augmentations on hand-made images: what each does to a batch, that validation never sees it, and
mixup's loss as the mix of both rows' losses."""

from __future__ import annotations

import pytest
import torch

from core.spec.job import LossSpec
from tests.training.factories import hand_made_images, job_spec, train_recording
from workers.training.losses import build_loss
from workers.training.regularizers.augment_crop import ImageAugmentation, RandomCrop
from workers.training.regularizers.augment_cutout import Cutout
from workers.training.regularizers.augment_flip import HorizontalFlip
from workers.training.regularizers.mixup import Mixup

SHAPE = (1, 4, 4)


def bound(augmentation: ImageAugmentation) -> ImageAugmentation:
    """The augmentation as the engine hands it to training: bound to the data's image shape."""
    augmentation.bind(SHAPE)
    return augmentation


IMAGE = torch.arange(1.0, 17.0).reshape(1, 16)  # one 4 x 4 image: 1 .. 16, row by row
NO_TARGETS = torch.zeros(1)


def test_a_crop_with_padding_is_the_image_shifted_by_up_to_that_padding_with_zeros_let_in() -> None:
    torch.manual_seed(0)
    padded = torch.nn.functional.pad(IMAGE.reshape(4, 4), (1, 1, 1, 1))
    shifts = {(oy, ox): padded[oy : oy + 4, ox : ox + 4] for oy in range(3) for ox in range(3)}
    seen = set()
    for _ in range(100):
        out = bound(RandomCrop(padding=1)).transform_batch(IMAGE, NO_TARGETS)[0].reshape(4, 4)
        matches = [offset for offset, shifted in shifts.items() if torch.equal(out, shifted)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # every shift of -1, 0 or 1 pixel, each way


def test_a_flip_mirrors_about_half_the_images_left_to_right() -> None:
    torch.manual_seed(0)
    batch = IMAGE.repeat(200, 1)
    out = bound(HorizontalFlip()).transform_batch(batch, torch.zeros(200))[0].reshape(200, 4, 4)
    flipped = (out == IMAGE.reshape(4, 4).flip(-1)).all(dim=(1, 2))
    same = (out == IMAGE.reshape(4, 4)).all(dim=(1, 2))
    assert (flipped | same).all() and 70 < int(flipped.sum()) < 130


def test_cutout_zeroes_a_square_at_most_size_by_size() -> None:
    torch.manual_seed(0)
    for _ in range(30):
        out = bound(Cutout(size=2)).transform_batch(IMAGE, NO_TARGETS)[0].reshape(4, 4)
        holes = (out == 0).nonzero()
        assert 1 <= len(holes) <= 4  # a 2 x 2 square, cut off at the edges
        assert int(holes[:, 0].max() - holes[:, 0].min()) <= 1 and int(holes[:, 1].max() - holes[:, 1].min()) <= 1


def test_mixups_loss_is_the_mix_of_both_rows_losses_once_then_the_plain_loss() -> None:
    torch.manual_seed(0)
    mixup = Mixup(alpha=0.4)
    plain = build_loss(LossSpec(name="cross_entropy"), 3)
    loss = mixup.modify_loss(plain, 3)
    x, y = torch.randn(8, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mixed, targets = mixup.transform_batch(x, y)
    assert mixup.pending is not None
    share, order = mixup.pending
    assert torch.allclose(mixed, share * x + (1 - share) * x[order]) and torch.equal(targets, y)
    outputs = torch.randn(8, 3)
    expected = share * plain(outputs, y) + (1 - share) * plain(outputs, y[order])
    assert loss(outputs, targets).item() == pytest.approx(expected.item())
    assert loss(outputs, targets).item() == pytest.approx(plain(outputs, y).item())  # used once: validation's


def test_augmentations_are_reported_and_validation_data_is_untouched() -> None:
    augmentation = {"crop_padding": 1, "flip": True, "cutout": 2, "mixup": 0.2}
    spec = job_spec(dataset={"name": "digits"}, augmentation=augmentation, training={"epochs": 2})
    plain = job_spec(dataset={"name": "digits"}, training={"epochs": 2})
    _, epochs = train_recording(spec, hand_made_images(), device=torch.device("cpu"))
    _, untouched = train_recording(plain, hand_made_images(), device=torch.device("cpu"))
    reported = {k: v for k, v in epochs[0].metrics.items() if k.startswith("augmentation_")}
    assert reported == {
        "augmentation_crop_padding": 1.0,
        "augmentation_cutout": 2.0,
        "augmentation_flip": 1.0,
        "augmentation_mixup": 0.2,
    }
    # The baseline is computed on the validation split before training: the same with and without.
    assert epochs[0].metrics["baseline_val_loss"] == untouched[0].metrics["baseline_val_loss"]

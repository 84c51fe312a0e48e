"""Downsampling keeps the first, the last, the best and each bucket's extremes, worked out by hand."""

from __future__ import annotations

from service.jobs.downsample import downsample


def curve(values: list[float]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(values)]


def test_short_curves_are_returned_whole() -> None:
    items = curve([3.0, 2.0, 1.0])
    assert downsample(items, 5, best_epoch=3) == items


def test_first_last_best_and_the_extremes_of_each_bucket_are_kept() -> None:
    #          epoch: 1    2    3    4    5    6    7    8    9    10
    items = curve([5.0, 4.0, 9.0, 3.0, 2.5, 2.0, 1.0, 7.0, 1.5, 1.2])
    # max_points 7: keep epochs 1, 10 and the best (7); (7 - 3) // 2 = 2 buckets over epochs 2..9
    # (indices 1..8, four each): epochs 2-5 → min 2.5 (5), max 9.0 (3); epochs 6-9 → min 1.0 (7), max 7.0 (8).
    kept = [item["epoch"] for item in downsample(items, 7, best_epoch=7)]
    assert kept == [1, 3, 5, 7, 8, 10]


def test_the_result_never_exceeds_max_points() -> None:
    items = curve([float((i * 37) % 101) for i in range(1000)])
    for max_points in (3, 4, 10, 99, 500):
        kept = downsample(items, max_points, best_epoch=500)
        assert len(kept) <= max_points
        assert kept[0]["epoch"] == 1 and kept[-1]["epoch"] == 1000
        assert any(item["epoch"] == 500 for item in kept)

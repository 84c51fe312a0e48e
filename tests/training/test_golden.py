"""Golden per-epoch metrics: a fixed set of specs (every regularizer, MLP and CNN, seed fixed) must train to
exactly the recorded numbers, bit for bit, on the CPU. A refactor of the engine must not move them.

The files in `golden/` hold each epoch's metrics (timings left out) as `float.hex` strings, so that equality is
exact. `python -m tests.training.test_golden --record` rewrites them after a change meant to move the numbers;
the diff then shows what moved.

Bit for bit holds on a processor like the one that recorded them (`golden/processor.json`: its features, its
caches and the library versions). Another x86-64 processor runs the same AVX2 kernels (`PORTABLE_NUMERICS`)
and still rounds a few sums differently in the last bit: the MLP specs then differ by about 1e-7 relative, and
training that amplifies it (the CNN, the noisy regression) by up to 6e-3 after a few epochs. There every number
must agree within `ELSEWHERE` (relative), the stop reason and the epoch count exactly.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.settings import Settings
from workers.environment import prepare_torch

# Run as a script (--record), this module loads torch itself: with the worker's kernels, as the tests do.
prepare_torch(Settings())

import pytest  # noqa: E402
import torch  # noqa: E402

from core.spec.job import Task  # noqa: E402
from tests.training.factories import digits, job_spec, synthetic, train_recording, without_timing  # noqa: E402
from workers.training.data import PreparedData  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
ELSEWHERE = 2e-2
CPU = torch.device("cpu")
CNN = {"type": "cnn", "conv_layers": [{"filters": 4, "kernel_size": 3, "pool": 2}], "hidden_layers": [16]}

# name: (task, spec sections); "digits" in the name trains on digits, otherwise on a 200-row synthetic set.
SPECS: dict[str, tuple[Task, dict[str, dict[str, Any]]]] = {
    "plain": ("classification", {}),
    "l1": ("classification", {"regularization": {"l1": 1e-3}}),
    "l2": ("classification", {"regularization": {"l2": 1e-3}}),
    "elastic_net": ("classification", {"regularization": {"l1": 5e-4, "l2": 5e-4}}),
    "max_norm": ("classification", {"regularization": {"max_norm": 0.5}}),
    "gradient_clipping": ("classification", {"regularization": {"gradient_clip_norm": 0.1}}),
    "label_smoothing": ("classification", {"regularization": {"label_smoothing": 0.1}}),
    "label_smoothing_bce": (
        "classification",
        {"regularization": {"label_smoothing": 0.2}, "loss": {"name": "binary_cross_entropy"}},
    ),
    "input_noise": ("classification", {"regularization": {"input_noise": 0.3}}),
    "dropout": ("classification", {"model": {"hidden_layers": [16, 8], "dropout": [0.5, 0.2], "input_dropout": 0.1}}),
    "batch_norm": ("classification", {"model": {"batch_norm": "after_activation"}, "regularization": {"l2": 1e-3}}),
    "early_stopping": (
        "classification",
        {"training": {"epochs": 8}, "early_stopping": {"patience": 1, "restore_best_weights": True}},
    ),
    "regression_everything": (
        "regression",
        {
            "model": {"dropout": 0.1, "batch_norm": True},
            "loss": {"name": "huber"},
            "regularization": {"l1": 1e-4, "l2": 1e-3, "max_norm": 2.0, "gradient_clip_norm": 1.0, "input_noise": 0.1},
        },
    ),
    "cnn_digits": (
        "classification",
        {
            "model": {**CNN, "dropout": 0.3, "batch_norm": True},
            "regularization": {"l2": 1e-4},
            "training": {"epochs": 2},
        },
    ),
}


def run(name: str) -> dict[str, Any]:
    task, sections = SPECS[name]
    data: PreparedData = digits() if "digits" in name else synthetic(task)
    if "digits" in name:
        sections = {**sections, "dataset": {"name": "digits"}}
    spec = job_spec(task, **sections)
    result, epochs = train_recording(spec, data, device=CPU)
    return {
        "epochs": [{k: v.hex() for k, v in without_timing(end.metrics).items()} for end in epochs],
        "stop_reason": result.stop_reason,
        "test": {k: v.hex() for k, v in result.test_metrics.items()},
    }


def processor() -> dict[str, str]:
    """What besides the kernels decides how the CPU rounds: the processor's features and cache sizes (MKL sizes
    its blocks by them), and the versions of torch and numpy."""
    import numpy

    about = {"torch": torch.__version__, "numpy": numpy.__version__}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        first = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in cpuinfo.read_text().split("\n\n")[0].splitlines())
        )
        about |= {"model": first.get("model name", ""), "cache": first.get("cache size", "")}
        about["flags"] = " ".join(sorted(first.get("flags", "").split()))
    return about


def agree(got: dict[str, Any], expected: dict[str, Any], exact: bool) -> bool:
    if exact:
        return got == expected
    numbers = [
        (got_row[key], row[key])
        for got_row, row in zip([*got["epochs"], got["test"]], [*expected["epochs"], expected["test"]], strict=True)
        for key in row
    ]
    return (
        got["stop_reason"] == expected["stop_reason"]
        and [sorted(row) for row in got["epochs"]] == [sorted(row) for row in expected["epochs"]]
        and sorted(got["test"]) == sorted(expected["test"])
        and all(math.isclose(float.fromhex(a), float.fromhex(b), rel_tol=ELSEWHERE, abs_tol=1e-6) for a, b in numbers)
    )


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One thread: a reduction split over several threads may add in another order on another machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", SPECS)
def test_the_metrics_match_the_golden_file_bit_for_bit(name: str) -> None:
    """Bit for bit on a processor like the recording one; within ELSEWHERE on another."""
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    got = run(name)
    exact = processor() == json.loads((GOLDEN / "processor.json").read_text())
    assert agree(got, expected, exact), f"{'bit for bit' if exact else f'within {ELSEWHERE}'}: {got} != {expected}"


def test_elsewhere_still_catches_a_moved_number() -> None:
    expected = json.loads((GOLDEN / "plain.json").read_text())
    moved = json.loads(json.dumps(expected))
    first = moved["epochs"][0]
    first["val_loss"] = (float.fromhex(first["val_loss"]) * (1 + 3 * ELSEWHERE)).hex()
    assert agree(expected, expected, exact=False) and not agree(moved, expected, exact=False)
    assert not agree({**expected, "stop_reason": "diverged"}, expected, exact=False)


def test_every_golden_file_has_a_spec() -> None:
    assert {path.stem for path in GOLDEN.glob("*.json")} - {"processor"} == set(SPECS)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    torch.set_num_threads(1)
    for name in SPECS:
        (GOLDEN / f"{name}.json").write_text(json.dumps(run(name), indent=1) + "\n")
        print("recorded", name)
    (GOLDEN / "processor.json").write_text(json.dumps(processor(), indent=1) + "\n")

"""Golden per-epoch metrics: a fixed set of specs (every regularizer, MLP and CNN, seed fixed) must train to
exactly the recorded numbers, bit for bit, on the CPU. A refactor of the engine must not move them.

The files in `golden/` hold each epoch's metrics (timings left out) as `float.hex` strings, so that equality is
exact. `python -m tests.training.test_golden --record` rewrites them after a change meant to move the numbers;
the diff then shows what moved.
"""

from __future__ import annotations

import json
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


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One thread: a reduction split over several threads may add in another order on another machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", SPECS)
def test_the_metrics_match_the_golden_file_bit_for_bit(name: str) -> None:
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    assert run(name) == expected


def test_every_golden_file_has_a_spec() -> None:
    assert {path.stem for path in GOLDEN.glob("*.json")} == set(SPECS)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    torch.set_num_threads(1)
    for name in SPECS:
        (GOLDEN / f"{name}.json").write_text(json.dumps(run(name), indent=1) + "\n")
        print("recorded", name)

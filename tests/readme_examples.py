"""The example outputs the README shows for its digits job, read from the README itself, so that a test can
compare each with what a run of that job really gives (tests/test_end_to_end.py trains it)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from tests.fixtures import ROOT

README = ROOT / "README.md"
TIMED = {"epoch_seconds", "samples_per_second"}  # differ from run to run: not compared


def readme_lines() -> list[str]:
    return README.read_text().splitlines()


def lines_after(marker: str) -> list[str]:
    lines = readme_lines()
    return lines[next(i for i, line in enumerate(lines) if marker in line) + 1 :]


def parse_shown(text: str) -> Any:
    """JSON as the README shows it, with its elisions (`, ...`, `{...}`, `"..."`) left out; numbers as
    Decimals, which keep the digits shown."""
    text = re.sub(r"\{\s*\.\.\.\s*\}", "{}", text)
    text = re.sub(r",\s*\.\.\.\s*(?=[}\]])", "", text)
    return json.loads(text, parse_float=Decimal)


def commented_json_after(marker: str) -> Any:
    """The JSON of the `# ` comment lines right after the line that contains `marker`."""
    block = []
    for line in lines_after(marker):
        if not line.startswith("#"):
            break
        block.append(line.removeprefix("#"))
    return parse_shown(" ".join(block))


def curl_body(command: str) -> Any:
    """The JSON body (`-d '...'`) of the README's curl command that starts with `command`."""
    text = README.read_text()
    body = text[text.index("-d '", text.index(command)) + len("-d '") :]
    return json.loads(body[: body.index("'")])


def first_event_data() -> Any:
    """The first `data:` line of the README's server-sent events."""
    data = next(line for line in lines_after('/events?logs_after=0"') if line.startswith("# data: "))
    return parse_shown(data.removeprefix("# data: "))


def dropout_row(dropout: str) -> list[str]:
    """The cells of the dropout study's row for `dropout`, minus signs as ASCII."""
    row = next(line for line in readme_lines() if line.startswith(f"| {dropout} |"))
    return [cell.strip().replace("\N{MINUS SIGN}", "-") for cell in row.strip("|").split("|")]


def mismatches(shown: Any, real: Any, where: str = "") -> list[str]:
    """Where a shown value differs from the real one by more than the rounding it is shown with. `"..."`,
    `{}` and timings are not compared; a list is compared for as many items as it shows."""
    if isinstance(shown, dict):
        return [
            found
            for key, value in shown.items()
            if key not in TIMED
            for found in mismatches(value, real.get(key) if isinstance(real, dict) else None, f"{where}.{key}")
        ]
    if isinstance(shown, list):
        if not isinstance(real, list) or len(real) < len(shown):
            return [f"{where}: shown {len(shown)} items, really {real!r}"]
        return [found for i, value in enumerate(shown) for found in mismatches(value, real[i], f"{where}[{i}]")]
    if isinstance(shown, Decimal | int) and not isinstance(shown, bool):
        exponent = shown.as_tuple().exponent if isinstance(shown, Decimal) else 0
        half_unit = Decimal(5).scaleb(int(exponent) - 1)  # 0.005 for a value shown with two decimals
        if isinstance(real, int | float) and abs(Decimal(repr(real)) - Decimal(shown)) <= half_unit:
            return []
        return [f"{where}: shown {shown}, really {real!r}"]
    return [] if shown in ("...", real) else [f"{where}: shown {shown!r}, really {real!r}"]


def readme_mismatches(job: dict[str, Any], epochs: list[dict[str, Any]]) -> list[str]:
    """Every output the README shows for its digits job (seed 42) beside the real `job` and its `epochs`."""
    best = epochs[job["best_epoch"] - 1]
    cells = dropout_row("0.5")
    study = {
        "epochs (best)": f"{job['epochs_completed']} ({job['best_epoch']})",
        "val_loss": best["val_loss"],
        "train acc": best["train_accuracy"],
        "val acc": best["val_accuracy"],
        "train - val": best["train_accuracy"] - best["val_accuracy"],
        "test acc": job["test_metrics"]["accuracy"],
    }
    shown_study = dict(zip(study, [cells[1], *(Decimal(cell) for cell in cells[2:])], strict=True))
    return [
        *mismatches(commented_json_after('metrics?after_epoch=0"')["items"], epochs, "metrics?after_epoch=0"),
        *mismatches(commented_json_after('curl -s "http://127.0.0.1:8000/v1/jobs/$JOB"'), job, "job"),
        *mismatches(first_event_data(), epochs[0], "events"),
        *mismatches(shown_study, study, "dropout study 0.5"),
    ]


def python_block_after(marker: str) -> str:
    """The code of the README's first ```python block after the line that contains `marker`."""
    lines = lines_after(marker)
    start = lines.index("```python") + 1
    return "\n".join(lines[start : lines.index("```", start)])

"""Vega-Lite specs of a job's and a sweep's charts, with their data inline: any Vega-Lite renderer (Jupyter,
Observable, VS Code, Grafana's Vega panel, vega-embed) draws them as they are, and `render.py` turns them
into SVG or PNG on the server. Pure functions of what the database holds: no I/O here."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from core.jobs.diagnosis import diagnose
from core.numbers import finite_or_none
from core.states import AnalysisKind

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
WIDTH, HEIGHT = 560, 300
EPOCH_AXIS = {"format": "d", "tickMinStep": 1}
CONTOURS = 8  # bands of the landscape's 2-D slice
NOTHING_YET: Chart = {
    "data": {"values": [{"text": "nothing to draw yet"}]},
    "mark": {"type": "text", "fontSize": 14, "color": "gray"},
    "encoding": {"text": {"field": "text", "type": "nominal"}},
}

Chart = dict[str, Any]
Epoch = dict[str, Any]

# The metrics each panel of the regularization chart shows, with the axis title.
REGULARIZATION_METRICS = {
    "weight_l1": "Σ|w|",
    "weight_l2": "√Σw²",
    "sparsity": "fraction of |w| < 1e-3",
    "penalty": "penalty added to the loss",
}


def learning_curves(title: str, epochs: Sequence[Epoch], best_epoch: int | None, stop_reason: str | None) -> Chart:
    """Training and validation loss per epoch, a rule at the best epoch and one at the last epoch (the stop)."""
    rows = [
        {"epoch": epoch["epoch"], "split": split, "loss": epoch.get(f"{split}_loss")}
        for epoch in epochs
        for split in ("train", "val")
        if _finite(epoch.get(f"{split}_loss"))
    ]
    marks = []
    if best_epoch is not None:
        marks.append({"epoch": best_epoch, "mark": "best", "y": 4})
    if epochs and stop_reason is not None:
        marks.append({"epoch": epochs[-1]["epoch"], "mark": f"stop ({stop_reason})", "y": 20})
    loss = {
        "data": {"values": rows},
        "mark": {"type": "line", "point": len(epochs) <= 60},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": EPOCH_AXIS},
            "y": {"field": "loss", "type": "quantitative", "title": "loss", "scale": {"zero": False}},
            "color": {"field": "split", "type": "nominal", "title": None, "legend": {"orient": "bottom"}},
            "tooltip": [{"field": "epoch"}, {"field": "split"}, {"field": "loss", "format": ".4f"}],
        },
    }
    return _chart(title, {"layer": [loss, *_epoch_rules(marks)]}, rows)


def regularization(title: str, epochs: Sequence[Epoch]) -> Chart:
    """What the regularizers act on, per epoch: the weights' L1 and L2 norms, their sparsity and the penalty."""
    rows = [
        {"epoch": epoch["epoch"], "metric": label, "value": epoch[key]}
        for epoch in epochs
        for key, label in REGULARIZATION_METRICS.items()
        if _finite(epoch.get(key))
    ]
    return _chart(
        title,
        {
            "data": {"values": rows},
            "facet": {
                "row": {
                    "field": "metric",
                    "type": "nominal",
                    "title": None,
                    "sort": list(REGULARIZATION_METRICS.values()),
                }
            },
            "spec": {
                "width": WIDTH,
                "height": HEIGHT // 3,
                "mark": {"type": "line", "point": len(epochs) <= 60},
                "encoding": {
                    "x": {"field": "epoch", "type": "quantitative", "axis": EPOCH_AXIS},
                    "y": {"field": "value", "type": "quantitative", "title": None, "scale": {"zero": False}},
                    "tooltip": [{"field": "epoch"}, {"field": "metric"}, {"field": "value", "format": ".4g"}],
                },
            },
            "resolve": {"scale": {"y": "independent"}},
        },
        rows,
        sized=False,
    )


def parallel_coordinates(
    title: str, trials: Sequence[dict[str, Any]], metric: str, importance: Sequence[str] = ()
) -> Chart:
    """One line per finished trial across an axis per searched parameter and one for the objective, coloured by
    the objective; the parameters named in `importance` come first, in its order, the rest by name. A numeric
    axis runs from its lowest to its highest value (log10 where the values are all positive and span more than
    two decades); a categorical one spaces its choices evenly, in sorted order. So parameters of different
    scales share one chart; the tooltip gives each value as it was."""
    finished = [trial for trial in trials if _finite(trial["objective"])]
    names = {name for trial in finished for name in trial["params"]}
    axes = [*(name for name in importance if name in names), *sorted(names - set(importance)), metric]
    positions = {axis: _positions([_value(trial, axis, metric) for trial in finished]) for axis in axes}
    rows = [
        {
            "trial": trial["number"],
            "axis": axis,
            "value": str(value) if isinstance(value, str | bool) else value,
            "position": positions[axis](value),
            "objective": trial["objective"],
        }
        for trial in finished
        for axis in axes
        if (value := _value(trial, axis, metric)) is not None
    ]
    # Each axis's ends, labelled with the values there.
    ends = {(row["axis"], row["position"]): row["value"] for row in rows if row["position"] in (0.0, 1.0)}
    labels = [
        {"axis": axis, "position": position, "label": f"{value:.4g}" if _finite(value) else str(value)}
        for (axis, position), value in ends.items()
    ]
    x = {"field": "axis", "type": "nominal", "sort": axes, "title": None, "axis": {"labelAngle": 0}}
    y = {"field": "position", "type": "quantitative", "axis": None, "scale": {"domain": [0, 1]}}
    lines = {
        "data": {"values": rows},
        "mark": {"type": "line", "opacity": 0.7, "point": True},
        "encoding": {
            "x": x,
            "y": y,
            "detail": {"field": "trial", "type": "nominal"},
            "color": {"field": "objective", "type": "quantitative", "title": metric},
            "tooltip": [{"field": "trial"}, {"field": "axis"}, {"field": "value"}],
        },
    }
    ticks = {
        "data": {"values": labels},
        "mark": {"type": "text", "align": "left", "dx": 6, "color": "gray"},
        "encoding": {"x": x, "y": y, "text": {"field": "label", "type": "nominal"}},
    }
    return _chart(title, {"layer": [lines, ticks]}, rows)


def path(
    title: str, parameter: str, points: Sequence[dict[str, Any]], best: float | None, one_se: float | None
) -> Chart:
    """A regularization path: validation loss (± its standard error) and sparsity against the strength, on a
    log axis (symmetric log when a strength is 0), with the best and the 1-SE strengths marked."""
    rows = [point for point in points if _finite(point.get("val_loss"))]
    scale = {"type": "log"} if all(point["value"] > 0 for point in rows) else {"type": "symlog", "constant": 1e-6}
    x = {"field": "value", "type": "quantitative", "title": parameter, "scale": scale}
    loss = {
        "height": HEIGHT * 2 // 3,
        "width": WIDTH,
        "layer": [
            {
                "transform": [
                    {"calculate": "datum.val_loss - datum.val_loss_se", "as": "low"},
                    {"calculate": "datum.val_loss + datum.val_loss_se", "as": "high"},
                ],
                "mark": {"type": "errorbar", "ticks": True},
                "encoding": {
                    "x": x,
                    "y": {"field": "low", "type": "quantitative", "title": "val_loss ± SE", "scale": {"zero": False}},
                    "y2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": x,
                    "y": {"field": "val_loss", "type": "quantitative"},
                    "tooltip": [{"field": "value"}, {"field": "val_loss", "format": ".4f"}, {"field": "job_id"}],
                },
            },
            *_strength_rules(x, best, one_se),
        ],
    }
    sparsity = {
        "height": HEIGHT // 3,
        "width": WIDTH,
        "mark": {"type": "line", "point": True, "color": "gray"},
        "encoding": {
            "x": x,
            "y": {"field": "sparsity", "type": "quantitative", "title": "sparsity", "scale": {"zero": True}},
            "tooltip": [{"field": "value"}, {"field": "sparsity", "format": ".3f"}],
        },
    }
    return _chart(title, {"data": {"values": rows}, "vconcat": [loss, sparsity]}, rows, sized=False)


def _strength_rules(x: Chart, best: float | None, one_se: float | None) -> list[Chart]:
    marks = [
        {"value": value, "mark": mark, "y": y}
        for value, mark, y in ((best, "best", 4), (one_se, "1-SE", 20))
        if value is not None
    ]
    if not marks:
        return []
    return [
        {
            "data": {"values": marks},
            "layer": [
                {"mark": {"type": "rule", "strokeDash": [4, 4]}, "encoding": {"x": x}},
                {
                    "mark": {"type": "text", "align": "left", "dx": 4, "baseline": "top"},
                    "encoding": {
                        "x": x,
                        "y": {"field": "y", "type": "quantitative", "scale": None},  # pixels: labels apart
                        "text": {"field": "mark", "type": "nominal"},
                    },
                },
            ],
        }
    ]


def diagnosis(title: str, epochs: Sequence[Epoch], spec: dict[str, Any]) -> Chart:
    """The generalization gap per epoch (validation loss minus training data loss), with the verdict in the
    title and its onset marked (core/jobs/diagnosis.py)."""
    found = diagnose(epochs, spec)
    rows = [
        {"epoch": epoch["epoch"], "gap": gap} for epoch, gap in zip(epochs, found.gaps, strict=True) if _finite(gap)
    ]
    onset = [] if found.onset_epoch is None else [{"epoch": found.onset_epoch, "mark": "onset", "y": 4}]
    gap = {
        "data": {"values": rows},
        "mark": {"type": "line", "point": len(rows) <= 60},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative", "axis": EPOCH_AXIS},
            "y": {"field": "gap", "type": "quantitative", "title": "val_loss - training data loss"},
            "tooltip": [{"field": "epoch"}, {"field": "gap", "format": ".4f"}],
        },
    }
    zero = {
        "data": {"values": [{"gap": 0}]},
        "mark": {"type": "rule", "color": "gray"},
        "encoding": {"y": {"field": "gap", "type": "quantitative"}},
    }
    verdict = found.verdict.replace("_", " ")
    return _chart(f"{title}: {verdict}", {"layer": [gap, zero, *_epoch_rules(onset)]}, rows)


def landscape(title: str, result: dict[str, Any] | None) -> Chart:
    """A landscape analysis: the 1-D slices of training and validation loss, and the 2-D slice of training loss
    as filled contours (the grid coloured in `CONTOURS` bands, evenly spaced in the logarithm of the loss), along
    the analysis's filter-normalized directions."""
    if result is None:
        return _chart(title, {}, [])
    one_d = result["slices"]["1d"]
    lines = [
        {"alpha": alpha, "split": split, "loss": loss}
        for split in ("train", "val")
        for alpha, loss in zip(one_d["alpha"], one_d[split], strict=True)
        if _finite(loss)
    ]
    two_d = result["slices"]["2d"]
    cells = [
        {"alpha": alpha, "beta": beta, "loss": loss}
        for alpha, row in zip(two_d["alpha"], two_d["train"], strict=True)
        for beta, loss in zip(two_d["beta"], row, strict=True)
        if _finite(loss)
    ]
    slice_1d = {
        "title": "1-D slice",
        "width": WIDTH // 2,
        "height": HEIGHT,
        "data": {"values": lines},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "alpha", "type": "quantitative", "title": "step along d1"},
            "y": {"field": "loss", "type": "quantitative", "scale": {"type": "log"}},
            "color": {"field": "split", "type": "nominal", "title": None, "legend": {"orient": "bottom"}},
        },
    }
    slice_2d = {
        "title": "2-D slice (training loss, contours)",
        "width": WIDTH // 2,
        "height": HEIGHT,
        "data": {"values": cells},
        "mark": "rect",
        "encoding": {
            "x": {"field": "alpha", "type": "ordinal", "title": "d1", "axis": {"format": ".1f"}},
            "y": {"field": "beta", "type": "ordinal", "title": "d2", "sort": "descending", "axis": {"format": ".1f"}},
            "color": {
                "field": "loss",
                "type": "quantitative",
                "scale": {"type": "threshold", "domain": _levels([c["loss"] for c in cells]), "scheme": "viridis"},
                "legend": {"format": ".3g"},
            },
            "tooltip": [{"field": "alpha"}, {"field": "beta"}, {"field": "loss", "format": ".4f"}],
        },
    }
    summary = (
        f"top Hessian eigenvalue {result['top_eigenvalue']:.4g} · trace {result['hessian_trace']:.4g} · "
        f"sharpness {result['sharpness']:.4g}"
    )
    return _chart(f"{title} ({summary})", {"hconcat": [slice_1d, slice_2d]}, [*lines, *cells], sized=False)


# A job's charts of its epochs, by name: each builds from the chart's title, the job and its epochs.
EpochChart = Callable[[str, Any, Sequence[Epoch]], Chart]
EPOCH_CHARTS: dict[str, EpochChart] = {
    "learning_curves": lambda title, job, epochs: learning_curves(title, epochs, job.best_epoch, job.stop_reason),
    "regularization": lambda title, _job, epochs: regularization(title, epochs),
    "diagnosis": lambda title, job, epochs: diagnosis(title, epochs, job.spec),
}
# A job's charts of one of its analyses, by the analysis's kind: each builds from the chart's title and the
# analysis's result (None until it has one).
ANALYSIS_CHARTS: dict[AnalysisKind, Callable[[str, dict[str, Any] | None], Chart]] = {
    AnalysisKind.LANDSCAPE: landscape,
}
JOB_CHARTS = (*EPOCH_CHARTS, *ANALYSIS_CHARTS)
SWEEP_CHARTS = ("parallel_coordinates",)
PATH_CHARTS = ("path",)


def _chart(title: str, body: Chart, rows: list[dict[str, Any]], *, sized: bool = True) -> Chart:
    """The chart, or while there is nothing to draw yet (a queued job, a sweep without a finished trial) one that
    says so: Vega cannot size axes over no data."""
    if not rows:
        return {"$schema": SCHEMA, "title": title, "width": WIDTH, "height": HEIGHT, **NOTHING_YET}
    size = {"width": WIDTH, "height": HEIGHT} if sized else {}
    return {"$schema": SCHEMA, "title": title, **size, **body}


def _levels(values: list[float]) -> list[float]:
    """`CONTOURS - 1` thresholds between the lowest and highest value, evenly spaced in the logarithm."""
    low, high = min(values, default=1.0), max(values, default=1.0)
    if low <= 0 or high <= low:
        return [high]
    step = (math.log10(high) - math.log10(low)) / CONTOURS
    return [float(f"{10 ** (math.log10(low) + step * i):.3g}") for i in range(1, CONTOURS)]


def _epoch_rules(marks: list[dict[str, Any]]) -> list[Chart]:
    if not marks:
        return []
    rule = {
        "mark": {"type": "rule", "strokeDash": [4, 4]},
        "encoding": {"x": {"field": "epoch", "type": "quantitative"}},
    }
    label = {
        "mark": {"type": "text", "align": "right", "dx": -4, "baseline": "top"},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative"},
            "y": {"field": "y", "type": "quantitative", "scale": None},  # pixels from the top: labels apart
            "text": {"field": "mark", "type": "nominal"},
        },
    }
    return [{"data": {"values": marks}, "layer": [rule, label]}]


def _value(trial: dict[str, Any], axis: str, metric: str) -> Any:
    return trial["objective"] if axis == metric else trial["params"].get(axis)


def _positions(values: list[Any]) -> Callable[[Any], float]:
    """Where each of an axis's values stands, from 0 to 1."""
    numbers = [value for value in values if _finite(value)]
    if len(numbers) < len([value for value in values if value is not None]):
        choices = sorted({str(value) for value in values if value is not None})
        return lambda value: choices.index(str(value)) / max(len(choices) - 1, 1)
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    if low > 0 and high / low > 100:
        low, high = math.log10(low), math.log10(high)
        return lambda value: (math.log10(value) - low) / (high - low)
    return lambda value: 0.5 if high == low else (value - low) / (high - low)


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and finite_or_none(value) is not None

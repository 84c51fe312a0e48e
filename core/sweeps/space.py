"""A sweep's search space against its base spec: dotted paths, the checks made at submission, trial specs.

A path names a field of the base spec as `POST /v1/jobs` would store it (every default filled in), e.g.
`model.dropout`, `optimizer.lr` or `model.hidden_layers.0`. Each listed value, and both ends of each range
with one point inside it, must make a spec that its owner may run on its own (valid, its data sets and
jobs the owner's, within the owner's limits and the cost bounds: `admit` says), so a bad space is a 422
at submission and not a failed trial later; a grid is tried whole. Other combinations are not all tried:
one that turns out invalid (say, validation and test splits that add up to too much, or a batch size and
a layer width each within bounds and too large together) becomes a failed trial with the reason, since
each trial is admitted again when it is created.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from core.errors import ApiError, FieldError, field_path
from core.spec.job import JobSpec, Task, metrics_for
from core.spec.sweep import MAX_TRIALS, SweepCreate


class PathError(ValueError):
    pass


def apply(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the base spec (as JSON) with each dotted path set to its value."""
    spec = copy.deepcopy(dict(base))
    for path, value in params.items():
        container, key = _locate(spec, path)
        container[key] = copy.deepcopy(value)
    return spec


def _locate(spec: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container holding the field at `path`, and its key there."""
    node: Any = spec
    parts = path.split(".")
    for depth, part in enumerate(parts):
        key: str | int
        if isinstance(node, dict) and part in node:
            key = part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            key = int(part)
        else:
            parent = ".".join(parts[:depth])
            if node is None and parent:
                raise PathError(f"`{parent}` is null in the base spec: set it there to sweep `{path}`")
            raise PathError(f"the base spec has no `{'.'.join(parts[: depth + 1])}`")
        if depth == len(parts) - 1:
            return node, key
        node = node[key]
    raise PathError("empty path")


def trial_spec(body: SweepCreate, params: Mapping[str, Any]) -> JobSpec:
    """The job spec of one trial. Raises ValidationError when the combination is not a valid spec."""
    return JobSpec.model_validate(apply(body.base.model_dump(mode="json"), params))


# Raises ApiError (a 422 naming a field) when its owner may not run the spec; see core/jobs/admission.py.
Admit = Callable[[JobSpec], object]


def check(body: SweepCreate, task: Task, admit: Admit) -> list[FieldError]:
    """Everything wrong with the sweep that its schema alone cannot see; empty when it can run."""
    errors = _check_budget(body) + _check_overlaps(body)
    base = body.base.model_dump(mode="json")
    for path, parameter in body.parameters.items():
        field = f"parameters.{path}"
        if body.algorithm == "grid" and parameter.values is None:
            errors.append(FieldError(field=field, message="grid search needs `values`", type="grid_values"))
            continue
        try:
            _locate(base, path)
        except PathError as exc:
            errors.append(FieldError(field=field, message=str(exc), type="no_such_field"))
            continue
        for value in parameter.corners():
            if (problem := _rejection(base, path, value, admit)) is not None:
                errors.append(FieldError(field=field, message=f"{_show(value)}: {problem}", type="value_error"))
                break
    known = metrics_for(task)
    if body.objective.metric not in known:
        message = f"`{body.objective.metric}` is not a metric of a {task} job; one of {list(known)}"
        errors.append(FieldError(field="objective.metric", message=message, type="value_error"))
    if not errors and body.pruner.min_epochs > body.max_epochs:
        message = f"more than the {body.max_epochs} epochs a trial trains at most"
        errors.append(FieldError(field="pruner.min_epochs", message=message, type="value_error"))
    return errors or _check_grid_points(body, admit)


def _check_grid_points(body: SweepCreate, admit: Admit) -> list[FieldError]:
    """A grid is small enough to try whole: a point that is not a spec its owner may run is a 422 now, too."""
    if body.algorithm != "grid" or len(body.parameters) < 2:
        return []
    paths = list(body.parameters)
    for point in itertools.product(*(body.parameters[path].values or [] for path in paths)):
        params = dict(zip(paths, point, strict=True))
        try:
            admit(trial_spec(body, params))
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
        except ApiError as exc:
            reason = exc.detail
        else:
            continue
        message = f"the grid point {json.dumps(params)} is not a valid spec: {reason}"
        return [FieldError(field="parameters", message=message, type="value_error")]
    return []


def _check_budget(body: SweepCreate) -> list[FieldError]:
    if body.algorithm != "grid":
        if body.max_trials is None:
            return [FieldError(field="max_trials", message=f"{body.algorithm} search needs it", type="missing")]
        return []
    size = body.grid_size
    if size > MAX_TRIALS:
        message = f"the grid has {size} points; at most {MAX_TRIALS}"
        return [FieldError(field="parameters", message=message, type="value_error")]
    if body.max_trials is not None and body.max_trials > size:
        message = f"the grid has {size} points; a grid search never repeats one"
        return [FieldError(field="max_trials", message=message, type="value_error")]
    return []


def _check_overlaps(body: SweepCreate) -> list[FieldError]:
    paths = sorted(body.parameters)
    return [
        FieldError(field=f"parameters.{inner}", message=f"overlaps `{outer}`", type="value_error")
        for outer in paths
        for inner in paths
        if inner.startswith(outer + ".")
    ]


def _rejection(base: dict[str, Any], path: str, value: Any, admit: Admit) -> str | None:
    """Why the base spec with `path` set to `value` is not a job its owner may run, or None."""
    try:
        admit(JobSpec.model_validate(apply(base, {path: value})))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
        return first["msg"] if where in (path, "body") else f"{where}: {first['msg']}"
    except ApiError as exc:
        error = (exc.errors or [FieldError(field="", message=exc.detail, type="value_error")])[0]
        return error.message if error.field == path else f"{error.field}: {error.message}"
    return None


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else json.dumps(value)

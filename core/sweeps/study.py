"""Optuna as the search and pruning engine, with no state of its own.

steadyfit keeps each trial as a job. Every decision (the parameters of the next trial, whether a running
trial is pruned) rebuilds an in-memory Optuna study from those rows: each trial goes in through
`optuna.trial.create_trial` with its state, parameters, objective, per-epoch objective values and the
attributes Optuna's samplers and pruners keep per trial (a grid point, the rungs a trial has passed),
which are stored on the job. So the database is the only state, any process can decide, and a restart
loses nothing; no table belongs to Optuna.

Reproducibility: the grid's order and Hyperband's brackets come from the sweep's seed, and random and
TPE sampling of trial n is seeded by (seed, n), so a sweep run one trial at a time repeats itself exactly.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from core.spec.sweep import SweepCreate

State = Literal["running", "complete", "pruned", "failed"]
OPTUNA_STATES: dict[State, TrialState] = {
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the database knows it."""

    number: int
    state: State
    params: dict[str, Any]  # by dotted spec path, as the trial's spec has them
    value: float | None = None  # the objective, for a complete trial
    intermediate: dict[int, float] = field(default_factory=dict)  # epoch → objective at that epoch
    attrs: dict[str, Any] = field(default_factory=dict)  # Optuna's system attributes of the trial


@dataclass(frozen=True)
class Proposal:
    params: dict[str, Any]
    attrs: dict[str, Any]
    trial: optuna.Trial = field(repr=False)


def distributions(body: SweepCreate) -> dict[str, BaseDistribution]:
    """The search space in Optuna's terms. Listed values are categorical choices, each held as its JSON
    text, so any JSON value (a list of layer widths, an object) can be a choice."""
    result: dict[str, BaseDistribution] = {}
    for path, parameter in body.parameters.items():
        if parameter.values is not None:
            result[path] = CategoricalDistribution([_encode(value) for value in parameter.values])
        elif parameter.int_uniform is not None:
            result[path] = IntDistribution(*parameter.int_uniform)
        else:
            low, high = parameter.bounds
            result[path] = FloatDistribution(low, high, log=parameter.log_uniform is not None)
    return result


def rebuild(body: SweepCreate, trials: Sequence[TrialRecord]) -> optuna.Study:
    """An in-memory study holding `trials` (numbered 0, 1, … without gaps), with the sweep's sampler and
    pruner. Hyperband assigns trials to brackets by a hash of the study's name and the trial's number,
    so the name comes from the seed: the same at every rebuild, and the same for a repeated sweep."""
    if [trial.number for trial in trials] != list(range(len(trials))):
        raise ValueError("trial numbers must run 0, 1, … without gaps")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"seed-{body.seed}",
        direction=body.objective.direction,
        sampler=sampler(body, len(trials)),
        pruner=pruner(body),
    )
    space = distributions(body)
    for trial in trials:
        study.add_trial(
            optuna.trial.create_trial(
                state=OPTUNA_STATES[trial.state],
                value=_value(trial),
                params={path: _to_optuna(space[path], value) for path, value in trial.params.items()},
                distributions={path: space[path] for path in trial.params},
                system_attrs=trial.attrs,
                intermediate_values=trial.intermediate,
            )
        )
    return study


def _value(trial: TrialRecord) -> float | None:
    if trial.state == "complete":
        return trial.value
    if trial.state == "pruned" and trial.intermediate:
        # What Optuna itself records for a pruned trial: its last reported value.
        last = trial.intermediate[max(trial.intermediate)]
        return last if math.isfinite(last) else None
    return None


def sampler(body: SweepCreate, number: int) -> optuna.samplers.BaseSampler:
    """The sampler that proposes trial `number`."""
    if body.algorithm == "grid":
        space = {
            path: list(d.choices) for path, d in distributions(body).items() if isinstance(d, CategoricalDistribution)
        }
        return optuna.samplers.GridSampler(space, seed=body.seed)
    seed = zlib.crc32(f"{body.seed}:{number}".encode())
    if body.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(body: SweepCreate) -> optuna.pruners.BasePruner:
    spec = body.pruner
    if spec.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.min_epochs)
    if spec.name == "hyperband":
        # A fixed max_resource (not "auto") keeps the brackets the same at every rebuild.
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_epochs, max_resource=body.max_epochs, reduction_factor=spec.reduction_factor
        )
    if spec.name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec.min_epochs, reduction_factor=spec.reduction_factor
        )
    return optuna.pruners.NopPruner()


def propose(study: optuna.Study, body: SweepCreate) -> Proposal:
    """Ask the study for its next trial. It stays running in `study`, so the next proposal of the same
    round knows about it (no grid point twice, TPE's constant liar)."""
    number = len(study.get_trials(deepcopy=False))
    study.sampler = sampler(body, number)
    space = distributions(body)
    if body.warm_start:  # the listed values in their order, not the grid's shuffled one
        ((path, parameter),) = body.parameters.items()
        assert parameter.values is not None, "a warm-started sweep is a grid"
        study.enqueue_trial({path: _encode(parameter.values[number])})
    trial = study.ask(space)
    params = {path: _from_optuna(space[path], value) for path, value in trial.params.items()}
    return Proposal(params, dict(study.get_trials(deepcopy=False)[number].system_attrs), trial)


def discard(study: optuna.Study, proposal: Proposal) -> None:
    """The proposal could not become a job: it counts as a failed trial."""
    try:
        study.tell(proposal.trial, state=TrialState.FAIL)
    except RuntimeError as exc:
        # The grid sampler stops its study when the last point ends, and Study.stop raises outside
        # optimize(); the trial is failed by then (Optuna records the state in a `finally`).
        if "Study.stop" not in str(exc):
            raise


def prune(study: optuna.Study, number: int) -> tuple[bool, dict[str, Any]]:
    """Whether the pruner stops running trial `number` at its last reported epoch, and the trial's
    attributes afterwards (a rung it has just reached is recorded there)."""
    pruned = study.pruner.prune(study, study.get_trials(deepcopy=False)[number])
    return pruned, dict(study.get_trials(deepcopy=False)[number].system_attrs)


MIN_TRIALS_FOR_IMPORTANCE = 5  # fewer complete trials say nothing about which parameter matters


def importance(body: SweepCreate, trials: Sequence[TrialRecord]) -> dict[str, float]:
    """Each parameter's share of the objective's variance over the complete trials, by Optuna's fANOVA
    evaluator (a random forest fitted to the trials, its variance split among the parameters), seeded by
    the sweep's seed; the shares sum to 1, largest first. A parameter that never varied has none."""
    complete = [trial for trial in trials if trial.state == "complete"]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        raise ValueError(f"needs {MIN_TRIALS_FOR_IMPORTANCE} complete trials, has {len(complete)}")
    numbered = [replace(trial, number=n, intermediate={}, attrs={}) for n, trial in enumerate(complete)]
    study = rebuild(body, numbered)  # only the trials matter here, not the sampler or the pruner
    # Imported here: it loads scikit-learn, most of a second that every API process would pay at start-up.
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    shares = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=body.seed))
    return {path: float(share) for path, share in shares.items()}


def _encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _to_optuna(distribution: BaseDistribution, value: Any) -> Any:
    return _encode(value) if isinstance(distribution, CategoricalDistribution) else value


def _from_optuna(distribution: BaseDistribution, value: Any) -> Any:
    return json.loads(value) if isinstance(distribution, CategoricalDistribution) else value


def intermediate_values(values: Mapping[int, float | None]) -> dict[int, float]:
    """Per-epoch objective values as Optuna takes them: a non-finite value (stored as null) is NaN."""
    return {epoch: math.nan if value is None else float(value) for epoch, value in values.items()}

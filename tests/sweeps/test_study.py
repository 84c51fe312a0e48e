"""Optuna studies rebuilt from steadyfit's records: what they hold, and that their decisions are Optuna's own."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest

from core.spec.sweep import SweepCreate
from core.sweeps import study
from core.sweeps.study import TrialRecord
from tests.fixtures import tiny_spec


def sweep(**fields: Any) -> SweepCreate:
    body: dict[str, Any] = {
        "base": tiny_spec(training={"epochs": 27, "seed": 1}),
        "parameters": {"optimizer.lr": {"log_uniform": [1e-4, 1.0]}, "model.hidden_layers": {"values": [[8], [16, 8]]}},
        "algorithm": "random",
        "max_trials": 20,
    }
    body.update(fields)
    return SweepCreate.model_validate(body)


def test_a_rebuilt_study_holds_each_trial_as_recorded() -> None:
    body = sweep()
    params = {"optimizer.lr": 0.01, "model.hidden_layers": [16, 8]}
    records = [
        TrialRecord(0, "complete", params, value=0.25, intermediate={1: 0.9, 2: 0.25}),
        TrialRecord(1, "pruned", params, intermediate={1: 1.4}, attrs={"completed_rung_0": 1.4}),
        TrialRecord(2, "failed", params),
        TrialRecord(3, "running", params, intermediate={1: math.nan}),
    ]

    trials = study.rebuild(body, records).get_trials()

    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "FAIL", "RUNNING"]
    assert [t.value for t in trials] == [0.25, 1.4, None, None]  # a pruned trial keeps its last value, as in Optuna
    assert trials[0].params == {"optimizer.lr": 0.01, "model.hidden_layers": "[16, 8]"}
    assert trials[0].intermediate_values == {1: 0.9, 2: 0.25}
    assert trials[1].system_attrs == {"completed_rung_0": 1.4}
    assert math.isnan(trials[3].intermediate_values[1])


def test_trial_numbers_must_have_no_gaps() -> None:
    with pytest.raises(ValueError, match="without gaps"):
        study.rebuild(sweep(), [TrialRecord(1, "failed", {})])


def test_a_proposal_depends_only_on_the_seed_the_number_and_the_trials_before_it() -> None:
    def propose(body: SweepCreate, records: list[TrialRecord]) -> dict[str, Any]:
        return study.propose(study.rebuild(body, records), body).params

    first = propose(sweep(), [])
    again = propose(sweep(), [])
    other_seed = propose(sweep(seed=7), [])
    second = propose(sweep(), [TrialRecord(0, "running", first)])

    assert first == again
    assert first["model.hidden_layers"] in ([8], [16, 8])
    assert other_seed != first and second != first


def test_a_grid_round_proposes_every_point_once() -> None:
    body = sweep(
        algorithm="grid",
        max_trials=None,
        parameters={"model.dropout": {"values": [0.0, 0.2, 0.5]}, "optimizer.lr": {"values": [0.01, 0.1]}},
    )
    search = study.rebuild(body, [])
    points = [study.propose(search, body).params for _ in range(6)]
    # A restart halfway: the rebuilt study knows which points are taken.
    rebuilt = study.rebuild(body, [TrialRecord(n, "running", p) for n, p in enumerate(points[:3])])
    resumed = [study.propose(rebuilt, body).params for _ in range(3)]

    every = {(d, lr) for d in (0.0, 0.2, 0.5) for lr in (0.01, 0.1)}
    assert {(p["model.dropout"], p["optimizer.lr"]) for p in points} == every
    assert {(p["model.dropout"], p["optimizer.lr"]) for p in resumed} == every - {
        (p["model.dropout"], p["optimizer.lr"]) for p in points[:3]
    }


def curve(lr: float, epoch: int) -> float:
    """A made-up validation loss: best near lr = 0.01, falling with the epochs."""
    return (math.log10(lr) + 2) ** 2 + 1 / epoch


@pytest.mark.parametrize(
    "pruner",
    [
        {"name": "median", "startup_trials": 2, "min_epochs": 2},
        {"name": "asha", "min_epochs": 1, "reduction_factor": 3},
        {"name": "hyperband", "min_epochs": 1, "reduction_factor": 3},
    ],
)
def test_pruning_from_rebuilt_studies_decides_as_a_live_optuna_study(pruner: dict[str, Any]) -> None:
    """Optuna drives one study through ask/report/should_prune/tell; beside it, every decision is made again
    from a study rebuilt out of the records steadyfit would hold at that moment."""
    body = sweep(pruner=pruner, parameters={"optimizer.lr": {"log_uniform": [1e-4, 1.0]}})
    live = optuna.create_study(study_name="seed-0", pruner=study.pruner(body), sampler=optuna.samplers.RandomSampler(0))
    records: list[TrialRecord] = []
    pruned = 0
    for number in range(20):
        trial = live.ask(study.distributions(body))
        lr = trial.params["optimizer.lr"]
        seen: dict[int, float] = {}
        attrs: dict[str, Any] = {}
        for epoch in range(1, 28):
            seen[epoch] = curve(lr, epoch)
            trial.report(seen[epoch], epoch)
            running = TrialRecord(number, "running", {"optimizer.lr": lr}, intermediate=dict(seen), attrs=attrs)
            decision, attrs = study.prune(study.rebuild(body, [*records, running]), number)
            assert decision == trial.should_prune(), (number, epoch)
            if decision:
                break
        if decision:
            live.tell(trial, state=optuna.trial.TrialState.PRUNED)
            records.append(TrialRecord(number, "pruned", {"optimizer.lr": lr}, intermediate=seen, attrs=attrs))
            pruned += 1
        else:
            live.tell(trial, seen[27])
            records.append(TrialRecord(number, "complete", {"optimizer.lr": lr}, seen[27], seen, attrs))
    assert pruned >= 3


def test_importance_gives_the_parameter_that_moves_the_objective_nearly_all_of_it() -> None:
    """The objective is 2 lr (up to noise a thousand times smaller) whatever the layers: fANOVA gives lr
    nearly all the variance, the shares sum to 1, and the same trials and seed give the same shares."""
    body = sweep()
    lrs = [0.01, 0.5, 0.02, 0.3, 0.9, 0.05, 0.7, 0.1]
    trials = [
        TrialRecord(
            n, "complete", {"optimizer.lr": lr, "model.hidden_layers": [[8], [16, 8]][n % 2]}, 2 * lr + n * 1e-4
        )
        for n, lr in enumerate(lrs)
    ]
    running = TrialRecord(len(lrs), "running", {"optimizer.lr": 1.0, "model.hidden_layers": [8]})
    shares = study.importance(body, [*trials, running])
    assert list(shares) == ["optimizer.lr", "model.hidden_layers"]
    assert shares["optimizer.lr"] > 0.9 > 0.1 > shares["model.hidden_layers"]
    assert math.fsum(shares.values()) == pytest.approx(1.0)
    assert study.importance(body, trials) == shares
    with pytest.raises(ValueError, match="needs 5 complete trials, has 4"):
        study.importance(body, [*trials[:4], running])

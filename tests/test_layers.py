"""The engine's import contract (pyproject.toml, checked by `lint-imports`) names what workers.training may not
import one module at a time; a module added to core/ or workers/ must join that list, or the engine could
import it unchecked."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import core
import workers

ROOT = Path(__file__).resolve().parent.parent
ENGINE = "workers.training"
ALLOWED = {"core.spec", ENGINE}


def contract(name_starts: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["name"].startswith(name_starts))


def test_the_engine_contract_forbids_every_module_of_core_and_workers_but_core_spec() -> None:
    modules = {
        f"{package.__name__}.{info.name}"
        for package in (core, workers)
        for info in pkgutil.iter_modules(package.__path__)
    }
    forbidden = set(contract(ENGINE)["forbidden_modules"])
    assert modules - ALLOWED - forbidden == set()
    assert forbidden & ALLOWED == set()

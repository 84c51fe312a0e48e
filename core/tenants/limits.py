"""The limits that apply to one owner: the server's settings, with that owner's overrides on top."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import OwnerLimits
from core.settings import Settings
from core.states import Priority


@dataclass(frozen=True)
class Limits:
    max_queued_jobs: Annotated[int, Field(description="Jobs you may have waiting; past it a submission is a 429.")]
    max_running_jobs: Annotated[
        int, Field(description="Jobs you may have training; while it is reached a submission is a 429.")
    ]
    max_model_parameters: Annotated[int, Field(description="Trainable parameters a spec's model may have.")]
    max_epochs: Annotated[int, Field(description="Epochs a spec may ask for (`training.epochs`).")]
    max_upload_bytes: Annotated[int, Field(description="Size of a data set upload, in bytes.")]
    max_upload_rows: Annotated[int, Field(description="Rows of a data set upload.")]
    max_storage_bytes: Annotated[
        int, Field(description="Bytes your stored data sets may take; past it an upload is a 413.")
    ]
    max_priority: Annotated[
        Priority, Field(description="The highest `priority` your jobs and sweeps may ask for; past it a 422.")
    ]
    weight: Annotated[
        float,
        Field(
            description="Your share of the workers against other owners' while jobs wait: of two owners with "
            "waiting jobs of one priority, the one with fewer running jobs per weight goes first."
        ),
    ]


NAMES = tuple(field.name for field in fields(Limits))
DEFAULT_WEIGHT = 1.0  # every owner's, unless set for it: equal shares


def server_limits(settings: Settings) -> Limits:
    return Limits(**{name: getattr(settings, name) for name in NAMES if name != "weight"}, weight=DEFAULT_WEIGHT)


def limits_for(session: Session, settings: Settings, owner: str) -> Limits:
    limits = server_limits(settings)
    row = session.get(OwnerLimits, owner)
    if row is None:
        return limits
    return replace(limits, **{name: getattr(row, name) for name in NAMES if getattr(row, name) is not None})


def hold(session: Session, settings: Settings, owner: str) -> Limits:
    """The owner's limits, read under a lock on the owner's limits row that this transaction keeps until it
    ends, so that two submissions of one owner count its jobs and add theirs in turn, never both at once.

    The row is made first when the owner has none (no overrides: all its values null). On PostgreSQL the
    lock is the row's (`SELECT … FOR UPDATE`), so other owners are not held up. On SQLite the insert,
    which writes even when the row exists and nothing is inserted, takes the database's one write lock.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(OwnerLimits).values(owner=owner).on_conflict_do_nothing(index_elements=["owner"]))
    locked = select(OwnerLimits).where(OwnerLimits.owner == owner).with_for_update()
    row = session.scalars(locked.execution_options(populate_existing=True)).one()
    return replace(
        server_limits(settings), **{name: getattr(row, name) for name in NAMES if getattr(row, name) is not None}
    )


def overrides(session: Session, owner: str) -> dict[str, Any]:
    """The values set for this owner (the others are the server's)."""
    row = session.get(OwnerLimits, owner)
    return {} if row is None else {name: getattr(row, name) for name in NAMES if getattr(row, name) is not None}


def set_overrides(session: Session, owner: str, values: dict[str, Any]) -> dict[str, Any]:
    """Set (a positive number, or a Priority for `max_priority`) or clear (None) some of an owner's overrides;
    returns what is set afterwards."""
    unknown = set(values) - set(NAMES)
    if unknown:
        raise ValueError(f"no limit named {', '.join(sorted(unknown))}")
    row = session.get(OwnerLimits, owner) or OwnerLimits(owner=owner)
    for name, value in values.items():
        if isinstance(value, int | float) and value <= 0:
            raise ValueError(f"{name} must be a positive number")
        setattr(row, name, value)
    session.add(row)
    session.flush()
    return overrides(session, owner)

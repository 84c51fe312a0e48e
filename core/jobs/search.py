"""The SQL of a search of the job list (`GET /v1/jobs`): its filters and its order, on PostgreSQL and SQLite.

Filters: the owner, the project, tags (every one given must match), status, a created range
(`created_after` included, `created_before` not), a sweep, an id prefix, and `where` conditions on the
spec (core/jobs/where.py). PostgreSQL reads tags with the JSONB containment `@>` (which the GIN index on
`tags` answers) and the spec with an SQL/JSON path (`@?`, which the GIN index on `spec::jsonb` answers for
`=`); SQLite reads both with `json_extract`.

Orders: `created_at` or `best_metrics.<metric>`, ascending, or descending after a `-`. A metric order puts
the jobs without the metric last either way, and breaks ties by id. Each order pages by keyset on its own
keys; a cursor names its order, so a cursor of another order is refused.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH

from core.db.models import Job
from core.db.pagination import InvalidCursor, decode_cursor, decode_keys, encode_cursor, encode_keys
from core.errors import InvalidSpec
from core.jobs.where import Condition
from core.spec.job import CLASSIFICATION_METRICS, COMMON_METRICS, REGRESSION_METRICS

METRICS = frozenset(COMMON_METRICS + CLASSIFICATION_METRICS + REGRESSION_METRICS)
METRIC_ORDER = "best_metrics."
COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Order:
    """`created_at` or `best_metrics.<metric>` (`metric`), ascending or descending."""

    metric: str | None
    descending: bool

    @property
    def text(self) -> str:
        name = "created_at" if self.metric is None else METRIC_ORDER + self.metric
        return f"-{name}" if self.descending else name


NEWEST_FIRST = Order(None, descending=True)


def parse_order(text: str) -> Order:
    """`order_by` as given: a 422 naming it when it is not `[-]created_at` or `[-]best_metrics.<metric>`."""
    descending = text.startswith("-")
    name = text.removeprefix("-")
    if name == "created_at":
        return Order(None, descending)
    metric = name.removeprefix(METRIC_ORDER)
    if name.startswith(METRIC_ORDER) and metric in METRICS:
        return Order(metric, descending)
    raise InvalidSpec(
        "order_by",
        f"`{text}` is not an order: `created_at` or `best_metrics.<metric>` (a per-epoch metric such as val_loss), "
        "after a `-` for descending",
    )


def parse_tag(text: str) -> tuple[str, str]:
    """`key:value` as (key, value): a 422 on `tag` without the colon."""
    key, colon, value = text.partition(":")
    if not colon or not key:
        raise InvalidSpec("tag", f"`{text}` is not a tag: write it as `key:value`, e.g. `team:red`")
    return key, value


@dataclass(frozen=True)
class JobSearch:
    """Which jobs a list shows, and in which order. `scope`: the owner whose jobs (None: everyone's)."""

    scope: str | None
    project: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    where: Sequence[Condition] = ()
    sweep_id: str | None = None
    id_prefix: str | None = None
    order: Order = NEWEST_FIRST

    @property
    def moves_with_changes(self) -> bool:
        """Whether a change of a job can move it onto or off a page: a filter on its status, an order by its
        metrics. All else a search selects and orders by is fixed when the job is created."""
        return self.status is not None or self.order.metric is not None


def filtered(query: Select[Any], search: JobSearch, dialect: str) -> Select[Any]:
    """`query` of jobs, only those `search` selects."""
    exact = [
        (Job.owner, search.scope),
        (Job.project, search.project),
        (Job.status, search.status),
        (Job.sweep_id, search.sweep_id),
    ]
    query = query.where(*(column == value for column, value in exact if value is not None))
    if search.created_after is not None:
        query = query.where(Job.created_at >= search.created_after)
    if search.created_before is not None:
        query = query.where(Job.created_at < search.created_before)
    if search.id_prefix is not None:
        query = query.where(Job.id.startswith(search.id_prefix, autoescape=True))
    if search.tags:
        query = query.where(_tagged(search.tags, dialect))
    return query.where(*(_matches(condition, dialect) for condition in search.where))


def _tagged(tags: dict[str, str], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return type_coerce(Job.tags, JSONB).contains(tags)
    return and_(*(func.json_extract(Job.tags, f'$."{key}"') == value for key, value in tags.items()))


def _matches(condition: Condition, dialect: str) -> ColumnElement[bool]:
    """The rule in core/jobs/where.py's docstring, as SQL."""
    return _postgres_matches(condition) if dialect == "postgresql" else _sqlite_matches(condition)


def _postgres_matches(condition: Condition) -> ColumnElement[bool]:
    """One SQL/JSON path test of `spec::jsonb` (`@?`, which the GIN index on `spec::jsonb` answers for `=`):
    strict, so that a list is never unwrapped into its items, and a comparison of two types (a string with a
    number) is never true. `= null` is the negation of `!= null`: the value is there, not null."""
    if condition.value is None:
        test, negated = "!= null", condition.operator == "="
    else:
        comparison = "==" if condition.operator in ("=", "!=") else condition.operator
        test, negated = f"{comparison} {json.dumps(condition.value)}", condition.operator == "!="
    jsonpath = f"strict {_json_path(condition.path)} ? (@ {test})"
    found = cast(Job.spec, JSONB).bool_op("@?")(literal(jsonpath, JSONPATH))
    # Strict, a missing field makes `@?` null, not false: only its negation needs the coalesce (which the
    # index could not answer).
    return not_(func.coalesce(found, false())) if negated else found


def _json_path(path: tuple[str | int, ...]) -> str:
    """`$."model"."hidden_layers"[0]`, as both SQL/JSON paths and SQLite read it (names are identifiers: no
    quote to escape)."""
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f'."{step}"' for step in path)


def _sqlite_matches(condition: Condition) -> ColumnElement[bool]:
    """`json_type` says the value's type (NULL: not there), `json_extract` reads it."""
    path = _json_path(condition.path)
    kind, value = func.json_type(Job.spec, path), func.json_extract(Job.spec, path)
    number = case((kind.in_(("integer", "real")), value))
    if condition.operator in COMPARE:
        return COMPARE[condition.operator](number, condition.value)
    if condition.value is None:
        equal = func.coalesce(kind, "null") == "null"
    elif isinstance(condition.value, bool):
        equal = kind == ("true" if condition.value else "false")
    elif isinstance(condition.value, float):
        equal = func.coalesce(number == condition.value, false())
    else:
        equal = func.coalesce(and_(kind == "text", value == condition.value), false())
    return equal if condition.operator == "=" else not_(equal)


# --- order and keyset ------------------------------------------------------------------------------------------


def sort_keys(order: Order, dialect: str) -> list[ColumnElement[Any]]:
    """The keys the order sorts by, all one way, the last one unique: (created_at, id), or for a metric (a flag
    that puts the jobs without it last, the metric, id)."""
    if order.metric is None:
        return [Job.created_at.expression, Job.id.expression]
    metric = _best_metric(order.metric, dialect)
    missing_last = case((metric.is_(None), 0 if order.descending else 1), else_=1 if order.descending else 0)
    return [cast(missing_last, Integer), func.coalesce(metric, 0.0), Job.id.expression]


def _best_metric(name: str, dialect: str) -> ColumnElement[Any]:
    """The job's best-epoch value of the metric, if it is a number (else NULL: not yet trained, or not finite)."""
    if dialect == "postgresql":
        key = literal(name, String)
        is_number = func.json_typeof(Job.best_metrics.op("->")(key)) == "number"
        return case((is_number, cast(Job.best_metrics.op("->>")(key), Float)))
    json_path = f"$.{name}"
    is_number = func.json_type(Job.best_metrics, json_path).in_(("integer", "real"))
    return case((is_number, func.json_extract(Job.best_metrics, json_path)))


def encode(order: Order, keys: Sequence[Any]) -> str:
    """The cursor after the row whose sort keys are `keys`; newest first keeps the API's first cursor format."""
    if order == NEWEST_FIRST:
        return encode_cursor(keys[0], keys[1])
    return encode_keys(order.text, [key.isoformat() if isinstance(key, datetime) else key for key in keys])


def decode(order: Order, cursor: str) -> tuple[Any, ...]:
    """The sort keys a cursor of `order` holds (InvalidCursor for one of another order, or none of ours)."""
    if order == NEWEST_FIRST:
        return decode_cursor(cursor)
    keys = decode_keys(cursor, order.text)
    try:
        if order.metric is None:
            created, row_id = keys
            return datetime.fromisoformat(created), str(row_id)
        missing, value, row_id = keys
        return int(missing), float(value), str(row_id)
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("not a cursor this API returned") from exc

"""schemathesis against the service's own OpenAPI schema, on a real PostgreSQL database and Redis:
no answer is a server error, and every answer matches the schema (status, headers, body)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import ignored_auth
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from core.settings import Settings
from service.app import create_app
from tests.fixtures import bearer, create_key

EXAMPLES = 20  # per operation: enough to reach each validation branch, few enough for CI

# A request the schema allows may still be refused with a 400 or 422 for what JSON Schema cannot say: a
# `cursor` this API did not issue, a file that is not a table, splits that add up to too much, a loss of
# the other task. Every other check (no 5xx, status codes, headers, bodies) is the default and strict.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]
"""
)
# The schema is the app's own; building an app opens nothing (that happens in its lifespan).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=CONFIG)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    """A fresh app on this test's own database; schemathesis starts its lifespan, this stops it."""
    yield create_app(settings)
    shutdown_lifespans()


class AdminKey:
    """Every generated request carries this test's admin key, so every route (the keys routes too) is
    reached past authentication; schemathesis then leaves the Authorization header alone."""

    key = ""

    def get(self, _case: schemathesis.Case, _context: Any) -> str:
        return AdminKey.key

    def set(self, case: schemathesis.Case, data: str, _context: Any) -> None:
        case.headers.update(bearer(data))


schemathesis.auth(refresh_interval=None)(AdminKey)


@pytest.fixture
def admin_key(database_url: str) -> Iterator[None]:
    AdminKey.key = create_key(database_url, "fuzz-admin", admin=True)
    yield
    AdminKey.key = ""


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_api_never_answers_500_and_matches_its_schema(
    case: schemathesis.Case, app: FastAPI, admin_key: None
) -> None:
    # The check that a route refuses requests without a key cannot call an ASGI app here;
    # tests/test_tenants.py makes it for every /v1 route.
    case.call_and_validate(app=app, excluded_checks=[ignored_auth])

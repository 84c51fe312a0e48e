"""The dashboard's files as the API serves them (no browser): addresses, types, caching, packaging."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from service.ui.router import ASSETS, STATIC_DIR
from tests.fixtures import ROOT


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        yield client


@pytest.mark.parametrize("path", ["/ui", "/ui/new", "/ui/jobs/some-id", "/ui/compare?ids=a,b", "/ui/sweeps/x"])
def test_every_dashboard_address_serves_the_page(embedded: TestClient, path: str) -> None:
    response = embedded.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert '<script type="module" src="/ui/static/dashboard.js">' in response.text


def test_the_server_root_leads_to_the_dashboard(embedded: TestClient) -> None:
    response = embedded.get("/", follow_redirects=False)

    assert response.status_code == 307
    assert response.headers["location"] == "/ui"


def test_assets_are_served_with_their_types_and_revalidated_cheaply(embedded: TestClient) -> None:
    for name, media_type in ASSETS.items():
        response = embedded.get(f"/ui/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(media_type)
        assert response.headers["cache-control"] == "no-cache"
        again = embedded.get(f"/ui/static/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize("name", ["index.html", "router.py", "..%2Frouter.py", "missing.js"])
def test_only_listed_assets_are_served(embedded: TestClient, name: str) -> None:
    response = embedded.get(f"/ui/static/{name}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_dashboard_stays_out_of_the_api_schema(embedded: TestClient) -> None:
    paths = embedded.get("/openapi.json").json()["paths"]

    assert not [path for path in paths if path == "/" or path.startswith("/ui")]


def test_a_non_editable_install_ships_every_dashboard_file() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["service.ui"]
    files = [path.relative_to(STATIC_DIR.parent).as_posix() for path in STATIC_DIR.iterdir()]

    assert {"index.html", *ASSETS} == {path.name for path in STATIC_DIR.iterdir()}
    assert all(any(fnmatch(name, pattern) for pattern in patterns) for name in files)

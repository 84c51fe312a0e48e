"""The API reference in a real browser with no network but the server's: /docs (Swagger UI) lists every
operation and opens one, /redoc renders, and the dashboard's "API reference" link leads there. Headless
Chromium resolves no host name, so a page that needed a CDN would stay blank."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from core.settings import Settings
from service.app import create_app
from tests.fixtures import wait_for
from tests.ui.test_dashboard import start_chromium

# Every host name fails to resolve; the server is reached by its address.
NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
CDN_SCRIPT = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
# ReDoc's footer asks Redocly's CDN for its logo and leaves the logo out when that fails: nothing is missing.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[Chrome]:
    driver = start_chromium(tmp_path, NO_NETWORK)
    try:
        yield driver
    finally:
        driver.quit()


# What a page loads: the attributes that name a file, and Swagger UI's `url: '…'` for the schema.
LOADS = re.compile(r"""(?:src|href|spec-url)="([^"]+)"|url: '([^']+)'""")


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_the_reference_pages_load_only_files_this_server_serves(tmp_path: Path, page: str, script: str) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        urls = {first or second for first, second in LOADS.findall(client.get(page).text)}

        assert {"/openapi.json", f"/static/docs/{script}"} <= urls
        for url in urls:
            assert url.startswith("/"), url
            assert client.get(url).status_code == 200, url


def swagger_ids(schema: dict[str, Any]) -> set[str]:
    """The element id Swagger UI gives each operation's block: `operations-<first tag>-<operationId>`."""
    return {
        f"operations-{(operation.get('tags') or ['default'])[0]}-{operation['operationId']}"
        for item in schema["paths"].values()
        for operation in item.values()
    }


def fetched_elsewhere(driver: Chrome, base_url: str) -> set[str]:
    """What the page asked for (loaded or not) from anywhere but the server."""
    urls: list[str] = driver.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    return {url for url in urls if not url.startswith(f"{base_url}/")}


def test_the_api_reference_works_with_no_network(api_server: httpx.Client, offline_browser: Chrome) -> None:
    base_url = str(api_server.base_url).rstrip("/")
    schema = api_server.get("/openapi.json").json()
    browser = offline_browser

    # The browser really is cut off: the CDN that FastAPI's own pages use cannot be reached.
    reached_cdn = browser.execute_async_script(
        "fetch(arguments[0], {mode: 'no-cors'}).then(() => arguments[1](true), () => arguments[1](false))",
        CDN_SCRIPT,
    )
    assert reached_cdn is False

    # The dashboard's header links to the reference.
    browser.get(f"{base_url}/ui")
    wait_for(lambda: browser.find_elements(By.LINK_TEXT, "API reference"), 10, "the dashboard's header")
    browser.find_element(By.LINK_TEXT, "API reference").click()
    wait_for(lambda: browser.current_url == f"{base_url}/docs", 10, "/docs after the dashboard's link")

    expected = swagger_ids(schema)
    assert "operations-jobs-create_job" in expected and len(expected) == sum(map(len, schema["paths"].values()))

    def listed() -> set[str]:
        return {block.get_attribute("id") or "" for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")}

    wait_for(lambda: listed() >= expected, 20, "every operation listed in Swagger UI")
    create_job = browser.find_element(By.ID, "operations-jobs-create_job")
    assert create_job.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text == "POST"
    assert create_job.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.replace("\u200b", "") == "/v1/jobs"
    create_job.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait_for(lambda: "digits-dropout-0.5" in create_job.text, 10, "the example spec in the opened operation")
    assert fetched_elsewhere(browser, base_url) == set()

    browser.get(f"{base_url}/redoc")
    section = '[data-section-id="operation/create_job"]'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, section), 20, "ReDoc's section on create_job")
    assert "Submit a training job" in browser.find_element(By.CSS_SELECTOR, section).text
    assert fetched_elsewhere(browser, base_url) <= {REDOC_LOGO}

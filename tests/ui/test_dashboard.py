"""The dashboard in a real browser: headless Chromium drives /ui against `steadyfit api` (which needs API keys)
and `steadyfit worker` on PostgreSQL and Redis. Without a key the page asks for one; the test enters alice's key
in the header, as a user would, and the page names her. It submits a job through the form, watches its curves
grow while it trains (streamed, then polled), cancels it, reads a sweep's leaderboard where the server has
sweeps, follows three jobs to their end in the compare view, and forgets the key. Screenshots land in the
test's tmp dir; the last one is also copied to /tmp/steadyfit-ui.png. Against a server without keys, the page's
own requests still write, and a form of another site does not."""

from __future__ import annotations

import base64
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from core.db.engine import Database
from core.db.models import Analysis, EpochMetrics, Job
from core.settings import Settings
from core.spec.job import JobSpec
from core.states import AnalysisKind, AnalysisStatus
from tests.fixtures import (
    LANDSCAPE_RESULT,
    Process,
    api_process,
    bearer,
    finish_as_a_worker,
    free_port,
    path_body,
    settings_env,
    tiny_spec,
    wait_for,
    wait_for_job,
    wait_until_healthy,
)

LAST_SCREENSHOT = Path("/tmp/steadyfit-ui.png")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1360,900",
]
MISSING_BROWSER = (
    "the dashboard test needs Debian's `chromium` and `chromium-driver` (chromedriver): "
    "`apt-get install -y chromium chromium-driver`, which `make test` runs by itself as root"
)

# Trains until it is cancelled, so the test can watch it while it runs however fast the machine is.
ENDLESS = tiny_spec(
    name="digits-live",
    dataset={"name": "digits"},
    model={"hidden_layers": [64], "dropout": 0.2},
    regularization={"l2": 0.0001},
    training={"epochs": 100_000, "batch_size": 32, "seed": 3},
)

# A grid of two trials, queued behind the study, for the leaderboard (on a server that has sweeps).
SWEEP = {
    "name": "iris-dropout",
    "base": tiny_spec(),
    "parameters": {"model.dropout": {"values": [0.0, 0.5]}},
    "algorithm": "grid",
    "objective": {"metric": "val_loss", "mode": "min"},
    "max_parallel": 2,
}


def dropout_study(rate: float) -> dict[str, Any]:
    return tiny_spec(
        name=f"digits-dropout-{rate}",
        dataset={"name": "digits"},
        model={"hidden_layers": [64], "dropout": rate},
        optimizer={"name": "adam", "lr": 0.005},
        training={"epochs": 40, "batch_size": 64, "seed": 7},
        early_stopping={"monitor": "val_loss", "patience": 3},
    )


def start_chromium(tmp_path: Path, *flags: str) -> Chrome:
    """Headless Chromium with its profile and driver log in `tmp_path`, and `flags` added to ours."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail(MISSING_BROWSER)
    options = Options()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, *flags, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return Chrome(options=options, service=Service(chromedriver, log_output=str(tmp_path / "driver.log")))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chrome]:
    driver = start_chromium(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()


class Dashboard:
    """What the test reads from and does to the page, in the words of the page."""

    def __init__(self, driver: Chrome, base_url: str, shots: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots = shots
        shots.mkdir()

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def plotted(self, chart: str) -> dict[str, int]:
        """Points drawn per series (by its label) in the chart titled `chart`."""
        points: dict[str, int] = self.js(
            "const out = {};"
            "for (const p of document.querySelectorAll(`[data-chart='${arguments[0]}'] path[data-series]`))"
            "  out[p.dataset.series] = Number(p.dataset.points);"
            "return out;",
            chart,
        )
        return points

    def job_status(self) -> str:
        return str(self.js("return document.querySelector('h1 .status')?.textContent ?? ''"))

    def live_mode(self) -> str:
        return str(self.js("return document.getElementById('main').dataset.live ?? ''"))

    def main_text(self) -> str:
        return str(self.driver.find_element(By.ID, "main").text)

    def whoami(self) -> str:
        """Who the header says the stored key acts for ("" while it names no one)."""
        return str(self.js("return document.getElementById('whoami')?.textContent ?? ''"))

    def stored_key(self) -> str | None:
        key: str | None = self.js("return localStorage.getItem('steadyfit.apiKey')")
        return key

    def enter_key(self, key: str) -> None:
        """Paste a key into the header's key box and use it, as a user would."""
        box = self.driver.find_element(By.ID, "api-key")
        assert box.get_attribute("type") == "password"
        box.send_keys(key)
        self.driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()

    def screenshot(self, name: str) -> Path:
        """The whole page, not just the part in the window."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path = self.shots / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def script_errors(self) -> list[str]:
        """Console errors other than the expected 404 of an API without sweeps."""
        entries = self.driver.get_log("browser")
        return [e["message"] for e in entries if e["level"] == "SEVERE" and "/v1/sweeps" not in e["message"]]


def watch_curve_grow(page: Dashboard) -> None:
    """Two reads of the loss chart while the job is running; the second has more points."""

    def running_with_points() -> int:
        points = page.plotted("Loss").get("validation", 0)
        return points if page.job_status() == "running" and points >= 1 else 0

    first = wait_for(running_with_points, 90, "the loss chart of a running job")
    wait_for(lambda: running_with_points() > first, 30, f"more than {first} points while running")


def test_the_dashboard_follows_a_live_job_and_compares_three(
    api_server: httpx.Client, api_key: str, worker: Process, browser: Chrome, tmp_path: Path
) -> None:
    page = Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots")
    has_stream = "/v1/jobs/{job_id}/events" in api_server.get("/openapi.json").json()["paths"]
    has_sweeps = api_server.get("/v1/sweeps").status_code == 200  # api_server sends alice's key

    # Without a key the server refuses the dashboard's calls: the page asks for one instead of the job list.
    page.open("/ui")
    wait_for(lambda: "API key needed" in page.main_text(), 10, "the key prompt")
    assert "Enter yours in the API key box" in page.main_text()
    assert page.stored_key() is None and page.whoami() == ""
    page.screenshot("0-key-prompt")
    refusals = page.script_errors()  # the browser logs each refused call
    assert all(" 401 " in message for message in refusals), refusals

    page.enter_key(api_key)
    wait_for(lambda: "No jobs yet" in page.main_text(), 10, "the empty job list")
    wait_for(lambda: page.whoami() == "alice", 10, "the key's owner in the header")
    assert page.stored_key() == api_key
    wait_for(lambda: page.js("return document.body.dataset.sweeps"), 10, "the sweeps probe")
    assert browser.find_element(By.CSS_SELECTOR, "[data-nav=sweeps]").is_displayed() == has_sweeps

    # Submit through the form; the page moves on to the new job.
    page.open("/ui/new")
    # The view is drawn once the page has checked the key (GET /v1/me), so wait for it.
    spec_box = wait_for(lambda: browser.find_elements(By.ID, "spec"), 10, "the spec editor")[0]
    wait_for(lambda: spec_box.get_attribute("value"), 10, "the example spec in the form")
    page.js("arguments[0].value = arguments[1]", spec_box, json.dumps(ENDLESS))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "/ui/jobs/" in browser.current_url, 10, "the job page after submitting")
    live_id = browser.current_url.rsplit("/", 1)[-1]
    assert api_server.get(f"/v1/jobs/{live_id}").json()["name"] == "digits-live"
    study_ids = [api_server.post("/v1/jobs", json=dropout_study(rate)).json()["id"] for rate in (0.0, 0.2, 0.5)]
    sweep_id = api_server.post("/v1/sweeps", json=SWEEP).json()["id"] if has_sweeps else None

    watch_curve_grow(page)
    assert page.live_mode() == ("stream" if has_stream else "poll")
    wait_for(lambda: page.plotted("Loss").get("validation", 0) >= 10, 60, "ten epochs, for a telling picture")
    page.screenshot("1-live-job")
    page.open(f"/ui/jobs/{live_id}?live=poll")  # the polling path, on its own
    watch_curve_grow(page)
    assert page.live_mode() == "poll"

    page.open("/ui")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-job='{live_id}'][data-status=running]"), 10, "")
    listed = {row.get_attribute("data-job") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-job]")}
    assert {live_id, *study_ids} <= listed
    page.screenshot("2-job-list")

    page.open(f"/ui/jobs/{live_id}")
    wait_for(lambda: page.job_status() == "running", 10, "the running job's page")
    browser.find_element(By.XPATH, "//button[text()='Cancel job']").click()
    wait_for(lambda: page.job_status() == "cancelled", 20, "the job to be cancelled")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-chart=Loss] .marker.stop"), 10, "the stop mark")

    open_sweeps(page, sweep_id)

    # The compare view, opened while the study trains, follows all three jobs to their end.
    page.open("/ui/compare?ids=" + ",".join(study_ids))
    names = ["digits-dropout-0.0", "digits-dropout-0.2", "digits-dropout-0.5"]
    wait_for(lambda: set(page.plotted("Validation loss")) == set(names), 10, "three series in the compare view")
    jobs = [wait_for_job(api_server, job_id) for job_id in study_ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    finished = {job["name"]: job["epochs_completed"] for job in jobs}
    wait_for(lambda: page.plotted("Validation loss") == finished, 10, "every epoch of the three jobs")
    legend = browser.find_element(By.CSS_SELECTOR, ".legend.big").text
    assert all(name in legend for name in names) and "model.dropout" in legend

    page.open(f"/ui/jobs/{study_ids[2]}")
    wait_for(lambda: page.live_mode() == "done", 10, "a finished job's page")
    assert browser.find_elements(By.CSS_SELECTOR, "[data-chart=Loss] .marker.best")
    assert browser.find_elements(By.CSS_SELECTOR, "[data-chart=Loss] .marker.stop")
    page.screenshot("4-finished-job")

    page.open("/ui/compare?ids=" + ",".join(study_ids))
    wait_for(lambda: page.plotted("Validation loss") == finished, 10, "the finished comparison")
    shutil.copy(page.screenshot("5-compare"), LAST_SCREENSHOT)
    assert page.script_errors() == []

    # Forgetting the key brings the prompt back.
    browser.find_element(By.ID, "forget-key").click()
    wait_for(lambda: "API key needed" in page.main_text(), 10, "the key prompt after forgetting the key")
    assert page.stored_key() is None and page.whoami() == ""


def test_the_job_page_streams_on_across_the_streams_lifetime(
    settings: Settings, api_key: str, worker: Process, browser: Chrome, tmp_path: Path
) -> None:
    """With a one-second stream lifetime, the page reconnects after each `reconnect` event and keeps streaming
    (it would fall back to polling after three failures), then holds every epoch once."""
    env = {**settings_env(settings), "STEADYFIT_MAX_STREAM_SECONDS": "1"}
    with (
        api_process(env, tmp_path / "api.log") as base_url,
        httpx.Client(base_url=base_url, timeout=10, headers=bearer(api_key)) as http,
    ):
        page = Dashboard(browser, base_url, tmp_path / "screenshots")
        store_key = f"localStorage.setItem('steadyfit.apiKey', {json.dumps(api_key)})"  # before the page's scripts
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": store_key})
        job_id = http.post("/v1/jobs", json=ENDLESS).json()["id"]
        page.open(f"/ui/jobs/{job_id}")
        watch_curve_grow(page)
        time.sleep(5)  # five lifetimes of the stream, more than the three failures the page tolerates
        assert page.live_mode() == "stream"
        watch_curve_grow(page)
        http.post(f"/v1/jobs/{job_id}/cancel")
        job = wait_for_job(http, job_id, stall=30)
        wait_for(lambda: page.job_status() == "cancelled", 20, "the job to be cancelled")
        wait_for(lambda: page.plotted("Loss").get("validation") == job["epochs_completed"], 10, "every epoch once")
        assert page.script_errors() == []


def open_sweeps(page: Dashboard, sweep_id: str | None) -> None:
    """A sweep's leaderboard lists its trials, trained or not yet; without sweeps the page says so."""
    page.open("/ui/sweeps" + (f"/{sweep_id}" if sweep_id else ""))
    if sweep_id:
        wait_for(lambda: len(page.driver.find_elements(By.CSS_SELECTOR, "tr[data-trial]")) == 2, 10, "two trials")
        page.screenshot("3-sweep-leaderboard")
    else:
        wait_for(lambda: "not available" in page.driver.find_element(By.ID, "main").text, 10, "the no-sweeps notice")


# Two finished jobs whose specs differ in structure (one has no early stopping at all), one with a sweep's
# kind of L2, and with train-validation gaps of both signs: -2.7 points and +2.8 points.
UNSTOPPED = tiny_spec(name="no-early-stopping", regularization={"l2": 4.405970312659304e-05})
PATIENT = tiny_spec(
    name="patience-5", regularization={"l2": 0.0001}, early_stopping={"monitor": "val_loss", "patience": 5}
)
BEST = {
    "no-early-stopping": {"train_accuracy": 0.951, "val_accuracy": 0.978, "val_loss": 0.058},
    "patience-5": {"train_accuracy": 1.0, "val_accuracy": 0.972, "val_loss": 0.077},
}


T = TypeVar("T")


def written(settings: Settings, write: Callable[[Any], T]) -> T:
    """What `write` returns, having written its rows to the test's database and committed them."""
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        result = write(session)
    database.dispose()
    return result


def signed_in(page: Dashboard, api_key: str) -> Dashboard:
    """The dashboard with `api_key` entered at its prompt (the refused calls before it cleared from the log)."""
    page.open("/ui")
    wait_for(lambda: "API key needed" in page.main_text(), 10, "the key prompt")
    page.script_errors()
    page.enter_key(api_key)
    return page


def finished_job(session: Any, spec: dict[str, Any]) -> str:
    """A succeeded job of alice's with three epochs, the second the best, written as a worker would."""
    job = Job(
        id=str(uuid.uuid4()),
        owner="alice",
        name=spec["name"],
        status="succeeded",
        task="classification",
        spec=JobSpec.model_validate(spec).model_dump(mode="json"),
        epochs_completed=3,
        best_epoch=2,
        best_metrics=BEST[spec["name"]],
        test_metrics={"accuracy": 0.97},
        stop_reason="max_epochs",
        attempts=1,
    )
    session.add(job)
    session.flush()
    for epoch in (1, 2, 3):
        best = BEST[spec["name"]]
        metrics = {**best, "train_loss": 0.1 * (4 - epoch), "val_loss": best["val_loss"] + abs(epoch - 2) / 100}
        session.add(EpochMetrics(job_id=job.id, epoch=epoch, metrics={**metrics, "lr": 0.01}))
    return job.id


def test_the_dashboard_labels_differences_gaps_numbers_and_axes_truly(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    unstopped, patient = written(settings, lambda db: (finished_job(db, UNSTOPPED), finished_job(db, PATIENT)))
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)
    wait_for(lambda: "no-early-stopping" in page.main_text(), 10, "the job list")
    assert "L2 4.41e-5" in page.main_text() and "0.0000440" not in page.main_text()

    page.open(f"/ui/compare?ids={unstopped},{patient}")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".legend.big li"), 10, "the compare legend")
    wait_for(lambda: "2.8 %" in page.main_text(), 10, "the compare table")
    # Read in one script: the view redraws itself while it polls.
    first, second = page.js("return [...document.querySelectorAll('.legend.big li')].map((li) => li.innerText)")
    assert "undefined" not in page.main_text()
    assert "regularization.l2 = 4.41e-5" in first and "early_stopping = default" in first
    assert "early_stopping.patience = 5" in second and "regularization.l2 = 1e-4" in second
    assert "model.dropout" not in first + second  # the same in both: not a difference
    assert "stopping_threshold" not in second  # left out of one spec, null in the other: the default in both
    gaps = page.js("return [...document.querySelectorAll('tbody tr')].map((row) => row.cells[6].innerText)")
    assert gaps == ["\N{MINUS SIGN}2.7 %", "+2.8 %"]
    axis_titles = page.js("return [...document.querySelectorAll('.chart .axis-title')].map((t) => t.textContent)")
    assert axis_titles and set(axis_titles) == {"epoch"}
    drawn = "return document.querySelector('.parallel-slot img')?.src ?? ''"
    assert wait_for(lambda: page.js(drawn), 20, "the parallel coordinates").startswith("data:image/svg+xml")
    page.screenshot("compare-differences")

    page.open(f"/ui/jobs/{unstopped}")
    wait_for(lambda: "val gap" in page.main_text(), 10, "the job's figures")
    assert "\N{MINUS SIGN}2.7 %" in page.main_text() and "L2 4.41e-5" in page.main_text()
    assert page.script_errors() == []


# Run in the dashboard's page: what its own requests (same origin, no key) get from a server without keys.
SUBMIT_AND_CANCEL = """
const done = arguments[arguments.length - 1];
(async () => {
  const submitted = await fetch("/v1/jobs", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(arguments[0]),
  });
  const job = await submitted.json();
  const cancelled = await fetch(`/v1/jobs/${job.id}/cancel`, {method: "POST"});
  done([submitted.status, cancelled.status, (await cancelled.json()).status]);
})().catch((error) => done(String(error)));
"""


def test_without_keys_the_dashboard_writes_and_a_form_of_another_site_cannot(
    browser: Chrome, settings: Settings, tmp_path: Path
) -> None:
    """Real Chromium, real `steadyfit api --auth off`: the browser's own Sec-Fetch-Site and Origin headers let the
    dashboard's requests through, and make a form on another page (a data: URL, an opaque origin) a 403."""
    port = free_port()
    env = {**settings_env(settings), "STEADYFIT_AUTH": "off"}
    api = Process(["api", "--port", str(port)], env, tmp_path / "api.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, api)
        browser.get(f"{base_url}/ui")
        own = browser.execute_async_script(SUBMIT_AND_CANCEL, tiny_spec())
        victim = httpx.post(f"{base_url}/v1/jobs", json=tiny_spec()).json()
        form = f"<form method=post action='{base_url}/v1/jobs/{victim['id']}/cancel'></form>"
        browser.get("data:text/html," + quote(form + "<script>document.forms[0].submit()</script>"))
        wait_for(lambda: browser.current_url.endswith("/cancel"), 30, "the form to be sent")
        answer = json.loads(browser.find_element(By.TAG_NAME, "body").text)
        after = httpx.get(f"{base_url}/v1/jobs/{victim['id']}").json()
    finally:
        api.stop()

    assert own == [202, 202, "cancelled"]
    assert answer["status"] == 403 and "cross-site" in answer["detail"]
    assert after["status"] == "queued"


def test_the_path_page_draws_the_servers_chart_and_marks_the_chosen_points(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    path = api_server.post("/v1/paths", json=path_body()).json()
    for point, (loss, se) in zip(path["points"], [(0.62, 0.02), (0.55, 0.02), (0.50, 0.06)], strict=True):
        finish_as_a_worker(settings.resolved_database_url, point["job_id"], loss, se)
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)

    page.open(f"/ui/paths/{path['id']}")
    drawn = "const img = document.querySelector('img.path-chart'); return img && img.complete && img.naturalWidth"
    wait_for(lambda: page.js(drawn), 20, "the path chart")
    rows = page.js("return [...document.querySelectorAll('tr[data-point]')].map((r) => r.innerText)")
    assert len(rows) == 3 and rows[1].endswith("1-SE") and rows[2].endswith("best")
    assert "best 0.001 · 1-SE 0.01" in page.main_text()
    page.screenshot("path")
    assert page.script_errors() == []


def overfit_job(session: Any) -> str:
    """A succeeded job of alice's whose validation loss turns up at epoch 7 while its training loss falls."""
    train = [1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.08, 0.06]
    val = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6, 0.65]
    job = Job(
        id=str(uuid.uuid4()),
        owner="alice",
        name="wide",
        status="succeeded",
        task="classification",
        spec=JobSpec.model_validate(tiny_spec(name="wide", training={"epochs": 11})).model_dump(mode="json"),
        epochs_completed=len(train),
        best_epoch=6,
        best_metrics={"val_loss": 0.44},
        test_metrics={"accuracy": 0.8},
        stop_reason="max_epochs",
        attempts=1,
    )
    session.add(job)
    session.flush()
    for epoch, (t, v) in enumerate(zip(train, val, strict=True), start=1):
        metrics = {"train_loss": t, "data_loss": t, "val_loss": v, "val_loss_se": 0.01, "baseline_val_loss": 0.69}
        session.add(EpochMetrics(job_id=job.id, epoch=epoch, metrics=metrics))
    return job.id


def test_the_job_page_shows_its_diagnosis_marks_the_onset_and_tries_a_suggestion(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    job_id = written(settings, overfit_job)
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)

    page.open(f"/ui/jobs/{job_id}")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-verdict=overfitting]"), 10, "the verdict")
    assert "Overfitting from epoch 7" in page.main_text()
    onset = "return [...document.querySelectorAll('.marker.onset text')].map((t) => t.textContent)"
    wait_for(lambda: page.js(onset), 10, "the onset marked on the curves")
    assert set(page.js(onset)) == {"overfitting from 7"}
    page.screenshot("diagnosis")

    browser.find_element(By.CSS_SELECTOR, "button[data-try='1']").click()
    wait_for(lambda: job_id not in page.js("return location.pathname"), 10, "the new job's page")
    tried = api_server.get(f"/v1/jobs/{page.js('return location.pathname').rsplit('/', 1)[1]}").json()
    assert (tried["spec"]["model"]["dropout"], tried["spec"]["regularization"]["l2"]) == (0.3, 0.001)
    assert tried["name"] == "wide · try 1"
    assert page.script_errors() == []


def test_the_job_page_shows_the_landscape_the_server_draws(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    def with_a_landscape(session: Any) -> str:
        job_id = overfit_job(session)
        done = AnalysisStatus.SUCCEEDED
        session.add(Analysis(job_id=job_id, kind=AnalysisKind.LANDSCAPE, status=done, result=LANDSCAPE_RESULT))
        return job_id

    job_id = written(settings, with_a_landscape)
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)

    page.open(f"/ui/jobs/{job_id}")
    drawn = (
        "const img = document.querySelector('.analysis img.path-chart'); return img && img.complete && img.naturalWidth"
    )
    wait_for(lambda: page.js(drawn), 20, "the landscape chart")
    assert page.script_errors() == []


def test_the_models_page_lists_the_owners_models(
    api_server: httpx.Client, api_key: str, browser: Chrome, tmp_path: Path
) -> None:
    from safetensors.torch import save

    from core.spec.job import ModelSpec
    from workers.training.model import build_model

    block = {"hidden_layers": [8]}
    weights = save(dict(build_model(ModelSpec.model_validate(block), (4,), 3).state_dict()))
    form = {"model": json.dumps(block), "name": "iris start"}
    uploaded = api_server.post("/v1/models", files={"file": ("w.safetensors", weights)}, data=form)
    assert uploaded.status_code == 201, uploaded.text
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)

    page.open("/ui/models")
    wait_for(lambda: page.js("return document.querySelectorAll('tr[data-model]').length") == 1, 20, "the model row")
    row = page.js("return document.querySelector('tr[data-model]').innerText")
    assert "iris start" in row and "upload" in row and "8 → 3" in row and "67" in row
    page.screenshot("models")
    assert page.script_errors() == []


def test_a_finished_job_reruns_as_it_is_or_with_the_changes_made_on_the_form(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    job_id = written(settings, lambda db: finished_job(db, UNSTOPPED))
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)

    page.open(f"/ui/jobs/{job_id}")
    wait_for(lambda: page.js("return document.querySelector('[data-rerun]')"), 20, "the rerun button")
    page.js("document.querySelector('[data-rerun]').click()")
    wait_for(lambda: job_id not in page.driver.current_url, 20, "the rerun's page")
    rerun = api_server.get(f"/v1/jobs/{page.driver.current_url.rsplit('/', 1)[1]}").json()
    source = api_server.get(f"/v1/jobs/{job_id}").json()["spec"]
    assert rerun["rerun_of"] == job_id and rerun["spec"] == {**source, "loss": rerun["spec"]["loss"]}

    page.open(f"/ui/new?from={job_id}")
    area = "return document.getElementById('spec')?.value ?? ''"  # the form is drawn after the page loads
    wait_for(lambda: '"no-early-stopping"' in page.js(area), 20, "the job's spec in the form")
    page.js(
        "const area = document.getElementById('spec'); const spec = JSON.parse(area.value);"
        "spec.model.dropout = 0.25; delete spec.regularization; area.value = JSON.stringify(spec);"
        "area.form.requestSubmit();"
    )
    wait_for(lambda: "/ui/jobs/" in page.driver.current_url, 20, "the changed rerun's page")
    changed = api_server.get(f"/v1/jobs/{page.driver.current_url.rsplit('/', 1)[1]}").json()
    assert changed["rerun_of"] == job_id and changed["spec"]["model"]["dropout"] == 0.25
    assert changed["spec"]["regularization"]["l2"] == 0.0  # removed on the form: the default again
    assert page.script_errors() == []


def test_the_job_page_shows_the_jobs_log_and_opens_it_on_an_error(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from core.jobs import logs

    def failed_with_a_log(session: Any) -> str:
        job_id = finished_job(session, UNSTOPPED)
        now = datetime.now(UTC)
        lines = [(now, "INFO", "workers.runner", "epoch 1: train_loss 0.5"), (now, "ERROR", "workers.runner", "boom")]
        logs.append(session, job_id, lines)
        return job_id

    job_id = written(settings, failed_with_a_log)
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)
    page.open(f"/ui/jobs/{job_id}")
    text = "return document.querySelector('[data-log]')?.textContent ?? ''"
    wait_for(lambda: "boom" in page.js(text), 20, "the log lines")
    assert "INFO epoch 1: train_loss 0.5" in page.js(text)
    assert page.js("return document.querySelector('[data-log]').closest('details').open") is True
    assert page.script_errors() == []


def test_a_sweeps_page_ranks_its_parameters_by_importance_beside_the_trials_parallel_coordinates(
    api_server: httpx.Client, api_key: str, settings: Settings, browser: Chrome, tmp_path: Path
) -> None:
    from core.jobs import repository
    from core.states import JobStatus, StopReason

    grid = {"model.dropout": {"values": [0.0, 0.2, 0.5]}, "optimizer.lr": {"values": [0.01, 0.1]}}
    body = {**SWEEP, "parameters": grid, "max_trials": None, "max_parallel": 6}
    sweep_id = api_server.post("/v1/sweeps", json=body).json()["id"]
    trials = api_server.get(f"/v1/sweeps/{sweep_id}/trials").json()["items"]
    assert len(trials) == 6

    def trained(session: Any) -> None:  # as workers would: the loss follows the dropout, barely the lr
        for trial in trials:
            best = {"val_loss": 1.0 + trial["params"]["model.dropout"] + trial["params"]["optimizer.lr"] / 100}
            assert repository.claim(session, trial["job_id"], "w", lease_seconds=60, max_attempts=3) is not None
            repository.record_epoch(session, trial["job_id"], "w", 1, best, 1, best)
            done = {"stop_reason": StopReason.MAX_EPOCHS, "epochs_completed": 1, "best_epoch": 1, "best_metrics": best}
            assert repository.finish(session, trial["job_id"], "w", JobStatus.SUCCEEDED, **done)

    written(settings, trained)
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)
    page.open(f"/ui/sweeps/{sweep_id}")
    bars = "return [...document.querySelectorAll('[data-importance] [data-parameter]')].map(e => e.dataset.parameter)"
    assert wait_for(lambda: page.js(bars), 30, "the importance bars") == ["model.dropout", "optimizer.lr"]
    assert page.js("return document.querySelector('.sweep-insight img').src").startswith("data:image/svg+xml")
    page.screenshot("sweep-importance")
    assert page.script_errors() == []


def test_the_job_list_chooses_a_project_and_filters_by_tags_and_spec_values(
    api_server: httpx.Client, api_key: str, browser: Chrome, tmp_path: Path
) -> None:
    for name, project, team, dropout in [
        ("red-low", "vision", "red", 0.1),
        ("red-high", "vision", "red", 0.4),
        ("blue-high", "vision", "blue", 0.4),
        ("elsewhere", "churn", "red", 0.4),
    ]:
        body = {**tiny_spec(name=name, model={"hidden_layers": [8], "dropout": dropout}), "project": project}
        assert api_server.post("/v1/jobs", json={**body, "tags": {"team": team}}).status_code == 202
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)

    def listed() -> list[str]:
        titles = "tr[data-job] td a[href^='/ui/jobs/']"
        return list(page.js(f'return [...document.querySelectorAll("{titles}")].map(a => a.textContent)'))

    wait_for(lambda: len(listed()) == 4, 20, "every job listed")
    # Each row shows its project and tags as chips; a tag's chip filters the list by it.
    assert page.js("return document.querySelectorAll('.chip[data-tag=\"team:red\"]').length") == 3
    page.js("document.querySelector('.chip[data-tag=\"team:blue\"]').click()")
    wait_for(lambda: listed() == ["blue-high"], 20, "the jobs tagged blue")
    page.open("/ui")
    wait_for(lambda: len(listed()) == 4, 20, "every job listed again")
    wait_for(lambda: page.js("return document.querySelectorAll('#project option').length") == 3, 20, "the projects")
    page.js("document.querySelector('#project').value = 'vision'")
    page.js("document.querySelector('#search').value = 'team:red model.dropout>=0.2'")
    page.js("document.querySelector('form.search button').click()")
    wait_for(lambda: listed() == ["red-high"], 20, "the vision jobs tagged red with dropout 0.2 or more")
    assert "project=vision" in page.driver.current_url
    page.screenshot("search")
    assert page.script_errors() == []

    page.js("document.querySelector('#search').value = 'model.dropout>=high'")
    page.js("document.querySelector('form.search button').click()")
    wait_for(lambda: "at character 16" in page.main_text(), 20, "the 422 naming the character")
    assert all("422" in error for error in page.script_errors())  # the browser logs each refused poll


def test_a_queued_jobs_page_shows_its_priority_and_its_place_as_the_queue_moves(
    api_server: httpx.Client, api_key: str, browser: Chrome, tmp_path: Path
) -> None:
    ahead = api_server.post("/v1/jobs", json=tiny_spec(name="ahead")).json()["id"]  # no worker: both wait
    waiting = api_server.post("/v1/jobs", json=tiny_spec(name="waiting", priority="low")).json()["id"]
    page = signed_in(Dashboard(browser, str(api_server.base_url).rstrip("/"), tmp_path / "screenshots"), api_key)
    page.open(f"/ui/jobs/{waiting}")
    wait_for(lambda: "place 2 in the queue" in page.main_text(), 20, "the job second in the queue")
    assert "Priority: low" in page.main_text()

    assert api_server.post(f"/v1/jobs/{ahead}/cancel").status_code == 202
    wait_for(lambda: "place 1 in the queue" in page.main_text(), 20, "the job first once the one ahead is cancelled")
    assert page.script_errors() == []

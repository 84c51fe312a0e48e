"""`steadyfit webhooks add|list|deliveries|rm` as a user runs them, and the Python client's `add_webhook`,
against a real `steadyfit api` process."""

from __future__ import annotations

import re

import httpx

from steadyfit import Client
from tests.test_cli import against, assert_one_line_error, steadyfit


def test_webhooks_are_added_listed_shown_and_removed_from_the_shell(api_server: httpx.Client) -> None:
    env = against(api_server)
    added = steadyfit(
        ["webhooks", "add", "https://example.com/in", "--events", "job.succeeded", "job.failed"], columns="200", **env
    )
    assert added.returncode == 0, added.stderr
    printed = re.search(r"(\S{36}) https://example.com/in .*\nsecret: (whsec_\w+)", added.stdout)
    assert printed is not None, added.stdout
    webhook_id, secret = printed.groups()
    assert "job.succeeded, job.failed" in added.stdout

    listed = steadyfit(["webhooks", "list"], columns="200", **env)
    assert webhook_id in listed.stdout and secret not in listed.stdout
    shown = steadyfit(["webhooks", "deliveries", webhook_id], columns="200", **env)
    assert shown.returncode == 0 and "event id" in shown.stdout

    assert steadyfit(["webhooks", "rm", webhook_id], **env).returncode == 0
    assert_one_line_error(steadyfit(["webhooks", "rm", webhook_id], **env), "404", f"no webhook `{webhook_id}`")
    refused = steadyfit(["webhooks", "add", "http://127.0.0.1/in", "--events", "job.failed"], **env)
    assert_one_line_error(refused, "422", "url", "127.0.0.1")


def test_a_threshold_webhook_is_added_from_its_written_form(api_server: httpx.Client) -> None:
    env = against(api_server)
    url, events = "https://example.com/in", ["--events", "metric.threshold"]
    added = steadyfit(["webhooks", "add", url, *events, "--threshold", "val_accuracy>=0.9"], columns="200", **env)
    assert added.returncode == 0, added.stderr
    assert "(metric.threshold val_accuracy >= 0.9)" in added.stdout
    [webhook] = api_server.get("/v1/webhooks").json()["items"]
    assert webhook["threshold"] == {"metric": "val_accuracy", "op": ">=", "value": 0.9}

    malformed = steadyfit(["webhooks", "add", url, *events, "--threshold", "val_accuracy=0.9"], **env)
    assert malformed.returncode == 2 and "METRIC OP VALUE" in malformed.stderr
    assert_one_line_error(steadyfit(["webhooks", "add", url, *events], **env), "422", "threshold")


def test_the_client_takes_a_threshold_written_or_as_an_object(api_server: httpx.Client) -> None:
    key = api_server.headers["Authorization"].split()[1]
    with Client(str(api_server.base_url), key) as api:
        written = api.add_webhook("https://example.com/in", ["metric.threshold"], "val_loss<0.25")
        as_object = api.add_webhook(
            "https://example.com/in", ["metric.threshold"], {"metric": "val_r2", "op": ">", "value": 0.8}
        )
    assert written.threshold is not None and as_object.threshold is not None
    assert written.threshold.model_dump() == {"metric": "val_loss", "op": "<", "value": 0.25}
    assert as_object.threshold.model_dump() == {"metric": "val_r2", "op": ">", "value": 0.8}

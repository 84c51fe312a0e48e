"""`steadyfit webhooks add|list|deliveries|rm` as a user runs them, against a real `steadyfit api` process."""

from __future__ import annotations

import re

import httpx

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

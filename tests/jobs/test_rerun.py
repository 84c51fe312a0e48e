"""Reruns and the reproducibility record: RFC 7386 merge patches as the RFC works them, and through a real
worker, a rerun that reproduces its source's metrics bit for bit with equal spec and data hashes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.jobs.service import merge_patch
from tests.fixtures import Process, bearer, create_key, tiny_spec, wait_for_job
from tests.test_cli import against, steadyfit

TIMING = ("epoch_seconds", "samples_per_second")


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_a_merge_patch_is_applied_as_rfc_7386_says(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def epochs(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items = http.get(f"/v1/jobs/{job_id}/metrics").json()["items"]
    return [{key: value for key, value in item.items() if key not in TIMING} for item in items]


def test_a_rerun_reproduces_its_metrics_bit_for_bit_and_records_what_it_ran_with(
    api_server: httpx.Client, worker: Process, database_url: str
) -> None:
    source = wait_for_job(api_server, api_server.post("/v1/jobs", json=tiny_spec()).json()["id"])
    assert source["status"] == "succeeded"
    assert source["spec_hash"].startswith("sha256:") and source["data_hash"].startswith("sha256:")
    environment = source["environment"]
    assert environment["device"].startswith("cpu") and environment["torch"].startswith("2.")
    assert {"steadyfit", "numpy", "python", "host", "portable_numerics"} <= set(environment)

    asked = api_server.post(f"/v1/jobs/{source['id']}/rerun")
    assert asked.status_code == 202 and asked.json()["rerun_of"] == source["id"]
    rerun = wait_for_job(api_server, asked.json()["id"])
    assert (rerun["spec_hash"], rerun["data_hash"]) == (source["spec_hash"], source["data_hash"])
    assert epochs(api_server, rerun["id"]) == epochs(api_server, source["id"])
    assert rerun["test_metrics"] == source["test_metrics"]

    changed = api_server.post(f"/v1/jobs/{source['id']}/rerun", json={"model": {"dropout": 0.3}, "name": "d3"})
    assert changed.status_code == 202
    assert changed.json()["spec"]["model"]["dropout"] == 0.3 and changed.json()["spec_hash"] != source["spec_hash"]
    assert changed.json()["spec"]["model"]["hidden_layers"] == source["spec"]["model"]["hidden_layers"]
    printed = steadyfit(
        ["rerun", source["id"][:8], "--set", "model.dropout=0.2", "--set", "name=cli"], **against(api_server)
    )
    assert printed.returncode == 0 and f"(a rerun of {source['id']})" in printed.stdout, printed.stderr
    by_cli = api_server.get(f"/v1/jobs/{printed.stdout.split()[1]}").json()
    assert by_cli["spec"]["model"]["dropout"] == 0.2 and by_cli["name"] == "cli"
    bad = api_server.post(f"/v1/jobs/{source['id']}/rerun", json={"model": {"dropout": 2}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "model.dropout"
    bob = bearer(create_key(database_url, "bob"))
    assert api_server.post(f"/v1/jobs/{source['id']}/rerun", headers=bob).status_code == 404

"""docker-compose.yml ships no default secret and publishes nothing but the API beyond this host."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures import ROOT

PUBLIC_SERVICES = {"api"}  # behind its API keys; everything else listens on loopback or not at all
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")  # ${NAME...}, not the escaped $$NAME


def services() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    result: dict[str, Any] = compose["services"]
    return result


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def test_every_variable_the_file_reads_is_required_with_a_message() -> None:
    references = REFERENCE.findall((ROOT / "docker-compose.yml").read_text())
    assert references
    for name, rest in references:
        assert rest.startswith(":?") and len(rest) > len(":?"), f"${{{name}{rest}}} has a default or no message"


def test_every_secret_comes_from_a_required_variable() -> None:
    checked = 0
    for service_name, service in services().items():
        for name, value in environment(service).items():
            embedded_password = re.search(r"://[^:/@]+:([^@]*)@", value)
            secret = value if SECRET_NAME.search(name) else embedded_password and embedded_password.group(1)
            if secret:
                checked += 1
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", secret), f"{service_name}.{name} = {value!r}"
    assert checked >= 5  # POSTGRES_PASSWORD, the database URL's, MinIO's, AWS's, Grafana's


def test_only_the_api_is_published_beyond_loopback() -> None:
    published = {name: service.get("ports", []) for name, service in services().items()}
    assert published["prometheus"] and published["grafana"]
    for name, ports in published.items():
        if name not in PUBLIC_SERVICES:
            for port in ports:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_env_example_names_every_required_variable_and_env_is_ignored() -> None:
    required = {name for name, _ in REFERENCE.findall((ROOT / "docker-compose.yml").read_text())}
    example = Path(ROOT / ".env.example").read_text()
    named = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    assert named == required
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def depends_on(name: str) -> dict[str, str]:
    """What a service waits for, and for what condition."""
    return {other: rule["condition"] for other, rule in (services()[name].get("depends_on") or {}).items()}


def waits_for(name: str) -> set[str]:
    """Every service `name` waits for, directly or through the ones it waits for."""
    found: set[str] = set()
    todo = list(depends_on(name))
    while todo:
        other = todo.pop()
        if other not in found:
            found.add(other)
            todo.extend(depends_on(other))
    return found


def test_the_migration_runs_before_the_api_and_the_worker_and_after_the_bucket_and_database() -> None:
    for name in ("api", "worker"):
        assert depends_on(name)["migrate"] == "service_completed_successfully"
        assert {"postgres", "redis", "minio-bucket"} <= waits_for(name)
    assert depends_on("migrate") == {
        "postgres": "service_healthy",
        "minio-bucket": "service_completed_successfully",
    }
    # Every service that stores artifacts in MinIO waits for its bucket.
    for name, service in services().items():
        if environment(service).get("STEADYFIT_ARTIFACT_URL", "").startswith("s3://"):
            assert "minio-bucket" in waits_for(name), name


def test_only_the_worker_reserves_a_gpu() -> None:
    reserving = {name for name, service in services().items() if "deploy" in service}
    assert reserving == {"worker"}
    devices = services()["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_every_steadyfit_variable_is_a_setting_the_code_reads() -> None:
    from core.settings import Settings

    fields = {f"STEADYFIT_{name.upper()}" for name in Settings.model_fields}
    for name, service in services().items():
        unknown = {key for key in environment(service) if key.startswith("STEADYFIT_")} - fields
        assert unknown == set(), f"{name}: {unknown}"


def test_the_image_bakes_in_no_secret() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    baked = re.findall(r"^(?:ENV|ARG)\s+(.*)$", dockerfile, flags=re.MULTILINE)
    assert baked and not [line for line in baked if SECRET_NAME.search(line)]

"""docker-compose.yml and the Dockerfile against the code: no Docker engine here, so check the wiring."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from deploy.embedded import EmbeddedPostgres
from deploy.launcher import SERVICES, local_api_keys, local_nhsa_clients
from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in service["environment"].items()}


def _required_settings() -> set[str]:
    return {f.alias for f in Settings.model_fields.values() if f.is_required()}


def _known_settings() -> set[str]:
    return {f.alias for f in Settings.model_fields.values()}


def test_compose_runs_postgres_kafka_kraft_and_the_five_services(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "kafka", *SERVICES}
    kafka = _env(services["kafka"])
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "zookeeper" not in (REPO / "docker-compose.yml").read_text().lower()
    for name in ("postgres", "kafka"):
        assert services[name]["healthcheck"]["test"]


IMAGE_VARIABLES = {"PORT", "YIBAO_INSTANCES"}  # read by the image's command line, not by the settings


def test_the_image_reads_its_own_variables():
    command = next(line for line in (REPO / "deploy" / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    for name in IMAGE_VARIABLES:
        assert "${" + name in command, name
    assert "--workers ${YIBAO_INSTANCES:-1}" in command and "--http shared.server:ProblemHttpProtocol" in command


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_the_settings_the_code_requires(compose, name):
    service = compose["services"][name]
    env = _env(service)
    assert _required_settings() <= set(env), _required_settings() - set(env)
    unknown = set(env) - _known_settings() - IMAGE_VARIABLES
    assert not unknown, f"compose sets variables the code does not read: {unknown}"
    assert env["YIBAO_SERVICE"] == name
    assert env["KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert set(service["depends_on"]) == {"postgres", "kafka"}
    assert all(dep["condition"] == "service_healthy" for dep in service["depends_on"].values())


def test_host_ports_follow_the_local_stack(compose):
    for offset, name in enumerate(SERVICES, start=1):
        assert compose["services"][name]["ports"] == [f"{8000 + offset}:8000"]


def test_compose_database_url_is_accepted_by_settings(compose):
    env = _env(compose["services"]["settlement"])
    url = re.sub(r"\$\{POSTGRES_PASSWORD:-([^}]*)\}", r"\1", env["DATABASE_URL"])
    settings = Settings(
        DATABASE_URL=url,
        KAFKA_BOOTSTRAP=env["KAFKA_BOOTSTRAP"],
        API_KEYS='{"compose-admin-key-000000": {"role": "admin", "fixmedins_code": null}}',
    )
    assert settings.database_url.startswith("postgresql+asyncpg://yibao:")


def test_dockerfile_entry_point_imports_every_service_app():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    command = re.search(r'CMD \["sh", "-c", "exec uvicorn services\.\$\{YIBAO_SERVICE\}\.app:app', dockerfile)
    assert command, "the image's entry point should start uvicorn on services.<name>.app:app"
    assert "/readyz" in dockerfile  # the health check uses readiness
    import importlib

    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.app")
        assert module.app.title == f"yibao {name}"
    for path in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M):
        assert (REPO / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_missing_required_settings_fail_fast(monkeypatch):
    from shared.config import load_settings

    for var in ("DATABASE_URL", "KAFKA_BOOTSTRAP", "API_KEYS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit) as stopped:
        load_settings("settlement")
    assert "DATABASE_URL" in str(stopped.value) or "database_url" in str(stopped.value).lower()


@pytest.mark.parametrize(
    "keys",
    [
        '{"changeme": {"role": "admin"}}',
        '{"short": {"role": "admin"}}',
        '{"a-long-enough-key-0000": {"role": "boss"}}',
        '{"a-long-enough-key-0000": {"role": "his"}}',
        "not json",
        "{}",
    ],
)
def test_bad_api_keys_fail_fast(keys):
    with pytest.raises(ValueError):
        Settings(DATABASE_URL="postgresql://a@b/c", KAFKA_BOOTSTRAP="k:9092", API_KEYS=keys)


def test_local_services_reach_embedded_postgres_on_its_unix_socket_when_the_path_fits():
    near = EmbeddedPostgres(Path("/tmp/yb/pg"), 54321, unix_socket=True)
    assert near.local_url == "postgresql://postgres@/yibao?host=/tmp/yb/pg&port=54321"
    settings = Settings(
        DATABASE_URL=near.local_url,
        KAFKA_BOOTSTRAP="k:9092",
        API_KEYS='{"local-admin-key-00000000": {"role": "admin", "fixmedins_code": null}}',
    )
    assert settings.database_url == "postgresql+asyncpg://postgres@/yibao?host=/tmp/yb/pg&port=54321"
    far = EmbeddedPostgres(Path("/tmp/" + "d" * 100), 54321, unix_socket=True)  # beyond the 107-byte socket path
    assert not far.unix_socket and far.local_url == far.url == "postgresql://postgres@127.0.0.1:54321/yibao"
    assert EmbeddedPostgres(Path("/tmp/yb/pg"), 54321).local_url == "postgresql://postgres@127.0.0.1:54321/yibao"


def test_the_gateway_is_the_fifth_service_and_takes_its_callers_from_nhsa_clients(compose):
    assert SERVICES[4] == "gateway"
    gateway = _env(compose["services"]["gateway"])
    assert gateway["NHSA_CLIENTS"].startswith("${NHSA_CLIENTS:?")  # required in a deployment, like API_KEYS
    assert compose["services"]["gateway"]["ports"] == ["8005:8000"]
    base = {"DATABASE_URL": "postgresql://a@b/c", "KAFKA_BOOTSTRAP": "k:9092", "API_KEYS": _KEYS}
    good = '{"ak-1": {"secret": "a-secret-of-24-characters", "fixmedins_code": "H1", "infcode_type": "string"}}'
    assert Settings(**base, NHSA_CLIENTS=good).nhsa_clients_json == good
    for bad in (
        "not json",
        "[]",
        '{"ak-1": {"secret": "short", "fixmedins_code": "H1"}}',
        '{"ak-1": {"secret": "a-secret-of-24-characters"}}',
        '{"ak-1": {"secret": "a-secret-of-24-characters", "fixmedins_code": "H1", "infcode_type": "text"}}',
    ):
        with pytest.raises(ValueError):
            Settings(**base, NHSA_CLIENTS=bad)


_KEYS = '{"local-admin-key-00000000": {"role": "admin", "fixmedins_code": null}}'


def test_yibao_up_makes_one_gateway_credential_per_local_institution_and_keeps_them(tmp_path, monkeypatch):
    monkeypatch.delenv("API_KEYS", raising=False)
    monkeypatch.delenv("NHSA_CLIENTS", raising=False)
    keys, _ = local_api_keys(tmp_path)
    raw, shown = local_nhsa_clients(tmp_path, keys)
    clients = json.loads(raw)
    assert shown and sorted(c["fixmedins_code"] for c in clients.values()) == ["H1", "P1"]
    assert all(len(c["secret"]) >= 16 and c["infcode_type"] == "number" for c in clients.values())
    assert (tmp_path / "nhsa-clients.json").stat().st_mode & 0o777 == 0o600
    assert local_nhsa_clients(tmp_path, keys)[0] == raw  # kept across restarts
    monkeypatch.setenv("NHSA_CLIENTS", '{"ak": {"secret": "an-operator-given-secret", "fixmedins_code": "X"}}')
    assert local_nhsa_clients(tmp_path, keys) == (os.environ["NHSA_CLIENTS"], False)

"""Settings for every service, read from the environment once, failing fast."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES: tuple[str, ...] = ("admin", "his", "pharmacy", "ops")
PLACEHOLDER_KEYS = {"changeme", "change-me", "secret", "xxx", "todo"}


class Settings(BaseSettings):
    """Everything a service process needs; built once in the composition root."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    service_name: str = Field(default="yibao", alias="YIBAO_SERVICE")
    database_url: str = Field(alias="DATABASE_URL")
    kafka_bootstrap: str = Field(alias="KAFKA_BOOTSTRAP")
    api_keys_json: str = Field(alias="API_KEYS")
    eligibility_url: str = Field(default="http://127.0.0.1:8001", alias="ELIGIBILITY_URL")
    settlement_url: str = Field(default="http://127.0.0.1:8002", alias="SETTLEMENT_URL")
    prepayment_url: str = Field(default="http://127.0.0.1:8003", alias="PREPAYMENT_URL")
    reporting_url: str = Field(default="http://127.0.0.1:8004", alias="REPORTING_URL")
    # The national-platform gateway's callers (NHSA-GATEWAY.md): access key → {secret, fixmedins_code, infcode_type}.
    nhsa_clients_json: str | None = Field(default=None, alias="NHSA_CLIENTS")
    policy_dir: str | None = Field(default=None, alias="POLICY_DIR")
    kafka_partitions: int = Field(default=3, ge=1, le=64, alias="KAFKA_PARTITIONS")
    outbox_retention_hours: int = Field(default=168, ge=1, alias="OUTBOX_RETENTION_HOURS")
    # A commit wakes its own process's relay at once; the poll only finds rows of other processes (workers,
    # consumers). Polling every 50 ms cost an idle service 7 % of its CPU under load.
    relay_poll_seconds: float = Field(default=0.25, gt=0, le=5, alias="RELAY_POLL_SECONDS")
    relay_batch: int = Field(default=200, ge=1, le=5000, alias="RELAY_BATCH")
    db_pool_size: int = Field(default=10, ge=1, le=100, alias="DB_POOL_SIZE")
    max_body_bytes: int = Field(default=2_000_000, ge=1024, alias="MAX_BODY_BYTES")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    consumers_enabled: bool = Field(default=True, alias="CONSUMERS_ENABLED")
    relay_enabled: bool = Field(default=True, alias="RELAY_ENABLED")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/db)")
        return value

    @field_validator("api_keys_json")
    @classmethod
    def _valid_keys(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("nhsa_clients_json")
    @classmethod
    def _valid_clients(cls, value: str | None) -> str | None:
        if value is not None:
            parse_nhsa_clients(value)
        return value

    internal_api_key_value: str | None = Field(default=None, alias="INTERNAL_API_KEY")

    @cached_property
    def api_keys(self) -> dict[str, dict[str, Any]]:
        """Key → {role, fixmedins_code}."""
        return parse_api_keys(self.api_keys_json)

    @property
    def internal_api_key(self) -> str:
        """The key a service uses to call another (INTERNAL_API_KEY, else the first admin key)."""
        if self.internal_api_key_value:
            return self.internal_api_key_value
        return next(k for k, v in self.api_keys.items() if v["role"] == "admin")


def parse_api_keys(raw: str) -> dict[str, dict[str, Any]]:
    """Parse and check API_KEYS: a JSON object of key → {role, fixmedins_code}."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"API_KEYS is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError("API_KEYS must be a non-empty JSON object of key -> {role, fixmedins_code}")
    keys: dict[str, dict[str, Any]] = {}
    for key, spec in data.items():
        if not isinstance(spec, dict) or spec.get("role") not in ROLES:
            raise ValueError(f"API_KEYS entry has no valid role (one of {', '.join(ROLES)})")
        if len(key) < 16 or key.lower() in PLACEHOLDER_KEYS:
            raise ValueError("API_KEYS holds a placeholder or too short key (at least 16 characters)")
        code = spec.get("fixmedins_code")
        if spec["role"] in ("his", "pharmacy") and not code:
            raise ValueError(f"an API key of role {spec['role']} needs a fixmedins_code")
        keys[key] = {"role": spec["role"], "fixmedins_code": code}
    return keys


INFCODE_TYPES = ("number", "string")


def parse_nhsa_clients(raw: str) -> dict[str, dict[str, str]]:
    """Parse and check NHSA_CLIENTS: a JSON object of access key → {secret, fixmedins_code, infcode_type?}."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"NHSA_CLIENTS is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("NHSA_CLIENTS must be a JSON object of access key -> {secret, fixmedins_code, infcode_type}")
    clients: dict[str, dict[str, str]] = {}
    for key, spec in data.items():
        if not isinstance(spec, dict) or not isinstance(key, str) or not 1 <= len(key) <= 100:
            raise ValueError("NHSA_CLIENTS entries are access key (1..100 characters) -> {secret, fixmedins_code}")
        secret, code = spec.get("secret"), spec.get("fixmedins_code")
        if not isinstance(secret, str) or len(secret) < 16 or secret.lower() in PLACEHOLDER_KEYS:
            raise ValueError("an NHSA_CLIENTS secret must be at least 16 characters and not a placeholder")
        if not isinstance(code, str) or not code:
            raise ValueError("an NHSA_CLIENTS entry needs its fixmedins_code")
        kind = spec.get("infcode_type", "number")
        if kind not in INFCODE_TYPES:
            raise ValueError("an NHSA_CLIENTS infcode_type is number or string")
        clients[key] = {"secret": secret, "fixmedins_code": code, "infcode_type": kind}
    return clients


def load_settings(service_name: str) -> Settings:
    """Read settings for one service; a missing variable stops start-up with a clear message."""
    try:
        return Settings(YIBAO_SERVICE=service_name)  # type: ignore[call-arg]
    except Exception as exc:  # pydantic ValidationError: make it readable, then stop
        raise SystemExit(f"{service_name}: invalid configuration: {exc}") from None

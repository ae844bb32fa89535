"""The hot path: a person's snapshot on a date, and credential checks, in ONE database round trip.

Every settlement asks for a snapshot, so it bypasses the ORM session (whose pool pings and whose
transaction adds BEGIN/COMMIT round trips): a small asyncpg pool, built in the app's lifespan, runs
one prepared statement outside a transaction that assembles the whole answer as JSON in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import asyncpg
import orjson
from fastapi import FastAPI, Request

from services.eligibility import domain
from services.eligibility.domain import RuleViolation
from services.eligibility.persons import ecert_digest
from shared.problems import Problem

log = logging.getLogger("yibao.eligibility.snapshot")

CERT_TYPES = {"01": "ecert", "02": "certno", "03": "card_no"}
ACQUIRE_TIMEOUT = 2.0
QUERY_TIMEOUT = 2.0

# $1 psn_no, $2 the date, $3 credential type, $4 credential (the token's digest for type 01).
SNAPSHOT_SQL = """
SELECT json_build_object(
  'psn_no', p.psn_no, 'insutype', p.insutype, 'insuplc_admdvs', p.insuplc_admdvs,
  'gend', p.gend, 'brdy', p.brdy, 'emp_no', p.emp_no, 'contribution_base', p.contribution_base::text,
  'psn_type', (SELECT t.psn_type FROM eligibility.psn_types t
               WHERE t.psn_no = p.psn_no AND t.effective_from <= $2
               ORDER BY t.effective_from DESC LIMIT 1),
  'aid_identities', COALESCE((
      SELECT json_agg(json_build_object('category', a.category, 'start_date', a.start_date, 'lost_on', a.lost_on)
                      ORDER BY a.start_date, a.id)
      FROM eligibility.aid_identities a
      WHERE a.psn_no = p.psn_no AND a.start_date <= $2 AND (a.window_end IS NULL OR a.window_end >= $2)), '[]'),
  'chronic_qualifications', COALESCE((
      SELECT json_agg(json_build_object('disease', q.disease, 'two_disease_class', q.two_disease_class,
                                        'start_date', q.start_date, 'end_date', q.end_date,
                                        'certified_by', q.certified_by) ORDER BY q.start_date, q.id)
      FROM eligibility.chronic_qualifications q
      WHERE q.psn_no = p.psn_no AND q.start_date <= $2 AND (q.end_date IS NULL OR q.end_date >= $2)), '[]'),
  'offsite_registrations', COALESCE((
      SELECT json_agg(json_build_object('mdtrtarea_admdvs', r.mdtrtarea_admdvs, 'start_date', r.start_date,
                                        'end_date', r.end_date) ORDER BY r.start_date, r.id)
      FROM eligibility.offsite_registrations r
      WHERE r.psn_no = p.psn_no AND r.start_date <= $2 AND (r.end_date IS NULL OR r.end_date >= $2)), '[]'),
  'family', COALESCE((
      SELECT json_agg(json_build_object('relation', f.relation, 'member_psn_no', f.member_psn_no)
                      ORDER BY f.member_psn_no)
      FROM eligibility.family f WHERE f.psn_no = p.psn_no), '[]'),
  'covid_cases', COALESCE((
      SELECT json_agg(json_build_object('case_id', c.case_id, 'status', c.status, 'diagnosed_at', c.diagnosed_at,
                                        'fixmedins_code', c.fixmedins_code, 'diagnosis', c.diagnosis,
                                        'published', c.published) ORDER BY c.diagnosed_at, c.case_id)
      FROM eligibility.covid_cases c WHERE c.psn_no = p.psn_no), '[]'),
  'arrears', COALESCE((
      SELECT json_agg(json_build_array(e.since_month, e.settled_on))
      FROM eligibility.arrears e
      WHERE e.emp_no = p.emp_no AND e.since_month <= $2 AND (e.settled_on IS NULL OR e.settled_on > $2)), '[]'),
  'deferrals', COALESCE((
      SELECT json_agg(json_build_array(d.start_month, d.end_month))
      FROM eligibility.deferrals d WHERE d.emp_no = p.emp_no AND d.start_month <= $2), '[]'),
  'credential_matches', CASE $3::text WHEN '01' THEN p.ecert_hash = $4::text
                                      WHEN '02' THEN p.certno = $4::text
                                      WHEN '03' THEN p.card_no = $4::text END
)::text
FROM eligibility.persons p WHERE p.psn_no = $1
"""

VERIFY_SQL = {
    "01": "SELECT psn_no FROM eligibility.persons WHERE ecert_hash = $1",
    "02": "SELECT psn_no FROM eligibility.persons WHERE certno = $1",
    "03": "SELECT psn_no FROM eligibility.persons WHERE card_no = $1",
}

SNAPSHOT_KEYS = ("psn_no", "on", "active", "inactive_reason", "arrears_months", "insutype", "psn_type",
                 "insuplc_admdvs", "gend", "brdy", "emp_no", "contribution_base", "aid_identities",
                 "chronic_qualifications", "offsite_registrations", "family", "covid_cases")


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Connections only ever run single read statements outside a transaction: nothing to reset."""


async def open_read_pool(app: FastAPI) -> None:
    """Lifespan hook: the read pool of the hot path, next to the ORM engine."""
    settings = app.state.settings
    dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    app.state.read_pool = await asyncpg.create_pool(
        dsn, min_size=min(4, settings.db_pool_size), max_size=settings.db_pool_size, reset=_no_reset,
        command_timeout=QUERY_TIMEOUT,
        server_settings={"timezone": "Asia/Shanghai", "application_name": "eligibility-read"})


async def close_read_pool(app: FastAPI) -> None:
    pool = getattr(app.state, "read_pool", None)
    if pool is not None:
        try:
            await asyncio.wait_for(pool.close(), 5)
        except Exception:  # the database is gone: drop the connections
            pool.terminate()


async def _fetch(request: Request, sql: str, *args) -> str | None:
    """One statement on the read pool; an unreachable database is a 503, never a 500."""
    pool: asyncpg.Pool = request.app.state.read_pool
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            return await connection.fetchval(sql, *args)
    except (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
        log.warning("read pool: %s", type(exc).__name__)
        raise Problem(503, "DATABASE_UNAVAILABLE", "the database is not reachable; retry later",
                      headers={"Retry-After": "2"}) from None


def credential(cert_type: str | None, cert_no: str | None) -> tuple[str | None, str | None]:
    """(type, the value to compare) of a presented credential, or (None, None) when none is given."""
    if cert_type is None and cert_no is None:
        return None, None
    if cert_type is None or cert_no is None:
        raise RuleViolation("INCOMPLETE_CREDENTIAL", "give both mdtrt_cert_type and mdtrt_cert_no")
    if cert_type not in CERT_TYPES:
        raise RuleViolation("INVALID_CERT_TYPE", "mdtrt_cert_type is 01 (电子凭证), 02 (ID number) or 03 (card)",
                            field="mdtrt_cert_type")
    if cert_type == "01":
        return cert_type, ecert_digest(cert_no)
    if cert_type == "02":
        return cert_type, cert_no.upper()
    return cert_type, cert_no


def assemble(raw: str, *, on: date, with_credential: bool) -> dict:
    """The contract's snapshot from the row PostgreSQL built: add the benefit status, drop the inputs."""
    data = orjson.loads(raw)
    arrears = [(date.fromisoformat(since), None if settled is None else date.fromisoformat(settled))
               for since, settled in data.pop("arrears")]
    deferred = [(date.fromisoformat(start), date.fromisoformat(end)) for start, end in data.pop("deferrals")]
    active, reason, months = domain.benefit_status(on=on, arrears=arrears, deferrals=deferred)
    matches = data.pop("credential_matches")
    data.update(on=on.isoformat(), active=active, inactive_reason=reason, arrears_months=months)
    snapshot = {key: data[key] for key in SNAPSHOT_KEYS}
    if with_credential:
        snapshot["credential_matches"] = bool(matches)
    return snapshot


async def snapshot(request: Request, psn_no: str, *, on: date, cert_type: str | None,
                   cert_no: str | None) -> dict | None:
    """The snapshot, or None when no such person."""
    kind, value = credential(cert_type, cert_no)
    raw = await _fetch(request, SNAPSHOT_SQL, psn_no, on, kind, value)
    return None if raw is None else assemble(raw, on=on, with_credential=kind is not None)


async def verify(request: Request, cert_type: str, cert_no: str) -> str | None:
    """The person a credential resolves to (人证相符), if any."""
    kind, value = credential(cert_type, cert_no)
    return await _fetch(request, VERIFY_SQL[kind], value)

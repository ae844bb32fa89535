"""The hot path: a person's snapshot on a date, and credential checks, in ONE database round trip.

Every settlement asks for a snapshot (twice), so it is one prepared statement, run outside a transaction
(`db.connect()`: no BEGIN/COMMIT round trips), that assembles the whole answer as JSON in PostgreSQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.eligibility import domain
from services.eligibility.domain import RuleViolation
from services.eligibility.persons import ecert_digest
from shared.db import Sql, Unit

CERT_TYPES = {"01": "ecert", "02": "certno", "03": "card_no"}

# :cert_type and :credential (the token's digest for type 01) are null when no credential is presented.
_SNAPSHOT = Sql("""
SELECT json_build_object(
  'psn_no', p.psn_no, 'insutype', p.insutype, 'insuplc_admdvs', p.insuplc_admdvs,
  'gend', p.gend, 'brdy', p.brdy, 'emp_no', p.emp_no, 'contribution_base', p.contribution_base::text,
  'psn_type', (SELECT t.psn_type FROM psn_types t
               WHERE t.psn_no = p.psn_no AND t.effective_from <= :on
               ORDER BY t.effective_from DESC LIMIT 1),
  'aid_identities', COALESCE((
      SELECT json_agg(json_build_object('category', a.category, 'start_date', a.start_date, 'lost_on', a.lost_on)
                      ORDER BY a.start_date, a.id)
      FROM aid_identities a
      WHERE a.psn_no = p.psn_no AND a.start_date <= :on AND (a.window_end IS NULL OR a.window_end >= :on)), '[]'),
  'chronic_qualifications', COALESCE((
      SELECT json_agg(json_build_object('disease', q.disease, 'two_disease_class', q.two_disease_class,
                                        'start_date', q.start_date, 'end_date', q.end_date,
                                        'certified_by', q.certified_by) ORDER BY q.start_date, q.id)
      FROM chronic_qualifications q
      WHERE q.psn_no = p.psn_no AND q.start_date <= :on AND (q.end_date IS NULL OR q.end_date >= :on)), '[]'),
  'offsite_registrations', COALESCE((
      SELECT json_agg(json_build_object('mdtrtarea_admdvs', r.mdtrtarea_admdvs, 'start_date', r.start_date,
                                        'end_date', r.end_date) ORDER BY r.start_date, r.id)
      FROM offsite_registrations r
      WHERE r.psn_no = p.psn_no AND r.start_date <= :on AND (r.end_date IS NULL OR r.end_date >= :on)), '[]'),
  'family', COALESCE((
      SELECT json_agg(json_build_object('relation', f.relation, 'member_psn_no', f.member_psn_no)
                      ORDER BY f.member_psn_no)
      FROM family f WHERE f.psn_no = p.psn_no), '[]'),
  'covid_cases', COALESCE((
      SELECT json_agg(json_build_object('case_id', c.case_id, 'status', c.status, 'diagnosed_at', c.diagnosed_at,
                                        'fixmedins_code', c.fixmedins_code, 'diagnosis', c.diagnosis,
                                        'published', c.published) ORDER BY c.diagnosed_at, c.case_id)
      FROM covid_cases c WHERE c.psn_no = p.psn_no), '[]'),
  'arrears', COALESCE((
      SELECT json_agg(json_build_array(e.since_month, e.settled_on))
      FROM arrears e
      WHERE e.emp_no = p.emp_no AND e.since_month <= :on AND (e.settled_on IS NULL OR e.settled_on > :on)), '[]'),
  'deferrals', COALESCE((
      SELECT json_agg(json_build_array(d.start_month, d.end_month))
      FROM deferrals d WHERE d.emp_no = p.emp_no AND d.start_month <= :on), '[]'),
  'credential_matches', CASE CAST(:cert_type AS text) WHEN '01' THEN p.ecert_hash = CAST(:credential AS text)
                                                      WHEN '02' THEN p.certno = CAST(:credential AS text)
                                                      WHEN '03' THEN p.card_no = CAST(:credential AS text) END
)
FROM persons p WHERE p.psn_no = :psn_no
""")

_VERIFY = {
    "01": Sql("SELECT psn_no FROM persons WHERE ecert_hash = :credential"),
    "02": Sql("SELECT psn_no FROM persons WHERE certno = :credential"),
    "03": Sql("SELECT psn_no FROM persons WHERE card_no = :credential"),
}

SNAPSHOT_KEYS = (
    "psn_no",
    "on",
    "active",
    "inactive_reason",
    "arrears_months",
    "insutype",
    "psn_type",
    "insuplc_admdvs",
    "gend",
    "brdy",
    "emp_no",
    "contribution_base",
    "aid_identities",
    "chronic_qualifications",
    "offsite_registrations",
    "family",
    "covid_cases",
)


def credential(cert_type: str | None, cert_no: str | None) -> tuple[str | None, str | None]:
    """(type, the value to compare) of a presented credential, or (None, None) when none is given."""
    if cert_type is None and cert_no is None:
        return None, None
    if cert_type is None or cert_no is None:
        raise RuleViolation("INCOMPLETE_CREDENTIAL", "give both mdtrt_cert_type and mdtrt_cert_no")
    if cert_type not in CERT_TYPES:
        raise RuleViolation(
            "INVALID_CERT_TYPE",
            "mdtrt_cert_type is 01 (电子凭证), 02 (ID number) or 03 (card)",
            field="mdtrt_cert_type",
        )
    if cert_type == "01":
        return cert_type, ecert_digest(cert_no)
    if cert_type == "02":
        return cert_type, cert_no.upper()
    return cert_type, cert_no


def assemble(data: dict[str, Any], *, on: date, with_credential: bool) -> dict[str, Any]:
    """The contract's snapshot from the object PostgreSQL built: add the benefit status, drop the inputs."""
    arrears = [
        (date.fromisoformat(since), None if settled is None else date.fromisoformat(settled))
        for since, settled in data.pop("arrears")
    ]
    deferred = [(date.fromisoformat(start), date.fromisoformat(end)) for start, end in data.pop("deferrals")]
    active, reason, months = domain.benefit_status(on=on, arrears=arrears, deferrals=deferred)
    matches = data.pop("credential_matches")
    data.update(on=on.isoformat(), active=active, inactive_reason=reason, arrears_months=months)
    snapshot = {key: data[key] for key in SNAPSHOT_KEYS}
    if with_credential:
        snapshot["credential_matches"] = bool(matches)
    return snapshot


async def snapshot(
    unit: Unit, psn_no: str, *, on: date, cert_type: str | None, cert_no: str | None
) -> dict[str, Any] | None:
    """The snapshot, or None when no such person."""
    kind, value = credential(cert_type, cert_no)
    found = await unit.fetchval(_SNAPSHOT, psn_no=psn_no, on=on, cert_type=kind, credential=value)
    return None if found is None else assemble(found, on=on, with_credential=kind is not None)


async def verify(unit: Unit, cert_type: str, cert_no: str) -> str | None:
    """The person a credential resolves to (人证相符), if any."""
    _, value = credential(cert_type, cert_no)
    return await unit.fetchval(_VERIFY[cert_type], credential=value)

"""The holder of a credential, as an institution presenting that credential may see them (人员信息获取 1101).

An HIS or pharmacy key learns of a person only through a credential it holds (01 电子凭证, 02 ID number, 03 card):
presenting it, the institution reads the holder's identity (name, ID number, sex, birth date), insurance (type,
person type, insured area, employer) and the aid identities in force on the day, as the national platform's 1101
answers them. A credential of nobody is 404 CREDENTIAL_NOT_FOUND, as GET /v1/verify.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.eligibility import snapshot
from shared.db import Sql, Unit
from shared.problems import not_found

_PERSON = Sql("""
SELECT p.psn_no, p.certno, p.psn_name, p.created_at::date AS insured_since, e.emp_name
  FROM persons p LEFT JOIN employers e ON e.emp_no = p.emp_no
 WHERE p.psn_no = :psn_no
""")


async def credential_holder(unit: Unit, *, cert_type: str, cert_no: str, on: date) -> dict[str, Any]:
    """{psn_no, certno, psn_name, gend, brdy, insutype, psn_type, insuplc_admdvs, emp_name, active, …, aid_identities}
    on the day `on`."""
    psn_no = await snapshot.verify(unit, cert_type, cert_no)
    if psn_no is None:
        raise not_found("credential", cert_type, "CREDENTIAL_NOT_FOUND")
    person = await unit.fetchrow(_PERSON, psn_no=psn_no)
    found = await snapshot.snapshot(unit, psn_no, on=on, cert_type=None, cert_no=None)
    if person is None or found is None:  # removed between the two reads: as if it never resolved
        raise not_found("credential", cert_type, "CREDENTIAL_NOT_FOUND")
    return {
        "psn_no": psn_no,
        "certno": person.certno,
        "psn_name": person.psn_name,
        "gend": found["gend"],
        "brdy": found["brdy"],
        "insutype": found["insutype"],
        "psn_type": found["psn_type"],
        "insuplc_admdvs": found["insuplc_admdvs"],
        "emp_name": person.emp_name,
        "insured_since": person.insured_since.isoformat(),
        "on": found["on"],
        "active": found["active"],
        "inactive_reason": found["inactive_reason"],
        "aid_identities": found["aid_identities"],
    }

"""The code tables of data/codes.toml, read and checked once at start-up (a bad file stops the gateway)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "codes.toml"
PARTS = ("hifp_pay", "hifmi_pay", "maf_pay", "tilt_aid_pay", "fin_subsidy_pay", "acct_pay")
SERVICE_MED_TYPES = frozenset({"11", "14", "21", "41"})


class CodesError(ValueError):
    """data/codes.toml is not as the gateway needs it."""


@dataclass(frozen=True)
class Codes:
    med_types: dict[str, str]  # national or provincial code → the services' med_type
    clr_types: dict[str, str]
    psn_types: dict[str, str]
    idet_types: dict[str, str]
    chronic_diseases: dict[str, str]
    chrgitm_lv: dict[str, str]
    med_chrgitm_types: dict[str, str]
    fund_pay_types: dict[str, dict[str, tuple[str, str]]]  # part → insutype → (code, name)
    cum_types: dict[str, tuple[str, str]]

    def med_type(self, code: str) -> str | None:
        """The services' med_type of a national or provincial code; None when not supported."""
        return self.med_types.get(code)

    def chrgitm_type(self, med_list_codg: str) -> str:
        """医疗收费项目类别 of a catalogue code, by its first character."""
        return self.med_chrgitm_types.get(med_list_codg[:1].upper(), self.med_chrgitm_types["other"])

    def fund_pay_type(self, part: str, insutype: str) -> tuple[str, str]:
        by_insutype = self.fund_pay_types[part]
        return by_insutype.get(insutype) or by_insutype["310"]


def _strings(doc: dict[str, Any], name: str) -> dict[str, str]:
    table = doc.get(name)
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise CodesError(f"{DATA.name}: [{name}] must map codes to codes")
    return dict(table)


def _pair(value: Any, where: str) -> tuple[str, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(x, str) and x for x in value)):
        raise CodesError(f"{DATA.name}: {where} must be [code, name]")
    return value[0], value[1]


def load_codes(path: Path = DATA) -> Codes:
    """Read and check the code tables."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CodesError(f"{path}: {exc}") from None
    national = _strings(doc, "med_types")
    aliases = _strings(doc, "med_type_aliases")
    if not set(national.values()) <= SERVICE_MED_TYPES:
        raise CodesError(f"{path.name}: [med_types] maps to a med_type the services do not know")
    for alias, target in aliases.items():
        if target not in national:
            raise CodesError(f"{path.name}: med_type alias {alias} names {target}, not a national code listed")
    med_types = {**{alias: national[target] for alias, target in aliases.items()}, **national}
    funds = doc.get("fund_pay_types")
    if not isinstance(funds, dict) or set(funds) != set(PARTS):
        raise CodesError(f"{path.name}: [fund_pay_types] needs exactly {', '.join(PARTS)}")
    fund_pay_types = {
        part: {ins: _pair(v, f"fund_pay_types.{part}.{ins}") for ins, v in funds[part].items()} for part in PARTS
    }
    for part, table in fund_pay_types.items():
        if "310" not in table:
            raise CodesError(f"{path.name}: fund_pay_types.{part} needs 310")
    cums = doc.get("cum_types")
    if not isinstance(cums, dict):
        raise CodesError(f"{path.name}: [cum_types] missing")
    codes = Codes(
        med_types=med_types,
        clr_types=_strings(doc, "clr_types"),
        psn_types=_strings(doc, "psn_types"),
        idet_types=_strings(doc, "idet_types"),
        chronic_diseases=_strings(doc, "chronic_diseases"),
        chrgitm_lv=_strings(doc, "chrgitm_lv"),
        med_chrgitm_types=_strings(doc, "med_chrgitm_types"),
        fund_pay_types=fund_pay_types,
        cum_types={key: _pair(v, f"cum_types.{key}") for key, v in cums.items()},
    )
    if set(codes.clr_types) != SERVICE_MED_TYPES or set(codes.chrgitm_lv) != {"A", "B", "C"}:
        raise CodesError(f"{path.name}: [clr_types] covers 11, 14, 21, 41 and [chrgitm_lv] A, B, C")
    if "other" not in codes.med_chrgitm_types or "resident" not in codes.psn_types:
        raise CodesError(f"{path.name}: [med_chrgitm_types] needs other, [psn_types] needs resident")
    return codes

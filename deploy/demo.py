"""Demo data for a first-time user: a small city, written through the public APIs only.

Institutions of every level and both affiliations (hospitals and pharmacies), a few thousand insured
persons (valid resident IDs) with aid identities, chronic qualifications, off-site registrations and
account credits, COVID cases, prepayments, the year's global budgets of the local hospitals, today's
settlements (COVID patients included) with a few reversals, and dual-channel 双通道 prescriptions issued
by hospitals and settled at pharmacies.

Re-running skips what exists: persons by their fixed psn_no, cases by person, prescriptions by their
rx_no (a used one is not dispensed again), and every money-moving POST carries an Idempotency-Key
derived from the day, so a second run the same day adds nothing. Setting a budget again to the same
amount only announces it again.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import httpx

from shared.events.envelope import BUSINESS_TZ

PERSONS = 2000
SETTLEMENTS = 600
REVERSALS = 15
COVID_CASES = 60
PRESCRIPTIONS = 40
CONCURRENCY = 16

# Codes H1-H4, P1, P2 are those of the worked examples (shared/examples) and of `yibao up`'s HIS/pharmacy keys.
INSTITUTIONS = [
    {
        "fixmedins_code": "H1",
        "fixmedins_name": "市人民医院",
        "kind": "hospital",
        "level": 3,
        "affiliation": "city",
        "admdvs": "621000",
    },
    {
        "fixmedins_code": "H2",
        "fixmedins_name": "县人民医院",
        "kind": "hospital",
        "level": 2,
        "affiliation": "county",
        "admdvs": "621022",
    },
    {
        "fixmedins_code": "H3",
        "fixmedins_name": "乡镇卫生院",
        "kind": "hospital",
        "level": 1,
        "affiliation": "county",
        "admdvs": "621027",
    },
    {
        "fixmedins_code": "H4",
        "fixmedins_name": "省外三甲医院",
        "kind": "hospital",
        "level": 3,
        "affiliation": "city",
        "admdvs": "610100",
    },
    {
        "fixmedins_code": "P1",
        "fixmedins_name": "市中心大药房",
        "kind": "pharmacy",
        "level": None,
        "affiliation": "city",
        "admdvs": "621000",
    },
    {
        "fixmedins_code": "P2",
        "fixmedins_name": "县城药店",
        "kind": "pharmacy",
        "level": None,
        "affiliation": "county",
        "admdvs": "621022",
    },
    {
        "fixmedins_code": "H5",
        "fixmedins_name": "市中医医院",
        "kind": "hospital",
        "level": 3,
        "affiliation": "city",
        "admdvs": "621000",
    },
    {
        "fixmedins_code": "H6",
        "fixmedins_name": "区人民医院",
        "kind": "hospital",
        "level": 2,
        "affiliation": "county",
        "admdvs": "621002",
    },
    {
        "fixmedins_code": "H7",
        "fixmedins_name": "县中医医院",
        "kind": "hospital",
        "level": 2,
        "affiliation": "county",
        "admdvs": "621021",
    },
    {
        "fixmedins_code": "H8",
        "fixmedins_name": "社区卫生服务中心",
        "kind": "hospital",
        "level": 1,
        "affiliation": "city",
        "admdvs": "621000",
    },
    {
        "fixmedins_code": "H9",
        "fixmedins_name": "中心卫生院",
        "kind": "hospital",
        "level": 1,
        "affiliation": "county",
        "admdvs": "621024",
    },
    {
        "fixmedins_code": "P3",
        "fixmedins_name": "区惠民药店",
        "kind": "pharmacy",
        "level": None,
        "affiliation": "county",
        "admdvs": "621002",
    },
]
LOCAL_HOSPITALS = [i["fixmedins_code"] for i in INSTITUTIONS if i["kind"] == "hospital" and i["admdvs"][:4] == "6210"]
PHARMACIES = [i["fixmedins_code"] for i in INSTITUTIONS if i["kind"] == "pharmacy"]
# The year's global budget 总额预算 of each local hospital, by level (the demo city is small).
BUDGET_BY_LEVEL = {3: "3000000.00", 2: "1500000.00", 1: "600000.00"}
BUDGETS = {
    i["fixmedins_code"]: BUDGET_BY_LEVEL[i["level"]] for i in INSTITUTIONS if i["fixmedins_code"] in LOCAL_HOSPITALS
}
COUNTIES = [
    "621000",
    "621000",
    "621000",
    "621002",
    "621021",
    "621022",
    "621023",
    "621024",
    "621025",
    "621026",
    "621027",
]
PROVINCE = ["620100", "620200", "620500"]  # other cities of the province
ELSEWHERE = ["610100", "510100", "110101"]  # other provinces
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英文华建国志红玉兰春梅海燕晓东小红金凤德福"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ITEMS = [  # code, name, class, price range (yuan)
    ("XM-GHF", "普通门诊诊查费", "A", (5, 30)),
    ("JC-XCG", "血常规", "A", (15, 30)),
    ("JC-CT", "胸部CT平扫", "A", (150, 300)),
    ("YP-AMXL", "阿莫西林胶囊", "B", (10, 40)),
    ("YP-TZ", "头孢克肟片", "B", (20, 80)),
    ("YP-BJ", "保健营养品", "C", (30, 200)),
    ("YP-JYS", "二甲双胍缓释片", "A", (15, 60)),
    ("YP-NFDP", "硝苯地平控释片", "A", (20, 70)),
]
INPATIENT_ITEMS = [
    ("ZY-CW", "床位费", "A", (40, 80)),
    ("ZY-HL", "护理费", "A", (20, 60)),
    ("ZY-SS", "手术费", "A", (800, 6000)),
    ("ZY-YP", "住院药品", "B", (200, 3000)),
    ("ZY-HC", "特殊耗材", "C", (100, 2000)),
]
RX_ITEMS = [
    ("YP-AMXL", "阿莫西林胶囊", "B", (10, 40)),
    ("YP-TZ", "头孢克肟片", "B", (20, 80)),
    ("YP-XKS", "小柴胡颗粒", "A", (12, 36)),
]  # a few days' supply (≤ 30)
RX_CHRONIC_ITEMS = {
    "hypertension": ("YP-NFDP", "硝苯地平控释片", "A", (20, 70)),
    "diabetes": ("YP-JYS", "二甲双胍缓释片", "A", (15, 60)),
}  # 长处方: up to 84 days
RX_PRICES = {codg: prices for codg, _, _, prices in (*RX_ITEMS, *RX_CHRONIC_ITEMS.values())}
COVID_ITEMS = [
    ("COVID-AGT", "新型冠状病毒抗原检测", "A", (8, 8)),
    ("COVID-NMTW", "奈玛特韦片/利托那韦片组合包装", "A", (750, 1890)),
    ("COVID-QFPD", "清肺排毒颗粒", "A", (30, 90)),
    ("JC-CT", "胸部CT平扫", "A", (150, 300)),
]


# Supervision (DOMAIN §13, issue 16): a few alerts of each kind for a new user to see at once.
# Watched goods dispensed at pharmacies on hospitals' prescriptions (the sales chart): pharmacy, code, name, class,
# price, count, days.
WATCHED_DISPENSED = [
    ("P1", "OTC-IBU", "布洛芬缓释胶囊", "A", "26.00", "2", 5),
    ("P1", "OTC-APAP", "对乙酰氨基酚片", "A", "15.00", "2", 5),
    ("P2", "OTC-LHQW", "连花清瘟胶囊", "B", "32.00", "1", 7),
    ("P2", "OTC-KSTJ", "复方甘草片", "B", "12.00", "1", 7),
    ("P3", "OTC-IBU", "布洛芬缓释胶囊", "A", "27.50", "1", 5),
    ("P1", "OTC-IBU", "布洛芬缓释胶囊", "A", "35.00", "1", 5),  # above the monitoring cap of 30.00: a price alert
    ("P2", "OTC-APAP", "对乙酰氨基酚片", "A", "25.00", "1", 5),  # above 20.00: a price alert
]
FILED_AREAS = ("621000", "621002")  # the counties that filed their daily report of the day before yesterday
ALERT_KINDS = ("high_cost", "price", "fraud", "indicator", "filing")

INSTITUTION_WAITS = 40


def _institution_unknown(response: httpx.Response) -> bool:
    if response.status_code not in (404, 422):
        return False
    try:
        code = str(response.json().get("code", ""))
    except ValueError:
        return False
    return "INSTITUTION" in code


class DemoError(RuntimeError):
    """A service answered something the demo did not expect."""


def certno(region: str, serial: int) -> str:
    """A valid resident ID (GB 11643): region, a birth date and a serial from the person's number."""
    born = date(1940, 1, 1) + timedelta(days=(serial * 37) % 25_000)
    first17 = f"{region}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


@dataclass(frozen=True)
class Person:
    psn_no: str
    certno: str
    insuplc_admdvs: str
    insutype: str
    chronic: str | None
    local: bool


def people(count: int) -> list[Person]:
    """The city's insured persons, the same every run (fixed seed)."""
    rng = random.Random(621000)
    out = []
    for i in range(count):
        where = rng.random()
        place = rng.choice(COUNTIES if where < 0.75 else PROVINCE if where < 0.9 else ELSEWHERE)
        insutype = "310" if rng.random() < 0.4 else "390"
        chronic = (
            rng.choice(["hypertension", "hypertension", "diabetes"])
            if insutype == "390" and rng.random() < 0.12
            else None
        )
        out.append(
            Person(
                psn_no=f"DEMO{i:06d}",
                certno=certno(place, i),
                insuplc_admdvs=place,
                insutype=insutype,
                chronic=chronic,
                local=place[:4] == "6210",
            )
        )
    return out


class Api:
    """The four services with the admin key; every unexpected answer stops the demo with a clear message."""

    def __init__(self, urls: dict[str, str], key: str) -> None:
        self.clients = {
            name: httpx.AsyncClient(base_url=url, headers={"X-Api-Key": key}, timeout=30) for name, url in urls.items()
        }
        self.gate = asyncio.Semaphore(CONCURRENCY)

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        ok=(200, 201),
        key: str | None = None,
        params: dict | None = None,
        content: bytes | None = None,
        headers: dict | None = None,
    ) -> httpx.Response:
        headers = {**(headers or {}), **({"Idempotency-Key": key} if key else {})} or None
        for _ in range(INSTITUTION_WAITS):
            async with self.gate:
                try:
                    response = await self.clients[service].request(
                        method, path, json=body, headers=headers, params=params, content=content
                    )
                except httpx.HTTPError as exc:
                    raise DemoError(
                        f"{service} {method} {path}: no answer ({type(exc).__name__}); is it running?"
                    ) from None
            if response.status_code in ok or not _institution_unknown(response):
                break
            await asyncio.sleep(0.5)  # the institution is still on its way through the broker
        if response.status_code not in ok:
            try:
                problem = response.json()
                detail = f"{problem.get('code')}: {problem.get('detail')}"
            except ValueError:
                detail = response.text[:300]
            raise DemoError(f"{service} {method} {path} answered {response.status_code} ({detail})")
        return response

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


class Progress:
    """A rich progress bar when there is a terminal, plain lines otherwise."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.bar = None
        try:
            import sys

            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            if sys.stderr.isatty():
                self.bar = Bar(
                    TextColumn("demo: {task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
                )
        except ImportError:
            pass

    async def run(self, label: str, jobs: list) -> list:
        """Run the coroutines concurrently (bounded by the API gate), advancing the bar as each ends."""
        results: list = []
        task = self.bar.add_task(label, total=len(jobs)) if self.bar else None
        step = max(len(jobs) // 4, 1)
        tasks = [asyncio.ensure_future(job) for job in jobs]
        try:
            for done, future in enumerate(asyncio.as_completed(tasks), start=1):
                results.append(await future)
                if self.bar:
                    self.bar.advance(task)
                elif done % step == 0 or done == len(jobs):
                    self.say(f"demo: {label} {done}/{len(jobs)}")
        finally:  # one failure stops the stage: the others are cancelled, not left running
            for pending in tasks:
                pending.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return results


def _items(rng: random.Random, catalogue: list, n: int, prefix: str, when: str) -> list[dict]:
    out = []
    for index, (code, name, item_class, (low, high)) in enumerate(rng.sample(catalogue, min(n, len(catalogue)))):
        price = low if low == high else rng.randrange(low * 100, high * 100) / 100
        out.append(
            {
                "feedetl_sn": f"{prefix}-{index}",
                "med_list_codg": code,
                "med_list_name": name,
                "item_class": item_class,
                "pric": f"{price:.2f}",
                "cnt": str(rng.randint(1, 3)),
                "fee_ocur_time": when,
            }
        )
    return out


async def _register(api: Api, person: Person, rng: random.Random, today: date) -> bool:
    """Register a person with their entitlements; False when they exist already."""
    found = await api.call("eligibility", "GET", f"/v1/persons/{person.psn_no}", ok=(200, 404))
    if found.status_code == 200:
        return False
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
    body = {
        "psn_no": person.psn_no,
        "certno": person.certno,
        "psn_name": name,
        "insutype": person.insutype,
        "insuplc_admdvs": person.insuplc_admdvs,
    }
    if person.insutype == "310":
        body["psn_type"] = "retired" if rng.random() < 0.25 else "in_service"
    await api.call("eligibility", "POST", "/v1/persons", body=body)
    base = f"/v1/persons/{person.psn_no}"
    if person.local and rng.random() < 0.08:
        category = rng.choice(["tekun", "orphan", "dibao", "dibao", "dibian", "fanpin"])
        await api.call(
            "eligibility",
            "POST",
            f"{base}/aid-identities",
            body={"category": category, "start_date": f"{today.year - 1}-01-01"},
        )
    if person.chronic:
        await api.call(
            "eligibility",
            "POST",
            f"{base}/chronic-qualifications",
            body={
                "disease": person.chronic,
                "two_disease_class": 2 if person.chronic == "diabetes" else rng.choice([1, 2]),
                "start_date": f"{today.year - 1}-03-01",
                "certified_by": rng.choice(["H1", "H6"]),
            },
        )
    if person.local and rng.random() < 0.03:
        await api.call(
            "eligibility",
            "POST",
            f"{base}/offsite-registrations",
            body={
                "mdtrtarea_admdvs": "610100",
                "start_date": (today - timedelta(days=90)).isoformat(),
                "end_date": (today + timedelta(days=275)).isoformat(),
            },
        )
    if person.insutype == "310" and rng.random() < 0.3:
        await api.call(
            "settlement",
            "POST",
            f"/v1/accounts/{person.psn_no}/credits",
            body={"amount": f"{rng.randrange(200, 3000)}.00", "period": f"{today:%Y-%m}"},
            key=f"demo-credit-{person.psn_no}-{today:%Y-%m}",
        )
    return True


async def _covid_case(api: Api, person: Person, rng: random.Random, now: datetime) -> str:
    """A COVID case for the person (once), returning its status."""
    listed = (await api.call("eligibility", "GET", "/v1/covid-cases", params={"psn_no": person.psn_no})).json()
    if listed.get("items"):
        return listed["items"][0]["status"]
    status = "confirmed" if rng.random() < 0.6 else "suspected"
    diagnosed = now - timedelta(hours=rng.randint(20, 72))
    await api.call(
        "eligibility",
        "POST",
        "/v1/covid-cases",
        body={
            "psn_no": person.psn_no,
            "status": status,
            "diagnosed_at": diagnosed.isoformat(),
            "fixmedins_code": rng.choice(["H1", "H2", "H6"]),
            "diagnosis": "U07.1 新型冠状病毒肺炎" if status == "confirmed" else "U07.2 新型冠状病毒肺炎(疑似)",
            "published": rng.random() < 0.8,
        },
    )
    return status


async def _settle(
    api: Api, n: int, person: Person, rng: random.Random, now: datetime, covid: str | None
) -> dict | None:
    """One of today's settlements: visit (idempotent key) → fee lines → discharge → settle; None if settled before."""
    tag = f"demo-{now.date().isoformat()}-{n}"
    inpatient = rng.random() < (0.5 if covid else 0.08)
    chronic = person.chronic if not covid and not inpatient and person.chronic and rng.random() < 0.6 else None
    code = rng.choice(LOCAL_HOSPITALS + (["H4"] if person.local else []))
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    begin = (
        (start_of_day - timedelta(days=rng.randint(2, 9)))
        if inpatient
        else start_of_day + (now - start_of_day) * rng.random()
    )
    visit = {
        "psn_no": person.psn_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person.certno,
        "fixmedins_code": code,
        "med_type": "21" if inpatient else "14" if chronic else "11",
        "begntime": begin.isoformat(),
        "diagnoses": [{"confirmed": "U07.1", "suspected": "U07.2"}[covid]]
        if covid
        else (
            ["I10"]
            if chronic == "hypertension"
            else ["E11.9"]
            if chronic
            else [rng.choice(["J06.9", "K29.7", "M54.5"])]
        ),
    }
    if chronic:
        visit["chronic_disease"] = chronic
    created = await api.call("settlement", "POST", "/v1/visits", body=visit, key=f"{tag}-visit", ok=(201, 409))
    if created.status_code == 409:
        if created.json().get("code") != "IDEMPOTENCY_KEY_REUSED":
            raise DemoError(f"settlement POST /v1/visits answered 409 ({created.json().get('code')})")
        return None  # an earlier run today created this visit (at another time of day): done then
    mdtrt_id = created.json()["mdtrt_id"]
    state = (await api.call("settlement", "GET", f"/v1/visits/{mdtrt_id}")).json()
    if state.get("status") not in (None, "open"):
        return None
    catalogue = COVID_ITEMS if covid else INPATIENT_ITEMS if inpatient else ITEMS
    when = (begin + timedelta(minutes=30)).isoformat()
    items = _items(rng, catalogue, rng.randint(2, 4), tag, when)
    if inpatient:
        end = max(begin + timedelta(hours=1), start_of_day + (now - start_of_day) * rng.random())
        days = (end.date() - begin.date()).days + 1  # a bed every day of the stay (no day without a fee line: 挂床)
        items += [
            _line(
                f"{tag}-CW{d}", "ZY-CW", "床位费", "50.00", "1", max(begin, start_of_day - timedelta(days=days - 1 - d))
            )
            for d in range(days)
        ]
    await api.call("settlement", "POST", f"/v1/visits/{mdtrt_id}/fees", body={"items": items})
    if inpatient:
        await api.call("settlement", "POST", f"/v1/visits/{mdtrt_id}/discharge", body={"endtime": end.isoformat()})
    options = {"acct_used_flag": person.insutype == "310" and rng.random() < 0.5}
    return (
        await api.call("settlement", "POST", f"/v1/visits/{mdtrt_id}/settle", body=options, key=f"{tag}-settle")
    ).json()


def _prescribed(person: Person, rng: random.Random) -> list[dict]:
    """The lines of a prescription: a long one (长处方) of the person's 两病 drug, or a few days of one or two drugs."""
    if person.chronic:
        codg, name, item_class, _ = RX_CHRONIC_ITEMS[person.chronic]
        days = rng.choice([28, 56, 84])
        return [
            {
                "med_list_codg": codg,
                "med_list_name": name,
                "item_class": item_class,
                "cnt": str(days // 14),
                "days_supply": days,
            }
        ]
    return [
        {
            "med_list_codg": codg,
            "med_list_name": name,
            "item_class": item_class,
            "cnt": "1",
            "days_supply": rng.randint(3, 7),
        }
        for codg, name, item_class, _ in rng.sample(RX_ITEMS, rng.randint(1, 2))
    ]


async def _dual_channel(api: Api, n: int, person: Person, rng: random.Random, now: datetime) -> dict | None:
    """A hospital's external prescription 外配处方, settled at a pharmacy (med_type 41); None if used before."""
    rx_no = f"DEMO-RX-{now:%Y%m%d}-{n:03d}"
    found = await api.call("settlement", "GET", f"/v1/prescriptions/{rx_no}", ok=(200, 404))
    if found.status_code == 200:
        if found.json()["status"] != "valid":
            return None  # dispensed by an earlier run today
        lines = found.json()["items"]
    else:
        lines = _prescribed(person, rng)
        body = {
            "rx_no": rx_no,
            "psn_no": person.psn_no,
            "fixmedins_code": rng.choice(LOCAL_HOSPITALS),
            "issued_at": now.isoformat(),
            "items": lines,
        }
        if person.chronic:
            body["chronic_disease"] = person.chronic  # settled under the chronic rules
        await api.call("settlement", "POST", "/v1/prescriptions", body=body)
    prices = random.Random(rx_no)  # the same prices whether this run or an earlier one issued it
    items = []
    for index, line in enumerate(lines):
        low, high = RX_PRICES[line["med_list_codg"]]
        items.append(
            {
                "feedetl_sn": f"{rx_no}-{index}",
                "med_list_codg": line["med_list_codg"],
                "med_list_name": line["med_list_name"],
                "cnt": line["cnt"],
                "pric": f"{prices.randrange(low * 100, high * 100) / 100:.2f}",
                "fee_ocur_time": now.isoformat(),
            }
        )
    body = {
        "rx_no": rx_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person.certno,
        "fixmedins_code": rng.choice(PHARMACIES),
        "items": items,
        "acct_used_flag": person.insutype == "310" and rng.random() < 0.5,
    }
    return (
        await api.call("settlement", "POST", "/v1/pharmacy/settlements", body=body, key=f"demo-dispense-{rx_no}")
    ).json()


def _line(sn: str, codg: str, name: str, pric: str, cnt: str, when: datetime, **extra) -> dict:
    return {
        "feedetl_sn": sn,
        "med_list_codg": codg,
        "med_list_name": name,
        "pric": pric,
        "cnt": cnt,
        "fee_ocur_time": when.isoformat(),
        **extra,
    }


async def _supervised_visit(api: Api, tag: str, visit: dict, lines: list[dict], *, endtime: datetime | None = None):
    """A visit of the supervision stage (keyed, so a second run the same day settles nothing again)."""
    created = await api.call("settlement", "POST", "/v1/visits", body=visit, key=f"{tag}-visit")
    mdtrt_id = created.json()["mdtrt_id"]
    state = (await api.call("settlement", "GET", f"/v1/visits/{mdtrt_id}")).json()
    if state.get("status") not in (None, "open"):
        return None
    await api.call("settlement", "POST", f"/v1/visits/{mdtrt_id}/fees", body={"items": lines})
    if endtime is not None:
        await api.call("settlement", "POST", f"/v1/visits/{mdtrt_id}/discharge", body={"endtime": endtime.isoformat()})
    return (await api.call("settlement", "POST", f"/v1/visits/{mdtrt_id}/settle", body={}, key=f"{tag}-settle")).json()


async def _supervision(api: Api, city: list[Person], now: datetime, say: Callable[[str], None]) -> None:
    """What supervision watches, so that every kind of alert shows: civil affairs' import of 防返贫监测对象 and their
    costly stays (one of them 挂床), a frequent visitor (several institutions, the same examination twice), a
    stockpiling 两病 patient, watched goods dispensed at pharmacies (two above their caps), the month's indicators,
    a day's late filings."""
    today = now.date()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    local = [p for p in reversed(city) if p.local]
    monitored, visitor = [p for p in local if p.insutype == "390" and not p.chronic][:2], local[0]
    chronic = next(p for p in local if p.chronic == "hypertension")
    rows = "\n".join(f"新增,{p.certno},防返贫监测对象,{today.year}-01-01" for p in monitored)
    imported = await api.call(
        "eligibility",
        "POST",
        "/v1/aid-identities/imports",
        content=f"操作,身份证号,类别,开始日期\n{rows}\n新增,621000190001010000,低保对象,{today.year}-01-01\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    report = imported.json()
    say(
        f"demo: civil affairs import: {report['applied']} applied, {report['unchanged']} unchanged, "
        f"{len(report['refused'])} refused"
    )
    tag = f"demo-sup-{today.isoformat()}"
    admitted = midnight - timedelta(days=6) + timedelta(hours=9)
    for n, person in enumerate(monitored):  # a costly stay each (class C materials); the second one 挂床
        charged = range(7) if n == 0 else (0, 6)
        lines = [_line(f"{tag}-S{n}-HC", "ZY-HC", "特殊耗材", "6000.00", "2", admitted)]
        lines += [
            _line(f"{tag}-S{n}-CW{d}", "ZY-CW", "床位费", "60.00", "1", admitted + timedelta(days=d)) for d in charged
        ]
        visit = {
            "psn_no": person.psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.certno,
            "fixmedins_code": "H6",
            "med_type": "21",
            "begntime": admitted.isoformat(),
            "diagnoses": ["K35.8"],
        }
        await _supervised_visit(api, f"{tag}-stay{n}", visit, lines, endtime=midnight + timedelta(minutes=1))
    for n, code in enumerate(["H3"] * 7 + ["H5", "H8"]):  # nine visits today, at three institutions
        when = midnight + timedelta(minutes=2 + n)
        lines = [
            _line(f"{tag}-V{n}-XCG", "JC-XCG", "血常规", "20.00", "1", when),
            _line(f"{tag}-V{n}-TZ", "YP-TZ", "头孢克肟片", "30.00", "1", when),
        ]
        if code != "H3":
            lines.append(_line(f"{tag}-V{n}-CT", "JC-CT", "胸部CT平扫", "220.00", "1", when))  # twice in a day
        visit = {
            "psn_no": visitor.psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": visitor.certno,
            "fixmedins_code": code,
            "med_type": "11",
            "begntime": when.isoformat(),
            "diagnoses": ["J06.9"],
        }
        await _supervised_visit(api, f"{tag}-visit{n}", visit, lines)
    for n in range(2):  # two long prescriptions of 84 days the same day: stockpiling
        when = midnight + timedelta(minutes=20 + n)
        visit = {
            "psn_no": chronic.psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": chronic.certno,
            "fixmedins_code": "H1",
            "med_type": "14",
            "chronic_disease": "hypertension",
            "begntime": when.isoformat(),
            "diagnoses": ["I10"],
        }
        lines = [_line(f"{tag}-R{n}", "YP-NFDP", "硝苯地平控释片", "35.00", "6", when, days_supply=84)]
        await _supervised_visit(api, f"{tag}-chronic{n}", visit, lines)
    for n, (pharmacy, codg, name, item_class, pric, cnt, days) in enumerate(WATCHED_DISPENSED):
        buyer, rx_no = local[10 + n], f"DEMO-SUP-RX-{today:%Y%m%d}-{n}"
        found = await api.call("settlement", "GET", f"/v1/prescriptions/{rx_no}", ok=(200, 404))
        if found.status_code == 200 and found.json()["status"] != "valid":
            continue  # dispensed by an earlier run today
        item = {"med_list_codg": codg, "med_list_name": name, "item_class": item_class, "cnt": cnt}
        if found.status_code == 404:
            await api.call(
                "settlement",
                "POST",
                "/v1/prescriptions",
                body={
                    "rx_no": rx_no,
                    "psn_no": buyer.psn_no,
                    "fixmedins_code": "H8",
                    "issued_at": now.isoformat(),
                    "items": [{**item, "days_supply": days}],
                },
            )
        await api.call(
            "settlement",
            "POST",
            "/v1/pharmacy/settlements",
            body={
                "rx_no": rx_no,
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": buyer.certno,
                "fixmedins_code": pharmacy,
                "items": [
                    {
                        "feedetl_sn": f"{rx_no}-0",
                        "med_list_codg": codg,
                        "med_list_name": name,
                        "pric": pric,
                        "cnt": cnt,
                        "fee_ocur_time": now.isoformat(),
                    }
                ],
            },
            key=f"{tag}-dispense{n}",
        )
    counts: dict = {}
    for _ in range(60):  # the settlements reach reporting through the broker
        counts = (await api.call("reporting", "GET", "/v1/dashboard", params={"date": today.isoformat()})).json()
        counts = counts.get("alerts_open", {})
        if all(counts.get(kind) for kind in ("high_cost", "price", "fraud")):
            break
        await asyncio.sleep(0.5)
    await api.call("reporting", "POST", "/v1/alerts/checks", body={"check": "indicators", "month": f"{today:%Y-%m}"})
    day = today - timedelta(days=2)
    for area in FILED_AREAS:
        await api.call(
            "reporting",
            "POST",
            "/v1/filings",
            body={
                "report": "daily",
                "date": day.isoformat(),
                "admdvs": area,
                "filled_by": "演示填报员",
                "approved_by": "演示审核员",
            },
        )
    await api.call("reporting", "POST", "/v1/alerts/checks", body={"check": "filing", "date": day.isoformat()})
    counts = (await api.call("reporting", "GET", "/v1/dashboard", params={"date": today.isoformat()})).json()
    opened = counts.get("alerts_open", {})
    say("demo: open alerts " + ", ".join(f"{kind} {opened.get(kind, 0)}" for kind in ALERT_KINDS))


async def _seed(urls: dict[str, str], key: str, say: Callable[[str], None]) -> None:
    api = Api(urls, key)
    progress = Progress(say)
    now = datetime.now(BUSINESS_TZ)
    today = now.date()
    try:
        for institution in INSTITUTIONS:
            await api.call("eligibility", "POST", "/v1/institutions", body=institution)
        say(f"demo: {len(INSTITUTIONS)} institutions registered")
        city = people(PERSONS)
        if progress.bar:
            progress.bar.start()
        try:
            created = await progress.run(
                "参保人", [_register(api, p, random.Random(i), today) for i, p in enumerate(city)]
            )
            credit_run = await api.call(  # the month's personal-account credit (DOMAIN §7); again: the same answer
                "settlement", "POST", "/v1/accounts/credit-runs", body={"period": f"{today:%Y-%m}"}
            )
            credited = credit_run.json()["persons"] if credit_run.status_code == 201 else 0  # 200: run before
            rng = random.Random(today.toordinal())
            covid_people = rng.sample([p for p in city if p.local or rng.random() < 0.5], COVID_CASES)
            statuses = await progress.run(
                "新冠病例", [_covid_case(api, p, random.Random(p.psn_no), now) for p in covid_people]
            )
            prepayments = [
                ("H1", "covid_special", "1000000.00", today - timedelta(days=1)),
                ("H1", "top_up", "30000000.00", today),
                ("H2", "covid_special", "500000.00", today),
                ("H6", "covid_special", "300000.00", today - timedelta(days=1)),
            ]
            prepayments += [(code, "annual_turnover", "2000000.00", date(today.year, 1, 2)) for code in LOCAL_HOSPITALS]
            await progress.run(
                "预付金",
                [
                    api.call(
                        "prepayment",
                        "POST",
                        "/v1/prepayments",
                        body={"fixmedins_code": code, "kind": kind, "amount": amount, "disbursed_on": day.isoformat()},
                        key=f"demo-prepayment-{code}-{kind}-{day.isoformat()}",
                    )
                    for code, kind, amount, day in prepayments
                ],
            )
            await progress.run(
                "总额预算",
                [
                    api.call("prepayment", "PUT", f"/v1/budgets/{code}", body={"year": today.year, "amount": amount})
                    for code, amount in BUDGETS.items()
                ],
            )
            await asyncio.sleep(1.0)  # institutions reach the settlement service through the broker
            by_case = {p.psn_no: s for p, s in zip(covid_people, statuses) if s in ("confirmed", "suspected")}
            visitors = list(by_case) + [p.psn_no for p in rng.sample(city, SETTLEMENTS - len(by_case))]
            index = {p.psn_no: p for p in city}
            jobs = [
                _settle(api, n, index[psn_no], random.Random(n * 7919 + today.toordinal()), now, by_case.get(psn_no))
                for n, psn_no in enumerate(dict.fromkeys(visitors))
            ]
            settled = [s for s in await progress.run("结算", jobs) if s]
            rx_rng = random.Random(today.toordinal() + 41)  # draws of its own: the visits' choices stay as they were
            seen_today = set(visitors)
            outpatients = [p for p in city if p.local and p.psn_no not in seen_today]  # nobody admitted today
            patients = rx_rng.sample(outpatients, min(PRESCRIPTIONS, len(outpatients)))
            dispensed = [
                s
                for s in await progress.run(
                    "双通道处方",
                    [
                        _dual_channel(api, n, p, random.Random(f"{today.isoformat()}-{n}"), now)
                        for n, p in enumerate(patients)
                    ],
                )
                if s
            ]
            chosen = random.Random(today.toordinal()).sample(settled, min(REVERSALS, len(settled)))
            await progress.run(
                "冲销",
                [
                    api.call(
                        "settlement",
                        "POST",
                        f"/v1/settlements/{s['setl_id']}/reverse",
                        key=f"demo-reverse-{s['setl_id']}",
                        ok=(200, 409),
                    )
                    for s in chosen
                ],
            )
        finally:
            if progress.bar:
                progress.bar.stop()
        await _supervision(api, city, now, say)
        say(
            f"demo: {sum(created)} new persons (of {len(city)}), {len(by_case)} COVID patients, "
            f"{len(settled)} new settlements today, {len(chosen)} reversed, {len(prepayments)} prepayments, "
            f"{len(BUDGETS)} hospital budgets for {today.year}, {len(dispensed)} dual-channel prescriptions "
            f"settled at pharmacies, {credited} personal accounts credited for {today:%Y-%m}"
        )
    finally:
        await api.close()


def _admin_key(api_keys: str) -> str:
    for key, spec in json.loads(api_keys).items():
        if spec["role"] == "admin":
            return key
    raise DemoError("no admin key in API_KEYS; the demo needs one")


def seed_demo(*, urls: dict[str, str], api_keys: str, say: Callable[[str], None]) -> None:
    """Fill the running stack with the demo city through its public APIs (a re-run skips what exists)."""
    asyncio.run(_seed(urls, _admin_key(api_keys), say))

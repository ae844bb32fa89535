"""Data set up through the public APIs, and the clients: HIS systems settling and reversing while parts die.

A client retries like a real HIS: on 503, on a connection that failed or broke, on a timeout (and on any other
5xx, counted apart) it sends the same request again with the same Idempotency-Key, so an answer that was lost
does not make a second settlement. What each client saw is kept for the audit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx

from deploy.demo import COVID_ITEMS, INSTITUTIONS, ITEMS, certno

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
CODES = ("H1", "H2", "H6", "H8")  # city and county hospitals: both advance payers of COVID subsidies
CHAOS_INSTITUTIONS = [i for i in INSTITUTIONS if i["fixmedins_code"] in CODES]
PREPAYMENTS = [(code, "annual_turnover", "2000000.00") for code in CODES] + [("H1", "covid_special", "500000.00")]
REGIONS = ("621000", "621002", "621021", "621022", "621024", "621027", "620100", "610100")
PERSONS = 300
COVID_CONFIRMED = 0.15  # share of settlements with diagnoses ["U07.1"]
COVID_SUSPECTED = 0.05  # and ["U07.2"]
REVERSE_SHARE = 0.12  # after a settlement, chance that the client reverses one of its own
RETRY_WINDOW = 120.0  # a request is retried this long, then its answer counts as lost
TIMEOUT = httpx.Timeout(20.0, connect=3.0)
MONEY = ("medfee_sumamt", "fund_pay_sumamt", "fin_subsidy_pay", "psn_pay", "hifp_pay", "hifmi_pay", "maf_pay")


class Refused(Exception):
    """A 4xx the client did not expect: the flow stops (the answer is counted by status and code)."""


class GaveUp(Exception):
    """No answer within the retry window."""


@dataclass
class Seen:
    """What the clients saw (and what they did not)."""

    settled: dict[str, dict] = field(default_factory=dict)  # setl_id → the 201's fields
    reversed: dict[str, dict] = field(default_factory=dict)  # setl_id → the 200
    lost_settles: dict[str, str] = field(default_factory=dict)  # mdtrt_id → settle key whose answer never came
    lost_reversals: set[str] = field(default_factory=set)  # setl_ids whose reversal answer never came
    abandoned: Counter = field(default_factory=Counter)  # flows given up before the settle call, by step
    refused: Counter = field(default_factory=Counter)  # (step, status, code)
    calls: Counter = field(default_factory=Counter)  # requests, retries, 503, connection errors, other 5xx …
    server_errors: list[str] = field(default_factory=list)  # a few 5xx other than 503, for the report

    def summary(self) -> str:
        covid = sum(1 for s in self.settled.values() if s["covid_status"])
        subsidised = sum(1 for s in self.settled.values() if Decimal(s["fin_subsidy_pay"]) > 0)
        c = self.calls
        other5xx = sum(v for k, v in c.items() if k.startswith("5") and k != "503")
        lines = [
            f"settlements seen (201): {len(self.settled)} (COVID {covid}, with a finance subsidy {subsidised}); "
            f"reversals seen (200): {len(self.reversed)}",
            f"requests {c['requests']}, retried {c['retries']}: 503 ×{c['503']}, connection errors ×{c['connection']}, "
            f"timeouts ×{c['timeout']}, key in progress (409) ×{c['in_progress']}, other 5xx ×{other5xx}"
            + (f" {sorted((k, v) for k, v in c.items() if k.startswith('5') and k != '503')}" if other5xx else ""),
            f"answers lost (gave up after {RETRY_WINDOW:.0f} s): settle {len(self.lost_settles)}, "
            f"reverse {len(self.lost_reversals)}; flows abandoned before settle: {dict(self.abandoned) or 0}",
        ]
        if self.refused:
            lines.append(f"refused (4xx): {dict(self.refused)}")
        return "\n".join(lines)


class Api:
    """The stack's four services; every call retried on 503 / connection errors with the same request."""

    def __init__(self, urls: dict[str, str], seen: Seen) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self.clients = {
            name: httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits) for name, url in urls.items()
        }
        self.seen = seen

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        api_key: str,
        body: dict | None = None,
        idem: str | None = None,
        params: dict | None = None,
        ok: tuple[int, ...] = (200, 201),
        wait_institution: bool = False,
    ) -> httpx.Response:
        """The answer with a status in `ok`; Refused for another 4xx; GaveUp after RETRY_WINDOW."""
        headers = {"X-Api-Key": api_key}
        if idem:
            headers["Idempotency-Key"] = idem
        calls = self.seen.calls
        deadline = time.monotonic() + RETRY_WINDOW
        attempt = 0
        while True:
            if attempt:
                calls["retries"] += 1
                await asyncio.sleep(min(2.0, 0.1 * 2 ** min(attempt, 5)) * random.uniform(0.5, 1.0))
            if time.monotonic() > deadline:
                raise GaveUp(f"{method} {path}")
            attempt += 1
            calls["requests"] += 1
            try:
                response = await self.clients[service].request(method, path, json=body, headers=headers, params=params)
            except httpx.TimeoutException:
                calls["timeout"] += 1
                continue
            except httpx.TransportError:
                calls["connection"] += 1
                continue
            status = response.status_code
            if status in ok:
                return response
            code = _code(response)
            if status >= 500:
                calls[str(status)] += 1
                if status != 503 and len(self.seen.server_errors) < 20:
                    self.seen.server_errors.append(f"{status} {method} {service}{path}: {response.text[:200]}")
                continue
            if status == 409 and code == "IDEMPOTENCY_KEY_IN_PROGRESS":
                calls["in_progress"] += 1
                continue
            if wait_institution and "INSTITUTION" in code:
                continue  # set-up: the institution is still on its way through the broker
            raise Refused(f"{status} {code}")

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


@dataclass(frozen=True)
class Person:
    psn_no: str
    certno: str
    insutype: str


@dataclass(frozen=True)
class World:
    """What the set-up made: the persons, and the prepayments per institution."""

    persons: list[Person]
    prepaid: dict[str, Decimal]


async def set_up(api: Api, keys: dict[str, str], rng: random.Random) -> World:
    """Institutions, persons and prepayments through the public APIs; returns when settlement takes visits."""
    admin = keys["admin"]
    for institution in CHAOS_INSTITUTIONS:
        await api.call("eligibility", "POST", "/v1/institutions", api_key=admin, body=institution, ok=(201,))
    persons = []
    for i in range(PERSONS):
        region = rng.choice(REGIONS)
        persons.append(Person(psn_no=f"CHAOS{i:05d}", certno=certno(region, i), insutype=rng.choice(("310", "390"))))
    gate = asyncio.Semaphore(8)

    async def register(person: Person, region: str) -> None:
        body = {
            "psn_no": person.psn_no,
            "certno": person.certno,
            "psn_name": f"混沌{int(person.psn_no[5:])}",
            "insutype": person.insutype,
            "insuplc_admdvs": region,
        }
        if person.insutype == "310":
            body["psn_type"] = "in_service"
        async with gate:
            await api.call("eligibility", "POST", "/v1/persons", api_key=admin, body=body, ok=(201,))

    await asyncio.gather(*(register(p, p.certno[:6]) for p in persons))
    prepaid: dict[str, Decimal] = {code: Decimal("0.00") for code in CODES}
    today = datetime.now(BUSINESS_TZ).date().isoformat()
    for code, kind, amount in PREPAYMENTS:
        await api.call(
            "prepayment",
            "POST",
            "/v1/prepayments",
            api_key=admin,
            body={"fixmedins_code": code, "kind": kind, "amount": amount, "disbursed_on": today},
            idem=f"chaos-prepayment-{code}-{kind}",
            ok=(201,),
            wait_institution=True,
        )
        prepaid[code] += Decimal(amount)
    # Settlement learns institutions from `institution-changed`: a first visit at each one, left open.
    probe = persons[0]
    for code in CODES:
        await api.call(
            "settlement",
            "POST",
            "/v1/visits",
            api_key=admin,
            body=_visit(probe, code, ["J06.9"]),
            idem=f"chaos-probe-{code}",
            ok=(201,),
            wait_institution=True,
        )
    return World(persons=persons, prepaid=prepaid)


def _visit(person: Person, code: str, diagnoses: list[str]) -> dict:
    return {
        "psn_no": person.psn_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person.certno,
        "fixmedins_code": code,
        "med_type": "11",
        "begntime": datetime.now(BUSINESS_TZ).isoformat(),
        "diagnoses": diagnoses,
    }


def _fee_lines(rng: random.Random, tag: str, covid: bool) -> list[dict]:
    catalogue = COVID_ITEMS if covid else ITEMS
    when = datetime.now(BUSINESS_TZ).isoformat()
    lines = []
    for index, (codg, name, item_class, (low, high)) in enumerate(rng.sample(catalogue, rng.randint(2, 4))):
        price = low if low == high else rng.randrange(low * 100, high * 100) / 100
        lines.append(
            {
                "feedetl_sn": f"{tag}-{index}",
                "med_list_codg": codg,
                "med_list_name": name,
                "item_class": item_class,
                "pric": f"{price:.2f}",
                "cnt": str(rng.randint(1, 3)),
                "fee_ocur_time": when,
            }
        )
    return lines


@dataclass
class Client:
    """One HIS: its institution, its key, its own random draws and the settlements it may reverse."""

    number: int
    code: str
    api_key: str
    rng: random.Random
    own: list[str] = field(default_factory=list)

    async def run(self, api: Api, world: World, seen: Seen, stop: asyncio.Event) -> None:
        flow = 0
        while not stop.is_set():
            flow += 1
            tag = f"chaos-c{self.number}-{flow}"
            setl_id = await self.settle_one(api, world, seen, tag)
            if setl_id:
                self.own.append(setl_id)
            if self.own and self.rng.random() < REVERSE_SHARE:
                victim = self.own.pop(self.rng.randrange(max(0, len(self.own) - 20), len(self.own)))
                await self.reverse_one(api, seen, victim)

    async def settle_one(self, api: Api, world: World, seen: Seen, tag: str) -> str | None:
        person = self.rng.choice(world.persons)
        draw = self.rng.random()
        diagnoses = (
            ["U07.1"]
            if draw < COVID_CONFIRMED
            else ["U07.2"]
            if draw < COVID_CONFIRMED + COVID_SUSPECTED
            else ["J06.9"]
        )
        step = "visit"
        try:
            created = await api.call(
                "settlement",
                "POST",
                "/v1/visits",
                api_key=self.api_key,
                body=_visit(person, self.code, diagnoses),
                idem=f"{tag}-visit",
                ok=(201,),
            )
            mdtrt_id = created.json()["mdtrt_id"]
            step = "fees"
            lines = _fee_lines(self.rng, tag, covid=diagnoses[0].startswith("U07"))
            await api.call(
                "settlement", "POST", f"/v1/visits/{mdtrt_id}/fees", api_key=self.api_key, body={"items": lines}
            )
            step = "settle"
            try:
                settled = await api.call(
                    "settlement",
                    "POST",
                    f"/v1/visits/{mdtrt_id}/settle",
                    api_key=self.api_key,
                    body={"acct_used_flag": False},
                    idem=f"{tag}-settle",
                    ok=(201,),
                )
            except GaveUp:
                seen.lost_settles[mdtrt_id] = f"{tag}-settle"
                return None
        except GaveUp:
            seen.abandoned[step] += 1
            return None
        except Refused as exc:
            seen.refused[(step, str(exc))] += 1
            return None
        body = settled.json()
        seen.settled[body["setl_id"]] = {
            "mdtrt_id": mdtrt_id,
            "fixmedins_code": self.code,
            "covid_status": body.get("covid_status"),
            "setl_time": body.get("setl_time"),
            **{name: body[name] for name in MONEY},
        }
        return str(body["setl_id"])

    async def reverse_one(self, api: Api, seen: Seen, setl_id: str) -> None:
        try:
            answer = await api.call(
                "settlement",
                "POST",
                f"/v1/settlements/{setl_id}/reverse",
                api_key=self.api_key,
                body=None,
                idem=f"chaos-reverse-{setl_id}",
                ok=(200,),
            )
        except GaveUp:
            seen.lost_reversals.add(setl_id)
            return
        except Refused as exc:
            seen.refused[("reverse", str(exc))] += 1
            return
        seen.reversed[setl_id] = answer.json()


def make_clients(count: int, keys: dict[str, str], seed: int) -> list[Client]:
    """Client i works for institution CODES[i % 4]; H1's clients use H1's HIS key, the others the admin key."""
    clients = []
    for number in range(count):
        code = CODES[number % len(CODES)]
        key = keys["his"] if code == "H1" else keys["admin"]
        clients.append(Client(number=number, code=code, api_key=key, rng=random.Random(f"{seed}-client-{number}")))
    return clients

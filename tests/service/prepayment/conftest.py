"""The prepayment service in-process against the session's PostgreSQL, events applied directly.

Its consumer and relay are off: tests hand events to a `Consumer` bound to the app's database,
through the inbox, exactly as the running consumer would, and never see events other tests
publish on the broker; the `prepayment-disbursed`, `budget-set` and `subsidy-paid` events these tests
cause stay in the outbox (where the tests read them) and are removed afterwards, so other services'
tests never receive them. Every test uses fresh institution codes (T…) in a pooling area nobody else uses.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "prepayment"))

from prepayment_support import envelope  # noqa: E402

from services.prepayment.handlers import handlers  # noqa: E402
from shared.db import Sql  # noqa: E402
from shared.events.consumer import Consumer  # noqa: E402
from shared.events.topics import BUDGET_SET, INSTITUTION_CHANGED, PREPAYMENT_DISBURSED, SUBSIDY_PAID  # noqa: E402
from shared.service import create_app  # noqa: E402
from shared.testing import ADMIN_KEY, OPS_KEY, make_settings, running_app  # noqa: E402

TEST_AREA = "65"  # not the reference province: nothing these tests book shows in its reports
TEST_ADMDVS = "650102"
CODE_PREFIX = "T"  # every institution code these tests make
REF_PREFIX = "R-"  # every subsidy payment's ref
ADMIN = {"X-Api-Key": ADMIN_KEY}
OPS = {"X-Api-Key": OPS_KEY}


class Books:
    """The app, an HTTP client to it and a consumer to feed it events."""

    def __init__(self, client, app, consumer: Consumer) -> None:
        self.client = client
        self.app = app
        self.consumer = consumer

    async def deliver(
        self, topic: str, payload: dict, *, event_id: str | None = None, occurred_at: str = "2024-03-02T09:00:00+08:00"
    ) -> bool:
        """Apply one event through the inbox; True if it took effect."""
        event = envelope(topic, payload, event_id=event_id, occurred_at=occurred_at)
        return await self.consumer.apply(topic, event.to_json())

    async def institution(
        self,
        code: str,
        *,
        affiliation: str = "city",
        admdvs: str = TEST_ADMDVS,
        suspended: bool = False,
        version: int = 1,
    ) -> None:
        await self.deliver(
            INSTITUTION_CHANGED,
            {
                "fixmedins_code": code,
                "fixmedins_name": f"医院{code}",
                "kind": "hospital",
                "level": 2,
                "affiliation": affiliation,
                "admdvs": admdvs,
                "suspended": suspended,
                "version": version,
            },
        )

    async def position(self, code: str) -> dict:
        response = await self.client.get(f"/v1/institutions/{code}/position", headers=OPS)
        assert response.status_code == 200, response.text
        return response.json()

    async def trial(self, code: str | None = None) -> dict[str, Decimal]:
        """Non-zero balances (of one institution's entries, or of the whole ledger); checks debits = credits."""
        params = {"fixmedins_code": code} if code else {}
        response = await self.client.get("/v1/ledger/trial-balance", params=params, headers=OPS)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["debits"] == body["credits"]
        return {a["account"]: Decimal(a["balance"]) for a in body["accounts"] if Decimal(a["balance"])}

    async def entries(self, code: str) -> list[dict]:
        response = await self.client.get("/v1/ledger/entries", params={"fixmedins_code": code}, headers=OPS)
        assert response.status_code == 200, response.text
        return response.json()["entries"]

    async def prepay(
        self, code: str, amount: str, *, kind: str = "top_up", on: str = "2024-01-05", headers: dict | None = None
    ):
        return await self.client.post(
            "/v1/prepayments",
            headers=headers or ADMIN,
            json={"fixmedins_code": code, "kind": kind, "amount": amount, "disbursed_on": on},
        )


@pytest.fixture(scope="package")
async def books(pg, broker):
    module = importlib.import_module("services.prepayment.app")
    settings = make_settings(
        "prepayment", database_url=pg.url, bootstrap=broker.bootstrap, CONSUMERS_ENABLED=False, RELAY_ENABLED=False
    )
    app = create_app(module.spec, settings)
    async with running_app(app) as client:
        consumer = Consumer(
            db=app.state.db,
            bootstrap=broker.bootstrap,
            group_id="prepayment-tests",
            handlers=handlers(app),
            max_attempts=1,
        )
        yield Books(client, app, consumer)
        async with app.state.db.begin() as unit:
            await unit.execute(
                Sql("""
                DELETE FROM outbox WHERE published_at IS NULL AND topic = :topic
                   AND envelope -> 'payload' ->> 'admdvs' LIKE :area"""),
                topic=PREPAYMENT_DISBURSED,
                area=TEST_AREA + "%",
            )
            await unit.execute(
                Sql("""
                DELETE FROM outbox WHERE published_at IS NULL AND topic = :topic AND key LIKE :codes"""),
                topic=BUDGET_SET,
                codes=CODE_PREFIX + "%",
            )
            await unit.execute(
                Sql("""
                DELETE FROM outbox WHERE published_at IS NULL AND topic = :topic AND key LIKE :refs"""),
                topic=SUBSIDY_PAID,
                refs=REF_PREFIX + "%",
            )


@pytest.fixture
def code() -> str:
    """A fresh institution code."""
    return CODE_PREFIX + uuid.uuid4().hex[:10]


@pytest.fixture
async def hospital(books, code) -> str:
    """A fresh city hospital, known to the service through `institution-changed`."""
    await books.institution(code)
    return code

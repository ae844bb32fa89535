"""What a request (or the claim consumer) needs, built from the composition root (app.state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from services.settlement.engine import Catalogue, EngineError, InvariantViolation, Policy, PolicyBook, PolicyNotFound
from services.settlement.store.institutions import InstitutionCache
from shared.db import Database
from shared.events.envelope import BUSINESS_TZ
from shared.http import InternalClient
from shared.problems import Problem


@dataclass(frozen=True, slots=True)
class Ctx:
    """The database, the eligibility client, the policy book, the catalogue in force, institutions and the clock."""

    db: Database
    eligibility: InternalClient
    api_key: str
    book: PolicyBook
    catalogue: Catalogue
    institutions: InstitutionCache
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        return self.clock()

    def policy_for(self, *, insuplc_admdvs: str, institution_admdvs: str, on: date) -> Policy:
        """The insured place's policy on the rule date; an outsider is settled under the treating area's policy."""
        try:
            return self.book.policy_for(admdvs=insuplc_admdvs, on=on)
        except PolicyNotFound:
            try:
                return self.book.policy_for(admdvs=institution_admdvs, on=on)
            except PolicyNotFound as exc:
                raise Problem(422, "POLICY_NOT_FOUND", str(exc)) from None


def ctx_from_app(app: FastAPI) -> Ctx:
    state = app.state
    return Ctx(
        db=state.db,
        eligibility=state.eligibility,
        api_key=state.settings.internal_api_key,
        book=state.policy_book,
        catalogue=state.catalogue.current,
        institutions=state.institutions,
        clock=state.clock,
    )


async def get_ctx(request: Request) -> Ctx:
    """Async on purpose: FastAPI runs a sync dependency in a thread pool, a hop on every request."""
    return ctx_from_app(request.app)


CtxDep = Annotated[Ctx, Depends(get_ctx)]


def business_date(moment: datetime) -> date:
    """The business day (Asia/Shanghai) of a time; a time without offset is taken as business time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BUSINESS_TZ)
    return moment.astimezone(BUSINESS_TZ).date()


def as_business_time(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BUSINESS_TZ)
    return moment.astimezone(BUSINESS_TZ)


def engine_problem(exc: EngineError) -> Exception:
    """An engine refusal as a 422 with the engine's stable code; an invariant failure stays a bug."""
    if isinstance(exc, InvariantViolation):
        return exc
    return Problem(422, exc.code, str(exc))

"""Chaos (issue 17): settlements and reversals from concurrent HIS clients against `yibao up` while the broker
(several times), each service and PostgreSQL are killed with SIGKILL in an order drawn from a printed seed; then,
once quiet, an audit per setl_id: nothing lost, nothing doubled, in prepayment's books and reporting's read models.

Short by default (the suite's run: ~60 s of load, 4 faults). `make chaos SEED=… MINUTES=…` runs a long one.
Environment: CHAOS_SEED, CHAOS_MINUTES (load minutes; unset: the short run), CHAOS_CLIENTS (8),
CHAOS_REPO (the source tree `yibao up` runs from; default this one), CHAOS_WORKDIR (where the stack's data and logs
go, kept afterwards; default pytest's tmp_path), CHAOS_LOG (a file to append one JSON line of results per run).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from pathlib import Path

import asyncpg
import pytest
from chaos_audit import audit_books, audit_totals, counts
from chaos_faults import Kill, inject, schedule
from chaos_load import RETRY_WINDOW, Api, Seen, make_clients, set_up
from chaos_stack import REPO, Launched, start_stack

SHORT_LOAD_SECONDS = 60.0


def _settings() -> dict:
    minutes = float(os.environ.get("CHAOS_MINUTES") or 0)
    short = minutes <= 0
    return {
        "seed": int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 1_000_000)),
        "load_seconds": SHORT_LOAD_SECONDS if short else minutes * 60,
        "clients": int(os.environ.get("CHAOS_CLIENTS") or 8),
        "repo": Path(os.environ.get("CHAOS_REPO") or REPO).resolve(),
        "quiet": 15.0 if short else 45.0,  # no change in the books for this long (or all agree) …
        "quiet_limit": 75.0 if short else 420.0,  # … or this long after the load, whichever first
    }


class Say:
    """Lines printed at once (pytest -s shows them live) and kept for the failure message."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        for part in line.splitlines():
            self.lines.append(part)
            print(f"chaos: {part}", flush=True)


async def _load(stack: Launched, api: Api, world, seen: Seen, cfg: dict, say: Say, kills: list[Kill]) -> None:
    """The clients for load_seconds while the faults happen; then each finishes (and retries) what it began."""
    clients = make_clients(cfg["clients"], stack.keys(), cfg["seed"])
    faults = schedule(random.Random(cfg["seed"]), cfg["load_seconds"])
    say("fault schedule: " + ", ".join(f"+{f.at}s {f.target}" for f in faults))
    stop = asyncio.Event()
    started = time.monotonic()
    injector = asyncio.create_task(inject(stack, faults, started=started, say=say, kills=kills))
    tasks = [asyncio.create_task(c.run(api, world, seen, stop)) for c in clients]
    try:
        next_note = 15.0
        while (elapsed := time.monotonic() - started) < cfg["load_seconds"]:
            assert stack.alive(), f"yibao up exited ({stack.proc.returncode}):\n{stack.tail()}"
            if elapsed >= next_note:
                say(
                    f"t=+{elapsed:5.1f}s {len(seen.settled)} settled, {len(seen.reversed)} reversed, "
                    f"{seen.calls['retries']} retries"
                )
                next_note += 15.0
            await asyncio.sleep(0.5)
        stop.set()
        say(f"t=+{time.monotonic() - started:5.1f}s load stops; clients finish what they began")
        done, pending = await asyncio.wait(tasks, timeout=RETRY_WINDOW + 60)
        for task in done:
            task.result()  # a client that crashed is a bug of the test: show it
        assert not pending, "clients did not finish within the retry window"
        await asyncio.wait_for(injector, timeout=180)
    finally:
        for task in [*tasks, injector]:
            task.cancel()
        await asyncio.gather(*tasks, injector, return_exceptions=True)


async def _wait_for_quiet(stack: Launched, seen: Seen, cfg: dict, say: Say) -> None:
    """Until the books agree with settlement, or hold still for `quiet` seconds, or `quiet_limit` passed."""
    await asyncio.to_thread(stack.wait_ready, 180)
    started = time.monotonic()
    last, still_since = None, time.monotonic()
    while (waited := time.monotonic() - started) < cfg["quiet_limit"]:
        now = await counts(stack.pg_url)
        if now is not None:
            try:
                if (await audit_books(stack.pg_url, seen)).clean:
                    say(f"quiet after {waited:.1f} s: the books agree")
                    return
            except (OSError, TimeoutError, asyncpg.PostgresError):
                pass
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= cfg["quiet"]:
            say(f"quiet after {waited:.1f} s: nothing changed for {cfg['quiet']:.0f} s")
            return
        await asyncio.sleep(2)
    say(f"still not quiet after {cfg['quiet_limit']:.0f} s; auditing anyway")


@pytest.mark.chaos
async def test_no_settlement_or_reversal_lost_or_doubled_under_faults(tmp_path):
    cfg = _settings()
    if os.environ.get("CHAOS_WORKDIR"):
        tmp_path = Path(os.environ["CHAOS_WORKDIR"]) / f"seed-{cfg['seed']}-{int(time.time())}"
        tmp_path.mkdir(parents=True)
    say = Say()
    say(
        f"SEED={cfg['seed']} load {cfg['load_seconds']:.0f} s, {cfg['clients']} clients, "
        f"code under test {cfg['repo']}, data {tmp_path}"
    )
    if minutes := os.environ.get("CHAOS_MINUTES"):
        say(f"the same run again: make chaos SEED={cfg['seed']} MINUTES={minutes}")
    else:
        say(f"the same run again: CHAOS_SEED={cfg['seed']} pytest -s tests/chaos/test_chaos.py")
    stack = start_stack(tmp_path, repo=cfg["repo"])
    seen = Seen()
    kills: list[Kill] = []
    api = None
    try:
        seconds = await asyncio.to_thread(stack.wait_ready, 120)
        say(f"yibao up ready in {seconds:.1f} s on port base {stack.base}")
        keys = stack.keys()
        setup = Api(stack.urls, Seen())
        try:
            world = await set_up(setup, keys, random.Random(f"{cfg['seed']}-world"))
        finally:
            await setup.close()
        say(f"set up: {len(world.persons)} persons, prepayments {dict((k, str(v)) for k, v in world.prepaid.items())}")
        api = Api(stack.urls, seen)
        await _load(stack, api, world, seen, cfg, say, kills)
        say(seen.summary())
        await _wait_for_quiet(stack, seen, cfg, say)
        audit = await audit_books(stack.pg_url, seen)
        await audit_totals(audit, urls=stack.urls, keys=keys, world=world)
        say("launcher: " + " | ".join(stack.launcher_lines()[-30:]))
        say(audit.summary())
        other_5xx = {k: v for k, v in seen.calls.items() if k.startswith("5") and k != "503"}
        _log_result(cfg, kills, seen, audit, other_5xx)
        assert audit.clean, "\n".join(say.lines)
        skipped = [k.fault.target for k in kills if not k.pids]
        assert not skipped, f"parts that never came back to be killed: {skipped}\n{stack.tail()}"
        assert not other_5xx, f"5xx other than 503 under faults: {other_5xx}\n" + "\n".join(seen.server_errors)
    finally:
        if api is not None:
            await api.close()
        left = await asyncio.to_thread(stack.stop)
        if left:
            say(f"killed what the launcher left running: {left}")


def _log_result(cfg: dict, kills: list[Kill], seen: Seen, audit, other_5xx: dict) -> None:
    """One JSON line per run in CHAOS_LOG (for the long runs' closing note)."""
    target = os.environ.get("CHAOS_LOG")
    if not target:
        return
    line = {
        "seed": cfg["seed"],
        "load_seconds": cfg["load_seconds"],
        "clients": cfg["clients"],
        "repo": str(cfg["repo"]),
        "kills": [{"target": k.fault.target, "at": round(k.at, 1), "back_after": k.back_after} for k in kills],
        "settled": len(seen.settled),
        "reversed": len(seen.reversed),
        "calls": dict(seen.calls),
        "lost_answers": {"settle": len(seen.lost_settles), "reverse": len(seen.lost_reversals)},
        "rows": len(audit.truth),
        "problems": {" ".join(key): len(ids) for key, ids in audit.problems.items() if ids},
        "missing": {s: audit.tally(s, "missing") for s in ("settlement", "prepayment", "reporting")},
        "doubled": {s: audit.tally(s, "doubled") for s in ("settlement", "prepayment", "reporting")},
        "missing_setl_ids": {s: len(audit.ids(s, "missing")) for s in ("settlement", "prepayment", "reporting")},
        "other_5xx": other_5xx,
        "clean": audit.clean,
    }
    with open(target, "a") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")

"""The fault schedule (drawn from the seed) and the task that carries it out with SIGKILL."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from chaos_stack import SERVICES, Launched

OTHERS = ("postgres", *SERVICES)
SHORT_SECONDS = 90  # up to this much load: ~4 faults; longer runs kill every part, ~one fault per SPACING seconds
SPACING = 22.0
VICTIM_WAIT = 45.0  # a part that is still being restarted is waited for, not skipped
RECOVERY_LIMIT = 120.0
STORM = 1  # after the first broker death, this many more, each 3-8 s after the previous one


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the load started
    target: str  # broker | postgres | eligibility | settlement | prepayment | reporting


@dataclass
class Kill:
    fault: Fault
    at: float  # when it happened (seconds after the load started)
    pids: tuple[int, ...]  # empty: the part never came back in time to be killed
    back_after: float | None = None  # seconds until a new process runs and is ready (broker, postgres: all four)


def schedule(rng: random.Random, load_seconds: float) -> list[Fault]:
    """Which part dies when: the broker several times, services and PostgreSQL, in an order drawn from `rng`.

    Short runs (the suite's): the broker, two of the others, and a storm: the broker again 3-8 s after its first
    death, while the stack is still catching up (a sequence that lost events before issue 17). Longer runs: the
    broker three times (the first followed by the storm) and every other part once, then more of the same (the
    broker about as often as any two others) to fill the time. The order is shuffled; the faults fall between 8 %
    and 80 % of the load (a storm ends by 90 %), so the stack comes back under load."""
    if load_seconds <= SHORT_SECONDS:
        targets = ["broker", *rng.sample(OTHERS, 2)]
    else:
        targets = ["broker"] * 3 + list(OTHERS)
        extra = max(0, int(load_seconds / SPACING) - len(targets) - 1)
        targets += [rng.choice(("broker", "broker", *OTHERS)) for _ in range(extra)]
    rng.shuffle(targets)
    start, end = 0.08 * load_seconds, 0.80 * load_seconds
    slot = (end - start) / len(targets)
    faults = [
        Fault(at=round(start + (i + rng.uniform(0.15, 0.85)) * slot, 1), target=target)
        for i, target in enumerate(targets)
    ]
    first = next(f for f in faults if f.target == "broker")
    storm = [first.at]
    for _ in range(STORM):  # the broker dies again and again while the stack is still catching up
        storm.append(storm[-1] + rng.uniform(3.0, 8.0))
    late = max(0.0, storm[-1] - 0.9 * load_seconds)  # a storm that would end too late starts earlier
    faults.remove(first)
    faults += [Fault(at=round(at - late, 1), target="broker") for at in storm]
    return sorted(faults, key=lambda f: f.at)


async def inject(
    stack: Launched, faults: list[Fault], *, started: float, say: Callable[[str], None], kills: list[Kill]
) -> None:
    """Carry out the schedule; a victim that is not running yet (still restarting) is waited for."""
    watchers: list[asyncio.Task] = []
    for fault in faults:
        delay = started + fault.at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        deadline = time.monotonic() + VICTIM_WAIT
        pids: list[int] = []
        while not pids and time.monotonic() < deadline:
            pids = stack.kill(fault.target)
            if not pids:
                await asyncio.sleep(0.2)
        now = time.monotonic() - started
        kill = Kill(fault=fault, at=now, pids=tuple(pids))
        kills.append(kill)
        if pids:
            say(f"t=+{now:5.1f}s SIGKILL {fault.target} (pid {', '.join(map(str, pids[:4]))}{' …' * (len(pids) > 4)})")
            watchers.append(asyncio.create_task(_watch_recovery(stack, kill, say=say, started=started)))
        else:
            say(f"t=+{now:5.1f}s {fault.target} not running for {VICTIM_WAIT:.0f} s; fault skipped")
    await asyncio.gather(*watchers)


async def _watch_recovery(stack: Launched, kill: Kill, *, say: Callable[[str], None], started: float) -> None:
    """How long until the part runs again (a new pid) and says ready (for the broker and PostgreSQL: all four)."""
    killed_at = started + kill.at
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() - killed_at < RECOVERY_LIMIT:
            await asyncio.sleep(0.25)
            fresh = stack.children().get(kill.fault.target)
            if fresh is None or fresh.pid in kill.pids:
                continue
            answers = []
            urls = [stack.urls[kill.fault.target]] if kill.fault.target in SERVICES else stack.urls.values()
            for url in urls:
                try:
                    answers.append((await client.get(f"{url}/readyz")).status_code == 200)
                except httpx.HTTPError:
                    answers.append(False)
            if all(answers):
                kill.back_after = round(time.monotonic() - killed_at, 1)
                now = time.monotonic() - started
                say(f"t=+{now:5.1f}s {kill.fault.target} back: ready {kill.back_after} s after the kill")
                return
    say(f"{kill.fault.target} killed at +{kill.at:.1f}s: not ready within {RECOVERY_LIMIT:.0f} s")

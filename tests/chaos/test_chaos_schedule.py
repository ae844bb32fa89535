"""The chaos test's fault schedule (pure): drawn from the seed alone, the broker several times, every part in a
long run, all within the load."""

from __future__ import annotations

import random

import pytest
from chaos_faults import OTHERS, schedule
from chaos_stack import TARGETS


@pytest.mark.parametrize("seed", range(40))
def test_short_run_kills_the_broker_twice_in_quick_succession_and_two_others(seed):
    faults = schedule(random.Random(seed), 60)
    assert faults == schedule(random.Random(seed), 60)  # the seed alone decides
    targets = [f.target for f in faults]
    assert len(faults) == 4 and targets.count("broker") == 2
    assert len({t for t in targets if t != "broker"}) == 2
    first, second = [f.at for f in faults if f.target == "broker"]
    assert 3.0 <= second - first <= 8.0
    assert all(0 < f.at <= 54 for f in faults) and [f.at for f in faults] == sorted(f.at for f in faults)


@pytest.mark.parametrize("minutes", [3, 10])
def test_long_run_kills_every_part_and_the_broker_several_times(minutes):
    faults = schedule(random.Random(minutes), minutes * 60)
    targets = [f.target for f in faults]
    assert set(targets) == set(TARGETS) and set(OTHERS) <= set(targets)
    assert targets.count("broker") >= 4
    assert len(faults) >= minutes * 60 / 25
    assert all(0 < f.at < minutes * 60 * 0.85 for f in faults)


def test_different_seeds_give_different_orders():
    orders = {tuple(f.target for f in schedule(random.Random(seed), 180)) for seed in range(10)}
    assert len(orders) > 5

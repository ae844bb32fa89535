"""Fixtures for the reporting service tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def swap_settlement(reporting):
    """Point reporting's client of the settlement service elsewhere for one test (`swap(client)`); put back after."""
    state = reporting._transport.app.state
    original = state.settlement

    def swap(client):
        state.settlement = client

    yield swap
    state.settlement = original

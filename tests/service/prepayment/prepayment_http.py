"""What the prepayment service tests send and check over HTTP: the bureau's keys and a refusal's problem+json."""

from __future__ import annotations

from shared.testing import ADMIN_KEY, OPS_KEY

ADMIN = {"X-Api-Key": ADMIN_KEY}
OPS = {"X-Api-Key": OPS_KEY}


def refused(response, status: int, code: str) -> None:
    """The response is a problem+json with `status` and `code`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code

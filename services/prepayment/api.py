"""HTTP routes of the prepayment service."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["prepayment"])

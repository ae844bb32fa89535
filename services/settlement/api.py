"""HTTP routes of the settlement service."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["settlement"])

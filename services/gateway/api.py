"""HTTP routes of the national-platform gateway (NHSA-GATEWAY.md "Where it listens"): the single URL with `infno`
in the envelope, and `/fsi/api/{infno}`; JSON or text/plain bodies alike. Thin: the bytes to dispatch, its answer
back. In the running service the gate (gate.py) answers these paths before FastAPI's routing; these routes declare
them in the OpenAPI and answer the same for an app built without that gate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from services.gateway import dispatch

router = APIRouter(tags=["national platform"])
MEDIA_TYPE = "application/json; charset=utf-8"


async def _answer(request: Request, infno: str | None) -> Response:
    status, content = await dispatch.handle(
        request.app.state.gateway, headers=request.headers, body=await request.body(), path_infno=infno
    )
    return Response(content=content, status_code=status, media_type=MEDIA_TYPE)


@router.post("/fsi/api/rsfComIfsService/callService")
async def call_service(request: Request) -> Response:
    """Any transaction: `infno` inside the envelope."""
    return await _answer(request, None)


@router.post("/fsi/api/{infno}")
async def call_transaction(infno: Annotated[str, Path(max_length=100)], request: Request) -> Response:
    """One transaction: the path's infno must equal the envelope's."""
    return await _answer(request, infno)

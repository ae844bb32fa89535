"""Errors as application/problem+json with a stable UPPER_SNAKE `code`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("yibao.problems")
PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "BODY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    503: "UNAVAILABLE",
}


class Problem(Exception):
    """A domain error the client can act on; rendered as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers


def not_found(what: str, ident: str, code: str = "NOT_FOUND") -> Problem:
    """404 for a missing resource."""
    return Problem(404, code, f"{what} {ident} not found")


def invalid(code: str, detail: str, *, field: str | None = None) -> Problem:
    """422 for input that is well-formed but not acceptable."""
    errors = [{"field": field, "code": code, "detail": detail}] if field else []
    return Problem(422, code, detail, errors=errors)


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    """Build the problem+json response."""
    body: dict[str, Any] = {
        "type": f"https://yibao.example/problems/{code.lower().replace('_', '-')}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
    }
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = []
    malformed = False
    for err in exc.errors():
        if err.get("type") in ("json_invalid", "json_type"):
            malformed = True
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        errors.append(
            {
                "field": ".".join(loc) or None,
                "code": str(err.get("type", "invalid")).upper(),
                "detail": str(err.get("msg", ""))[:300],
            }
        )
    if malformed:
        return 400, "MALFORMED_JSON", errors
    return 422, "VALIDATION_FAILED", errors


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error, expected or not, as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            errors=exc.errors,
            title=exc.title,
            headers=exc.headers,
            instance=request.url.path,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, errors = _validation_errors(exc)
        detail = "request body is not valid JSON" if status == 400 else "request failed validation"
        return problem_response(status, code, detail, errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        return problem_response(
            exc.status_code, code, str(exc.detail), instance=request.url.path, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("storage unavailable: %s", type(exc).__name__)
        return problem_response(
            503,
            "DATABASE_UNAVAILABLE",
            "the database is not reachable; retry later",
            headers={"Retry-After": "2"},
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(500, "INTERNAL", "internal error", instance=request.url.path)

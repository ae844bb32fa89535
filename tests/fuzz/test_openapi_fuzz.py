"""Property-based fuzzing of every service's OpenAPI with schemathesis (issue 17): no request gets a 5xx
(503 only for a dependency that cannot answer), and every error is problem+json with a stable code.

Two phases per service, both from the app's own OpenAPI document:
- coverage: schemathesis' deterministic boundary and schema-violating values of every parameter and field;
- fuzzing: schemathesis' generated cases (valid and schema-violating), driven by hypothesis, which shrinks a
  failure to its smallest form. Half of them are steered toward data that exists (a known person, institution,
  visit, settlement …) so that they get past the first lookup into the deeper code, and some of their values are
  swapped for hostile ones (NUL, lone surrogates, full-width digits, integers beyond 64 bits, years 1 and 9999,
  amounts at the top of the range, "yes" for a boolean …).
Requests go through each in-process app's own event loop (schemathesis' ASGI transport would run a second loop
in a thread, where the apps' database pools cannot go), with a valid admin key.

Short by default (FUZZ_EXAMPLES=80 fuzzing cases per service; the coverage phase is ~3,500 requests; ~25 s for
all four); `FUZZ_EXAMPLES=500` for a longer run. Requests sent and statuses seen per service are printed in the
terminal summary.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from fuzz_support import ANSWERS, SENT, SERVICES, Fuzzed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from shared.testing import ADMIN_KEY

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "80"))
SKIPPED = {"GET /v1/events/stream"}  # a Server-Sent Events stream never ends: its bounds have their own tests
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
CODE = re.compile(r"[A-Z][A-Z0-9_]*")
# parameter or body field name → the seed that makes it refer to something that exists
STEERED = {
    "psn_no": "psn_no",
    "member_psn_no": "psn_no",
    "acct_payer_psn_no": "psn_no",
    "fixmedins_code": "code",
    "code": "code",
    "mdtrt_cert_no": "certno",
    "mdtrt_id": "mdtrt_id",
    "setl_id": "setl_id",
    "rx_no": "rx_no",
    "emp_no": "emp_no",
    "prepayment_id": "prepayment_id",
}
HOSTILE_TEXT = ["\x00", "a\x00b", "\x1f", "１２.００", "1_000.00", "+5.00", "-0.00", " 5.00", "999999999.99", "1e400"]
HOSTILE_TEXT += ["NaN", "0000-01", "9999-12", "0001-01-01", "9999-12-31", "0001-01-01T00:00:00+08:00"]
HOSTILE_TEXT += ["9999-12-31T23:59:59-08:00", "٢٠٢٤-٠١-٠١", "yes", "x" * 3000, "../../x", "%00"]
HOSTILE_NUMBERS = [2**63, 2**64, -(2**63) - 1, 10**30, -1, 0, 1e308, 999999999.99]
HOSTILE = st.sampled_from(HOSTILE_TEXT + HOSTILE_NUMBERS + [True])  # for queries and paths
HOSTILE_IN_BODY = st.sampled_from(HOSTILE_TEXT + HOSTILE_NUMBERS + [True, None, [], {}, "\ud800", "x\udfffy"])


_OPERATIONS: dict[str, list] = {}


def operations(service: str, app: Any) -> list:
    """The operations of a service's OpenAPI document (the app's own), as schemathesis reads them."""
    if service not in _OPERATIONS:
        schema = schemathesis.openapi.from_dict(app.openapi())
        found = [result.ok() for result in schema.get_all_operations()]
        _OPERATIONS[service] = [op for op in found if op.label not in SKIPPED]
    return _OPERATIONS[service]


def coverage_cases(service: str, app: Any) -> list:
    """Schemathesis' coverage phase: boundary and schema-violating values of every parameter and field."""
    cases = []
    for op in operations(service, app):
        config = op.schema.config.generation_for(operation=op, phase="coverage")
        cases.extend(op.schema.iter_coverage_cases(op, generation_modes=MODES, generation_config=config))
    return cases


def _steer(container: Any, seeds: dict[str, list[str]], choose) -> None:
    """Replace fields that name things with values that exist (in place); `choose` picks one of a seed's values."""
    if not isinstance(container, dict):
        return
    for name in list(container):
        seed = STEERED.get(name)
        if seed and seeds.get(seed):
            container[name] = choose(seeds[seed])
            if name == "mdtrt_cert_no":
                container["mdtrt_cert_type"] = "02"


def _mutate(value: Any, draw, hostile, *, odds: int, depth: int = 0) -> Any:
    """The value with about one in `odds` of its leaves (list items, dict values) swapped for hostile ones."""
    if depth < 4 and isinstance(value, dict):
        return {k: _mutate(v, draw, hostile, odds=odds, depth=depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list):
        return [_mutate(v, draw, hostile, odds=odds, depth=depth + 1) for v in value[:20]]
    return draw(hostile) if draw(st.integers(1, odds)) == 1 else value


def _problem_ok(response: httpx.Response) -> str | None:
    """Why an error answer is not a proper problem+json, or None."""
    if response.headers.get("content-type") != "application/problem+json":
        return f"content-type {response.headers.get('content-type')}"
    try:
        body = response.json()
    except ValueError:
        return "not JSON"
    if not isinstance(body, dict) or body.get("status") != response.status_code:
        return f"status field {body.get('status') if isinstance(body, dict) else body!r}"
    if not isinstance(body.get("code"), str) or not CODE.fullmatch(body["code"]):
        return f"code {body.get('code')!r}"
    return None


def _wrong(response: httpx.Response) -> str | None:
    """What is wrong with an answer: a 5xx other than 503, or an error that is not a problem; None if fine."""
    if response.status_code >= 500 and response.status_code != 503:
        return f"{response.status_code}: {response.text[:400]}"
    if response.status_code >= 400 and (why := _problem_ok(response)) is not None:
        return f"{response.status_code} {why}: {response.text[:200]}"
    return None


async def _request(
    fuzzed: Fuzzed, service: str, *, label: str, method: str, path: str, query: Any, body: Any, media_type: str | None
) -> tuple[httpx.Response, str]:
    """Send one request with the admin key; the answer and a description of the request.

    Path parameters are percent-encoded whatever they hold (NUL included), and a JSON body is written with \\u
    escapes, so that lone surrogates reach the service (schemathesis' own serializer cannot carry them)."""
    headers = {"X-Api-Key": ADMIN_KEY}
    content = None
    if isinstance(body, bytes):  # a media-type probe of the coverage phase
        content = body
        headers["Content-Type"] = media_type or "application/octet-stream"
    elif body is not NOT_SET:
        content = json.dumps(body, ensure_ascii=True, default=str).encode()
        headers["Content-Type"] = media_type if "json" in (media_type or "json") else "application/json"
    params = {k: v for k, v in (query or {}).items() if isinstance(v, (str, int, float, bool, list))}
    request = fuzzed.clients[service].request(method, path, params=params or None, headers=headers, content=content)
    response = await asyncio.wait_for(request, 30)
    SENT[service] += 1
    ANSWERS[service][response.status_code] += 1
    return response, f"{label}: {method} {path} params={params} body={content!r:.600}"


def _path(template: str, parameters: dict[str, Any]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: quote(str(parameters.get(m.group(1), "x")), safe=""), template)


async def _send(fuzzed: Fuzzed, service: str, case) -> tuple[httpx.Response, str]:
    """Send a schemathesis case."""
    return await _request(
        fuzzed,
        service,
        label=case.operation.label,
        method=case.method,
        path=_path(case.operation.path, case.path_parameters or {}),
        query=case.query,
        body=case.body,
        media_type=case.media_type,
    )


# ---------------------------------------------------------------- the hostile phase

PROBES = ["\x00", "a\x00b", "１２.００", 2**64, "0001-01-01T00:00:00+08:00", "9999-12-31", "0000-01", "999999999.99"]
PROBES_IN_BODY = [*PROBES, "\ud800", "yes", 10**30]


def _resolve(spec: dict, schema: Any) -> dict:
    """A schema with its $ref followed and a nullable anyOf reduced to the object (or array) it allows."""
    for _ in range(8):
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema:
            schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
        else:
            return schema
    return {}


def _fields(spec: dict, schema: Any) -> list[tuple[str, ...]]:
    """Paths of a body's fields: its properties, and those of the first item of an array of objects."""
    found: list[tuple[str, ...]] = []
    for name, sub in _resolve(spec, schema).get("properties", {}).items():
        found.append((name,))
        sub = _resolve(spec, sub)
        if sub.get("type") == "array":
            found += [(name, "0", *inner) for inner in _fields(spec, sub.get("items"))[:20]]
        elif sub.get("type") == "object":
            found += [(name, *inner) for inner in _fields(spec, sub)[:20]]
    return found


def _put(body: Any, where: tuple[str, ...], value: Any) -> Any:
    """A copy of the body with the field at `where` set to value (containers created as needed)."""
    body = json.loads(json.dumps(body if isinstance(body, dict) else {}))
    node = body
    for step, following in zip(where, where[1:]):
        key: Any = int(step) if isinstance(node, list) else step
        if isinstance(node, list):
            while len(node) <= key:
                node.append({})
        elif not isinstance(node.get(key), (dict, list)):
            node[key] = [] if following == "0" else {}
        node = node[key]
    if isinstance(node, list):
        node.append(value)
    else:
        node[where[-1]] = value
    return body


def hostile_requests(service: str, app: Any, seeds: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One valid-looking request per operation (schemathesis' first positive coverage case, steered to data that
    exists), then the same with each parameter and body field in turn set to each hostile probe."""
    spec = app.openapi()
    found = []
    for op in operations(service, app):
        config = op.schema.config.generation_for(operation=op, phase="coverage")
        base = next(iter(op.schema.iter_coverage_cases(op, generation_modes=MODES[:1], generation_config=config)))
        for part in (base.path_parameters, base.query, base.body):
            _steer(part, seeds, lambda values: values[0])
        request = {
            "label": op.label,
            "method": base.method,
            "path_parameters": dict(base.path_parameters or {}),
            "template": op.path,
            "query": dict(base.query or {}),
            "body": base.body,
            "media_type": base.media_type,
        }
        definition = spec["paths"][op.path][op.method.lower()]
        for parameter in definition.get("parameters", []):
            where = {"path": "path_parameters", "query": "query"}.get(parameter["in"])
            for probe in PROBES if where else ():
                found.append({**request, where: {**request[where], parameter["name"]: probe}})
        body_schema = definition.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        for field in _fields(spec, body_schema):
            found += [{**request, "body": _put(request["body"], field, probe)} for probe in PROBES_IN_BODY]
    return found


@pytest.mark.parametrize("service", SERVICES)
async def test_hostile_phase_gets_no_5xx(fuzzed: Fuzzed, service: str) -> None:
    requests = hostile_requests(service, fuzzed.apps[service], fuzzed.seeds.values)
    failures = []
    for r in requests:
        path = _path(r["template"], r["path_parameters"])
        response, what = await _request(
            fuzzed,
            service,
            label=r["label"],
            method=r["method"],
            path=path,
            query=r["query"],
            body=r["body"],
            media_type=r["media_type"],
        )
        if (why := _wrong(response)) is not None:
            failures.append(f"{what}\n  → {why}")
    assert not failures, f"{len(failures)} of {len(requests)} requests:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize("service", SERVICES)
async def test_coverage_phase_gets_no_5xx(fuzzed: Fuzzed, service: str) -> None:
    cases = coverage_cases(service, fuzzed.apps[service])
    failures = []
    for case in cases:
        response, what = await _send(fuzzed, service, case)
        if (why := _wrong(response)) is not None:
            failures.append(f"{what}\n  → {why}")
    assert not failures, f"{len(failures)} of {len(cases)} requests:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize("service", SERVICES)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_fuzzing_gets_no_5xx(fuzzed: Fuzzed, service: str, data) -> None:
    op = data.draw(st.sampled_from(operations(service, fuzzed.apps[service])), label="operation")
    case = data.draw(op.as_strategy(generation_mode=data.draw(st.sampled_from(MODES))), label="case")
    if data.draw(st.booleans(), label="steer"):
        for part in (case.path_parameters, case.query, case.body):
            _steer(part, fuzzed.seeds.values, lambda values: data.draw(st.sampled_from(values)))
    if data.draw(st.booleans(), label="hostile"):
        case.query = _mutate(case.query, data.draw, HOSTILE, odds=3)
        case.path_parameters = {k: str(v) for k, v in _mutate(case.path_parameters, data.draw, HOSTILE, odds=4).items()}
        if isinstance(case.body, (dict, list)):
            case.body = _mutate(case.body, data.draw, HOSTILE_IN_BODY, odds=6)
    response, what = await _send(fuzzed, service, case)
    assert _wrong(response) is None, f"{what}\n  → {_wrong(response)}"

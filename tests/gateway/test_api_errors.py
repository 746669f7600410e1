"""Bad input gets a 4xx problem+json that names the field, never a 5xx."""

from __future__ import annotations

import pytest
from gateway_harness import Gateway

PROBLEM = "application/problem+json"


def shot(**fields: object) -> dict:
    return {"shots": [{"kind": "broll", "prompt": "a red kite rises over dunes", **fields}]}


CASES = [
    ("unknown model", shot(model="acme/nope"), 422, "unknown_model", "shots[0].model"),
    (
        "strict unsupported",
        shot(model="local/preview", fps=7, normalize="strict"),
        422,
        "unsupported_value",
        "shots[0].fps",
    ),
    ("negative duration", shot(duration_s=-2), 422, "validation_error", "shots[0].duration_s"),
    ("unknown kind", shot(kind="interpretive-dance"), 422, "unknown_kind", "shots[0].kind"),
    ("huge prompt", shot(prompt="word " * 20_000), 422, "validation_error", "shots[0].prompt"),
    ("unknown field", shot(zoom=3), 422, "validation_error", "shots[0].zoom"),
    ("no shots", {"shots": []}, 422, "validation_error", "shots"),
    (
        "bad aspect ratio",
        shot(aspect_ratio="wide"),
        422,
        "validation_error",
        "shots[0].aspect_ratio",
    ),
    (
        "structured prompt typo",
        shot(prompt={"subjekt": "x"}),
        422,
        "validation_error",
        "shots[0].prompt.subjekt",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code", "field"), CASES, ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/quote"])
async def test_bad_bodies(
    gateway: Gateway, path: str, name: str, body: dict, status: int, code: str, field: str
) -> None:
    r = await gateway.http.post(path, json=body, headers=gateway.auth())
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["code"] == code
    assert field in [e["field"] for e in problem["errors"]], problem
    assert problem["status"] == status and problem["title"]


async def test_strict_lists_every_unsupported_value(gateway: Gateway) -> None:
    body = shot(
        model="local/preview", fps=7, resolution="5000p", aspect_ratio="5:1", normalize="strict"
    )
    r = await gateway.http.post("/v1/quote", json=body, headers=gateway.auth())
    assert r.status_code == 422
    fields = {e["field"]: e for e in r.json()["errors"]}
    assert {"shots[0].fps", "shots[0].resolution", "shots[0].aspect_ratio"} <= set(fields)
    assert fields["shots[0].fps"]["allowed"]


async def test_snap_records_adjustments(gateway: Gateway) -> None:
    r = await gateway.http.post("/v1/quote", json=shot(fps=7), headers=gateway.auth())
    assert r.status_code == 200
    adj = r.json()["shots"][0]["adjustments"]
    assert adj and adj[0]["field"] == "fps" and "local/preview" in adj[0]["message"]


async def test_malformed_json_is_400(gateway: Gateway) -> None:
    r = await gateway.http.post(
        "/v1/jobs",
        content=b'{"shots": [',
        headers={**gateway.auth(), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "malformed_json" and r.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer rg_wrong"}, {"Authorization": "Basic abc"}]
)
async def test_missing_or_wrong_key_is_401(gateway: Gateway, headers: dict) -> None:
    for method, path in [("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/models")]:
        r = await gateway.http.request(method, path, json=shot(), headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        assert r.json()["code"] in ("missing_api_key", "invalid_api_key")
        assert r.headers["www-authenticate"] == "Bearer"


async def test_bad_query_values(gateway: Gateway) -> None:
    r = await gateway.http.get("/v1/jobs?limit=0", headers=gateway.auth())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit"
    r = await gateway.http.get("/v1/jobs?status=done", headers=gateway.auth())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"


async def test_unknown_route_is_problem_404(gateway: Gateway) -> None:
    r = await gateway.http.get("/v1/nothing", headers=gateway.auth())
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


async def test_openapi_documents_problem_statuses(gateway: Gateway) -> None:
    spec = (await gateway.http.get("/openapi.json")).json()
    post = spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"201", "200", "400", "401", "422", "500"} <= set(post)
    assert "application/problem+json" in post["422"]["content"]
    content = spec["paths"]["/v1/shots/{shot_id}/content"]["get"]["responses"]
    assert {"200", "206", "404", "409", "416"} <= set(content)

"""Tenants and keys: the admin API, and isolation (acceptance 3).

The isolation test walks every route the app serves (so a new endpoint is covered the
day it is added) with another tenant's key, a revoked key, an expired key and keys
without the scope, and checks the status and that no byte of the owner's data leaks.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import Gateway, open_gateway

from gateway.tables import utcnow

ADMIN = "adm-test-secret"
DRAFT = {"shots": [{"kind": "draft", "prompt": "a paper boat on a pond", "duration_s": 1}]}


@asynccontextmanager
async def admin_gateway(tmp_path: Path, database_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(tmp_path / "data", database_url, admin_key=ADMIN) as gw:
        yield gw


def admin(gw: Gateway) -> dict[str, str]:
    return gw.auth(ADMIN)


async def new_tenant(gw: Gateway, name: str, **fields: Any) -> dict[str, Any]:
    r = await gw.http.post("/v1/admin/tenants", json={"name": name, **fields}, headers=admin(gw))
    assert r.status_code == 201, r.text
    return r.json()


async def new_key(gw: Gateway, tenant: str, **fields: Any) -> str:
    r = await gw.http.post(f"/v1/admin/tenants/{tenant}/keys", json=fields, headers=admin(gw))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["key"].startswith(body["prefix"])
    return str(body["key"])


async def test_admin_creates_tenants_and_keys_and_tops_up_once_per_key(
    tmp_path, database_url
) -> None:
    async with admin_gateway(tmp_path, database_url) as gw:
        tenant = await new_tenant(gw, "acme", markup_bps=1500)
        assert tenant["prepaid"] is True and tenant["balance_usd"] == "0"
        key = await new_key(gw, tenant["id"], name="ci", scopes=["jobs:read"])
        listed = (
            await gw.http.get(f"/v1/admin/tenants/{tenant['id']}/keys", headers=admin(gw))
        ).json()
        assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]
        assert key not in str(listed)  # shown once

        top_up = {"amount_usd": "12.5", "note": "invoice 42"}
        url = f"/v1/admin/tenants/{tenant['id']}/credits"
        first = await gw.http.post(url, json=top_up, headers={**admin(gw), "Idempotency-Key": "k1"})
        again = await gw.http.post(url, json=top_up, headers={**admin(gw), "Idempotency-Key": "k1"})
        assert first.status_code == 201 and again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert first.json()["id"] == again.json()["id"] and again.json()["balance_usd"] == "12.5"
        other = {"amount_usd": "99", "note": "invoice 42"}
        reused = await gw.http.post(url, json=other, headers={**admin(gw), "Idempotency-Key": "k1"})
        assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
        missing = await gw.http.post(url, json=top_up, headers=admin(gw))
        assert missing.status_code == 422

        r = await gw.http.get("/v1/balance", headers=gw.auth(key))
        assert r.status_code == 200 and r.json()["balance_usd"] == "12.5"
        patched = await gw.http.patch(
            f"/v1/admin/tenants/{tenant['id']}",
            json={"markup_bps": 0, "max_concurrent_jobs": 3},
            headers=admin(gw),
        )
        assert patched.json()["markup_bps"] == 0 and patched.json()["max_concurrent_jobs"] == 3


async def test_an_admin_scoped_key_administers_and_tenant_keys_do_not(
    tmp_path, database_url
) -> None:
    async with admin_gateway(tmp_path, database_url) as gw:
        tenant = await new_tenant(gw, "ops")
        ops = await new_key(gw, tenant["id"], scopes=["admin"])
        assert (await gw.http.get("/v1/admin/tenants", headers=gw.auth(ops))).status_code == 200
        r = await gw.http.get("/v1/admin/tenants", headers=gw.auth())  # the bootstrap key
        assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
        r = await gw.http.get("/v1/jobs", headers=admin(gw))  # the operator key owns no jobs
        assert r.status_code == 403


def _routes(gw: Gateway) -> list[tuple[str, str]]:
    """Every authenticated API route the app publishes: (method, path template)."""
    out = []
    for path, operations in gw.app.openapi()["paths"].items():
        if not path.startswith("/v1/") or path.startswith("/v1/callbacks/"):
            continue  # callbacks: vendors call without a key; they reveal nothing
        out += [(method.upper(), path) for method in sorted(operations)]
    return out


async def test_no_key_reaches_another_tenants_data(tmp_path, database_url) -> None:
    """Acceptance 3."""
    async with admin_gateway(tmp_path, database_url) as gw:
        owner = await gw.client.jobs.wait(await gw.client.jobs.create(DRAFT), timeout=60)
        assert owner.status == "succeeded"
        owner_tenant = (await gw.http.get("/v1/balance", headers=gw.auth())).json()["tenant_id"]
        other = await new_tenant(gw, "other", prepaid=False)
        past = (utcnow() - timedelta(minutes=1)).isoformat()
        keys = {
            "other": await new_key(gw, other["id"]),
            "revoked": await new_key(gw, other["id"], name="revoked"),
            "expired": await new_key(gw, other["id"], expires_at=past),
            "read_only": await new_key(gw, other["id"], scopes=["jobs:read"]),
            "write_only": await new_key(gw, other["id"], scopes=["jobs:write"]),
        }
        listed = (
            await gw.http.get(f"/v1/admin/tenants/{other['id']}/keys", headers=admin(gw))
        ).json()
        revoked_id = next(k["id"] for k in listed if k["name"] == "revoked")
        r = await gw.http.delete(
            f"/v1/admin/tenants/{other['id']}/keys/{revoked_id}", headers=admin(gw)
        )
        assert r.status_code == 200 and r.json()["revoked_at"]

        ids = {
            "job_id": owner.id,
            "shot_id": owner.shots[0].id,
            "tenant_id": owner_tenant,
            "key_id": "key_x",
        }
        assert owner.shots[0].output is not None
        # What a caller cannot know unless it leaked (404s may echo the ids it sent).
        secrets = [owner.shots[0].output.sha256, "secret lighthouse", owner_tenant]
        checked = 0
        for method, template in _routes(gw):
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
            body: dict[str, Any] = DRAFT if template in ("/v1/jobs", "/v1/quote") else {}
            is_admin = template.startswith("/v1/admin/")

            async def call(
                key: str, method: str = method, url: str = url, body: dict[str, Any] = body
            ) -> Any:
                kwargs: dict[str, Any] = {"headers": gw.auth(key)}
                if method in ("POST", "PATCH"):
                    kwargs["json"] = body
                return await gw.http.request(method, url, **kwargs)

            where = f"{method} {template}"
            for name in ("revoked", "expired"):
                r = await call(keys[name])
                assert r.status_code == 401, (where, name, r.status_code)
                assert r.headers["content-type"] == "application/problem+json"
            r = await call(keys["other"])
            if is_admin:
                assert r.status_code == 403, (where, r.status_code)
            elif "{" in template:
                assert r.status_code == 404, (where, r.status_code, r.text)
            else:
                assert r.status_code < 300, (where, r.status_code, r.text)
            assert not any(s in r.text for s in secrets if s not in url), (where, r.text)
            writes = method == "POST" and template != "/v1/quote"
            lacking = "read_only" if writes else "write_only"
            if template != "/v1/models":  # the catalog: any valid key
                r = await call(keys[lacking])
                assert r.status_code == 403, (where, lacking, r.status_code)
                assert r.json()["code"] == "insufficient_scope"
            checked += 1
        assert checked >= 15
        # Nothing the other keys did touched the owner's job.
        again = await gw.client.jobs.get(owner.id)
        assert again.status == "succeeded"


async def test_a_revoked_key_stops_at_once(tmp_path, database_url) -> None:
    async with admin_gateway(tmp_path, database_url) as gw:
        tenant = await new_tenant(gw, "t")
        key = await new_key(gw, tenant["id"], name="k")
        assert (await gw.http.get("/v1/jobs", headers=gw.auth(key))).status_code == 200  # cached
        listed = (
            await gw.http.get(f"/v1/admin/tenants/{tenant['id']}/keys", headers=admin(gw))
        ).json()
        await gw.http.delete(
            f"/v1/admin/tenants/{tenant['id']}/keys/{listed[0]['id']}", headers=admin(gw)
        )
        r = await gw.http.get("/v1/jobs", headers=gw.auth(key))
        assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x", "markup_bps": -10000}])
async def test_bad_tenant_bodies_are_422(tmp_path, body) -> None:
    async with admin_gateway(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}") as gw:
        r = await gw.http.post("/v1/admin/tenants", json=body, headers=admin(gw))
        assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_the_admin_cli_creates_a_tenant_a_key_and_credits_once(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from gateway.cli import app

    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]

    def run(*args: str) -> Any:
        result = runner.invoke(app, ["admin", *args, *data])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    tenant = run("tenants", "create", "acme", "--markup-bps", "1000")
    assert tenant["prepaid"] is True and tenant["markup_bps"] == 1000
    key = run("keys", "create", tenant["id"], "--scope", "jobs:read", "--expires-in-days", "1")
    assert key["key"].startswith("rg_") and key["scopes"] == ["jobs:read"] and key["expires_at"]
    top_up = ("credits", "add", tenant["id"], "2.5", "--note", "n", "--idempotency-key", "a")
    assert run(*top_up)["balance_usd"] == "2.5"
    assert run(*top_up)["balance_usd"] == "2.5"  # the same key adds nothing
    assert [k["id"] for k in run("keys", "list", tenant["id"])] == [key["id"]]
    assert run("keys", "revoke", tenant["id"], key["id"])["revoked_at"]
    missing = runner.invoke(app, ["admin", "keys", "list", "ten_nope", *data])
    assert missing.exit_code == 1 and "No tenant" in missing.output

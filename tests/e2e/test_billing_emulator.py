"""Billing over real sockets (issue 5, acceptance 4): a gateway process, a prepaid tenant
made through the admin API, the real adapters and the vendor emulator (uvicorn on a
loopback port). The same two checks as ``tests/gateway/test_billing.py`` makes with
scripted vendors: a shot that falls back is charged once, at the fallback's price; a
canceled job is charged only for the shots that had finished."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from e2e_support import free_port

from emulator.app import create_app as create_emulator
from emulator.core import Emulator, Knobs
from reelgate import Client
from reelgate.types import Job

pytestmark = pytest.mark.slow

ADMIN = "test-admin-key"
CREDITS = Decimal("100")
RUNWAY, KLING, LUMA = "runway/gen4.5", "kling/kling-v2-1-master", "luma/ray-2"
#: The first shot is pinned to Luma; the second is a character shot, routed Runway first
#: with Kling as its fallback (gateway/routing.toml).
SHOTS = [
    {"kind": "establishing", "prompt": "fog lifts off a harbour at dawn", "duration_s": 5,
     "model": LUMA},
    {"kind": "character", "prompt": "a tailor threads a needle, close up", "duration_s": 5},
]  # fmt: skip


@dataclass
class Vendors:
    url: str
    emulator: Emulator

    def knobs(self, **knobs: Any) -> None:
        """Every knob at its default but these (knobs are global to the emulator)."""
        r = httpx.put(f"{self.url}/_emulator/knobs", json=Knobs(**knobs).model_dump())
        r.raise_for_status()

    def job(self, backend_job_id: str | None) -> dict[str, Any]:
        """The emulator's job behind an attempt (Kling's ids carry an endpoint prefix)."""
        jobs = httpx.get(f"{self.url}/_emulator/jobs").json()
        (job,) = [j for j in jobs if j["id"] in (backend_job_id or "-")]
        return dict(job)


@pytest.fixture(scope="module")
def vendors() -> Iterator[Vendors]:
    port = free_port()
    app = create_emulator()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "emulator did not start"
        time.sleep(0.02)
    yield Vendors(f"http://127.0.0.1:{port}", app.state.emulator)
    server.should_exit = True
    thread.join(5)


def vendor_env(url: str, *names: str) -> dict[str, str]:
    env = {"REELGATE_POLL_SCALE": "0.02", "REELGATE_ADMIN_KEY": ADMIN}  # 5 s hints → 0.1 s
    for name in names:
        env[f"REELGATE_{name.upper()}_API_KEY"] = f"test-key-{name}"
        env[f"REELGATE_{name.upper()}_BASE_URL"] = f"{url}/{name}"
    env["REELGATE_KLING_API_KEY"] = "test-access:test-secret"
    return env


def prepaid_key(base_url: str, credits: Decimal) -> str:
    """A new prepaid tenant credited ``credits``, through the admin API; its API key."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=base_url, headers=admin, timeout=10) as http:
        r = http.post("/v1/admin/tenants", json={"name": "billed", "prepaid": True})
        assert r.status_code == 201, r.text
        tenant = r.json()["id"]
        r = http.post(
            f"/v1/admin/tenants/{tenant}/credits",
            json={"amount_usd": str(credits), "note": "e2e"},
            headers={"Idempotency-Key": "e2e-credit"},
        )
        assert r.status_code == 201 and Decimal(r.json()["balance_usd"]) == credits, r.text
        r = http.post(f"/v1/admin/tenants/{tenant}/keys", json={})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])


def money(base_url: str, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tenant's ``/v1/balance`` and ``/v1/usage`` (by model)."""
    auth = {"Authorization": f"Bearer {key}"}
    balance = httpx.get(f"{base_url}/v1/balance", headers=auth)
    usage = httpx.get(f"{base_url}/v1/usage", params={"group_by": "model"}, headers=auth)
    assert balance.status_code == 200 and usage.status_code == 200
    return balance.json(), usage.json()


def usage_rows(usage: dict[str, Any]) -> list[tuple[str, int, Decimal]]:
    return sorted((r["group"], r["shots"], Decimal(r["cost_usd"])) for r in usage["rows"])


def test_a_shot_that_falls_back_is_charged_once_at_the_fallbacks_price(
    server_factory, vendors: Vendors
) -> None:
    """Every Runway job fails at the emulator: the second shot's Runway attempts fail,
    Kling makes it, and only Kling's price is captured for it."""
    vendors.knobs(latency_s=0.2, fail_vendors=["runway"])
    server = server_factory(**vendor_env(vendors.url, "runway", "kling", "luma"))
    server.start()
    key = prepaid_key(server.url, CREDITS)
    with Client(server.url, api_key=key) as client:
        quote = client.quote({"shots": SHOTS})
        job = client.jobs.wait(client.jobs.create({"shots": SHOTS}), timeout=30)
    assert job.status == "succeeded", [(s.model, s.error_message) for s in job.shots]
    first, second = job.shots
    prices = {c.model: c.estimate_usd for c in quote.shots[1].route if c.status != "skipped"}
    assert quote.shots[1].model == RUNWAY and prices[RUNWAY] != prices[KLING]

    assert [a.model for a in first.attempts] == [LUMA]
    # The emulator fails a Runway task with failureCode INTERNAL, which the adapter
    # calls retryable: a second try at Runway (two attempts per candidate), then Kling.
    assert [(a.model, a.status) for a in second.attempts] == [
        (RUNWAY, "failed"),
        (RUNWAY, "failed"),
        (KLING, "succeeded"),
    ]
    assert first.cost_usd == quote.shots[0].estimate_usd
    assert second.cost_usd == prices[KLING]
    assert job.cost_usd == first.cost_usd + second.cost_usd

    emulated = [vendors.job(a.backend_job_id) for a in second.attempts]
    assert [(j["vendor"], j["state"]) for j in emulated] == [
        ("runway", "failed"),
        ("runway", "failed"),
        ("kling", "succeeded"),
    ]

    balance, usage = money(server.url, key)
    assert Decimal(balance["balance_usd"]) == CREDITS - job.cost_usd
    assert Decimal(balance["captured_usd"]) == job.cost_usd
    assert Decimal(balance["held_usd"]) == 0  # no hold left open
    assert Decimal(balance["credits_usd"]) == CREDITS
    # One capture per shot, each at the model that made it; nothing for Runway's attempt.
    assert usage_rows(usage) == sorted([(KLING, 1, second.cost_usd), (LUMA, 1, first.cost_usd)])
    assert Decimal(usage["total_usd"]) == job.cost_usd


def wait_for(client: Client, job: Job, ready: Callable[[Job], bool], timeout: float = 10) -> Job:
    deadline = time.monotonic() + timeout
    while not ready(job):
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
        job = client.jobs.get(job.id)
    return job


def test_a_canceled_job_is_charged_only_for_the_shots_that_had_finished(
    server_factory, vendors: Vendors
) -> None:
    """Cancel while the second shot runs at Runway: the finished first shot is charged,
    the second is not, and Runway's task is canceled at the emulator."""
    # Every vendor job runs for a minute; the test finishes the first shot's at Luma
    # itself (the emulator runs in this process), so which shot is done is certain.
    vendors.knobs(latency_s=60)
    server = server_factory(**vendor_env(vendors.url, "runway", "kling", "luma"))
    server.start()
    key = prepaid_key(server.url, CREDITS)
    with Client(server.url, api_key=key) as client:
        quote = client.quote({"shots": SHOTS})
        job = client.jobs.create({"shots": SHOTS})
        job = wait_for(
            client,
            job,
            lambda j: all(s.attempts and s.attempts[-1].backend_job_id for s in j.shots),
        )
        em = vendors.emulator
        em_job = em.jobs[vendors.job(job.shots[0].attempts[0].backend_job_id)["id"]]
        assert em_job.vendor == "luma"
        em_job.started = em_job.finished = em.clock()  # done now
        job = wait_for(client, job, lambda j: j.shots[0].status == "succeeded")
        assert job.shots[1].status == "running"

        job = client.jobs.wait(client.jobs.cancel(job.id), timeout=10)
    assert job.status == "canceled"
    assert [s.status for s in job.shots] == ["succeeded", "canceled"]
    assert [a.model for a in job.shots[1].attempts] == [RUNWAY]
    assert job.shots[0].cost_usd == quote.shots[0].estimate_usd
    assert job.cost_usd == job.shots[0].cost_usd
    assert not job.shots[1].cost_usd

    runway_task = job.shots[1].attempts[-1].backend_job_id
    deadline = time.monotonic() + 5
    while (task := vendors.job(runway_task))["state"] != "canceled":  # the vendor's cancel
        assert time.monotonic() < deadline, task
        time.sleep(0.02)

    balance, usage = money(server.url, key)
    assert Decimal(balance["balance_usd"]) == CREDITS - job.cost_usd
    assert Decimal(balance["captured_usd"]) == job.cost_usd
    assert Decimal(balance["held_usd"]) == 0
    assert usage_rows(usage) == [(LUMA, 1, job.cost_usd)]

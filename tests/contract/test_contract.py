"""One contract, every vendor adapter: the same checks over each case in ``vendor_cases``.

Every vendor answers through ``httpx.MockTransport`` with payloads shaped as in the vendor
reference (``shared/reference/vendors*.md``): submit → poll (every documented state) →
download, each error class, cancel, an unknown state, a malformed body, and a create that
is never sent twice. Each scripted vendor expects its requests in order, with the key on
API calls and never on presigned output links. Nothing sleeps (see ``conftest.py``);
Kling's token clock is injected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from vendor_cases import CASES
from vendor_cases.base import Case, ErrorCase, Exchange, Op, Raise, Reply, Script, State

from adapters.base import (
    Adapter,
    AdapterError,
    BackendFailure,
    BackendJobLost,
    InvalidInput,
    RateLimited,
    RetryableError,
)

Connect = Callable[..., tuple[Adapter, Script]]

BY_CASE = [pytest.param(case, id=case.id) for case in CASES]
BY_STATE = [
    pytest.param(case, state, id=f"{case.id}-{state.id}") for case in CASES for state in case.states
]
BY_ERROR = [
    pytest.param(case, error, id=f"{case.id}-{error.id}") for case in CASES for error in case.errors
]

#: Every case shows each of these classes at least once (the module docstring of adapters.base).
ERROR_CLASSES = (RateLimited, RetryableError, InvalidInput, BackendFailure, BackendJobLost)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``connect(case, *exchanges)``: the case's adapter on a vendor scripted with them."""
    made: list[Adapter] = []

    def build(case: Case, *exchanges: Exchange) -> tuple[Adapter, Script]:
        script = Script(exchanges, case.auth)
        made.append(case.make(httpx.MockTransport(script)))
        return made[-1], script

    yield build
    for adapter in made:
        await adapter.aclose()


async def run(case: Case, adapter: Adapter, op: Op) -> Any:
    if op == "submit":
        return await adapter.submit(case.request)
    if op == "poll":
        return await adapter.poll(case.job_id)
    if op == "cancel":
        return await adapter.cancel(case.job_id)
    return [chunk async for chunk in adapter.download(case.job_id, case.finished)]


def polled(case: Case, state: State) -> list[Exchange]:
    return [case.exchange("poll", state.answer), *state.then]


# --- what each case must cover ------------------------------------------------------------


@pytest.mark.parametrize("case", BY_CASE)
def test_the_case_covers_the_contract(case: Case) -> None:
    mapped = {state.expect.state for state in case.states}
    assert {"running", "succeeded", "failed"} <= mapped
    assert len({state.id for state in case.states}) == len(case.states)
    kinds = {error.kind for error in case.errors}
    assert all(kind in kinds for kind in ERROR_CLASSES), kinds
    assert any(e.kind is RateLimited and e.retry_after is not None for e in case.errors)
    assert len({error.id for error in case.errors}) == len(case.errors)


# --- the contract -------------------------------------------------------------------------


@pytest.mark.parametrize("case", BY_CASE)
async def test_the_adapter_declares_what_it_can_do(case: Case, connect: Connect) -> None:
    adapter, script = connect(case)
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == case.declares
    assert adapter.configured_models() is None
    assert case.cancel is None or adapter.supports_cancel
    assert script.seen == []


@pytest.mark.parametrize("case", BY_CASE)
async def test_submit_sends_the_documented_create_once(case: Case, connect: Connect) -> None:
    adapter, script = connect(case, case.submit)
    submission = await adapter.submit(case.request)
    assert (submission.backend_job_id, submission.poll_after_s) == (case.job_id, case.poll_after_s)
    assert script.done and len(script.seen) == 1
    assert script.seen[0].headers["content-type"] == "application/json"
    assert script.body() == case.sent


@pytest.mark.parametrize(("case", "state"), BY_STATE)
async def test_poll_maps_every_documented_state(case: Case, state: State, connect: Connect) -> None:
    adapter, script = connect(case, *polled(case, state))
    assert await adapter.poll(case.job_id) == state.expect
    assert script.done


@pytest.mark.parametrize("case", BY_CASE)
async def test_a_job_goes_from_submit_through_poll_to_download(
    case: Case, connect: Connect
) -> None:
    path = [s for s in case.states if s.expect.state in ("queued", "running")]
    path.append(next(s for s in case.states if s.expect.state == "succeeded"))
    exchanges = [case.submit, *(e for s in path for e in polled(case, s)), case.video]
    adapter, script = connect(case, *exchanges)

    job = (await adapter.submit(case.request)).backend_job_id
    seen = [await adapter.poll(job) for _ in path]
    assert seen == [state.expect for state in path]
    assert seen[-1].output_url == case.video.url
    chunks = [chunk async for chunk in adapter.download(job, seen[-1])]
    assert isinstance(case.video.answer, Reply)
    assert chunks == list(case.video.answer.chunks or ())
    assert script.done


@pytest.mark.parametrize("case", BY_CASE)
async def test_cancel_or_say_it_cannot(case: Case, connect: Connect) -> None:
    if case.cancel is None:
        adapter, script = connect(case)
        with pytest.raises(AdapterError) as caught:
            await adapter.cancel(case.job_id)
        assert type(caught.value) is BackendFailure
        assert caught.value.code == "cancel_unsupported"
        assert "cancel" in caught.value.message  # says what it cannot do
        assert script.seen == []  # nothing is sent for a cancel the vendor lacks
        return
    adapter, script = connect(case, case.cancel)
    assert await adapter.cancel(case.job_id) is None
    assert script.done


@pytest.mark.parametrize("case", BY_CASE)
async def test_an_unknown_state_is_an_error_never_queued(case: Case, connect: Connect) -> None:
    adapter, script = connect(case, case.exchange("poll", case.unknown_state))
    with pytest.raises(AdapterError) as caught:
        await adapter.poll(case.job_id)
    assert type(caught.value) is BackendFailure
    assert caught.value.code == "unknown_state"
    assert script.done


MALFORMED = {"not-json": Reply(text="{not json"), "not-an-object": Reply(body=["a", "list"])}


@pytest.mark.parametrize("case", BY_CASE)
@pytest.mark.parametrize("op", ["submit", "poll"])
@pytest.mark.parametrize("shape", MALFORMED)
async def test_a_malformed_body_is_a_clear_error(
    case: Case, op: Op, shape: str, connect: Connect
) -> None:
    answer = MALFORMED[shape]
    if op == "submit" and isinstance(case.submit.answer, Reply):  # with the create's 200 or 201
        answer = replace(answer, status=case.submit.answer.status)
    adapter, script = connect(case, case.exchange(op, answer))
    with pytest.raises(AdapterError) as caught:
        await run(case, adapter, op)
    error = caught.value
    assert type(error) is RetryableError
    assert (error.code, error.retry_after) == ("malformed", None)
    assert adapter.name in str(error).lower()
    assert error.outcome_unknown is (op == "submit")  # the create may have landed
    assert script.done


NO_ANSWER = [  # (failure, code, outcome_unknown)
    (httpx.ConnectError, "unreachable", False),  # never connected: nothing was sent
    (httpx.ConnectTimeout, "timeout", False),
    (httpx.ReadTimeout, "timeout", True),  # sent, never answered: a job may exist
    (httpx.RemoteProtocolError, "unreachable", True),
]


@pytest.mark.parametrize("case", BY_CASE)
@pytest.mark.parametrize(
    ("failure", "code", "unknown"), NO_ANSWER, ids=[f[0].__name__ for f in NO_ANSWER]
)
async def test_a_create_without_an_answer_is_never_sent_twice(
    case: Case, failure: type[httpx.TransportError], code: str, unknown: bool, connect: Connect
) -> None:
    adapter, script = connect(case, case.exchange("submit", Raise(failure)))
    with pytest.raises(AdapterError) as caught:
        await adapter.submit(case.request)
    assert type(caught.value) is RetryableError
    assert (caught.value.code, caught.value.outcome_unknown) == (code, unknown)
    assert script.done and len(script.seen) == 1


@pytest.mark.parametrize(("case", "error"), BY_ERROR)
async def test_each_error_answer_is_classified_once(
    case: Case, error: ErrorCase, connect: Connect
) -> None:
    adapter, script = connect(case, case.exchange(error.op, error.answer), *error.then)
    with pytest.raises(AdapterError) as caught:
        await run(case, adapter, error.op)
    got = caught.value
    assert type(got) is error.kind, got
    assert (got.code, got.retry_after, got.outcome_unknown) == (
        error.code,
        error.retry_after,
        error.outcome_unknown,
    )
    assert script.done  # and nothing more: a failed create is not sent again


#: Ambiguous server answers: the vendor (or a gateway before it) may have made the job.
AMBIGUOUS = [
    pytest.param(Reply(500, text="Internal Server Error"), id="500"),
    pytest.param(Reply(504, text="<html>504 Gateway Time-out</html>"), id="504"),
]
NOT_IDEMPOTENT = [pytest.param(case, id=case.id) for case in CASES if not case.declares[1]]


@pytest.mark.parametrize("case", NOT_IDEMPOTENT)
@pytest.mark.parametrize("answer", AMBIGUOUS)
async def test_a_create_answered_with_a_server_error_is_never_sent_twice(
    case: Case, answer: Reply, connect: Connect
) -> None:
    """No vendor without a dedup key may have its create resent after a 500 or a 504."""
    adapter, script = connect(case, case.exchange("submit", answer))
    with pytest.raises(AdapterError) as caught:
        await adapter.submit(case.request)
    assert caught.value.outcome_unknown is True, caught.value
    assert script.done and len(script.seen) == 1


@pytest.mark.parametrize("case", BY_CASE)
@pytest.mark.parametrize("answer", AMBIGUOUS)
async def test_a_poll_answered_with_a_server_error_stays_a_plain_retry(
    case: Case, answer: Reply, connect: Connect
) -> None:
    adapter, script = connect(case, case.exchange("poll", answer))
    with pytest.raises(AdapterError) as caught:
        await adapter.poll(case.job_id)
    assert type(caught.value) is RetryableError
    assert caught.value.outcome_unknown is False
    assert script.done

"""The contract suite's vocabulary: what one vendor case declares, and scripted vendors.

A :class:`Case` describes one adapter (or one wire of it) as the vendor reference documents
it: how to build it on a transport, a representative shot and the exact create it must
send, an answer for every documented state and the status each maps to, the download,
cancel, an unknown state, and the vendor's error answers with the class each must become.
``test_contract.py`` runs the same checks over every case; the vendor modules beside this
one hold the data, in the vendor's own wire shapes.

Answers are built fresh for every request (:class:`Reply`, :class:`Raise`): a response
body can be read once, and cases are shared by many tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx

from adapters.base import Adapter, AdapterError, GenerationRequest, JobStatus

__all__ = [
    "Answer",
    "Case",
    "ErrorCase",
    "Exchange",
    "Op",
    "Raise",
    "Reply",
    "Script",
    "State",
    "Vendor",
    "video",
]

Op = Literal["submit", "poll", "cancel", "download"]


async def _stream(chunks: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: a JSON ``body``, raw ``text``, streamed ``chunks``, or nothing."""

    status: int = 200
    body: Any = None
    text: str | None = None
    chunks: tuple[bytes, ...] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __call__(self) -> httpx.Response:
        headers = dict(self.headers)
        if self.chunks is not None:
            return httpx.Response(self.status, content=_stream(self.chunks), headers=headers)
        if self.text is not None:
            return httpx.Response(self.status, text=self.text, headers=headers)
        if self.body is None:
            return httpx.Response(self.status, headers=headers)
        return httpx.Response(self.status, json=self.body, headers=headers)

    @property
    def label(self) -> str:
        return str(self.status)


@dataclass(frozen=True)
class Raise:
    """No answer: the transport fails with ``error`` (a connect error, a timeout, a reset)."""

    error: type[httpx.TransportError]
    message: str = "no answer"

    def __call__(self) -> httpx.Response:
        raise self.error(self.message)

    @property
    def label(self) -> str:
        return self.error.__name__


Answer = Reply | Raise


@dataclass(frozen=True)
class Exchange:
    """One request the adapter must make, and the vendor's answer to it."""

    method: str
    url: str
    answer: Answer
    #: API calls carry the vendor's key; presigned output links must not get it.
    keyed: bool = True


class Script:
    """A vendor that expects exactly ``exchanges``, in order, and checks the key on each.

    A request out of order, an extra one (a create sent twice) or a key sent where it does
    not belong fails the test at once; :attr:`done` says whether all were made.
    """

    def __init__(self, exchanges: Sequence[Exchange], auth: Mapping[str, str]) -> None:
        self.pending = list(exchanges)
        self.auth = auth
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        got = f"{request.method} {request.url}"
        assert self.pending, f"unscripted request {got}"
        exchange = self.pending.pop(0)
        assert got == f"{exchange.method} {exchange.url}", (
            f"expected {exchange.method} {exchange.url}"
        )
        for name, value in self.auth.items():
            if exchange.keyed:
                assert request.headers.get(name) == value, f"{got}: wrong or missing {name}"
            else:
                assert name not in request.headers, f"{got} carries the vendor's {name}"
        return exchange.answer()

    @property
    def done(self) -> bool:
        return not self.pending

    def body(self, index: int = 0) -> Any:
        return json.loads(self.seen[index].content)


class Vendor:
    """Answers requests in order, whatever they are, and records them (vendor-file tests)."""

    def __init__(self, *answers: httpx.Response | Exception | Answer) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx.Response) else answer()

    def body(self, index: int = 0) -> Any:
        return json.loads(self.seen[index].content)


@dataclass(frozen=True)
class State:
    """A poll answered with one documented state, and the exact status it maps to."""

    id: str
    answer: Reply
    expect: JobStatus
    #: Further calls that poll makes for this state (fal's result, MiniMax's file).
    then: tuple[Exchange, ...] = ()


@dataclass(frozen=True)
class ErrorCase:
    """A vendor answer to one operation, and the error it must raise: class, code, wait."""

    op: Op
    answer: Answer
    kind: type[AdapterError]
    code: str
    retry_after: float | None = None
    outcome_unknown: bool = False
    #: Further calls the operation makes after this answer (Kling's duplicate lookup).
    then: tuple[Exchange, ...] = ()
    note: str = ""

    @property
    def id(self) -> str:
        parts = [self.op, self.answer.label, self.code, self.note]
        return "-".join(part for part in parts if part)


@dataclass(frozen=True)
class Case:
    """One adapter as its vendor documents it; see the module docstring."""

    id: str
    make: Callable[[httpx.AsyncBaseTransport], Adapter]
    #: ``(name, idempotent_submit, supports_cancel)`` as the adapter must declare them.
    declares: tuple[str, bool, bool]
    #: Headers every API call carries (the key, a pinned version).
    auth: Mapping[str, str]
    request: GenerationRequest
    #: The create, answered as documented; ``sent`` is its exact JSON body.
    submit: Exchange
    sent: Mapping[str, Any]
    job_id: str
    poll_after_s: float
    poll_url: str
    states: tuple[State, ...]
    #: The finished output's link and bytes.
    video: Exchange
    #: The cancel call, answered as documented; None where the vendor has none.
    cancel: Exchange | None
    unknown_state: Reply
    errors: tuple[ErrorCase, ...]

    def exchange(self, op: Op, answer: Answer) -> Exchange:
        """The first call ``op`` makes, answered with ``answer``."""
        if op == "submit":
            return replace(self.submit, answer=answer)
        if op == "poll":
            return Exchange("GET", self.poll_url, answer)
        if op == "cancel":
            assert self.cancel is not None, f"{self.id} has no cancel"
            return replace(self.cancel, answer=answer)
        return replace(self.video, answer=answer)

    @property
    def finished(self) -> JobStatus:
        """What a poll reported when the output was ready."""
        return JobStatus(state="succeeded", output_url=self.video.url)


def video(url: str, *, keyed: bool = False) -> Exchange:
    """The download of a finished clip: two chunks of an MP4."""
    return Exchange("GET", url, Reply(chunks=(b"\x00\x00\x00\x18ftypmp42", b"mdat" * 2000)), keyed)

"""The vendor-neutral half of the emulator: jobs on a clock, and the knobs.

A job waits ``throttle_s`` (Runway shows it ``THROTTLED``, over its concurrency limit;
other vendors show it queued), is queued for ``queue_s``, runs for a latency drawn from a
log-normal around ``latency_s``, then ends as succeeded or failed (``fail_rate``; always
for a vendor named in ``fail_vendors``), a failure naming ``fail_code`` where the vendor
has such a field. All durations are divided by ``time_scale``, so a benchmark can run
minutes of vendor time in seconds.
Chaos knobs apply per request: 429 with Retry-After, 5xx, malformed bodies, dropped
connections; ``callback_loss_rate`` drops completion callbacks. ``create_error`` names a
documented create refusal (:data:`CreateError`: ``billing``, ``quota``, ``bad_input``,
``content``, ``unavailable``) that ``create_error_rate`` of creates get (all by default),
for the vendors in ``create_error_vendors`` (empty: every vendor), each in its vendor's
documented status and body (``emulator.app.GENERIC_ERRORS`` where it documents none).
"""

from __future__ import annotations

import functools
import heapq
import math
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["Chaos", "CreateError", "EmJob", "Emulator", "Knobs", "sample_mp4"]

State = Literal["queued", "running", "succeeded", "failed", "canceled"]
Chaos = Literal["rate_limit", "server_error", "malformed", "drop"]
#: Documented create refusals a vendor can be made to answer (``Knobs.create_error``):
#: out of money, a usage quota or limit, a bad parameter, a content refusal, overloaded.
CreateError = Literal["billing", "quota", "bad_input", "content", "unavailable"]


class Knobs(BaseModel):
    """Settable at start or at run time (``PUT /_emulator/knobs``)."""

    time_scale: float = Field(default=1.0, gt=0, description="Vendor seconds per real second.")
    throttle_s: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a new job waits before its queue time: Runway shows it THROTTLED "
        "(over the concurrency limit), other vendors as queued.",
    )
    queue_s: float = Field(default=0.0, ge=0)
    latency_s: float = Field(default=2.0, ge=0, description="Median generation time.")
    latency_sigma: float = Field(default=0.0, ge=0, description="Log-normal spread (0: fixed).")
    fail_rate: float = Field(default=0.0, ge=0, le=1)
    fail_vendors: list[str] = Field(
        default_factory=list,
        description="Vendors (e.g. runway) whose every new job ends failed, as a fail_rate "
        "failure does: a deterministic fallback.",
    )
    fail_code: str = "generation_failed"
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(default=1.0, ge=0)
    server_error_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    callback_loss_rate: float = Field(default=0.0, ge=0, le=1)
    create_error: CreateError | None = Field(
        default=None,
        description="A documented create refusal (billing, quota, bad_input, content, "
        "unavailable), answered in each vendor's own status and body; None: off.",
    )
    create_error_rate: float = Field(
        default=1.0, ge=0, le=1, description="Fraction of creates refused with create_error."
    )
    create_error_vendors: list[str] = Field(
        default_factory=list,
        description="Vendors whose creates get create_error (empty: every vendor).",
    )
    chaos_on: list[str] = Field(
        default_factory=lambda: ["create", "poll", "download", "cancel"],
        description="Which request kinds the chaos rates apply to.",
    )
    seed: int | None = None


@dataclass
class EmJob:
    id: str
    vendor: str
    model: str
    payload: dict[str, Any]
    created: float
    started: float
    finished: float
    fails: bool
    callback_url: str | None = None
    #: Until then the job waits over a concurrency limit (Runway's THROTTLED), then queues.
    throttled_until: float = 0.0
    canceled_at: float | None = None
    callback_sent: bool = False
    #: The receiver's answer to the callback (None: not sent, or no answer).
    callback_status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def state(self, now: float) -> State:
        if self.canceled_at is not None and self.canceled_at < self.finished:
            return "canceled"
        if now < self.started:
            return "queued"
        if now < self.finished:
            return "running"
        return "failed" if self.fails else "succeeded"

    def throttled(self, now: float) -> bool:
        return now < self.throttled_until and self.state(now) == "queued"

    def progress(self, now: float) -> float:
        if now <= self.started:
            return 0.0
        span = max(self.finished - self.started, 1e-9)
        return min(1.0, (now - self.started) / span)


class Emulator:
    """The shared job table; vendor routers translate it into each wire format."""

    def __init__(self, knobs: Knobs | None = None, clock: Callable[[], float] = time.time) -> None:
        self.knobs = knobs or Knobs()
        self.clock = clock
        self.jobs: dict[str, EmJob] = {}
        self._rng = random.Random(self.knobs.seed)
        self.requests: dict[str, int] = {}
        #: (finish time, job id) of jobs with a callback URL, for the deliverer.
        self.callbacks_due: list[tuple[float, str]] = []

    def set_knobs(self, knobs: Knobs) -> None:
        self.knobs = knobs
        if knobs.seed is not None:
            self._rng.seed(knobs.seed)

    def create(
        self,
        vendor: str,
        model: str,
        payload: dict[str, Any],
        *,
        callback_url: str | None = None,
        job_id: str | None = None,
    ) -> EmJob:
        k, now = self.knobs, self.clock()
        latency = k.latency_s
        if k.latency_sigma > 0 and latency > 0:
            latency = self._rng.lognormvariate(math.log(latency), k.latency_sigma)
        throttled_until = now + k.throttle_s / k.time_scale
        started = throttled_until + k.queue_s / k.time_scale
        job = EmJob(
            id=job_id or uuid.uuid4().hex,
            vendor=vendor,
            model=model,
            payload=payload,
            created=now,
            started=started,
            finished=started + latency / k.time_scale,
            # Drawn first either way, so a seeded run's draws do not depend on fail_vendors.
            fails=self._rng.random() < k.fail_rate or vendor in k.fail_vendors,
            callback_url=callback_url,
            throttled_until=throttled_until,
        )
        self.jobs[job.id] = job
        if callback_url:
            heapq.heappush(self.callbacks_due, (job.finished, job.id))
        return job

    def get(self, job_id: str) -> EmJob | None:
        return self.jobs.get(job_id)

    def cancel(self, job: EmJob) -> bool:
        """True when the job was still running (it is canceled now)."""
        now = self.clock()
        if job.state(now) in ("queued", "running"):
            job.canceled_at = now
            return True
        return False

    def chaos(self, kind: str) -> Chaos | None:
        """What goes wrong with this request, if anything (each rate drawn in turn)."""
        self.requests[kind] = self.requests.get(kind, 0) + 1
        k = self.knobs
        if kind not in k.chaos_on:
            return None
        for name, rate in (
            ("rate_limit", k.rate_limit_rate),
            ("server_error", k.server_error_rate),
            ("malformed", k.malformed_rate),
            ("drop", k.drop_rate),
        ):
            if rate and self._rng.random() < rate:
                return name  # type: ignore[return-value]
        return None

    def create_error(self, vendor: str | None) -> CreateError | None:
        """The documented refusal this create gets, if any (``vendor`` None: a vendor
        module that does not name itself, refused only when no vendors are named)."""
        k = self.knobs
        if k.create_error is None:
            return None
        if k.create_error_vendors and vendor not in k.create_error_vendors:
            return None
        if self._rng.random() >= k.create_error_rate:
            return None
        self.requests["create_error"] = self.requests.get("create_error", 0) + 1
        return k.create_error

    def lose_callback(self) -> bool:
        return self._rng.random() < self.knobs.callback_loss_rate


@functools.cache
def sample_mp4() -> bytes:
    """A small real H.264 MP4 (1 s, 64x64, 8 fps), made once per process with ffmpeg."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample.mp4"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
             "-i", "testsrc2=size=64x64:rate=8:duration=1", "-c:v", "libx264",
             "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)],
            check=True,
        )  # fmt: skip
        return out.read_bytes()

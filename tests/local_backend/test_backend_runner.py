"""The runner with stand-in models: failures become data, and leave no files behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local_backend.config import BackendConfig
from local_backend.families.base import (
    Capabilities,
    GenerationParams,
    ModelError,
    ModelInfo,
    OnStep,
    Range,
)
from local_backend.runner import Generation, Runner

INFO = ModelInfo(
    id="flaky",
    family="test",
    description="fails on demand",
    capabilities=Capabilities(
        modes=["t2v"], duration_s=Range(min=0, max=10), fps=Range(min=1, max=60), max_long_side=64
    ),
)


@dataclass(frozen=True)
class FlakyTask:
    prompt: str
    total_steps: int = 3

    def run(self, out: Path, on_step: OnStep, device: str) -> None:
        out.write_bytes(b"partial")
        on_step(1)
        if self.prompt == "model-error":
            raise ModelError("out_of_memory", "CUDA out of memory")
        if self.prompt == "bug":
            raise ZeroDivisionError("division by zero")
        on_step(2)
        on_step(3)
        out.write_bytes(b"video")

    def idle(self, device: str) -> None:
        IDLED.append((self.prompt, time.monotonic()))
        if self.prompt == "idle-bug":
            raise RuntimeError("preparing the next job failed")


#: (prompt, when) of each ``idle`` call: the head start a device takes for the next job.
IDLED: list[tuple[str, float]] = []


class FlakyModel:
    info = INFO

    def prepare(self, params: GenerationParams) -> FlakyTask:
        return FlakyTask(params.prompt)


def params(prompt: str) -> GenerationParams:
    return GenerationParams(model="flaky", prompt=prompt, duration_s=1, fps=8, width=16, height=16)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    runner = Runner([FlakyModel()], BackendConfig(work_dir=tmp_path, keep_finished=2))
    yield runner
    runner.close()


def wait(gen: Generation, timeout: float = 5) -> Generation:
    deadline = time.monotonic() + timeout
    while not gen.terminal:
        assert time.monotonic() < deadline, gen
        time.sleep(0.005)
    return gen


@pytest.mark.parametrize(
    ("prompt", "code", "message"),
    [
        ("model-error", "out_of_memory", "CUDA out of memory"),
        ("bug", "internal_error", "ZeroDivisionError: division by zero"),
    ],
)
def test_a_failed_job_is_data_and_leaves_no_file(
    runner: Runner, tmp_path: Path, prompt: str, code: str, message: str
) -> None:
    gen, _ = runner.submit(params(prompt), None)
    wait(gen)
    assert (gen.status, gen.error_code, gen.error_message, gen.step) == ("failed", code, message, 1)
    assert list(tmp_path.iterdir()) == []


def test_the_worker_survives_a_failure(runner: Runner) -> None:
    bad, _ = runner.submit(params("bug"), None)
    good, _ = runner.submit(params("fine"), None)
    assert wait(bad).status == "failed"
    assert wait(good).status == "succeeded"
    assert good.path is not None and good.path.read_bytes() == b"video"


def test_a_failure_while_idle_does_not_stop_the_worker(runner: Runner) -> None:
    IDLED.clear()
    assert wait(runner.submit(params("idle-bug"), None)[0]).status == "succeeded"
    deadline = time.monotonic() + 5
    while not IDLED:  # the failing head start has run
        assert time.monotonic() < deadline, "the idle device never prepared"
        time.sleep(0.01)
    assert wait(runner.submit(params("fine"), None)[0]).status == "succeeded"


def test_the_next_job_is_prepared_only_after_a_quiet_spell(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway fetches the output in the moments after a job: the device's head
    start for the next one waits, and is skipped when a job arrives meanwhile."""
    quiet = 0.3
    monkeypatch.setattr("local_backend.runner.IDLE_PREP_DELAY_S", quiet)
    IDLED.clear()
    wait(runner.submit(params("first"), None)[0])
    second = wait(runner.submit(params("second"), None)[0])  # within the first's spell
    deadline = time.monotonic() + 5
    while not IDLED:
        assert time.monotonic() < deadline, "the idle device never prepared"
        time.sleep(0.01)
    time.sleep(0.05)
    assert [prompt for prompt, _ in IDLED] == ["second"]
    ((_, when),) = IDLED
    assert second.finished_at is not None
    waited = (time.time() - second.finished_at) - (time.monotonic() - when)
    assert waited >= quiet * 0.9


def test_only_the_newest_finished_jobs_are_kept(runner: Runner, tmp_path: Path) -> None:
    gens = [runner.submit(params("fine"), f"r{i}")[0] for i in range(4)]
    for gen in gens:
        wait(gen)
    assert [runner.get(g.id) is not None for g in gens] == [False, False, True, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{g.id}.mp4" for g in gens[2:])
    again, new = runner.submit(params("fine"), "r0")  # its record is gone: a new job
    assert new and again.id != gens[0].id


def test_run_on_device_runs_on_the_generations_thread(runner: Runner) -> None:
    import threading

    gen, _ = runner.submit(params("ok"), None)
    wait(gen)
    device = runner._thread
    assert runner.run_on_device(threading.current_thread) is device
    with pytest.raises(ZeroDivisionError):  # its error comes back; the device lives on
        runner.run_on_device(lambda: 1 / 0)
    assert wait(runner.submit(params("ok"), None)[0]).status == "succeeded"


def test_run_on_device_after_close_is_refused(runner: Runner) -> None:
    from local_backend.runner import RunnerClosed

    runner.close()
    with pytest.raises(RunnerClosed):
        runner.run_on_device(lambda: None)


@pytest.mark.parametrize(
    ("configured", "start", "expected"), [(1.0, 5.0, 1.0), (None, 5.0, 5.0), (1.0, 0.5, 0.5)]
)
def test_the_device_thread_tightens_the_gil_switch_interval(
    tmp_path: Path, configured: float | None, start: float, expected: float
) -> None:
    """Lowered to the configured interval when the device thread starts; never raised."""
    import sys

    from local_backend.runner import tighten_switch_interval

    before = sys.getswitchinterval()
    sys.setswitchinterval(start / 1000)
    try:
        config = BackendConfig(work_dir=tmp_path, gil_switch_interval_ms=configured)
        runner = Runner([], config)
        assert sys.getswitchinterval() == pytest.approx(start / 1000)  # nothing runs yet
        runner.run_on_device(lambda: None)
        assert sys.getswitchinterval() == pytest.approx(expected / 1000)
        runner.close()
        tighten_switch_interval(None)
        assert sys.getswitchinterval() == pytest.approx(expected / 1000)
    finally:
        sys.setswitchinterval(before)

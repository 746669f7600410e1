"""The progress display: a rich table on terminals, plain change lines elsewhere."""

from __future__ import annotations

import io
import sys

import pytest
from sdk_fakes import job_json, shot_json

from reelgate import Job
from reelgate._progress import PlainDisplay, open_progress, shot_fraction


def job(*shots: dict[str, object], status: str = "running") -> Job:
    return Job.model_validate(job_json(status=status, shots=list(shots)))


def test_plain_lines_are_printed_only_when_something_changed() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)

    display.update(job(shot_json(progress=0.11)))
    display.update(job(shot_json(progress=0.12)))  # same 10% bucket: silent
    display.update(job(shot_json(progress=0.55)))
    display.update(job(shot_json(status="succeeded"), status="succeeded"))

    assert out.getvalue().splitlines() == [
        "job job_1: running",
        "  shot 0 broll runway/gen4.5: running 11%",
        "  shot 0 broll runway/gen4.5: running 55%",
        "job job_1: succeeded",
        "  shot 0 broll runway/gen4.5: succeeded 100%",
    ]


def test_denoising_steps_are_shown_as_step_k_of_n() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)
    display.update(job(shot_json(progress=0.375, step=3, total_steps=8)))
    assert "running 37% step 3/8" in out.getvalue()

    rich_out = io.StringIO()
    with open_progress(True, file=rich_out, use_rich=True) as report:
        report(job(shot_json(progress=0.5, step=4, total_steps=8)))
    assert "step 4/8" in rich_out.getvalue()


def test_rich_table_shows_index_kind_model_status_and_bar() -> None:
    out = io.StringIO()
    shots = [
        shot_json(0, kind="establishing", status="running", progress=0.42),
        shot_json(1, model="local/preview", status="failed", error_message="oom"),
    ]
    with open_progress(True, file=out, use_rich=True) as report:
        report(job(*shots))

    text = out.getvalue()
    for expected in ("job job_1: running", "establishing", "local/preview", "42%", "oom", "━"):
        assert expected in text


def test_auto_mode_prints_plain_lines_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    with open_progress(True, file=out) as report:
        report(job(shot_json(progress=0.3)))
    assert "shot 0 broll runway/gen4.5: running 30%" in out.getvalue()


def test_without_rich_it_falls_back_to_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # makes the import fail
    out = io.StringIO()
    with open_progress(True, file=out) as report:
        report(job(shot_json(progress=0.3)))
    assert "running 30%" in out.getvalue()
    with pytest.raises(RuntimeError, match="pip install rich"), open_progress(True, use_rich=True):
        pass


def test_false_shows_nothing_and_a_callable_is_passed_through() -> None:
    def callback(job: Job) -> None:
        pass

    with open_progress(callback) as report:
        assert report is callback
    with open_progress(False) as report:
        assert report(job(shot_json())) is None


@pytest.mark.parametrize(
    ("status", "progress", "expected"),
    [
        ("running", None, 0.0),
        ("running", 0.25, 0.25),
        ("running", 7.0, 1.0),
        ("succeeded", None, 1.0),
    ],
)
def test_shot_fraction(status: str, progress: float | None, expected: float) -> None:
    shot = job(shot_json(status=status, progress=progress)).shots[0]
    assert shot_fraction(shot) == expected

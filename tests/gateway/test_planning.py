"""Merging storyboard defaults, fitting parameters to a model, sizes and prices."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.catalog import CatalogEntry, load_catalog, parse_catalog
from gateway.planning import (
    Needs,
    ShotRequest,
    dimensions,
    estimate_micros,
    normalize,
    shot_request,
)
from reelgate.types import JobCreate, ShotParams, StructuredPrompt

CATALOG = load_catalog()


def req(**kw: Any) -> ShotRequest:
    return ShotRequest(index=kw.pop("index", 2), prompt=kw.pop("prompt", "a fox runs"), **kw)


def fit(model_id: str, **kw: Any) -> tuple[ShotParams, list[str], list[tuple[str, str, Any]]]:
    out = normalize(req(**kw), CATALOG[model_id])
    problems = [(p.field, p.message, p.allowed) for p in out.problems]
    return out.params, [a.message for a in out.adjustments], problems


# --- merging the storyboard into a shot --------------------------------------------------


def test_shot_request_merges_defaults_style_and_negative() -> None:
    job = JobCreate.model_validate(
        {
            "style": "watercolor",
            "negative": "text",
            "defaults": {
                "duration_s": 6,
                "fps": 30,
                "model": "runway/gen4.5",
                "normalize": "strict",
            },
            "shots": [
                {"prompt": "a", "fps": 24, "negative": "blur", "kind": "action"},
                {"prompt": "b", "model": "auto", "prefer": "cost", "seed": 7},
            ],
        }
    )
    first, second = shot_request(job, 0), shot_request(job, 1)
    assert (first.duration_s, first.fps, first.model, first.kind) == (
        6,
        24,
        "runway/gen4.5",
        "action",
    )
    assert first.negative == "blur, text" and first.style == "watercolor"
    assert first.normalize == "strict"
    assert first.inherited == {"duration_s", "model", "normalize"}
    assert first.path("duration_s") == "defaults.duration_s"
    assert first.path("fps") == "shots[0].fps"
    assert second.model is None  # "auto" unpins
    assert (second.prefer, second.seed, second.negative) == ("cost", 7, "text")


def test_shot_request_without_defaults() -> None:
    r = shot_request(JobCreate.model_validate({"shots": [{"prompt": "x"}]}), 0)
    assert (r.kind, r.normalize, r.duration_s, r.audio, r.inherited) == (
        "broll",
        "snap",
        None,
        None,
        frozenset(),
    )


def test_shot_request_round_trips_as_json() -> None:
    r = req(prompt=StructuredPrompt(subject="a fox"), max_cost_usd="1.5", inherited={"fps"})
    assert ShotRequest.model_validate_json(r.model_dump_json()) == r


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, Needs("t2v", audio=False, uhd=False, camera_motion=False)),
        (
            {"image": "https://x/a.png", "audio": True},
            Needs("i2v", audio=True, uhd=False, camera_motion=False),
        ),
        (
            {"image": "https://x/a.png", "last_frame": "https://x/z.png", "resolution": "4k"},
            Needs("flf2v", audio=False, uhd=True, camera_motion=False),
        ),
        ({"prompt": "slow dolly in on a fox"}, Needs("t2v", False, False, camera_motion=True)),
        (
            {"prompt": StructuredPrompt(subject="a fox", camera="close-up, orbit")},
            Needs("t2v", False, False, camera_motion=True),
        ),
    ],
)
def test_needs(kw: dict[str, Any], expected: Needs) -> None:
    assert Needs.of(req(**kw)) == expected


# --- normalize: defaults ---------------------------------------------------------------


def test_unset_values_take_gateway_defaults_silently() -> None:
    params, adjustments, problems = fit("local/preview")
    assert params == ShotParams(
        duration_s=4, aspect_ratio="16:9", resolution="720p", fps=24, width=1280, height=720
    )
    assert adjustments == [] and problems == []


@pytest.mark.parametrize(
    ("model_id", "field", "value"),
    [
        ("kling/kling-v2-1-master", "duration_s", 5),
        ("kling/kling-v2-1-master", "resolution", "1080p"),
        ("minimax/hailuo-2.3", "resolution", "768p"),
        ("fal/wan-v2.2-a14b", "fps", 16),
    ],
)
def test_unset_values_take_the_models_nearest_silently(
    model_id: str, field: str, value: Any
) -> None:
    params, adjustments, problems = fit(model_id, normalize="strict")
    assert getattr(params, field) == value
    assert adjustments == [] and problems == []


def test_supported_values_are_kept() -> None:
    params, adjustments, _ = fit(
        "runway/gen4.5", duration_s=7, aspect_ratio="9:16", fps=24, seed=3, image="https://x/a.png"
    )
    assert (params.duration_s, params.aspect_ratio, params.seed) == (7, "9:16", 3)
    assert adjustments == []


# --- normalize: snap -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "kw", "message"),
    [
        ("runway/gen4.5", {"duration_s": 12}, "duration_s 12 -> 10 (runway/gen4.5 allows 2..10)"),
        ("runway/gen4.5", {"duration_s": 1}, "duration_s 1 -> 2 (runway/gen4.5 allows 2..10)"),
        ("runway/gen4.5", {"duration_s": 6.5}, "duration_s 6.5 -> 7 (runway/gen4.5 allows 2..10)"),
        ("google/veo-3.1", {"duration_s": 7}, "duration_s 7 -> 8 (google/veo-3.1 allows 4, 6, 8)"),
        (
            "google/veo-3.1",
            {"duration_s": 5.2},
            "duration_s 5.2 -> 6 (google/veo-3.1 allows 4, 6, 8)",
        ),
        (
            "google/veo-3.1",
            {"duration_s": 4, "resolution": "1080p"},
            "duration_s 4 -> 8 (google/veo-3.1 allows 8 at 1080p)",
        ),
        (
            "local/wan2.1-t2v-1.3b",
            {"duration_s": 2.2},
            "duration_s 2.2 -> 2 (local/wan2.1-t2v-1.3b allows 1..5 in 0.5 s steps)",
        ),
        ("local/preview", {"duration_s": 90}, "duration_s 90 -> 60 (local/preview allows 0.5..60)"),
        ("google/veo-3.1", {"fps": 30}, "fps 30 -> 24 (google/veo-3.1 allows 24)"),
        (
            "google/veo-3.1",
            {"aspect_ratio": "4:3"},
            "aspect_ratio 4:3 -> 16:9 (google/veo-3.1 allows 16:9, 9:16)",
        ),
        (
            "google/veo-3.1",
            {"aspect_ratio": "2:3"},
            "aspect_ratio 2:3 -> 9:16 (google/veo-3.1 allows 16:9, 9:16)",
        ),
        (
            "runway/gen4.5",
            {"aspect_ratio": "1:1"},
            "aspect_ratio 1:1 -> 16:9 (runway/gen4.5 allows 16:9, 9:16)",
        ),
        (
            "google/veo-3.1",
            {"resolution": "480p"},
            "resolution 480p -> 720p (google/veo-3.1 allows 720p, 1080p, 4k)",
        ),
        (
            "local/preview",
            {"resolution": "4k"},
            "resolution 4k -> 1080p (local/preview allows 360p, 480p, 720p, 1080p)",
        ),
        ("google/veo-3.1", {"seed": 42}, "seed 42 -> none (google/veo-3.1 has no seed)"),
        ("runway/gen4.5", {"audio": True}, "audio true -> false (runway/gen4.5 has no audio)"),
    ],
)
def test_snap_records_one_adjustment_with_a_readable_message(
    model_id: str, kw: dict[str, Any], message: str
) -> None:
    _, adjustments, problems = fit(model_id, **kw)
    assert adjustments == [message]
    assert problems == []


def test_snap_adjustment_carries_requested_and_applied() -> None:
    out = normalize(req(duration_s=7, fps=30), CATALOG["google/veo-3.1"])
    assert [(a.field, a.requested, a.applied) for a in out.adjustments] == [
        ("fps", 30, 24),
        ("duration_s", 7, 8),
    ]
    assert out.params.duration_s == 8 and out.params.fps == 24


def test_snap_ties_go_to_the_larger_value() -> None:
    params, _, _ = fit("google/veo-3.1", resolution="900p")
    assert params.resolution == "1080p"
    assert params.duration_s == 8  # and 1080p then forces 8 s


def test_resolution_is_fitted_before_duration() -> None:
    params, adjustments, _ = fit("minimax/hailuo-2.3", resolution="1080p", duration_s=10)
    assert (params.resolution, params.duration_s) == ("1080p", 6)
    assert adjustments == ["duration_s 10 -> 6 (minimax/hailuo-2.3 allows 6 at 1080p)"]


def test_audio_false_or_unset_is_never_an_adjustment() -> None:
    assert fit("runway/gen4.5", audio=False)[1] == []
    params, adjustments, _ = fit("google/veo-3.1", audio=True)
    assert params.audio is True and adjustments == []


# --- normalize: strict -----------------------------------------------------------------


def test_strict_lists_every_unsupported_field_with_what_is_allowed() -> None:
    _, adjustments, problems = fit(
        "google/veo-3.1",
        normalize="strict",
        duration_s=7,
        aspect_ratio="1:1",
        resolution="480p",
        fps=30,
        seed=1,
        inherited={"fps"},
    )
    assert adjustments == []
    assert problems == [
        (
            "shots[2].resolution",
            "resolution 480p not supported by google/veo-3.1; allowed 720p, 1080p, 4k",
            ["720p", "1080p", "4k"],
        ),
        (
            "shots[2].aspect_ratio",
            "aspect_ratio 1:1 not supported by google/veo-3.1; allowed 16:9, 9:16",
            ["16:9", "9:16"],
        ),
        ("defaults.fps", "fps 30 not supported by google/veo-3.1; allowed 24", [24]),
        (
            "shots[2].duration_s",
            "duration_s 7 not supported by google/veo-3.1; allowed 4, 6, 8",
            [4, 6, 8],
        ),
        ("shots[2].seed", "seed 1 not supported by google/veo-3.1; it has no seed", None),
    ]


def test_strict_range_allowed_is_structured() -> None:
    _, _, problems = fit("runway/gen4.5", normalize="strict", duration_s=11)
    assert problems == [
        (
            "shots[2].duration_s",
            "duration_s 11 not supported by runway/gen4.5; allowed 2..10",
            {"min": 2, "max": 10, "step": 1},
        )
    ]


def test_strict_accepts_supported_values() -> None:
    assert fit("runway/gen4.5", normalize="strict", duration_s=7, image="https://x/a.png")[2] == []


@pytest.mark.parametrize("mode", ["snap", "strict"])
def test_a_missing_input_mode_is_a_problem_in_both_modes(mode: str) -> None:
    _, _, problems = fit(
        "runway/gen4.5", normalize=mode, image="https://x/a.png", last_frame="https://x/z.png"
    )
    assert problems == [
        (
            "shots[2].last_frame",
            "runway/gen4.5 does not take first and last frame input; "
            "it does text-to-video, image-to-video",
            ["t2v", "i2v"],
        )
    ]


# --- sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "resolution", "size"),
    [
        ("16:9", "720p", (1280, 720)),
        ("9:16", "720p", (720, 1280)),
        ("1:1", "720p", (720, 720)),
        ("4:3", "720p", (960, 720)),
        ("3:4", "1080p", (1080, 1440)),
        ("21:9", "720p", (1680, 720)),
        ("16:9", "480p", (854, 480)),
        ("16:9", "768p", (1366, 768)),
        ("16:9", "1080p", (1920, 1080)),
        ("16:9", "4k", (3840, 2160)),
        ("9:16", "4k", (2160, 3840)),
        ("16:9", "360p", (640, 360)),
    ],
)
def test_dimensions(ratio: str, resolution: str, size: tuple[int, int]) -> None:
    assert dimensions(ratio, resolution) == size
    assert all(n % 2 == 0 for n in size)


def test_params_carry_the_size() -> None:
    params, _, _ = fit("local/preview", aspect_ratio="9:16", resolution="1080p")
    assert (params.width, params.height) == (1080, 1920)


# --- cost ---------------------------------------------------------------------------------


PRICED = parse_catalog(
    """
[[models]]
id = "t/talkie"
adapter = "t"
vendor_model = "talkie"
quality = 5
speed = 5
[models.capabilities]
modes = ["t2v"]
duration_range = [0.5, 20]
resolutions = ["720p", "1080p"]
aspect_ratios = ["16:9"]
fps = [24]
audio = true
max_prompt_chars = 500
[models.price]
per_second_usd = { "720p" = "0.000001" }
per_video_usd = "2.50"
audio_per_second_usd = "0.05"
"""
)["t/talkie"]


def cost(entry: CatalogEntry, **kw: Any) -> int:
    return estimate_micros(entry, normalize(req(**kw), entry).params)


def test_per_second_cost_times_duration() -> None:
    assert cost(CATALOG["runway/gen4.5"], duration_s=7) == 840_000
    assert cost(CATALOG["google/veo-3.1"], duration_s=8, resolution="4k") == 3_200_000
    assert cost(CATALOG["minimax/hailuo-2.3"], duration_s=6) == 282_000
    assert cost(CATALOG["seedance/seedance-1-0-pro"], resolution="1080p", duration_s=5) == 607_500


def test_per_video_cost_where_no_per_second_price() -> None:
    assert cost(PRICED, resolution="1080p", duration_s=10) == 2_500_000
    assert cost(CATALOG["local/preview"], duration_s=30) == 0


def test_audio_surcharge_only_with_audio() -> None:
    assert cost(PRICED, resolution="1080p", duration_s=10, audio=True) == 2_500_000 + 500_000
    assert cost(PRICED, resolution="1080p", duration_s=10, audio=False) == 2_500_000


def test_estimates_round_up_to_the_micro_usd() -> None:
    assert cost(PRICED, resolution="720p", duration_s=0.5) == 1  # 0.5 micro-USD -> 1
    assert cost(PRICED, resolution="720p", duration_s=3) == 3

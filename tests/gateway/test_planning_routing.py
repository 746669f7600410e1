"""Routing tables, candidate selection, and whole-job plans with their errors."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.catalog import CatalogEntry, CatalogError, load_catalog, parse_catalog
from gateway.planning import (
    PlanningError,
    RoutingTable,
    load_routing,
    parse_routing,
    plan_for_candidate,
    plan_job,
    shot_request,
)
from reelgate.types import JobCreate, Quote, StructuredPrompt

CATALOG = parse_catalog(
    """
[[models]]
id = "t/hq"
adapter = "hq"
vendor_model = "hq-1"
dialect = "cinematic"
quality = 9
speed = 2
[models.capabilities]
modes = ["t2v", "i2v", "flf2v"]
durations = [4, 6, 8]
resolutions = ["720p", "1080p", "4k"]
aspect_ratios = ["16:9", "9:16"]
fps = [24]
audio = true
negative_prompt = true
max_prompt_chars = 1000
[models.price]
per_second_usd = { "720p" = "0.50", "1080p" = "0.50", "4k" = "1.00" }

[[models]]
id = "t/i2v"
adapter = "imgco"
vendor_model = "i2v-1"
quality = 7
speed = 5
[models.capabilities]
modes = ["i2v"]
durations = [5]
resolutions = ["1080p"]
aspect_ratios = ["16:9"]
fps = [24]
max_prompt_chars = 1000
[models.price]
per_video_usd = "1.00"
confirmed = false

[[models]]
id = "t/fast"
adapter = "fast"
vendor_model = "fast-1"
dialect = "tags"
quality = 5
speed = 9
[models.capabilities]
modes = ["t2v"]
duration_range = [2, 10]
duration_step = 1
resolutions = ["720p"]
aspect_ratios = ["16:9", "9:16", "1:1"]
fps = [24, 30]
seed = true
max_prompt_chars = 1000
[models.price]
per_second_usd = { "720p" = "0.10" }

[[models]]
id = "t/draft"
adapter = "local"
vendor_model = "preview"
quality = 1
speed = 10
draft = true
[models.capabilities]
modes = ["t2v", "i2v"]
duration_range = [0.5, 60]
resolutions = ["360p", "720p", "1080p"]
aspect_ratios = ["16:9", "9:16", "1:1"]
fps = [12, 24, 30]
negative_prompt = true
seed = true
max_prompt_chars = 2000
[models.price]
per_video_usd = "0"
"""
)
ROUTING = RoutingTable(
    {
        "hero": ("t/hq", "t/i2v", "t/fast", "t/draft"),
        "quick": ("t/fast", "t/draft"),
        "draft": ("t/draft",),
    }
)


def all_up(entry: CatalogEntry) -> str | None:
    return None


def down(*adapters: str) -> Any:
    def status(entry: CatalogEntry) -> str | None:
        name = entry.adapter
        if name in adapters:
            return f"backend '{name}' not configured (set REELGATE_{name.upper()}_API_KEY)"
        return None

    return status


def quote(*shots: dict[str, Any], status: Any = all_up, **job: Any) -> Quote:
    body = JobCreate.model_validate({"shots": list(shots), **job})
    return plan_job(body, catalog=CATALOG, routing=ROUTING, backend_status=status)


def route(plan_quote: Quote, index: int = 0) -> list[tuple[str, str]]:
    return [(c.model, c.status) for c in plan_quote.shots[index].route]


def error(*shots: dict[str, Any], status: Any = all_up, **job: Any) -> PlanningError:
    with pytest.raises(PlanningError) as err:
        quote(*shots, status=status, **job)
    return err.value


# --- routing by kind -------------------------------------------------------------------


def test_table_order_needs_and_reasons() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs"})
    assert route(q) == [
        ("t/hq", "selected"),
        ("t/fast", "fallback"),
        ("t/draft", "fallback"),
        ("t/i2v", "skipped"),
    ]
    skipped = q.shots[0].route[-1]
    assert skipped.reason == ("t/i2v does not take text-to-video input; it does image-to-video")
    assert q.shots[0].model == "t/hq"


def test_an_image_selects_image_to_video_models() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "image": "https://x/y.png"})
    assert route(q) == [
        ("t/hq", "selected"),
        ("t/i2v", "fallback"),
        ("t/draft", "fallback"),
        ("t/fast", "skipped"),
    ]


def test_a_last_frame_needs_first_and_last_frame_models() -> None:
    q = quote(
        {
            "kind": "hero",
            "prompt": "a fox runs",
            "image": "https://x/a.png",
            "last_frame": "https://x/z.png",
        }
    )
    assert [m for m, s in route(q) if s != "skipped"] == ["t/hq"]


def test_unconfigured_backends_are_skipped_with_their_reason() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs"}, status=down("hq"))
    assert route(q)[0] == ("t/fast", "selected")
    skipped = {c.model: c.reason for c in q.shots[0].route if c.status == "skipped"}
    assert skipped["t/hq"] == "backend 'hq' not configured (set REELGATE_HQ_API_KEY)"


def test_no_route_explains_every_skip() -> None:
    err = error({"kind": "quick", "prompt": "a fox runs"}, status=down("fast", "local"))
    assert err.code == "no_route"
    assert "shots[0]" in err.detail and "'quick'" in err.detail
    assert [(e.field, e.message) for e in err.errors] == [
        ("shots[0]", "t/fast: backend 'fast' not configured (set REELGATE_FAST_API_KEY)"),
        ("shots[0]", "t/draft: backend 'local' not configured (set REELGATE_LOCAL_API_KEY)"),
    ]


def test_unknown_kind_lists_the_kinds() -> None:
    err = error({"kind": "montage", "prompt": "x"})
    assert err.code == "unknown_kind"
    (field,) = err.errors
    assert field.field == "shots[0].kind"
    assert field.allowed == ["draft", "hero", "quick"]
    assert "draft, hero, quick" in field.message


# --- prefer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefer", "order"),
    [
        (None, ["t/hq", "t/fast", "t/draft"]),
        ("quality", ["t/hq", "t/fast", "t/draft"]),
        ("cost", ["t/fast", "t/hq", "t/draft"]),
        ("speed", ["t/fast", "t/hq", "t/draft"]),
    ],
)
def test_prefer_orders_candidates_and_never_promotes_a_draft(
    prefer: str | None, order: list[str]
) -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "prefer": prefer})
    assert [m for m, s in route(q) if s != "skipped"] == order


def test_prefer_from_defaults() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs"}, defaults={"prefer": "cost"})
    assert q.shots[0].model == "t/fast"


def test_without_prefer_the_table_order_wins_even_for_a_draft() -> None:
    routing = RoutingTable({"hero": ("t/draft", "t/hq")})
    body = JobCreate.model_validate({"shots": [{"kind": "hero", "prompt": "a fox runs"}]})
    q = plan_job(body, catalog=CATALOG, routing=routing, backend_status=all_up)
    assert q.shots[0].model == "t/draft"


# --- soft needs: audio and 4k --------------------------------------------------------------


def test_models_lacking_audio_rank_after_models_that_have_it() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "audio": True, "prefer": "cost"})
    assert [(c.model, c.status, c.reason) for c in q.shots[0].route][:3] == [
        ("t/hq", "selected", None),
        ("t/fast", "fallback", "lacks audio"),
        ("t/draft", "fallback", "lacks audio"),
    ]
    assert q.shots[0].params.audio is True


def test_without_any_audio_model_snap_drops_audio_and_says_so() -> None:
    q = quote({"kind": "quick", "prompt": "a fox runs", "audio": True})
    shot = q.shots[0]
    assert route(q) == [("t/fast", "selected"), ("t/draft", "fallback")]
    assert shot.route[0].reason == "lacks audio"
    assert shot.params.audio is False
    assert [a.message for a in shot.adjustments] == ["audio true -> false (t/fast has no audio)"]


def test_4k_prefers_models_with_4k() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "resolution": "4k", "prefer": "speed"})
    assert q.shots[0].model == "t/hq"
    assert q.shots[0].params.width == 3840
    assert q.shots[0].route[1].reason == "lacks 4k"


def test_strict_skips_models_that_would_need_an_adjustment() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "duration_s": 7, "normalize": "strict"})
    assert route(q)[0] == ("t/fast", "selected")
    hq = next(c for c in q.shots[0].route if c.model == "t/hq")
    assert hq.status == "skipped"
    assert hq.reason == "duration_s 7 not supported by t/hq; allowed 4, 6, 8"
    assert q.shots[0].adjustments == []


def test_strict_with_no_fitting_candidate_names_each_field() -> None:
    err = error({"kind": "quick", "prompt": "a fox runs", "fps": 25, "normalize": "strict"})
    assert err.code == "no_route"
    assert [(e.field, e.message) for e in err.errors] == [
        ("shots[0].fps", "fps 25 not supported by t/fast; allowed 24, 30"),
        ("shots[0].fps", "fps 25 not supported by t/draft; allowed 12, 24, 30"),
    ]


# --- max_cost_usd --------------------------------------------------------------------------


def test_max_cost_skips_candidates_over_budget() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "max_cost_usd": "1.00"})
    assert route(q)[0] == ("t/fast", "selected")
    hq = next(c for c in q.shots[0].route if c.model == "t/hq")
    assert (hq.status, hq.reason) == ("skipped", "estimate 2 USD is over max_cost_usd 1.00")
    assert q.shots[0].estimate_usd == Decimal("0.4")


def test_max_cost_equal_to_the_estimate_is_within_budget() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "max_cost_usd": "2"})
    assert q.shots[0].model == "t/hq"


# --- pinned models ---------------------------------------------------------------------------


def test_a_pinned_model_is_the_whole_route() -> None:
    q = quote({"kind": "hero", "prompt": "a fox runs", "model": "t/fast", "prefer": "quality"})
    assert route(q) == [("t/fast", "selected")]


def test_pin_from_defaults_and_auto_unpins() -> None:
    q = quote(
        {"kind": "hero", "prompt": "a"},
        {"kind": "hero", "prompt": "b", "model": "auto"},
        defaults={"model": "t/fast"},
    )
    assert [s.model for s in q.shots] == ["t/fast", "t/hq"]


def test_unknown_pinned_model_lists_known_ids() -> None:
    err = error({"prompt": "x", "kind": "quick"}, {"prompt": "y", "model": "acme/nope"})
    assert err.code == "unknown_model"
    (field,) = err.errors
    assert field.field == "shots[1].model"
    assert field.allowed == ["t/hq", "t/i2v", "t/fast", "t/draft"]
    assert "'acme/nope'" in field.message


def test_unknown_model_in_defaults_points_at_defaults() -> None:
    err = error({"prompt": "x"}, defaults={"model": "acme/nope"})
    assert err.errors[0].field == "defaults.model"


def test_pinned_but_not_configured_is_an_error() -> None:
    err = error({"prompt": "x", "model": "t/hq"}, status=down("hq"))
    assert err.code == "model_not_configured"
    (field,) = err.errors
    assert field.field == "shots[0].model"
    assert field.message == "t/hq: backend 'hq' not configured (set REELGATE_HQ_API_KEY)"


def test_pinned_strict_lists_every_field() -> None:
    err = error({"prompt": "x", "model": "t/hq", "duration_s": 5, "fps": 30, "normalize": "strict"})
    assert err.code == "unsupported_value"
    assert [e.field for e in err.errors] == ["shots[0].fps", "shots[0].duration_s"]
    assert err.errors[1].allowed == [4, 6, 8]


def test_pinned_snap_adjusts_instead() -> None:
    q = quote({"prompt": "a fox runs", "model": "t/hq", "duration_s": 5, "fps": 30})
    assert [a.field for a in q.shots[0].adjustments] == ["fps", "duration_s"]
    assert q.shots[0].params.duration_s == 6


def test_pinned_model_without_the_input_mode() -> None:
    err = error({"prompt": "x", "model": "t/i2v"})
    assert err.code == "unsupported_value"
    assert err.errors[0].field == "shots[0].image"


def test_pinned_over_budget() -> None:
    err = error({"prompt": "x", "model": "t/hq", "max_cost_usd": "0.5"})
    assert err.code == "over_max_cost"
    assert err.errors[0].field == "shots[0].max_cost_usd"
    assert err.errors[0].message == "t/hq: estimate 2 USD is over max_cost_usd 0.5"


# --- invalid shots and several errors ----------------------------------------------------


def test_empty_structured_prompt_and_lone_last_frame_are_invalid() -> None:
    err = error({"prompt": {"negative": "blur"}, "last_frame": "https://x/z.png"})
    assert err.code == "invalid_value"
    assert [e.field for e in err.errors] == ["shots[0].prompt", "shots[0].last_frame"]


def test_errors_of_every_shot_are_reported_together() -> None:
    err = error(
        {"prompt": "fine", "kind": "quick"},
        {"prompt": "x", "kind": "montage"},
        {"prompt": "y", "model": "acme/nope"},
    )
    assert err.code == "unknown_kind"  # the first shot's code
    assert [e.field for e in err.errors] == ["shots[1].kind", "shots[2].model"]
    assert err.detail.startswith("2 shots cannot be planned")


# --- the plan itself ---------------------------------------------------------------------


def test_shot_plan_carries_prompt_lint_params_and_cost() -> None:
    q = quote(
        {
            "kind": "hero",
            "prompt": {"subject": "a stunning fox", "action": "runs", "camera": "dolly in"},
            "negative": "blur",
            "duration_s": 6,
        },
        style="watercolor",
    )
    shot = q.shots[0]
    assert shot.prompt_sent == "Camera: dolly in. A stunning fox runs. Watercolor."
    assert shot.negative_sent == "blur"
    assert [w.code for w in shot.lint] == ["abstract_wording"]
    assert (shot.params.duration_s, shot.params.width, shot.params.height) == (6, 1280, 720)
    assert shot.estimate_usd == Decimal("3")
    assert q.total_usd == Decimal("3")


def test_negative_is_not_sent_to_a_model_without_one_and_lint_says_so() -> None:
    q = quote({"kind": "quick", "prompt": "a fox runs", "negative": "blur"})
    assert q.shots[0].negative_sent is None
    assert [(w.code, w.field) for w in q.shots[0].lint] == [("negative_unsupported", "negative")]


def test_dialogue_without_audio_is_flagged() -> None:
    prompt = {"subject": "a sailor", "dialogue": "Land ho!"}
    q = quote({"kind": "hero", "prompt": prompt})
    assert [w.code for w in q.shots[0].lint] == ["dialogue_without_audio"]
    assert "set audio: true" in q.shots[0].lint[0].message
    assert quote({"kind": "hero", "prompt": prompt, "audio": True}).shots[0].lint == []


def test_quote_totals_and_flags_unconfirmed_prices_once() -> None:
    img = {"kind": "hero", "prompt": "a fox runs", "image": "https://x/a.png", "model": "t/i2v"}
    q = quote(img, img, {"kind": "quick", "prompt": "a fox runs", "duration_s": 3})
    assert [s.estimate_usd for s in q.shots] == [Decimal(1), Decimal(1), Decimal("0.3")]
    assert q.total_usd == Decimal("2.3")
    assert [(w.code, w.field) for w in q.warnings] == [("price_unconfirmed", None)]
    assert "t/i2v" in q.warnings[0].message
    assert q.model_dump(mode="json")["total_usd"] == "2.3"


def test_backend_status_is_asked_once_per_model_per_job() -> None:
    calls: Counter[str] = Counter()

    def status(entry: CatalogEntry) -> str | None:
        calls[entry.id] += 1
        return None

    quote(*[{"kind": "hero", "prompt": "a fox runs"}] * 5, status=status)
    assert set(calls.values()) == {1}


# --- plan_for_candidate (fallbacks) -------------------------------------------------------


def test_plan_for_candidate_fits_params_to_the_fallback() -> None:
    body = JobCreate.model_validate(
        {
            "shots": [
                {
                    "kind": "hero",
                    "prompt": {"subject": "a fox", "action": "runs"},
                    "duration_s": 6,
                    "fps": 30,
                    "seed": 9,
                }
            ]
        }
    )
    req = shot_request(body, 0)
    q = plan_job(body, catalog=CATALOG, routing=ROUTING, backend_status=all_up)
    assert q.shots[0].model == "t/hq"
    fallback = plan_for_candidate(req, CATALOG["t/fast"])
    assert fallback.entry.id == "t/fast"
    assert (fallback.params.duration_s, fallback.params.fps, fallback.params.seed) == (6, 30, 9)
    assert fallback.adjustments == []
    assert fallback.prompt.text == "a fox, runs"  # the fallback's own dialect
    assert fallback.estimate_micros == 600_000 and fallback.estimate_usd == Decimal("0.6")
    on_hq = plan_for_candidate(req, CATALOG["t/hq"])
    assert [a.field for a in on_hq.adjustments] == ["fps", "seed"]


def test_plan_for_candidate_raises_when_the_model_cannot_run_the_shot() -> None:
    req = shot_request(
        JobCreate.model_validate({"shots": [{"prompt": "x", "image": "https://x/a.png"}]}), 0
    )
    with pytest.raises(PlanningError) as err:
        plan_for_candidate(req, CATALOG["t/fast"])
    assert err.value.code == "unsupported_value"
    strict = req.model_copy(update={"normalize": "strict", "duration_s": 7.0})
    with pytest.raises(PlanningError) as err:
        plan_for_candidate(strict, CATALOG["t/hq"])
    assert [e.field for e in err.value.errors] == ["shots[0].duration_s"]


# --- routing tables ------------------------------------------------------------------------


KINDS = ("establishing", "character", "dialogue", "action", "broll", "product", "stylized", "draft")


def test_shipped_routing_covers_every_kind_and_ends_with_local_preview() -> None:
    catalog = load_catalog()
    table = load_routing(catalog=catalog)
    assert set(KINDS) <= set(table.kinds)
    for kind, ids in table.kinds.items():
        assert ids[-1] == "local/preview", kind
        assert all(i in catalog for i in ids)
    assert table.kinds["draft"] == ("local/preview",)


def test_every_kind_renders_with_no_vendor_keys() -> None:
    catalog = load_catalog()
    table = load_routing(catalog=catalog)
    body = JobCreate.model_validate(
        {
            "shots": [
                {"kind": k, "prompt": "a fox runs", "duration_s": 5, "audio": True} for k in KINDS
            ]
        }
    )
    q = plan_job(
        body,
        catalog=catalog,
        routing=table,
        backend_status=down(
            "runway", "google", "kling", "luma", "fal", "replicate", "minimax", "seedance"
        ),
    )
    assert {s.model for s in q.shots} == {"local/preview"}
    assert q.total_usd == 0


def test_every_kind_with_all_vendors_configured_picks_a_vendor() -> None:
    catalog = load_catalog()
    table = load_routing(catalog=catalog)
    body = JobCreate.model_validate(
        {
            "shots": [
                {"kind": k, "prompt": StructuredPrompt(subject="a fox", action="runs")}
                for k in KINDS
            ]
        }
    )
    q = plan_job(body, catalog=catalog, routing=table, backend_status=all_up)
    models = [s.model for s in q.shots]
    assert models[-1] == "local/preview"  # draft
    assert "local/preview" not in models[:-1]
    assert q.total_usd > 0


def test_operator_routing_file_can_add_kinds(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text('[kinds]\nmontage = ["t/fast", "t/draft"]\ndraft = ["t/draft"]\n')
    table = load_routing(path, catalog=CATALOG)
    assert table.candidates("montage") == ("t/fast", "t/draft")
    assert table.candidates("hero") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[kinds]\nhero = ["t/nope"]\n', "kinds.hero: 't/nope' is not in the catalog"),
        ('[kinds]\nHero = ["t/hq"]\n', "kinds.Hero: a kind is lower-case"),
        ("[kinds]\nhero = []\n", "kinds.hero: expected a non-empty list"),
        ('[kinds]\nhero = "t/hq"\n', "kinds.hero: expected a non-empty list"),
        ("x = 1\n", "unknown top-level key 'x'"),
        ("", "no kinds"),
        ("[kinds\n", "invalid TOML"),
    ],
)
def test_malformed_routing(text: str, expected: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_routing(text, "r.toml", CATALOG)
    assert str(err.value).startswith("r.toml: ")
    assert expected in str(err.value)


def test_missing_routing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read routing table"):
        load_routing(tmp_path / "none.toml")


def test_routing_without_catalog_does_not_check_ids() -> None:
    table = parse_routing('[kinds]\nhero = ["a/b", "a/b", "c/d"]\n')
    assert table.candidates("hero") == ("a/b", "c/d")


def test_route_ids_missing_from_the_catalog_are_skipped() -> None:
    routing = RoutingTable({"hero": ("t/gone", "t/fast")})
    body = JobCreate.model_validate({"shots": [{"kind": "hero", "prompt": "a fox runs"}]})
    q = plan_job(body, catalog=CATALOG, routing=routing, backend_status=all_up)
    assert [(c.model, c.status, c.reason) for c in q.shots[0].route] == [
        ("t/fast", "selected", None),
        ("t/gone", "skipped", "not in the catalog"),
    ]

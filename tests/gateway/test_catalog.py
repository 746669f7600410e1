"""The shipped catalog, catalog parsing and its errors, and the wire view."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.base import GenerationRequest
from gateway.catalog import (
    Catalog,
    CatalogError,
    load_catalog,
    micros,
    parse_catalog,
    resolution_px,
    to_wire,
    usd,
)
from gateway.prompts import DIALECTS

MINIMAL = """
[[models]]
id = "acme/one"
adapter = "acme"
vendor_model = "one-v1"
dialect = "plain"
quality = 5
speed = 5
[models.capabilities]
modes = ["t2v"]
durations = [5, 10]
resolutions = ["720p", "1080p"]
aspect_ratios = ["16:9"]
fps = [24]
max_prompt_chars = 500
[models.price]
per_second_usd = { "720p" = "0.10", "1080p" = "0.25" }
"""


# --- the shipped catalog ----------------------------------------------------------------


def test_shipped_catalog_loads_with_the_expected_models() -> None:
    catalog = load_catalog()
    for model_id, adapter in [
        ("local/preview", "local"),
        ("runway/gen4.5", "runway"),
        ("google/veo-3.1", "google"),
        ("google/veo-3.1-fast", "google"),
        ("kling/kling-v2-1-master", "kling"),
        ("luma/ray-2", "luma"),
        ("fal/wan-v2.2-a14b", "fal"),
        ("minimax/hailuo-2.3", "minimax"),
        ("seedance/seedance-1-0-pro", "seedance"),
        ("local/tiny-wan", "local"),
        ("local/tiny-wan-i2v", "local"),
        ("local/tiny-ltx", "local"),
        ("local/tiny-ltx-i2v", "local"),
        ("google/gemini-omni-1.1-flash", "google"),
        ("fal/veo-3.1", "fal"),
        ("fal/kling-v2.1-master", "fal"),
        ("fal/ltx-video-13b-dev", "fal"),
        ("replicate/veo-3.1", "replicate"),
        ("luma/ray-3.2", "luma"),
        ("kling/kling-v3", "kling"),
        ("runway/gen4-turbo", "runway"),
        ("runway/veo-3.1", "runway"),
        ("runway/veo-3.1-fast", "runway"),
        ("seedance/seedance-2-0", "seedance"),
        ("seedance/seedance-2-0-fast", "seedance"),
        ("fal/kling-v3-standard", "fal"),
    ]:
        assert catalog[model_id].adapter == adapter
    assert 26 <= len(catalog) <= 34
    assert all(e.dialect in DIALECTS for e in catalog)


IMG, LAST = "data:image/png;base64,iVBO", "data:image/png;base64,iVBP"


def _request(model: str, mode: str, **fields: Any) -> GenerationRequest:
    frames = {"t2v": {}, "i2v": {"image": IMG}, "flf2v": {"image": IMG, "last_frame": LAST}}
    base: dict[str, Any] = {
        "request_id": "att_1",
        "model": model,
        "prompt": "a harbour at dawn",
        "duration_s": 8,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "audio": True,
    }
    return GenerationRequest(**base | frames[mode] | fields)


@pytest.mark.parametrize(
    ("model_id", "endpoints"),
    [
        (
            "fal/veo-3.1",
            {
                "t2v": "fal-ai/veo3.1",
                "i2v": "fal-ai/veo3.1/image-to-video",
                "flf2v": "fal-ai/veo3.1/first-last-frame-to-video",
            },
        ),
        (
            "fal/kling-v2.1-master",
            {
                "t2v": "fal-ai/kling-video/v2.1/master/text-to-video",
                "i2v": "fal-ai/kling-video/v2.1/master/image-to-video",
            },
        ),
        (
            "fal/ltx-video-13b-dev",
            {"t2v": "fal-ai/ltx-video-13b-dev", "i2v": "fal-ai/ltx-video-13b-dev/image-to-video"},
        ),
        (
            "fal/kling-v3-standard",
            {
                "t2v": "fal-ai/kling-video/v3/standard/text-to-video",
                "i2v": "fal-ai/kling-video/v3/standard/image-to-video",
                "flf2v": "fal-ai/kling-video/v3/standard/image-to-video",
            },
        ),
    ],
)
def test_fal_entries_are_family_ids_the_fal_adapter_maps(
    model_id: str, endpoints: dict[str, str]
) -> None:
    """Each mode the catalog offers has an endpoint, and its family's own input builder."""
    from adapters import fal

    entry = load_catalog()[model_id]
    assert set(entry.capabilities.modes) == set(endpoints)
    seconds = entry.capabilities.durations or entry.capabilities.duration_range or ()
    duration, fps = max(seconds), entry.capabilities.fps[0]
    for mode, endpoint in endpoints.items():
        request = _request(entry.vendor_model, mode, duration_s=duration, fps=fps)
        sent_to, body = fal.to_payload(request)
        assert sent_to == endpoint
        if model_id == "fal/veo-3.1":
            assert body["duration"] == "8s" and body["generate_audio"] is True
        elif model_id == "fal/kling-v2.1-master":
            assert body["duration"] == "10"
        elif model_id == "fal/kling-v3-standard":
            assert body["duration"] == "15" and body["generate_audio"] is True
            if mode == "flf2v":
                assert (body["start_image_url"], body["end_image_url"]) == (IMG, LAST)
        else:
            assert body["num_frames"] == 153  # 5 s at 30 fps, 8k + 1 frames


def test_omni_and_replicate_entries_reach_their_wire() -> None:
    from adapters import google, replicate

    catalog = load_catalog()
    omni = catalog["google/gemini-omni-1.1-flash"]
    assert google.wire_for(omni.vendor_model) == "interactions"
    path, body = google.to_payload(_request(omni.vendor_model, "i2v", duration_s=10))
    assert path == "/v1beta/interactions"
    assert body["model"] == "gemini-omni-1.1-flash"
    assert body["response_format"]["duration"] == "10s"
    veo = catalog["replicate/veo-3.1"]
    path, body = replicate.to_payload(_request(veo.vendor_model, "flf2v"))
    assert path == "v1/models/google/veo-3.1/predictions"
    assert body["input"]["generate_audio"] is True and body["input"]["last_frame"] == LAST


def test_luma_entries_reach_each_model_s_own_api() -> None:
    from adapters import luma

    catalog = load_catalog()
    ray2, ray32 = catalog["luma/ray-2"], catalog["luma/ray-3.2"]
    assert luma.wire_for(ray2.vendor_model) == "dream-machine"
    assert luma.wire_for(ray32.vendor_model) == "agents"
    caps = ray32.capabilities
    assert caps.durations == (5, 10) and caps.resolutions == ("540p", "720p", "1080p")
    body = luma.to_payload(_request(ray32.vendor_model, "flf2v", duration_s=10))
    assert body["model"] == "ray-3.2" and body["video"]["duration"] == "10s"
    assert body["video"]["start_frame"] == {"data": "iVBO", "media_type": "image/png"}
    assert "end_frame" in body["video"]


def test_kling_v3_sends_its_mode_duration_and_sound() -> None:
    from adapters import kling

    entry = load_catalog()["kling/kling-v3"]
    assert entry.capabilities.duration_range == (3, 15)
    for resolution, mode in (("720p", "std"), ("1080p", "pro")):
        assert resolution in entry.capabilities.resolutions
        path, body = kling.to_payload(
            _request(entry.vendor_model, "t2v", duration_s=15, resolution=resolution)
        )
        assert path == "text2video"
        assert (body["model_name"], body["mode"], body["duration"]) == ("kling-v3", mode, "15")
        assert body["sound"] == "on"
    path, body = kling.to_payload(_request(entry.vendor_model, "i2v", duration_s=3))
    assert path == "image2video" and body["image"] == "iVBO"  # no data: prefix for Kling


def test_runway_entries_map_to_documented_ratios_and_fields() -> None:
    """Every offered size is one of Runway's documented ratios (not the fallback w:h),
    and each model gets only the fields its create params take."""
    from adapters import runway
    from gateway.planning.normalize import dimensions

    catalog = load_catalog()
    for model_id in ("runway/gen4.5", "runway/gen4-turbo", "runway/veo-3.1", "runway/veo-3.1-fast"):
        entry = catalog[model_id]
        caps = entry.capabilities
        for mode in caps.modes:
            limits = caps.limits(mode)
            for res in limits.resolutions:
                for ratio in caps.limits(mode, res).aspect_ratios:
                    w, h = dimensions(ratio, res)
                    request = _request(
                        entry.vendor_model,
                        mode,
                        resolution=res,
                        aspect_ratio=ratio,
                        width=w,
                        height=h,
                        duration_s=max(caps.limits(mode, res).durations or (10,)),
                        negative_prompt="blur",
                    )
                    path, body = runway.to_payload(request)
                    assert (res, ratio) in runway._RATIOS, (model_id, res, ratio)
                    assert path == ("/v1/text_to_video" if mode == "t2v" else "/v1/image_to_video")
                    veo = entry.vendor_model.startswith("veo")
                    assert ("audio" in body) is veo and ("negativePrompt" in body) is veo
    turbo = catalog["runway/gen4-turbo"].capabilities
    assert turbo.modes == ("i2v",)  # /v1/text_to_video does not take gen4_turbo
    _, body = runway.to_payload(_request("veo3.1", "flf2v"))
    assert body["promptImage"] == [
        {"uri": IMG, "position": "first"},
        {"uri": LAST, "position": "last"},
    ]


def test_seedance_2_entries_send_audio_and_whole_seconds() -> None:
    from adapters import seedance

    catalog = load_catalog()
    for model_id, vendor_model in (
        ("seedance/seedance-2-0", "dreamina-seedance-2-0-260128"),
        ("seedance/seedance-2-0-fast", "dreamina-seedance-2-0-fast-260128"),
    ):
        entry = catalog[model_id]
        assert entry.vendor_model == vendor_model
        assert entry.capabilities.duration_range == (4, 15) and entry.capabilities.audio
        body = seedance.to_payload(_request(vendor_model, "i2v", duration_s=15, seed=3))
        assert (body["model"], body["duration"], body["resolution"]) == (vendor_model, 15, "720p")
        assert body["generate_audio"] is True and body["seed"] == 3


def test_new_entries_declare_audio_and_mark_estimated_prices() -> None:
    catalog = load_catalog()
    for model_id in ("google/gemini-omni-1.1-flash", "fal/veo-3.1", "replicate/veo-3.1"):
        assert catalog[model_id].capabilities.audio, model_id
        # no list price in the reference
        assert catalog[model_id].price.confirmed is False, model_id
    for model_id in ("fal/kling-v2.1-master", "fal/ltx-video-13b-dev"):
        assert not catalog[model_id].capabilities.audio, model_id
    # fal's own list price, for every mode offered
    assert catalog["fal/kling-v2.1-master"].price.confirmed is True
    assert catalog["fal/kling-v3-standard"].price.confirmed is True
    # fal lists one mode's price only: the other mode's is assumed
    for model_id in ("fal/wan-v2.2-a14b", "fal/ltx-video-13b-dev"):
        assert catalog[model_id].price.confirmed is False, model_id
    omni = catalog["google/gemini-omni-1.1-flash"].capabilities
    assert omni.duration_range == (3, 10) and omni.duration_step == 1
    assert catalog["fal/veo-3.1"].price.audio_per_second_micros == 200_000
    assert catalog["fal/ltx-video-13b-dev"].price.per_video_micros == 200_000


def test_tiny_models_render_sizes_their_families_accept() -> None:
    """Wan needs sides that are multiples of 16, LTX of 32: the catalog offers only those."""
    from gateway.planning.normalize import dimensions

    catalog = load_catalog()
    for model_id, multiple in [("local/tiny-wan", 16), ("local/tiny-ltx", 32)]:
        caps = catalog[model_id].capabilities
        for res in caps.resolutions:
            for ratio in caps.limits(caps.modes[0], res).aspect_ratios:
                w, h = dimensions(ratio, res)
                assert w % multiple == 0 and h % multiple == 0, (model_id, ratio, res)
                assert max(w, h) <= 256  # the tiny entries' max_long_side


def test_local_preview_is_free_and_broad() -> None:
    e = load_catalog()["local/preview"]
    caps = e.capabilities
    assert e.vendor_model == "preview" and e.draft
    assert caps.modes == ("t2v", "i2v")
    assert caps.duration_range == (0.5, 60) and caps.durations is None
    assert caps.resolutions == ("360p", "480p", "720p", "1080p")
    assert caps.aspect_ratios == ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
    assert caps.fps == (12, 24, 25, 30)
    assert caps.seed and caps.negative_prompt and caps.max_prompt_chars == 2000
    assert e.price.per_video_micros == 0 and not e.price.per_second_micros


def test_only_local_models_are_free_and_vendor_prices_are_positive() -> None:
    for e in load_catalog():
        prices = [*e.price.per_second_micros.values(), e.price.per_video_micros or 0]
        assert (max(prices) == 0) == (e.adapter == "local"), e.id


def test_prices_become_integer_micro_usd() -> None:
    catalog = load_catalog()
    assert catalog["runway/gen4.5"].price.per_second_micros == {"720p": 120_000}
    assert catalog["seedance/seedance-1-0-pro"].price.per_second_micros["480p"] == 24_300
    assert catalog["runway/gen4.5"].price.confirmed is False


def test_rules_narrow_limits_by_mode_and_resolution() -> None:
    catalog = load_catalog()
    veo = catalog["google/veo-3.1"].capabilities
    assert veo.limits("t2v").durations == (4, 6, 8)
    assert veo.limits("t2v", "720p").durations == (4, 6, 8)
    at_1080 = veo.limits("i2v", "1080p")
    assert at_1080.durations == (8,) and at_1080.durations_at == "1080p"
    runway = catalog["runway/gen4.5"].capabilities
    assert runway.limits("t2v").aspect_ratios == ("16:9", "9:16")
    assert len(runway.limits("i2v").aspect_ratios) == 6


def test_load_catalog_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(MINIMAL)
    catalog = load_catalog(path)
    assert catalog.ids == ["acme/one"]


def test_load_catalog_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"cannot read catalog .*nope\.toml"):
        load_catalog(tmp_path / "nope.toml")


def test_catalog_container_protocol() -> None:
    catalog = parse_catalog(MINIMAL + MINIMAL.replace("acme/one", "acme/two"))
    assert [e.id for e in catalog] == ["acme/one", "acme/two"]
    assert "acme/two" in catalog and "acme/three" not in catalog
    assert catalog.get("acme/three") is None
    with pytest.raises(KeyError):
        catalog["acme/three"]
    assert len(Catalog([])) == 0


# --- malformed catalogs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"0.10"', "0.10", "models[0] (acme/one): price.per_second_usd: write amounts as decimal"),
        ('"0.10"', '"0.0000001"', "finer than a micro-USD"),
        ('"0.10"', '"ten cents"', "not a decimal amount"),
        ('"0.10"', '"-1"', "negative"),
        ("durations = [5, 10]", "", "set exactly one of durations or duration_range"),
        ("durations = [5, 10]", "durations = [5]\nduration_range = [1, 5]", "exactly one"),
        ("durations = [5, 10]", "duration_range = [5, 2]", "min < max"),
        ("durations = [5, 10]", "durations = []", "durations must not be empty"),
        ('dialect = "plain"', 'dialect = "poetry"', "unknown dialect 'poetry'"),
        ('"720p", "1080p"]', '"720", "1080p"]', "capabilities.resolutions.0"),
        ('["16:9"]', '["wide"]', "capabilities.aspect_ratios.0"),
        ('modes = ["t2v"]', 'modes = ["v2v"]', "capabilities.modes.0"),
        ("max_prompt_chars = 500", "", "capabilities.max_prompt_chars: Field required"),
        (', "1080p" = "0.25"', "", "has no price for 1080p"),
        ("fps = [24]", "fps = [24]\nresolution = [1]", "capabilities.resolution: Extra inputs"),
        ('id = "acme/one"', 'id = "no-slash"', "models[0] (no-slash): id"),
        ("quality = 5", "quality = 11", "quality"),
    ],
)
def test_malformed_catalog_names_model_and_key(old: str, new: str, expected: str) -> None:
    text = MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, "ops.toml")
    assert str(err.value).startswith("ops.toml: ")
    assert expected in str(err.value)


def test_price_must_exist() -> None:
    text = MINIMAL.replace('per_second_usd = { "720p" = "0.10", "1080p" = "0.25" }', "")
    with pytest.raises(CatalogError, match="price needs per_second_usd or per_video_usd"):
        parse_catalog(text)


def test_rule_errors() -> None:
    rule = '[[models.capabilities.rules]]\nwhen = { resolution = ["4k"] }\ndurations = [8]\n'
    with pytest.raises(CatalogError, match="rule names resolutions not offered: 4k"):
        parse_catalog(MINIMAL + rule)
    no_when = MINIMAL.replace(
        "[models.price]", "[[models.capabilities.rules]]\nwhen = {}\nfps = [30]\n[models.price]"
    )
    with pytest.raises(CatalogError, match=r"a rule needs when\.mode or when\.resolution"):
        parse_catalog(no_when)


def test_every_problem_is_reported_at_once() -> None:
    text = (
        MINIMAL.replace('dialect = "plain"', 'dialect = "poetry"')
        + MINIMAL.replace("quality = 5", "quality = -1").replace("acme/one", "acme/two")
        + MINIMAL.replace("acme/one", "acme/two")
    )
    with pytest.raises(CatalogError) as err:
        parse_catalog(text)
    msg = str(err.value)
    assert "models[0] (acme/one): dialect" in msg
    assert "models[1] (acme/two): quality" in msg
    assert "models[2] (acme/two): duplicate id" not in msg  # models[1] was invalid
    with pytest.raises(CatalogError, match=r"models\[1\] \(acme/one\): duplicate id"):
        parse_catalog(MINIMAL + MINIMAL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[models]\n", "invalid TOML"),
        ("", "no models"),
        ("models = 3", "no models"),
        ("version = 2\n" + MINIMAL, "unknown top-level key 'version'"),
        ("models = [1]", "models[0] (?)"),
    ],
)
def test_malformed_file_shape(text: str, expected: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(text)
    assert expected in str(err.value)


# --- money and wire -------------------------------------------------------------------


def test_micros_and_usd() -> None:
    assert micros("0.4") == 400_000
    assert micros(Decimal("1.000001")) == 1_000_001
    assert micros(3) == 3_000_000
    assert usd(840_000) == Decimal("0.84")
    assert usd(0) == 0
    with pytest.raises(ValueError, match="decimal strings"):
        micros(0.1)  # type: ignore[arg-type]


def test_resolution_px() -> None:
    assert [resolution_px(r) for r in ("360p", "768p", "1080p", "4k")] == [360, 768, 1080, 2160]


def test_to_wire_exposes_capabilities_and_prices_as_decimal_strings() -> None:
    entry = load_catalog()["google/veo-3.1"]
    model = to_wire(entry, configured=False, reason="backend 'google' not configured")
    body = json.loads(model.model_dump_json())
    assert body["id"] == "google/veo-3.1" and body["adapter"] == "google"
    assert body["vendor_model"] == "veo-3.1-generate-preview"
    assert body["capabilities"]["durations"] == [4, 6, 8]
    assert body["capabilities"]["duration_range"] is None
    assert body["capabilities"]["modes"] == ["t2v", "i2v", "flf2v"]
    assert body["price"]["per_second_usd"] == {"720p": "0.4", "1080p": "0.4", "4k": "0.4"}
    assert body["price"]["confirmed"] is False
    assert (body["configured"], body["reason"]) == (False, "backend 'google' not configured")


def test_to_wire_range_and_configured_drops_reason() -> None:
    model = to_wire(load_catalog()["local/preview"], configured=True, reason="ignored")
    assert model.capabilities.duration_range == (0.5, 60)
    assert model.capabilities.durations is None
    assert model.price.per_video_usd == 0
    assert model.configured and model.reason is None

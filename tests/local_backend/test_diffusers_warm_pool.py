"""The warm pool on its own: load once, evict least recently used, make room first."""

from __future__ import annotations

from collections.abc import Callable

from local_backend.warm import WarmPool


def loader(log: list[str], key: str, resident: Callable[[], list[str]]) -> Callable[[], str]:
    def load() -> str:
        log.append(f"load {key} beside {resident()}")
        return key

    return load


def sizes(key: str) -> int:
    return {"a": 40, "b": 40, "c": 60, "huge": 500}[key]


def test_hits_do_not_reload_and_misses_evict_the_least_recently_used() -> None:
    released: list[int] = []
    pool = WarmPool(budget_bytes=100, release=lambda: released.append(1))
    log: list[str] = []

    def get(key: str) -> str:
        return pool.get(key, loader(log, key, lambda: pool.stats()["warm"]), sizes)

    assert [get(k) for k in ("a", "b", "a", "c")] == ["a", "b", "a", "c"]
    stats = pool.stats()
    assert stats["loads"] == {"a": 1, "b": 1, "c": 1}
    assert stats["warm"] == ["a", "c"] and stats["evictions"] == {"b": 1}  # b was the LRU
    assert stats["warm_bytes"] == 100 and released == [1]


def test_the_estimate_makes_room_before_loading() -> None:
    pool = WarmPool(budget_bytes=100, release=lambda: None)
    log: list[str] = []
    for key in ("a", "b"):
        pool.get(key, loader(log, key, lambda: pool.stats()["warm"]), sizes)
    pool.get("c", loader(log, "c", lambda: pool.stats()["warm"]), sizes, estimate=lambda: 60)
    assert log[-1] == "load c beside ['b']"  # a left before c was read, not after


def test_a_model_bigger_than_the_budget_still_loads_alone() -> None:
    pool = WarmPool(budget_bytes=100, release=lambda: None)
    log: list[str] = []
    for key in ("a", "huge"):
        pool.get(key, loader(log, key, lambda: pool.stats()["warm"]), sizes)
    assert pool.stats()["warm"] == ["huge"] and pool.stats()["evictions"] == {"a": 1}


def test_no_budget_keeps_everything() -> None:
    pool = WarmPool(release=lambda: None)
    for key in ("a", "b", "c", "huge"):
        pool.get(key, lambda key=key: key, sizes)  # type: ignore[misc]
    assert pool.stats()["warm"] == ["a", "b", "c", "huge"] and pool.stats()["evictions"] == {}


def test_a_spare_is_handed_out_once_and_goes_with_its_model() -> None:
    pool = WarmPool(budget_bytes=100, release=lambda: None)
    pool.put_spare("a", "spare-a")  # not warm: refused, it would pin unloaded weights
    assert pool.take_spare("a") is None
    pool.get("a", lambda: "a", sizes)
    assert pool.peek("a") == "a" and pool.peek("b") is None
    pool.put_spare("a", "spare-a")
    assert pool.has_spare("a")
    assert (pool.take_spare("a"), pool.take_spare("a")) == ("spare-a", None)
    pool.put_spare("a", "spare-a")
    for key in ("b", "c"):  # c evicts a, and its spare with it
        pool.get(key, lambda key=key: key, sizes)  # type: ignore[misc]
    assert "a" not in pool.stats()["warm"] and not pool.has_spare("a")

"""The README's model table is the catalog's: regenerate it when the catalog changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalog import load_catalog
from gateway.catalog_docs import END, START, models_markdown, update_readme

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_matches_the_catalog() -> None:
    block = README.read_text().partition(START)[2].partition(END)[0].strip()
    assert block == models_markdown(load_catalog()), (
        "README.md's model table is stale: run python -m gateway.catalog_docs"
    )


def test_every_catalog_model_has_a_row() -> None:
    table = models_markdown(load_catalog())
    for entry in load_catalog():
        assert f"| `{entry.id}` | {entry.adapter} |" in table


def test_update_rewrites_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{START}\nold\n{END}\n\nafter\n")
    assert update_readme(readme, load_catalog())
    text = readme.read_text()
    assert text.startswith("# title\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert not update_readme(readme, load_catalog())  # idempotent
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="catalog:start"):
        update_readme(readme, load_catalog())

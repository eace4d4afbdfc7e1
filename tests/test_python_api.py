"""The public Python API: every example in docs/python.md runs, and the frames have their shape."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

import shelfwise
from base.errors import ShelfwiseError
from shelfwise.serving import TitleNotFound, Warehouse

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_every_example_in_docs_python_md_runs(published_warehouse: Path, capsys) -> None:
    blocks = examples()
    assert len(blocks) >= 6
    namespace: dict = {}
    for block in blocks:
        code = block.replace('"var/shelfwise.duckdb"', repr(str(published_warehouse)))
        exec(compile(code, str(DOC), "exec"), namespace)  # the page's own words, in order
    assert isinstance(namespace["wh"], Warehouse)
    assert capsys.readouterr().out.strip().startswith("["), "the TitleNotFound example printed"


@pytest.fixture(scope="module")
def wh(published_warehouse: Path) -> Warehouse:
    return shelfwise.open(published_warehouse)


def test_similar_is_a_ranked_frame_without_the_book_itself(wh: Warehouse) -> None:
    frame = wh.similar("The Da Vinci Code", model="als", n=5)
    assert frame.columns == ["rank", "book_key", "title", "authors", "score"]
    assert frame["rank"].to_list() == [1, 2, 3, 4, 5]
    assert frame["score"].is_sorted(descending=True)
    me = wh.book("The Da Vinci Code", model="als")["book_key"][0]
    assert me not in frame["book_key"].to_list()


def test_recommend_for_a_user_never_lists_a_rated_book(wh: Warehouse) -> None:
    user = wh.sql("select user_key from matrix.users order by n_ratings desc limit 1").item()
    recs = wh.recommend(user=user, model="mf", n=10)
    rated = wh.sql(f"select book_key from core.ratings where user_key = {int(user)}")
    assert len(recs) == 10 and not set(recs["book_key"]) & set(rated["book_key"])
    assert recs.schema["because"] == pl.List(pl.String)


def test_recommend_needs_exactly_one_of_user_and_books(wh: Warehouse) -> None:
    with pytest.raises(ShelfwiseError, match="either user"):
        wh.recommend()
    with pytest.raises(ShelfwiseError, match="either user"):
        wh.recommend(user=1, books=["Inferno"])


def test_an_unknown_title_and_model_are_one_line_errors(wh: Warehouse) -> None:
    with pytest.raises(TitleNotFound) as missing:
        wh.similar("Zzyzx Quuxbar Nonexistent")
    assert missing.value.candidates and "\n" not in str(missing.value)
    with pytest.raises(ShelfwiseError, match="unknown model kind 'nope'"):
        wh.similar("Inferno", model="nope")
    with pytest.raises(ShelfwiseError, match="has no book vectors"):
        wh.similar("Inferno", model="baseline")


def test_sql_runs_queries_only_and_leaves_the_file_unchanged(
    wh: Warehouse, published_warehouse: Path
) -> None:
    before = published_warehouse.read_bytes()
    with pytest.raises(ShelfwiseError, match="only queries run here"):
        wh.sql("delete from models.runs")
    assert wh.sql("select 1 as one").to_dicts() == [{"one": 1}]
    assert published_warehouse.read_bytes() == before


def test_open_never_creates_a_warehouse(tmp_path: Path) -> None:
    with pytest.raises(ShelfwiseError, match="no warehouse at"):
        shelfwise.open(tmp_path / "missing.duckdb")
    assert not (tmp_path / "missing.duckdb").exists()


def test_metrics_cover_every_evaluated_kind(wh: Warehouse) -> None:
    metrics = wh.metrics()
    assert {"mf", "als", "popularity"} <= set(metrics["kind"])
    assert (metrics["ci_low"] <= metrics["value"]).all()


def test_without_a_model_the_best_published_kind_for_the_task_answers(
    wh: Warehouse, tmp_path: Path
) -> None:
    from base.registry import PREFERRED

    published = set(wh.models()["kind"])
    for task, order in PREFERRED.items():
        assert wh.default_model(task) == next(k for k in order if k in published), task
    user = wh.sql("select user_key from matrix.users order by n_ratings desc limit 1").item()
    ranking = wh.default_model("ranking")
    assert wh.recommend(user=user, n=5).equals(wh.recommend(user=user, model=ranking, n=5))
    book = wh.sql("select book_key from matrix.books order by n_ratings desc limit 1").item()
    ratings = wh.default_model("ratings")
    assert wh.predict(user=user, book=book) == wh.predict(user=user, book=book, model=ratings)
    assert wh.similar("Inferno", n=3).equals(
        wh.similar("Inferno", model=wh.default_model("neighbours"), n=3)
    )


def test_a_warehouse_without_any_model_for_a_task_says_so(tmp_path: Path) -> None:
    from helpers import SMALL, build_warehouse
    from test_queries import write_goodbooks

    from base.config import TransformConfig

    db = build_warehouse(
        tmp_path / "w.duckdb",
        write_goodbooks(tmp_path / "goodbooks"),
        TransformConfig(min_user_ratings=1, min_book_ratings=1),
        fits={"baseline": SMALL.get("baseline", {})},
    )
    wh = shelfwise.open(db)
    assert wh.default_model("ratings") == "baseline"
    with pytest.raises(ShelfwiseError, match="no published model for neighbours"):
        wh.similar("Inferno")

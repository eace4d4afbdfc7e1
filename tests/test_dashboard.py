"""The dashboard without a browser: queries, figures, settings, pages through the Flask app."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
import pytest
from helpers import PUBLISHED_TRANSFORM

from dashboards import figures, queries
from dashboards.app import DashboardSettings, create_app
from dashboards.components import book_options, fmt_params
from shelfwise import serving
from warehouse.db import connect, open_for_reading, writer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "goodbooks"
INJECTION = "'; DROP TABLE core.books; --"
PAGES = ("/", "/embeddings", "/biases", "/neighbours", "/users", "/models", "/compare", "/for-you")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def warehouse(published_warehouse: Path) -> Path:
    """The shared published warehouse (tests/conftest.py): every kind, evaluated; read only."""
    return published_warehouse


@pytest.fixture(scope="module")
def app(warehouse: Path):
    return create_app(DashboardSettings(db_path=warehouse))


@pytest.fixture
def con(warehouse: Path) -> Iterator[Any]:
    with queries.reading(warehouse) as c:
        yield c


class DashClient:
    """Calls an app's layouts and callbacks as the browser does, through its Flask test client."""

    def __init__(self, app) -> None:
        self.client = app.server.test_client()
        self.deps = self.client.get("/_dash-dependencies").get_json()

    def call(self, output: str, values: dict[str, Any], changed: list[str] | None = None) -> dict:
        """POST one callback whose output string contains ``output``; ``values`` maps "id.prop" to a
        value.

        ``changed`` lists the inputs that changed (default: every input given a value)."""
        dep = next(
            d for d in self.deps if output in d["output"] and not d.get("clientside_function")
        )
        outs = [o.rsplit(".", 1) for o in dep["output"].strip(".").split("...")]
        payload = {
            "output": dep["output"],
            "outputs": [{"id": i, "property": p} for i, p in outs]
            if len(outs) > 1
            else {"id": outs[0][0], "property": outs[0][1]},
            "inputs": [
                {**d, "value": values.get(f"{d['id']}.{d['property']}")} for d in dep["inputs"]
            ],
            "state": [
                {**d, "value": values.get(f"{d['id']}.{d['property']}")} for d in dep["state"]
            ],
            "changedPropIds": changed
            if changed is not None
            else [
                k for k in values if any(f"{d['id']}.{d['property']}" == k for d in dep["inputs"])
            ],
        }
        response = self.client.post("/_dash-update-component", json=payload)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return response.get_json()["response"]

    def render(self, path: str, search: str = "") -> str:
        """The page layout the router returns for ``path``, as JSON text."""
        out = self.call(
            "_pages_content.children",
            {"_pages_location.pathname": path, "_pages_location.search": search},
        )
        return json.dumps(out["_pages_content"]["children"])


# ----------------------------------------------------------------------------- settings and app


def test_settings_are_frozen_with_safe_defaults(tmp_path: Path) -> None:
    s = DashboardSettings(db_path=str(tmp_path / "w.duckdb"))
    assert s.db_path == tmp_path / "w.duckdb" and isinstance(s.db_path, Path)
    assert s.debug is False and s.max_points == 20_000 and s.covers is True
    assert s.request_seconds == 10.0 and s.max_body_bytes == 1_000_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.debug = True  # type: ignore[misc]
    with pytest.raises(ValueError):
        DashboardSettings(db_path=tmp_path, max_points=10)
    with pytest.raises(ValueError):
        DashboardSettings(db_path=tmp_path, request_seconds=0)


def test_every_page_renders_from_the_warehouse(app) -> None:
    client = DashClient(app)
    for path in PAGES:
        assert client.client.get(path).status_code == 200
    ids = {
        "/": "ovw-page",
        "/embeddings": "emb-page",
        "/biases": "bia-page",
        "/neighbours": "nbr-page",
        "/users": "usr-page",
        "/models": "mdl-page",
        "/compare": "cmp-page",
        "/for-you": "you-page",
    }
    for path, page_id in ids.items():
        assert f'"{page_id}"' in client.render(path), path
    assert '"notfound-page"' in client.render("/no-such-page")


def test_a_book_in_the_url_that_is_not_in_the_warehouse_gets_a_notice(app, con) -> None:
    client = DashClient(app)
    known = con.execute("select min(book_key) from matrix.books").fetchall()[0][0]
    for path in ("/neighbours", "/embeddings"):
        for bad in ("abc", "999999999", "The%20Da%20Vinci%20Code"):
            assert "No book " in client.render(path, f"?book={bad}"), (path, bad)
        assert "No book " not in client.render(path, f"?book={known}")
        assert "No book " not in client.render(path)


def test_embeddings_panel_says_a_filtered_out_book_is_not_in_the_model(app, con) -> None:
    client = DashClient(app)
    run = queries.latest_runs(con, ("mf",))["mf"]
    left_out = con.execute(
        "select min(book_key) from core.books anti join matrix.books using (book_key)"
    ).fetchall()[0][0]
    kept = con.execute("select min(book_key) from matrix.books").fetchall()[0][0]

    text = json.dumps(
        client.call("emb-detail.children", {"emb-selected.data": left_out, "emb-run.value": run})
    )
    assert "not in this model" in text and "Nearest" not in text
    text = json.dumps(
        client.call("emb-detail.children", {"emb-selected.data": kept, "emb-run.value": run})
    )
    assert "Nearest" in text and "not in this model" not in text


def test_a_user_the_filters_left_out_still_shows_their_ratings_and_why(app, con) -> None:
    client = DashClient(app)
    left_out, n = con.execute(
        """select user_key, count(*) from core.ratings anti join matrix.users using (user_key)
           group by user_key order by user_key limit 1"""
    ).fetchall()[0]

    out = client.call("usr-rated.children", {"usr-user.value": left_out, "usr-kind.value": "mf"})
    rated, recs = json.dumps(out["usr-rated"]["children"]), json.dumps(out["usr-recs"]["children"])
    assert f"User {left_out} rated {n} books" in rated
    assert "too few to pass the matrix's filters" in recs
    out = client.call("usr-rated.children", {"usr-user.value": 987654321, "usr-kind.value": "mf"})
    assert "No user 987654321 has ratings" in json.dumps(out["usr-recs"]["children"])


def test_neighbour_lists_show_how_many_ratings_each_neighbour_has(app, con) -> None:
    client = DashClient(app)
    book = con.execute(
        "select book_key from matrix.books order by n_ratings desc limit 1"
    ).fetchall()[0][0]
    run = queries.latest_runs(con, ("als",))["als"]
    first = queries.neighbours(con, run, book, 1).row(0, named=True)

    text = json.dumps(client.call("nbr-columns.children", {"nbr-book.value": book}))

    assert first["n_ratings"] > 0 and f"{first['n_ratings']:,} ratings" in text


def test_missing_and_empty_warehouses_show_how_to_build_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    connect(empty).close()  # the fixed tables, nothing loaded
    for db in (tmp_path / "missing.duckdb", empty):
        client = DashClient(create_app(DashboardSettings(db_path=db)))
        for path in PAGES:
            text = client.render(path)
            assert '"setup-page"' in text, (db, path)
            assert (
                "shelfwise load goodbooks" in text
                and "shelfwise transform" in text
                and "shelfwise fit mf" in text
            )
            assert "Traceback" not in text
        # The callbacks of a page answer with a message, not a 500, when the warehouse is absent.
        out = client.call("ovw-kpis.children", {"app-data-version.data": None})
        assert "warehouse" in json.dumps(out["ovw-kpis"]).lower()


def test_two_apps_in_one_process_keep_their_own_warehouse_and_callbacks(
    warehouse: Path, tmp_path: Path
) -> None:
    built = create_app(DashboardSettings(db_path=warehouse))
    missing = create_app(
        DashboardSettings(db_path=tmp_path / "none.duckdb")
    )  # created before either serves
    a, b = DashClient(built), DashClient(missing)
    assert len(a.deps) == len(b.deps) > 10
    assert '"ovw-page"' in a.render("/")
    assert '"setup-page"' in b.render("/")
    assert '"ovw-page"' in a.render("/")


def test_header_status_names_the_latest_run(app, warehouse: Path) -> None:
    client = DashClient(app)
    out = client.call(
        "app-data-version.data", {"app-poll.n_intervals": 0, "app-data-version.data": None}
    )
    with queries.reading(warehouse) as c:
        latest = queries.header_summary(c)
    assert f"latest run #{latest['run_id']}" in json.dumps(out["app-status"])
    assert out["app-data-version"]["data"] == queries.data_version(warehouse)


def test_choosing_a_book_wins_over_the_search_text_cleared_with_it(app, con) -> None:
    client = DashClient(app)
    run = queries.latest_runs(con, ("mf",))["mf"]
    key = con.execute(
        "select book_key from models.run_books where run_id = ? limit 1", [run]
    ).fetchall()[0][0]
    values = {"emb-search.search_value": "", "emb-search.value": key, "emb-run.value": run}
    out = client.call(
        "emb-selected.data", values, changed=["emb-search.search_value", "emb-search.value"]
    )
    assert out["emb-selected"]["data"] == key and out["emb-search"]["value"] == key
    typed = {"emb-search.search_value": "the", "emb-search.value": key, "emb-run.value": run}
    out = client.call("emb-selected.data", typed, changed=["emb-search.search_value"])
    assert "emb-selected" not in out  # typing only offers options
    labels = [o["label"].lower() for o in out["emb-search"]["options"]]
    assert labels and all("the" in label for label in labels[1:])
    clicked = {"emb-map.clickData": {"points": [{"customdata": key}]}, "emb-run.value": run}
    out = client.call("emb-selected.data", clicked, changed=["emb-map.clickData"])
    assert out["emb-selected"]["data"] == key


# ----------------------------------------------------------------------------- safety


def test_a_sql_injection_title_is_just_a_title_that_matches_nothing(
    app, con, warehouse: Path
) -> None:
    runs = list(queries.latest_runs(con, queries.MAP_KINDS).values())
    books_before = con.execute("select count(*) from core.books").fetchall()[0][0]
    assert queries.search_books(con, INJECTION, runs, 20).is_empty()
    client = DashClient(app)
    out = client.call(
        "nbr-book.options", {"nbr-book.search_value": INJECTION, "nbr-book.value": None}
    )
    assert out["nbr-book"]["options"] == []
    out = client.call(
        "usr-user.options",
        {"usr-user.search_value": INJECTION, "usr-kind.value": "mf", "usr-random.n_clicks": 0},
    )
    assert isinstance(out["usr-user"]["options"], list)
    with open_for_reading(warehouse) as fresh:
        assert fresh.execute("select count(*) from core.books").fetchall()[0][0] == books_before
    # Quotes and LIKE wildcards are literal characters too.
    for literal in ("%", "_", "o'"):
        found = queries.search_books(con, literal, runs, 50)
        assert all(
            literal in f"{t} {a}".lower()
            for t, a in zip(found["title"], found["authors"], strict=True)
        )


def test_reading_retries_a_locked_warehouse_then_says_it_is_busy(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = queries.open_for_reading
    calls = {"n": 0}

    def flaky(db_path):
        calls["n"] += 1
        if calls["n"] < 3:
            raise queries.ShelfwiseError("cannot open warehouse: Could not set lock on file")
        return real(db_path)

    monkeypatch.setattr(queries, "open_for_reading", flaky)
    with queries.reading(warehouse, pause=0.001) as c:
        assert c.execute("select 1").fetchall() == [(1,)]
    assert calls["n"] == 3

    def locked(db_path):
        raise queries.ShelfwiseError("cannot open warehouse: Could not set lock on file")

    monkeypatch.setattr(queries, "open_for_reading", locked)
    with (
        pytest.raises(queries.WarehouseUnavailable) as info,
        queries.reading(warehouse, pause=0.001),
    ):
        pass
    assert not info.value.missing


def test_data_version_follows_the_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert queries.data_version(db) is None
    with writer(db):
        pass
    first = queries.data_version(db)
    assert first and first.startswith("w.duckdb.read:")
    with writer(db) as c:
        c.execute("create table main.touch as select 1 as x")
    assert queries.data_version(db) != first


# ----------------------------------------------------------------------------- queries


def test_user_recommendations_are_unrated_books_explained_by_rated_ones(con) -> None:
    user = con.execute(
        "select user_key from matrix.users order by n_ratings desc limit 1"
    ).fetchall()[0][0]
    rated = {
        r[0]
        for r in con.execute(
            "select book_key from core.ratings where user_key = ? and rating is not null", [user]
        ).fetchall()
    }
    titles = {
        r[0]
        for r in con.execute(
            """select b.title from core.ratings r join core.books b using (book_key)
               where r.user_key = ?""",
            [user],
        ).fetchall()
    }
    for kind in queries.MAP_KINDS:
        recs = serving.explain_for_user(con, kind, user, 10)
        assert len(recs) == 10
        assert not rated & {r.book.book_key for r in recs}, kind
        for r in recs:
            assert r.because and all(title in titles and rating >= 4 for title, rating in r.because)


def test_favourite_recommendations_never_return_a_favourite(con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    favourites = [
        r[0]
        for r in con.execute(
            """select rb.book_key from models.run_books rb where run_id = ?
               order by book_idx limit 3""",
            [run],
        ).fetchall()
    ]
    found, recs = serving.recommend_for_keys(con, run, favourites, 10)
    assert {b.book_key for b in found} == set(favourites)
    assert len(recs) == 10 and not set(favourites) & {r.book.book_key for r in recs}
    assert all(r.because[0][0] in {b.title for b in found} for r in recs)
    assert serving.recommend_for_keys(con, run, [-1], 10) == ([], [])


def test_projection_points_sample_deterministically_but_never_drop_highlights(con) -> None:
    run = queries.latest_runs(con, ("svd",))["svd"]
    everything, total = queries.projection_points(con, run, "pca", "tag", 50_000)
    assert everything.height == total > 200
    sample, total2 = queries.projection_points(con, run, "pca", "year", 100)
    again, _ = queries.projection_points(con, run, "pca", "rating", 100)
    assert total2 == total and sample.height == 100
    assert sample["book_key"].to_list() == again["book_key"].to_list()
    outside = next(
        k for k in everything["book_key"].to_list() if k not in set(sample["book_key"].to_list())
    )
    highlighted = queries.points_of_books(con, run, "pca", [outside])
    assert highlighted["book_key"].to_list() == [outside]
    with pytest.raises(KeyError):
        queries.projection_points(con, run, "pca", "title; drop table core.books", 100)


def test_activity_counts_add_up_to_the_users_books_and_ratings(con) -> None:
    users, books, ratings = con.execute(
        "select count(distinct user_key), count(distinct book_key), count(rating) from core.ratings"
    ).fetchall()[0]
    per_user, per_book = queries.activity(con, "user"), queries.activity(con, "book")
    assert per_user["count"].sum() == users and per_book["count"].sum() == books
    assert (
        (per_user["n"] * per_user["count"]).sum()
        == ratings
        == (per_book["n"] * per_book["count"]).sum()
    )
    transform = queries.latest_transform(con)
    assert transform["users"] == con.execute("select count(*) from matrix.users").fetchall()[0][0]
    assert (
        transform["ratings"] == con.execute("select count(*) from matrix.ratings").fetchall()[0][0]
    )
    assert transform["params"]["min_book_ratings"] == PUBLISHED_TRANSFORM.min_book_ratings


def test_neighbours_come_from_the_published_run(con) -> None:
    run = queries.latest_runs(con, ("als",))["als"]
    key = con.execute(
        "select book_key from models.run_books where run_id = ? limit 1", [run]
    ).fetchall()[0][0]
    near = queries.neighbours(con, run, key, 5)
    assert near["rank"].to_list() == [1, 2, 3, 4, 5]
    assert key not in near["book_key"].to_list()
    assert near["score"].to_list() == sorted(near["score"].to_list(), reverse=True)
    assert queries.neighbours(con, run, -42, 5).is_empty()


# ----------------------------------------------------------------------------- figures


def _titled(fig: go.Figure) -> bool:
    return bool(fig.layout.title.text)


def test_header_of_a_warehouse_without_models_says_so_without_logging_an_error(
    tmp_path: Path, caplog
) -> None:
    import duckdb

    from dashboards.app import status_text

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()

    text = status_text(DashboardSettings(db_path=empty))

    assert text[-1] == "no published model yet"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_good_and_bad_books_never_overlap_when_few_qualify(con) -> None:
    run = queries.latest_runs(con, ("baseline",))["baseline"]
    # The highest minimum that still leaves some books: fewer than 2 x 15 qualify.
    n_ratings = sorted(r[0] for r in con.execute("select n_ratings from matrix.books").fetchall())
    minimum = n_ratings[-7]
    qualified = queries.count_bias_books(con, run, minimum)

    top = queries.extreme_biases(con, run, minimum, 15, highest=True)
    bottom = queries.extreme_biases(con, run, minimum, 15, highest=False)

    assert 7 <= qualified < 30
    assert (top.height, bottom.height) == ((qualified + 1) // 2, qualified // 2)
    assert not set(top["book_key"]) & set(bottom["book_key"])
    assert top["bias"].min() >= bottom["bias"].max()


def test_map_hover_names_the_value_each_point_is_coloured_by(con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    for colour, pattern in (
        ("year", r"^-?\d{1,4}$"),
        ("bias", r"^[+-]\d\.\d{3}$"),
        ("popularity", r"^[\d,]+ ratings$"),
    ):
        points, total = queries.projection_points(con, run, "pca", colour, 50_000)
        fig = figures.embedding_map(points, colour, total=total, title="map")[0]
        [coloured] = [t for t in fig.data if t.marker.colorbar and t.marker.colorbar.title.text]
        assert "%{text}" in coloured.hovertemplate, colour
        assert all(re.match(pattern, t) for t in coloured.text), (colour, coloured.text[:3])
    points, total = queries.projection_points(con, run, "pca", "tag", 50_000)
    data = figures.embedding_map(points, "tag", total=total, title="map")[0].data
    tagged = [t for t in data if "top tag: %{fullData.name}" in (t.hovertemplate or "")]
    # all but the four overlay traces (selection, matches, neighbours, chosen book)
    assert len(tagged) == len(data) - len(figures.OVERLAYS) == len(data) - 4


def test_long_tail_axes_tick_whole_decades_only(con) -> None:
    fig = figures.activity_figure(
        queries.activity(con, "book").filter(pl.col("n") > 0), per="book", threshold=10
    )
    assert (
        fig.layout.xaxis.type,
        fig.layout.xaxis.dtick,
        fig.layout.yaxis.type,
        fig.layout.yaxis.dtick,
    ) == ("log", 1, "log", 1)


def test_every_figure_has_a_title_and_axis_labels(con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    points, total = queries.projection_points(con, run, "pca", "tag", 50_000)
    built = [
        figures.rating_distribution(queries.rating_distribution(con)),
        figures.activity_figure(
            queries.activity(con, "user").filter(pl.col("n") > 0), per="user", threshold=5
        ),
        figures.activity_figure(
            queries.activity(con, "book").filter(pl.col("n") > 0), per="book", threshold=10
        ),
        figures.embedding_map(points, "tag", total=total, title="map")[0],
        figures.bias_bars(queries.extreme_biases(con, run, 0, 15, highest=True), highest=True),
        figures.bias_scatter(queries.bias_points(con, run, 0, 1000)),
        figures.user_bias_histogram(queries.user_bias_histogram(con, run)),
    ]
    for fig in built:
        assert _titled(fig)
        assert fig.layout.xaxis.title.text, fig.layout.title.text
        if not fig.layout.title.text.startswith("Generally"):
            assert fig.layout.yaxis.title.text, fig.layout.title.text
    metrics = figures.metrics_figure(queries.metrics(con).filter(pl.col("split") == "test"))
    assert _titled(metrics) and all(
        metrics.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in range(1, 7)
    )
    assert _titled(figures.message_figure("nothing", "Empty"))


def test_embedding_map_puts_the_four_overlay_traces_last() -> None:
    points = pl.DataFrame(
        {
            "book_key": [1, 2, 3, 4],
            "x": [0.0, 1.0, 2.0, 3.0],
            "y": [0.0, 1.0, 0.0, 1.0],
            "title": ["A", "B", "C <script>", None],
            "authors": ["a", "b", "c", None],
            "colour": [1990, None, 2001, 1850],
        }
    )
    fig, at = figures.embedding_map(
        points, "year", total=10, title="t", selected=points.head(1), neighbours=points.slice(1, 2)
    )
    assert at == len(fig.data) - 4
    assert [t.name for t in fig.data[at:]] == [
        "selected (0)",
        "matches (0)",
        "neighbours",
        "chosen book",
    ]
    assert list(fig.data[at + 3].customdata) == [1] and list(fig.data[at + 2].customdata) == [2, 3]
    assert fig.data[0].name == "unknown" and list(fig.data[0].customdata) == [
        2
    ]  # no year: grey, not dropped
    assert "4 of 10 books (sampled by popularity)" in fig.layout.title.text
    # dcc.Graph copies a clicked point's customdata from the figure as sent: a plain list.
    sent = json.loads(fig.to_json())
    assert [t.get("customdata", []) for t in sent["data"][at:]] == [[], [], [2, 3], [1]]
    assert all(
        "<script>" not in h
        for t in fig.data
        for h in (t.hovertext if t.hovertext is not None else [])
    )
    tags = points.with_columns(colour=pl.Series(["fantasy", "fantasy", None, "poetry"]))
    fig, at = figures.embedding_map(tags, "tag", total=4, title="t")
    assert [t.name for t in fig.data[:at]] == ["fantasy", "poetry", "no tags"]
    assert [len(t.x) for t in fig.data[at:]] == [0, 0, 0, 0]


def test_params_are_shown_as_pairs_never_json() -> None:
    text = fmt_params('{"kind": "mf", "factors": 16, "reg": 0.2, "remove_biases": true}')
    assert text == "factors=16 · reg=0.2 · remove_biases=yes"
    assert "{" not in text and "kind" not in text
    options = book_options(
        pl.DataFrame(
            {
                "book_key": [2, 1],
                "title": ["B", "A"],
                "authors": ["x", None],
                "publication_year": [2000, None],
            }
        ),
        pl.DataFrame({"book_key": [1], "title": ["A"], "authors": [None]}),
    )
    assert options == [{"label": "A", "value": 1}, {"label": "B — x (2000)", "value": 2}]

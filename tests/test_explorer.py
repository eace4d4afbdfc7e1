"""The embedding explorer without a browser: custom axes, search matches, selections, run
comparison, state from the URL, covers off, and the input coercers every callback uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_dashboard import DashClient

from analytics.neighbours import normalise_rows
from analytics.projections import pole_axes
from dashboards import queries
from dashboards.app import DashboardSettings, create_app
from dashboards.guard import as_choice, as_int, as_key, as_keys, as_text
from dashboards.queries import Pole
from shelfwise import serving


@pytest.fixture(scope="module")
def warehouse(published_warehouse: Path) -> Path:
    return published_warehouse


@pytest.fixture(scope="module")
def client(warehouse: Path) -> DashClient:
    return DashClient(create_app(DashboardSettings(db_path=warehouse)))


@pytest.fixture
def con(warehouse: Path):
    with queries.reading(warehouse) as c:
        yield c


# ----------------------------------------------------------------------------- custom axes


def test_pole_axes_place_books_by_cosine_on_the_pole_direction() -> None:
    # Rows 0-1 point along e0 (pole a), rows 2-3 along e1 (pole b); the direction is (e1 - e0)/√2.
    vectors = np.array(
        [[2, 0, 0], [1, 0, 0], [0, 3, 0], [0, 1, 0], [1, 1, 0], [0, 0, 5], [-1, 0, 0]], float
    )
    xy = pole_axes(vectors, (np.array([0, 1]), np.array([2, 3])))
    s = 1 / np.sqrt(2)
    assert np.allclose(xy[:, 0], [-s, -s, s, s, 0, 0, s])  # lengths do not count: cosine
    # y without poles: the principal component of what x leaves, orthogonal to x.
    assert abs(np.corrcoef(xy[:, 0], xy[:, 1])[0, 1]) < 0.5
    both = pole_axes(vectors, (np.array([0]), np.array([2])), (np.array([4]), np.array([5])))
    assert np.isclose(both[5, 1], 1 / np.sqrt(2)) and np.isclose(both[4, 1], -1 / np.sqrt(2))
    same = pole_axes(vectors, (np.array([0]), np.array([1])))  # same centre: a flat axis
    assert np.allclose(same[:, 0], 0)


def test_poles_parse_only_their_three_kinds() -> None:
    assert Pole.parse("tag:fantasy") == Pole("tag", "fantasy")
    assert Pole.parse("author:Dan Brown").token == "author:Dan Brown"
    assert Pole.parse("book:12") == Pole("book", "12")
    for bad in ("book:abc", "genre:x", "tag:", "fantasy", ["tag:x"], {"kind": "tag"}, 7, None):
        assert Pole.parse(bad) is None, bad
    assert Pole.parse("tag:" + "x" * 100_000) is None


def test_two_tags_pull_their_books_to_opposite_ends(con) -> None:
    run = queries.latest_runs(con, ("als",))["als"]
    fantasy, romance = Pole("tag", "fantasy"), Pole("tag", "romance")
    placed = queries.custom_positions(con, run, (fantasy, romance), None)
    x = placed["x"].to_numpy()
    a, b = queries.pole_rows(con, run, fantasy), queries.pole_rows(con, run, romance)
    assert len(a) > 20 and len(b) > 20
    # The pole books' mean positions differ by exactly the distance between the pole centres:
    # (m_b - m_a) . d = |m_b - m_a| for d the unit direction from m_a to m_b.
    unit = normalise_rows(serving.book_vectors(con, run)).astype(np.float64)
    gap = np.linalg.norm(unit[b].mean(axis=0) - unit[a].mean(axis=0))
    assert np.isclose(x[b].mean() - x[a].mean(), gap) and gap > 0.05
    assert np.all(np.abs(x) <= 1 + 1e-9)
    with pytest.raises(queries.ShelfwiseError, match="No book of this run"):
        queries.custom_positions(con, run, (fantasy, Pole("tag", "no-such-tag")), None)


def test_the_custom_map_names_its_poles_and_keeps_every_book(client, con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    values = {
        "emb-run.value": run,
        "emb-method.value": "custom",
        "emb-colour.value": "tag",
        "emb-xa.value": "tag:fantasy",
        "emb-xb.value": "tag:romance",
        "emb-ya.value": None,
        "emb-yb.value": None,
        "emb-isolate.value": [],
        "emb-selection.data": [],
        "emb-selected.data": None,
        "emb-find.value": "",
    }
    out = client.call("emb-map.figure", values, changed=["emb-method.value"])
    fig = out["emb-map"]["figure"]
    assert "tag fantasy" in fig["layout"]["xaxis"]["title"]["text"]
    assert "tag romance" in fig["layout"]["xaxis"]["title"]["text"]
    assert "orthogonal" in fig["layout"]["yaxis"]["title"]["text"]
    n = con.execute("select count(*) from models.run_books where run_id = ?", [run]).fetchall()[0]
    assert f"{n[0]:,} books" in fig["layout"]["title"]["text"]
    missing = client.call(
        "emb-map.figure", {**values, "emb-xb.value": None}, changed=["emb-xb.value"]
    )
    assert "pick a pole" in json.dumps(missing["emb-map"]["figure"])


def test_pole_typeahead_offers_tags_authors_and_books(client, con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    out = client.call(
        "emb-xa.options",
        {"emb-xa.search_value": "brown", "emb-xa.value": None, "emb-run.value": run},
    )
    values = [o["value"] for o in out["emb-xa"]["options"]]
    assert "author:Dan Brown" in values and any(v.startswith("book:") for v in values)


# ----------------------------------------------------------------------------- search, selection


def test_search_matches_every_title_author_and_tag_with_a_count(con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    keys, total = queries.match_books(con, run, "Dan Brown", 100)
    expected = con.execute(
        """select count(*) from models.run_books rb join core.books b using (book_key)
           where rb.run_id = ? and contains(lower(b.authors), 'dan brown')""",
        [run],
    ).fetchall()[0][0]
    assert total == len(keys) == expected >= 5
    tagged, n_tagged = queries.match_books(con, run, "fantasy", 10)
    assert n_tagged > 10 and len(tagged) == 10  # the count says more than is drawn
    assert queries.match_books(con, run, "'; DROP TABLE core.books; --", 10) == ([], 0)


def test_selection_table_and_csv_list_the_selected_books(client, con) -> None:
    run = queries.latest_runs(con, ("mf",))["mf"]
    keys = [
        r[0]
        for r in con.execute(
            "select book_key from models.run_books where run_id = ? order by book_idx limit 7",
            [run],
        ).fetchall()
    ]
    out = client.call(
        "emb-selection-table.children", {"emb-selection.data": keys, "emb-run.value": run}
    )
    text = json.dumps(out)
    assert "7 books selected" in text and "three most common tags" in text
    csv = client.call(
        "emb-download.data",
        {"emb-csv.n_clicks": 1, "emb-selection.data": keys, "emb-run.value": run},
    )["emb-download"]["data"]
    lines = csv["content"].strip().splitlines()
    assert lines[0].startswith("book_key,title,authors,top_tags,ratings_in_matrix")
    assert {int(line.split(",")[0]) for line in lines[1:]} == set(keys)
    # Forged selections: strings and dicts are dropped, not queried.
    out = client.call(
        "emb-selection-table.children",
        {"emb-selection.data": ["1; drop", {"a": 1}, keys[0]], "emb-run.value": run},
    )
    assert "1 books selected" in json.dumps(out)


def test_isolate_draws_only_the_selection_and_its_neighbours(client, con) -> None:
    run = queries.latest_runs(con, ("svd",))["svd"]
    keys = [
        r[0]
        for r in con.execute(
            "select book_key from models.run_books where run_id = ? order by book_idx limit 3",
            [run],
        ).fetchall()
    ]
    near = set(queries.neighbour_keys(con, run, keys, 10))
    values = {
        "emb-run.value": run,
        "emb-method.value": "pca",
        "emb-colour.value": "tag",
        "emb-isolate.value": ["on"],
        "emb-selection.data": keys,
        "emb-find.value": "",
    }
    out = client.call("emb-map.figure", values, changed=["emb-isolate.value"])
    fig = out["emb-map"]["figure"]
    at = out["emb-overlay-at"]["data"]
    drawn = {k for t in fig["data"][:at] for k in t["customdata"]}
    assert drawn == set(keys) | near
    assert "Isolated" in out["emb-caption"]["children"]


# ----------------------------------------------------------------------------- compare


def test_overlap_is_jaccard_of_the_stored_top_lists(con) -> None:
    runs = queries.latest_runs(con, ("mf", "als"))
    a, b = runs["mf"], runs["als"]

    def top(run: int) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for key, near in con.execute(
            """select rb.book_key, nb.book_key from models.book_neighbours n
               join models.run_books rb on rb.run_id = n.run_id and rb.book_idx = n.book_idx
               join models.run_books nb on nb.run_id = n.run_id and nb.book_idx = n.neighbour_idx
               where n.run_id = ? and n.rank <= 10""",
            [run],
        ).fetchall():
            out.setdefault(key, set()).add(near)
        return out

    ta, tb = top(a), top(b)
    both = set(ta) & set(tb)
    jaccard = {k: len(ta[k] & tb[k]) / len(ta[k] | tb[k]) for k in both}
    dist = queries.overlap_distribution(queries.pair_overlap(con, a, b, 10))
    assert dist["books"].sum() == len(both)
    for shared, books in zip(dist["shared"], dist["books"], strict=True):
        assert books == sum(len(ta[k] & tb[k]) == shared for k in both)
    changed = queries.most_changed(con, queries.pair_overlap(con, a, b, 10), 5)
    assert changed["jaccard"].to_list() == sorted(jaccard.values())[:5]
    assert all(
        abs(jaccard[k] - j) < 1e-12
        for k, j in zip(changed["book_key"], changed["jaccard"], strict=True)
    )


def test_compare_lists_mark_shared_books_and_state_jaccard(client, con) -> None:
    runs = queries.latest_runs(con, ("mf", "als"))
    book = con.execute(
        "select book_key from matrix.books order by n_ratings desc limit 1"
    ).fetchall()[0][0]
    a = set(queries.neighbours(con, runs["mf"], book, 10)["book_key"])
    b = set(queries.neighbours(con, runs["als"], book, 10)["book_key"])
    out = client.call(
        "cmp-lists.children",
        {"cmp-book.value": book, "cmp-a.value": runs["mf"], "cmp-b.value": runs["als"]},
    )
    text = json.dumps(out)
    assert f"Jaccard@10 = {len(a & b) / len(a | b):.2f}" in text
    assert text.count('"book shared"') == 2 * len(a & b)
    page = client.render("/compare", f"?a={runs['mf']}&b={runs['als']}&book={book}")
    assert '"cmp-page"' in page and f'"value": {runs["als"]}' in page


# ----------------------------------------------------------------------------- URL state, covers


def test_every_page_reads_its_state_from_the_url(client, con) -> None:
    run = queries.latest_runs(con, ("svd",))["svd"]
    book = con.execute("select min(book_key) from matrix.books").fetchall()[0][0]
    page = client.render(
        "/embeddings",
        f"?kind=svd&run={run}&proj=custom&colour=year&book={book}&xa=tag%3Afantasy"
        "&xb=author%3ADan%20Brown&q=potter",
    )
    for fragment in (
        '"value": "svd"',
        f'"value": {run}',
        '"value": "custom"',
        '"value": "year"',
        '"value": "tag:fantasy"',
        '"value": "author:Dan Brown"',
        '"value": "potter"',
    ):
        assert fragment in page, fragment
    assert '"value": "mf"' in client.render("/users", "?user=1&kind=mf")
    assert '"value": "latest"' in client.render("/models", "?scope=latest")
    assert f'"value": [{book}]' in client.render("/neighbours", f"?favs={book},abc,-3")
    # Nonsense in the URL falls back to the defaults, never an error page.
    for path in (
        "/embeddings",
        "/users",
        "/biases",
        "/neighbours",
        "/models",
        "/compare",
        "/for-you",
    ):
        text = client.render(path, "?kind=nope&run=-1&proj=zzz&colour=1&min=x&scope=0&a=b&user=u")
        assert "Traceback" not in text and "-page" in text, path


def test_no_covers_means_no_other_host_in_any_page(warehouse: Path, con) -> None:
    book = con.execute(
        "select book_key from matrix.books order by n_ratings desc limit 1"
    ).fetchall()[0][0]
    for covers in (True, False):
        client = DashClient(create_app(DashboardSettings(db_path=warehouse, covers=covers)))
        text = json.dumps(client.call("nbr-columns.children", {"nbr-book.value": book}))
        assert ("gr-assets.com" in text) is covers
        assert ("backgroundImage" in text) is covers


# ----------------------------------------------------------------------------- coercers


def test_coercers_turn_forged_values_into_none_or_defaults() -> None:
    assert as_int("12") == 12 and as_int(12.0) == 12 and as_int(True) is None
    assert as_int("1e9") is None and as_int([1]) is None and as_int("9" * 40) is None
    assert as_key(-1) is None and as_key("7") == 7
    assert as_text("x" * 100_000) == "x" * 200 and as_text({"a": 1}) == ""
    assert as_choice("mf", ("mf", "als")) == "mf" and as_choice(["mf"], ("mf",)) is None
    assert as_choice(1, (True,)) is None  # 1 == True, but not the same type
    assert as_keys([3, "4", 3, "x", None, {"a": 1}, -2, 5], limit=3) == [3, 4, 5]
    assert as_keys("1,2", limit=5) == []

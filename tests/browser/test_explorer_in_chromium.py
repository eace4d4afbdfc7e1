"""The embedding explorer and the shareable dashboard in real Chromium: state in the URL with Back
and Forward, custom axes, lasso selection with isolate and CSV, search matches, compare two runs,
covers off. Every test fails on browser console errors."""

from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder

from base.registry import preferred
from dashboards import queries
from dashboards.figures import KIND_LABELS
from dashboards.queries import Pole

pytestmark = pytest.mark.browser


def query(browser) -> dict[str, str]:
    """The current address's query string as a dict."""
    return {k: v[0] for k, v in parse_qs(urlparse(browser.driver.current_url).query).items()}


def wait_query(browser, what: str, check) -> dict[str, str]:
    return browser.wait(lambda: check(query(browser)) and query(browser), f"the URL to {what}")


def all_points(browser, graph_id: str = "emb-map") -> list[dict]:
    """Every trace drawn: name, every book key, x and y (decoded, not only the first 50)."""
    return browser.driver.execute_script(
        """
        const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
        return (gd._fullData || []).map(t => ({
            name: t.name || '',
            keys: Array.from(t.customdata || []).map(k => Array.isArray(k) ? k[0] : k),
            x: Array.from(t.x || []), y: Array.from(t.y || []),
        }));
        """,
        graph_id,
    )


def axis_titles(browser, graph_id: str = "emb-map") -> tuple[str, str]:
    return tuple(
        browser.driver.execute_script(
            """
            const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
            const t = a => (gd.layout[a] && gd.layout[a].title && gd.layout[a].title.text) || '';
            return [t('xaxis'), t('yaxis')];
            """,
            graph_id,
        )
    )


def default_map_kind(con_path: Path) -> str:
    """The kind the map pages open on: the best published neighbours model with a map."""
    with queries.reading(con_path) as con:
        return preferred("neighbours", queries.latest_runs(con, queries.MAP_KINDS)) or ""


def run_of(con_path: Path, kind: str) -> int:
    with queries.reading(con_path) as con:
        return queries.latest_runs(con, (kind,))[kind]


def test_the_url_keeps_the_state_and_back_and_forward_restore_it(browser, warehouse) -> None:
    # The page opens on the best published neighbours model (base.registry.PREFERRED).
    home = default_map_kind(warehouse)
    home_run, svd, label = run_of(warehouse, home), run_of(warehouse, "svd"), KIND_LABELS[home]
    browser.open("/embeddings")
    browser.wait_figure("emb-map", lambda f: f"run #{home_run}" in f["title"], f"the {home} map")
    opened = wait_query(browser, "name the model and run", lambda q: q.get("run") == str(home_run))
    assert opened["kind"] == home and "book" not in opened

    browser.pick("emb-search", "The Da Vinci Code", "The Da Vinci Code")
    chosen = wait_query(browser, "name the book", lambda q: "book" in q)
    book = chosen["book"]
    browser.wait_text("#emb-detail", "Dan Brown")

    browser.radio("emb-kind", "SVD")
    browser.wait_figure("emb-map", lambda f: f"SVD run #{svd}" in f["title"], "the SVD map")
    switched = wait_query(browser, "name SVD", lambda q: q.get("kind") == "svd")
    assert switched["book"] == book and switched["run"] == str(svd)
    assert switched["proj"] == "pca"  # SVD stores no t-SNE map: the URL says what is shown

    def state() -> tuple[str, str]:
        # One script, so a page being rebuilt cannot leave a stale element between two reads.
        kind, detail = browser.driver.execute_script(
            """
            const checked = document.querySelector('#emb-kind input:checked');
            const detail = document.getElementById('emb-detail');
            return [checked ? checked.value : null, detail ? detail.innerText : ''];
            """
        )
        return kind, "Dan Brown" if "Dan Brown" in detail else detail

    browser.driver.back()  # the book chosen, the first model
    wait_query(browser, "go back with the book", lambda q: q.get("kind") == home)
    assert query(browser).get("book") == book
    browser.wait_figure("emb-map", lambda f: f"{label} run #{home_run}" in f["title"], "back again")
    browser.wait(lambda: state() == (home, "Dan Brown"), "with The Da Vinci Code chosen")
    browser.wait_figure(
        "emb-map", lambda f: [str(k) for k in f["keys"][-1]] == [book], "the book highlighted"
    )

    browser.driver.back()  # the page as opened: the first model, no book
    wait_query(browser, "drop the book", lambda q: "book" not in q and q.get("kind") == home)
    browser.wait(lambda: state()[1].startswith("Search for a book"), "no book chosen")

    browser.driver.forward()
    wait_query(browser, "bring the book back", lambda q: q.get("book") == book)
    browser.wait(lambda: state() == (home, "Dan Brown"), "the book chosen again")
    browser.driver.forward()
    wait_query(browser, "bring SVD back", lambda q: q.get("kind") == "svd")
    browser.wait(lambda: state() == ("svd", "Dan Brown"), "SVD with the book")

    # A copied address opens the same view in a fresh page.
    address = browser.driver.current_url
    browser.driver.get("about:blank")
    browser.driver.get(address)
    browser.wait_figure("emb-map", lambda f: f"SVD run #{svd}, PCA" in f["title"], "SVD from URL")
    browser.wait(lambda: state() == ("svd", "Dan Brown"), "the shared view")

    # Other pages too: a user and a model, restored from the address.
    browser.open("/users?user=2&kind=svd")
    browser.wait_text("#usr-rated", "User 2 rated")
    assert (
        browser.driver.find_element("css selector", "#usr-kind input:checked").get_attribute(
            "value"
        )
        == "svd"
    )

    # Back to the very address the page was last built from (Back, a change, Back) restores it.
    def scope() -> str | None:
        return browser.driver.execute_script(
            "const c = document.querySelector('#mdl-scope input:checked'); return c && c.value"
        )

    browser.open("/models")
    wait_query(browser, "name the scope", lambda q: q.get("scope") == "all")
    browser.radio("mdl-scope", "Latest of each kind")
    wait_query(browser, "say latest", lambda q: q.get("scope") == "latest")
    browser.driver.back()
    browser.wait(lambda: scope() == "all" and query(browser).get("scope") == "all", "all again")
    browser.radio("mdl-scope", "Latest of each kind")
    wait_query(browser, "say latest again", lambda q: q.get("scope") == "latest")
    browser.driver.back()
    browser.wait(lambda: scope() == "all" and query(browser).get("scope") == "all", "all, twice")
    browser.driver.forward()
    browser.wait(lambda: scope() == "latest", "latest after Forward")
    browser.assert_no_console_errors()


def test_a_custom_axis_by_two_tags(browser, warehouse) -> None:
    mf = run_of(warehouse, "mf")
    browser.open("/embeddings?kind=mf")
    browser.wait_figure("emb-map", lambda f: f"run #{mf}" in f["title"], "the MF map")
    browser.radio("emb-method", "Custom axes")
    browser.wait_figure("emb-map", lambda f: not f["sizes"], "an empty map until poles are chosen")
    browser.wait_text("#emb-map", "pick a pole at each end of the X axis")
    browser.pick("emb-xa", "fantasy", "Tag: fantasy")
    browser.pick("emb-xb", "romance", "Tag: romance")
    browser.wait_figure("emb-map", lambda f: "Custom axes" in f["title"], "the custom map")
    x_title, y_title = axis_titles(browser)
    assert "tag fantasy" in x_title and "tag romance" in x_title
    assert "orthogonal" in y_title
    q = wait_query(browser, "name the poles", lambda q: q.get("xb") == "tag:romance")
    assert q["proj"] == "custom" and q["xa"] == "tag:fantasy"

    # Every point sits where the documented projection puts it.
    with queries.reading(warehouse) as con:
        placed = queries.custom_positions(
            con, mf, (Pole("tag", "fantasy"), Pole("tag", "romance")), None
        )
        keys = queries.run_book_table(con, mf, "tag")["book_key"].to_numpy()
    expected = dict(zip(keys.tolist(), placed["x"].to_numpy().tolist(), strict=True))
    drawn = [t for t in all_points(browser) if t["keys"]]
    assert sum(len(t["keys"]) for t in drawn) == len(expected)
    for t in drawn:
        got = np.array(t["x"])
        want = np.array([expected[k] for k in t["keys"]])
        assert np.allclose(got, want, atol=1e-6), t["name"]
    browser.screenshot("custom-axes")
    browser.assert_no_console_errors()


def _lasso(browser, fractions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Draw a lasso through points given as fractions of the plot area; its pixel polygon."""
    box = browser.driver.execute_script(
        """
        const gd = document.querySelector('#emb-map .js-plotly-plot');
        gd.scrollIntoView({block: 'center'});
        const r = gd.getBoundingClientRect(), s = gd._fullLayout._size;
        return [r.left + s.l, r.top + s.t, s.w, s.h];
        """
    )
    left, top, width, height = box
    points = [(left + fx * width, top + fy * height) for fx, fy in fractions]
    actions = ActionBuilder(browser.driver)
    actions.pointer_action.move_to_location(int(points[0][0]), int(points[0][1]))
    actions.pointer_action.pointer_down()
    for x, y in [*points[1:], points[0]]:
        actions.pointer_action.move_to_location(int(x), int(y))
        actions.pointer_action.pause(0.05)
    actions.pointer_action.pointer_up()
    actions.perform()
    return [(int(x) - left, int(y) - top) for x, y in [*points, points[0]]]


def _inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(polygon):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def _distance_to_edge(polygon: list[tuple[float, float]], x: float, y: float) -> float:
    best = float("inf")
    for (x1, y1), (x2, y2) in itertools.pairwise(polygon):
        dx, dy = x2 - x1, y2 - y1
        t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy or 1)))
        best = min(best, float(np.hypot(x - x1 - t * dx, y - y1 - t * dy)))
    return best


def test_lasso_selection_with_isolate_and_csv(browser, warehouse, tmp_path: Path) -> None:
    mf = run_of(warehouse, "mf")
    browser.open("/embeddings?kind=mf&proj=pca")
    browser.wait_figure("emb-map", lambda f: f"run #{mf}, PCA" in f["title"], "the PCA map")
    browser.idle()
    browser.click('#emb-map .modebar-btn[data-val="lasso"]')
    polygon = _lasso(browser, [(0.3, 0.3), (0.65, 0.25), (0.7, 0.6), (0.45, 0.75), (0.25, 0.6)])
    summary = browser.wait_text("#emb-selection-summary", "books selected")
    n = int(summary.split(" books selected")[0].replace(",", ""))

    # What the lasso enclosed, from the points' own pixel positions: every point clearly inside
    # is selected, none clearly outside (2 px from the edge is left to plotly's rounding).
    pixels = browser.driver.execute_script(
        """
        const gd = document.querySelector('#emb-map .js-plotly-plot');
        const fl = gd._fullLayout, out = [];
        gd._fullData.forEach(t => Array.from(t.x || []).forEach((x, i) => {
            const k = t.customdata[i];
            out.push([Array.isArray(k) ? k[0] : k, fl.xaxis.l2p(x), fl.yaxis.l2p(t.y[i])]);
        }));
        return out;
        """
    )
    selection = set(
        browser.wait(
            lambda: next(
                (t["keys"] for t in all_points(browser) if t["name"].startswith("selected (")),
                None,
            ),
            "the selection drawn",
        )
    )
    assert len(selection) == n > 5
    clearly_in = {
        k for k, x, y in pixels if _inside(polygon, x, y) and _distance_to_edge(polygon, x, y) > 2
    }
    clearly_out = {
        k
        for k, x, y in pixels
        if not _inside(polygon, x, y) and _distance_to_edge(polygon, x, y) > 2
    }
    assert clearly_in <= selection and not (clearly_out - clearly_in) & selection
    rows = browser.texts("#emb-selection-rows tbody tr")
    assert len(rows) == min(n, 100)

    # The selection survives a change of colour and of projection.
    browser.pick("emb-colour", "", "Publication year")
    browser.wait_figure("emb-map", lambda f: f["colourbar"], "the year colours")
    browser.radio("emb-method", "t-SNE")
    browser.wait_figure("emb-map", lambda f: "t-SNE" in f["title"], "the t-SNE map")
    browser.wait(
        lambda: any(
            t["name"] == f"selected ({n:,})" and set(t["keys"]) == selection
            for t in all_points(browser)
        ),
        "the same selection on the t-SNE map",
    )
    assert (
        f"{n:,} books selected" in browser.driver.find_element("id", "emb-selection-summary").text
    )

    # Isolate: only the selected books and their stored neighbours stay on the map.
    browser.click("#emb-isolate input")
    with queries.reading(warehouse) as con:
        near = set(queries.neighbour_keys(con, mf, sorted(selection), 10))
    browser.wait_text("#emb-caption", "Isolated")
    drawn = browser.wait(
        lambda: (
            {k for t in all_points(browser)[:-4] for k in t["keys"]}
            if "selected books and their neighbours" in browser.figure("emb-map")["title"]
            else None
        ),
        "the isolated map",
    )
    assert drawn == selection | near

    # CSV download of the selection.
    browser.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    browser.click("#emb-csv")
    found = browser.wait(lambda: list(tmp_path.glob("*.csv")), "the CSV download")
    time.sleep(0.3)
    with found[0].open(newline="") as f:
        records = list(csv.DictReader(f))
    assert {int(r["book_key"]) for r in records} == selection
    assert {"title", "authors", "top_tags", "ratings_in_matrix"} <= set(records[0])
    browser.screenshot("selection")

    browser.click("#emb-clear")
    browser.wait_text("#emb-selection-table", "No books selected")
    browser.assert_no_console_errors()


def test_search_marks_every_match_with_a_count(browser, warehouse) -> None:
    mf = run_of(warehouse, "mf")
    with queries.reading(warehouse) as con:
        keys, total = queries.match_books(con, mf, "dan brown", 5000)
    browser.open("/embeddings?kind=mf")
    browser.wait_figure("emb-map", lambda f: f"run #{mf}" in f["title"], "the MF map")
    box = browser.wait_for("#emb-find")
    box.send_keys("Dan Brown")
    browser.wait_text("#emb-find-count", f"{total} books match")
    browser.wait(
        lambda: any(
            t["name"] == f"matches ({total})" and set(t["keys"]) == set(keys)
            for t in all_points(browser)
        ),
        "every match marked",
    )
    wait_query(browser, "keep the search", lambda q: q.get("q") == "Dan Brown")
    browser.assert_no_console_errors()


def test_compare_two_runs(browser, warehouse) -> None:
    mf, als = run_of(warehouse, "mf"), run_of(warehouse, "als")
    browser.open(f"/compare?a={mf}&b={als}")
    browser.pick("cmp-book", "The Da Vinci Code", "The Da Vinci Code")
    text = browser.wait_text("#cmp-jaccard", "Jaccard@10")
    # The address is written by its own callback, which may land after the lists.
    book = int(wait_query(browser, "name the book", lambda q: "book" in q)["book"])
    with queries.reading(warehouse) as con:
        a = queries.neighbours(con, mf, book, 10)["book_key"].to_list()
        b = queries.neighbours(con, als, book, 10)["book_key"].to_list()
        dist = queries.overlap_distribution(queries.pair_overlap(con, mf, als, 10))
    shared = set(a) & set(b)
    assert f"Jaccard@10 = {len(shared) / len(set(a) | set(b)):.2f}" in text
    assert [int(k) for k in browser.attrs("#cmp-list-a .book", "data-book-key")] == a
    assert [int(k) for k in browser.attrs("#cmp-list-b .book", "data-book-key")] == b
    assert {int(k) for k in browser.attrs("#cmp-list-a .book.shared", "data-book-key")} == shared
    fig = browser.wait_figure("cmp-overlap", lambda f: f["sizes"] == [11], "the overlap bars")
    assert f"{int(dist['books'].sum()):,} books in both runs" in fig["subtitle"]
    browser.wait(lambda: len(browser.texts("#cmp-changed-table tbody tr")) == 20, "20 changed")
    browser.screenshot("compare")

    # A most-changed book's link opens it in the lists, runs kept.
    first = browser.wait_for("#cmp-changed-table tbody tr a")
    title = first.text
    first.click()
    browser.wait(lambda: title[:20] in browser.driver.find_element("id", "cmp-book").text, "it")
    q = wait_query(browser, "name the new book", lambda q: q.get("book") != str(book))
    assert q["a"] == str(mf) and q["b"] == str(als)
    browser.wait_text("#cmp-jaccard", "Jaccard@10")
    browser.assert_no_console_errors()


def test_no_covers_means_no_request_leaves_the_browser(dashboard, warehouse) -> None:
    with queries.reading(warehouse) as con:
        book = con.execute(
            "select book_key from matrix.books order by n_ratings desc limit 1"
        ).fetchall()[0][0]
    browser = dashboard(warehouse, covers=False)
    browser.driver.get_log("performance")
    browser.open(f"/neighbours?book={book}")
    browser.wait_for("#nbr-list-mf .book")
    browser.idle()
    assert browser.driver.find_elements("css selector", ".cover-initial")
    assert not browser.driver.find_elements("css selector", ".cover-image")
    import json

    hosts = {
        urlparse(json.loads(e["message"])["message"]["params"]["request"]["url"]).hostname
        for e in browser.driver.get_log("performance")
        if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"
    }
    assert hosts == {"127.0.0.1"}, hosts
    browser.assert_no_console_errors()

    covered = dashboard(warehouse)
    covered.open(f"/neighbours?book={book}")
    covered.wait_for("#nbr-list-mf .book .cover-image")

"""Every dashboard page driven in headless Chromium; each test fails on browser console errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from base.registry import PREFERRED, spec
from dashboards.figures import KIND_LABELS
from warehouse.db import open_for_reading

pytestmark = pytest.mark.browser

INJECTION = "'; DROP TABLE core.books; --"
PAGES = ("/", "/embeddings", "/biases", "/neighbours", "/users", "/models", "/compare", "/for-you")


def sql(db: Path, query: str, params: list | None = None) -> list[tuple]:
    with open_for_reading(db) as con:
        return con.execute(query, params or []).fetchall()


def latest_run(db: Path, kind: str) -> int:
    return sql(db, "select max(run_id) from models.runs where published and kind = ?", [kind])[0][0]


def test_overview_shows_the_data_the_long_tail_and_every_run(browser, warehouse: Path) -> None:
    browser.open("/")
    browser.wait_text("#ovw-kpis", "Ratings")
    kpis = browser.texts("#ovw-kpis .kpi-value")
    ratings = sql(warehouse, "select count(*) from core.ratings where rating is not null")[0][0]
    assert f"{ratings:,}" in kpis
    for (run_id,) in sql(warehouse, "select run_id from models.runs"):
        browser.wait_for(f'#ovw-runs-table tr[data-run-id="{run_id}"]')
    assert "{" not in browser.texts("#ovw-runs-table")[0]  # parameters as name=value, never JSON
    assert browser.wait_figure(
        "ovw-ratings", lambda f: f["title"] == "Rating distribution", "the rating chart"
    )
    per_user = browser.wait_figure(
        "ovw-per-user", lambda f: "per user" in f["title"], "the per-user tail"
    )
    per_book = browser.wait_figure(
        "ovw-per-book", lambda f: "per book" in f["title"], "the per-book tail"
    )
    assert per_user["sizes"][0] > 10 and per_book["sizes"][0] > 10
    browser.wait_text("#ovw-filter-text", "at least 20 ratings")
    assert "active" in browser.driver.find_element("id", "app-nav-overview").get_attribute("class")
    published = sql(warehouse, "select max(run_id) from models.runs where published")[0][0]
    browser.wait_text("#app-status", f"latest run #{published}")
    browser.screenshot("overview")
    browser.assert_no_console_errors()


def test_embeddings_switch_model_and_projection_search_and_click(browser, warehouse: Path) -> None:
    mf, svd = latest_run(warehouse, "mf"), latest_run(warehouse, "svd")
    # MF is the kind fitted with a t-SNE map here (the page opens on the best neighbours model,
    # tests/browser/test_explorer_in_chromium.py).
    browser.open("/embeddings?kind=mf")
    tsne = browser.wait_figure(
        "emb-map", lambda f: f"MF (biased) run #{mf}, t-SNE" in f["title"], "the MF t-SNE map"
    )
    n_books = sql(warehouse, "select count(*) from models.run_books where run_id = ?", [mf])[0][0]
    assert f"{n_books:,} books" in tsne["title"] and sum(tsne["sizes"][:-2]) == n_books

    browser.radio("emb-method", "PCA")
    pca = browser.wait_figure(
        "emb-map", lambda f: f"MF (biased) run #{mf}, PCA" in f["title"], "the MF PCA map"
    )
    assert pca["fingerprint"] != tsne["fingerprint"]

    browser.radio("emb-kind", "SVD")
    svd_map = browser.wait_figure(
        "emb-map", lambda f: f"SVD run #{svd}, PCA" in f["title"], "the SVD map"
    )
    assert svd_map["fingerprint"] != pca["fingerprint"]
    assert "t-SNE (not stored)" in browser.texts(
        "#emb-method label"
    )  # only MF was fitted with t-SNE

    browser.radio("emb-kind", "MF (biased)")
    browser.wait(
        lambda: "t-SNE" in browser.texts("#emb-method label"), "t-SNE offered again for MF"
    )
    browser.radio("emb-method", "t-SNE")
    browser.wait_figure(
        "emb-map",
        lambda f: "t-SNE" in f["title"] and f"#{mf}" in f["title"],
        "the MF t-SNE map again",
    )
    browser.pick("emb-colour", "", "Publication year")
    browser.wait_figure("emb-map", lambda f: f["colourbar"], "a colour scale for publication year")

    browser.pick("emb-search", "The Da Vinci Code", "The Da Vinci Code")
    chosen = browser.wait_figure(
        "emb-map", lambda f: f["sizes"][-1] == 1 and f["sizes"][-2] >= 5, "the highlighted book"
    )
    da_vinci = chosen["keys"][-1][0]
    browser.wait_text("#emb-detail", "Dan Brown")
    assert any("Dan Brown" in t for t in browser.texts("#emb-neighbours .book-authors"))

    # Clicking a highlighted neighbour (one standing apart, so the click cannot land on another
    # point) makes it the chosen book.
    browser.idle()
    neighbours = len(chosen["sizes"]) - 2
    point = browser.loneliest_point("emb-map", neighbours)
    clicked = chosen["keys"][neighbours][point]
    browser.click_point("emb-map", neighbours, point)
    browser.wait(
        lambda: (
            browser.attrs("#emb-detail .books:first-child .book", "data-book-key")[:1]
            == [str(clicked)]
        ),
        "the clicked book to become the chosen one",
    )
    browser.wait_figure(
        "emb-map", lambda f: f["keys"][-1] == [clicked], "the clicked book highlighted"
    )

    browser.pick("emb-search", "The Da Vinci Code", "The Da Vinci Code")
    browser.wait_figure(
        "emb-map", lambda f: f["keys"][-1] == [da_vinci], "The Da Vinci Code chosen again"
    )
    browser.wait_text("#emb-detail", "The Da Vinci Code")
    browser.screenshot("embeddings")
    browser.assert_no_console_errors()


def test_biases_extremes_follow_the_minimum_and_the_model(browser, warehouse: Path) -> None:
    browser.open("/biases")
    top = browser.wait_figure(
        "bia-top",
        lambda f: f["title"].startswith("Generally good") and f["sizes"][0] == 15,
        "the highest biases",
    )
    browser.wait_figure(
        "bia-bottom", lambda f: f["title"].startswith("Generally bad"), "the lowest biases"
    )
    browser.wait_figure("bia-scatter", lambda f: f["sizes"][0] > 50, "bias against average rating")
    browser.wait_figure(
        "bia-users", lambda f: f["title"] == "User bias distribution", "the user-bias histogram"
    )
    # The page opens on the best rating model with learned biases (base.registry.PREFERRED).
    with open_for_reading(warehouse) as con:
        published = {r[0] for r in con.execute("select kind from main.latest_runs").fetchall()}
    home = next(k for k in PREFERRED["ratings"] if k in published and spec(k).learned_biases)
    assert f"{KIND_LABELS[home]} run #{latest_run(warehouse, home)}" in top["subtitle"]
    before = top["subtitle"]
    target = next(
        m
        for m in browser.driver.find_elements("css selector", ".dash-slider-mark")
        if m.text.strip() == "10"
    )
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    ActionChains(browser.driver).move_to_element(
        target
    ).click().perform()  # on the track, at the mark
    lowered = browser.wait_figure(
        "bia-top", lambda f: "at least 10 ratings" in f["subtitle"], "the minimum lowered to 10"
    )
    assert lowered["subtitle"] != before
    browser.radio("bia-kind", "SVD")
    browser.wait_figure(
        "bia-top",
        lambda f: f"SVD run #{latest_run(warehouse, 'svd')}" in f["subtitle"],
        "the SVD biases",
    )
    browser.radio("bia-kind", "MF (biased)")
    browser.wait_figure("bia-top", lambda f: "MF (biased)" in f["subtitle"], "the MF biases")
    browser.screenshot("biases")
    browser.assert_no_console_errors()


def test_neighbours_of_the_da_vinci_code_and_recommendations_from_favourites(
    browser, warehouse: Path
) -> None:
    books_before = sql(warehouse, "select count(*) from core.books")[0][0]
    browser.open("/neighbours")

    # A title that is an injection attempt is only text: no options, no error, nothing dropped.
    browser.type_in_dropdown("nbr-book", INJECTION)
    browser.idle()
    browser.wait_text(".dash-dropdown-content", "No options found")
    assert browser.options() == []
    browser.close_dropdown()
    assert sql(warehouse, "select count(*) from core.books")[0][0] == books_before

    # The options keep the server's order (titles starting with the text first), not the dropdown's
    # own.
    with open_for_reading(warehouse) as con:
        from dashboards import queries

        runs = list(queries.latest_runs(con, ("svd", "als", "mf")).values())
        expected = queries.search_books(con, "harry", runs, 20)["title"].to_list()
    browser.type_in_dropdown("nbr-book", "harry")
    browser.wait(
        lambda: len(browser.options()) == len(expected), f"{len(expected)} options for 'harry'"
    )
    assert [
        label.startswith(title)
        for label, title in zip(browser.options()[:3], expected[:3], strict=False)
    ] == [True] * min(3, len(expected))
    browser.close_dropdown()

    label = browser.pick("nbr-book", "The Da Vinci Code")
    assert "Dan Brown" in label
    for kind in ("svd", "als", "mf"):
        browser.wait_for(f"#nbr-list-{kind} .book")
        top5 = browser.texts(f"#nbr-list-{kind} .book .book-authors")[:5]
        assert any("Dan Brown" in a for a in top5), (kind, top5)
        assert (
            f"run #{latest_run(warehouse, kind)}"
            in browser.texts(f"#nbr-col-{kind} .card-title")[0]
        )

    favourites = ["Angels & Demons", "Deception Point", "Digital Fortress"]
    for title in favourites:
        browser.pick("nbr-favs", title)
    keys = {
        str(k)
        for (k,) in sql(
            warehouse,
            "select book_key from core.books where authors = 'Dan Brown' and ("
            + " or ".join("starts_with(title, ?)" for _ in favourites)
            + ")",
            favourites,
        )
    }
    assert len(keys) == 3
    browser.wait_text("#nbr-recs", "centroid of 3 favourites")
    browser.wait(
        lambda: len(browser.attrs("#nbr-rec-list .book", "data-book-key")) == 10,
        "ten recommendations",
    )
    recommended = set(browser.attrs("#nbr-rec-list .book", "data-book-key"))
    assert not recommended & keys
    assert all("closest favourite" in t for t in browser.texts("#nbr-rec-list .book-detail"))
    browser.radio("nbr-fav-kind", "ALS (implicit)")
    browser.wait_text("#nbr-recs", "ALS (implicit) run #")
    browser.wait_text("#nbr-recs", "centroid of 3 favourites")
    browser.wait(
        lambda: len(browser.attrs("#nbr-rec-list .book", "data-book-key")) == 10,
        "ten ALS recommendations",
    )
    assert not set(browser.attrs("#nbr-rec-list .book", "data-book-key")) & keys
    browser.radio("nbr-fav-kind", "MF (biased)")
    browser.wait_text("#nbr-recs", "MF (biased) run #")
    browser.screenshot("neighbours")
    browser.assert_no_console_errors()


def test_users_get_recommendations_they_never_rated(browser, warehouse: Path) -> None:
    user = sql(
        warehouse, "select user_key from matrix.users order by n_ratings desc, user_key limit 1"
    )[0][0]
    rated = {
        str(k)
        for (k,) in sql(
            warehouse,
            "select book_key from core.ratings where user_key = ? and rating is not null",
            [user],
        )
    }
    browser.open("/users")
    browser.pick("usr-user", str(user), f"User {user} ")
    for kind, label in (("mf", "MF (biased)"), ("als", "ALS (implicit)"), ("svd", "SVD")):
        browser.radio("usr-kind", label)
        browser.wait_text("#usr-recs", f"{label} run #{latest_run(warehouse, kind)}")
        browser.wait(
            lambda: len(browser.attrs("#usr-rec-list .book", "data-book-key")) == 10,
            f"ten {kind} recommendations",
        )
        recommended = set(browser.attrs("#usr-rec-list .book", "data-book-key"))
        assert not recommended & rated, kind
        assert set(browser.attrs("#usr-rated-list .book", "data-book-key")) <= rated
        assert all(
            t.startswith("because they rated") for t in browser.texts("#usr-rec-list .book-detail")
        )
    browser.radio("usr-kind", "MF (biased)")
    browser.wait_text("#usr-recs", "MF (biased) run #")
    browser.screenshot("users")

    browser.click("#usr-random")
    browser.wait(
        lambda: (
            f"User {user} " not in browser.driver.find_element("id", "usr-rated").text
            and "rated" in browser.driver.find_element("id", "usr-rated").text
        ),
        "a random reader",
    )
    browser.wait(
        lambda: len(browser.attrs("#usr-rec-list .book", "data-book-key")) == 10,
        "recommendations for the random reader",
    )
    browser.assert_no_console_errors()


def test_models_compare_every_run_with_intervals(browser, warehouse: Path) -> None:
    evaluated = [
        r
        for (r,) in sql(
            warehouse, "select distinct run_id from models.metrics where split = 'test' order by 1"
        )
    ]
    browser.open("/models")
    fig = browser.wait_figure(
        "mdl-chart", lambda f: f["title"].startswith("Test-split metrics"), "the metrics chart"
    )
    assert {"MF (biased)", "SVD", "ALS (implicit)", "baseline (biases)"} <= set(fig["names"])
    for run_id in evaluated:
        browser.wait_for(f'#mdl-metrics-table tr[data-run-id="{run_id}"]')
    rmse = sql(
        warehouse,
        "select value from models.metrics where run_id = ? and metric = 'rmse'",
        [latest_run(warehouse, "mf")],
    )[0][0]
    assert f"{rmse:.4f}" in browser.driver.find_element("id", "mdl-metrics-table").text
    browser.screenshot("models")
    browser.radio("mdl-scope", "Latest of each kind")
    kinds = sql(
        warehouse,
        "select count(distinct r.kind) from models.metrics m join models.runs r using (run_id)",
    )[0][0]
    browser.wait(
        lambda: len(browser.attrs("#mdl-metrics-table tbody tr", "data-run-id")) == kinds,
        "one row per kind",
    )
    browser.assert_no_console_errors()


def test_the_setup_page_opens_the_real_page_once_a_warehouse_appears(
    dashboard, warehouse: Path, tmp_path: Path
) -> None:
    import shutil

    target = tmp_path / "later.duckdb"
    browser = dashboard(target, poll_seconds=0.5)
    browser.open("/neighbours")
    browser.wait_text("#setup-page", "shelfwise load goodbooks")
    browser.idle()
    assert browser.driver.find_elements("id", "setup-page")  # no reload loop while nothing is there

    shutil.copyfile(warehouse, target)
    shutil.copyfile(f"{warehouse}.read", f"{target}.read")

    browser.wait_for("#nbr-page")
    assert not browser.driver.find_elements("id", "setup-page")
    browser.assert_no_console_errors()


def test_no_page_scrolls_sideways_in_an_800_px_window(browser) -> None:
    browser.driver.set_window_size(800, 1000)
    try:
        for path in PAGES:
            browser.open(path)
            browser.idle()
            width, inner = browser.driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert width <= inner, (path, width, inner)
    finally:
        browser.driver.set_window_size(1500, 1100)
    browser.assert_no_console_errors()


def test_an_empty_warehouse_shows_how_to_build_one(dashboard, tmp_path: Path) -> None:
    browser = dashboard(tmp_path / "nothing-here.duckdb")
    for path in PAGES:
        browser.open(path)
        text = browser.wait_text("#setup-page", "shelfwise load goodbooks")
        assert (
            "shelfwise transform" in text
            and "shelfwise fit mf" in text
            and "shelfwise evaluate" in text
        )
        assert "Traceback" not in browser.driver.page_source
    browser.wait_text("#app-status", "no warehouse")
    browser.open("/")
    browser.screenshot("setup")
    browser.assert_no_console_errors()

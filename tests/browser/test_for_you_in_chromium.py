"""The For you page in headless Chromium: a reader's Goodreads export dropped on the page is
matched, recommended from with reasons and placed on the map; bad and oversized files get a
notice; nothing is written to the warehouse. Each test fails on browser console errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import fingerprint, reader_library
from selenium.webdriver.common.by import By

from warehouse.db import open_for_reading

pytestmark = pytest.mark.browser

# Drops a file on the drop zone as a user's drag and drop does: dragenter, dragover, drop events
# carrying a DataTransfer with the File (react-dropzone reads it from the drop event).
DROP_JS = """
const zone = document.querySelector('#you-upload > div') || document.getElementById('you-upload');
const file = new File([arguments[0]], arguments[1], {type: 'text/csv'});
const transfer = new DataTransfer();
transfer.items.add(file);
for (const type of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                            dataTransfer: transfer}));
}
"""


def sql(db: Path, query: str, params: list | None = None) -> list[tuple]:
    with open_for_reading(db) as con:
        return con.execute(query, params or []).fetchall()


def library(db: Path, padding: int = 0) -> dict[str, Any]:
    """tests/helpers.reader_library, with the keys the page shows as strings."""
    lib = reader_library(db, padding=padding)
    return {
        **lib,
        "keys": {str(k) for k in lib["keys"]},
        "to_read": {str(k) for k in lib["to_read"]},
    }


def latest_run(db: Path, kind: str) -> int:
    return sql(db, "select max(run_id) from models.runs where published and kind = ?", [kind])[0][0]


def drop(browser, text: str, name: str) -> None:
    browser.wait_for("#you-upload")
    browser.driver.execute_script(DROP_JS, text, name)


def recommended(browser) -> list[str]:
    return browser.attrs("#you-rec-list .book", "data-book-key")


def test_an_export_dropped_on_the_page_is_matched_recommended_from_and_mapped(
    browser, warehouse: Path
) -> None:
    before = fingerprint(warehouse)
    mine = library(warehouse)
    # MF, named in the URL: it has book vectors, so its own map shows its recommendations.
    browser.open("/for-you?kind=mf")
    assert "nothing is written to the warehouse" in browser.wait_text("#you-privacy", "private")
    browser.wait_text("#you-report", "No export yet")
    drop(browser, mine["text"], "goodreads_library_export.csv")

    kpis = browser.wait_text("#you-kpis", "Books in the file", timeout=60)
    assert browser.texts("#you-kpis .kpi-value")[:3] == ["16", "14", "2"], kpis
    assert "Goodreads book id" in browser.wait_text("#you-methods-table", "14")
    unmatched = browser.wait_text("#you-unmatched-table", "A Book Nobody Has")
    assert "Another Missing One" in unmatched and "no book with this Goodreads id" in unmatched
    assert "goodreads_library_export.csv" in browser.wait_text("#you-file-name", "Read in memory")

    mf = latest_run(warehouse, "mf")
    browser.wait_text("#you-recs-note", f"MF (biased) run #{mf}", timeout=60)
    browser.wait(lambda: len(recommended(browser)) == 10, "ten recommendations", 60)
    recs = set(recommended(browser))
    assert not recs & mine["keys"]  # never a book on one of the reader's shelves
    reasons = browser.texts("#you-rec-list .book-detail")
    assert len(reasons) == 10 and all(r.startswith("because you ") for r in reasons), reasons
    assert any("you rated " in r and " 5 stars" in r for r in reasons), reasons

    def drawn(f: dict) -> bool:
        return f"MF (biased) run #{mf}" in f["title"] and "recommended for you (10)" in f["names"]

    fig = browser.wait_figure("you-map", drawn, "the reader's books on the MF map", 60)
    high = next(i for i, n in enumerate(fig["names"]) if n.startswith("you rated 4-5"))
    assert fig["names"][high] == f"you rated 4-5 ({fig['sizes'][high]})"
    assert 0 < fig["sizes"][high] <= len(mine["rated_high"])
    assert set(fig["keys"][high]) <= mine["rated_high"]
    stars = fig["names"].index("recommended for you (10)")
    assert {str(k) for k in fig["keys"][stars]} == recs and fig["sizes"][stars] == 10
    assert fig["sizes"][0] > 500  # the model's other books, in grey
    browser.screenshot("for-you")

    als = latest_run(warehouse, "als")
    browser.radio("you-kind", "ALS (implicit)")
    browser.wait_text("#you-recs-note", f"ALS (implicit) run #{als}", timeout=60)
    browser.wait_figure(
        "you-map", lambda f: f"ALS (implicit) run #{als}" in f["title"], "the ALS map", 60
    )
    browser.click("#you-to-read label")
    browser.wait_text("#you-recs-note", "and to-read", timeout=60)
    browser.wait(lambda: len(recommended(browser)) == 10, "ten recommendations counting to-read")
    assert not set(recommended(browser)) & mine["keys"]
    browser.wait(
        lambda: (
            "kind=als" in browser.driver.current_url
            and "to_read=include" in browser.driver.current_url
        ),
        "the model and the toggle in the URL",
    )

    browser.radio("you-kind", "item kNN")
    browser.wait_text("#you-map-caption", "item kNN has no book vectors", timeout=60)
    # The address is written by its own callback: reload only once it names the new model.
    browser.wait(lambda: "kind=knn" in browser.driver.current_url, "knn in the URL")

    # The address and the tab's session keep the page: a reload shows the same view.
    browser.driver.refresh()
    browser.wait_for("#you-page")
    browser.wait_text("#you-kpis", "Books in the file", timeout=60)
    browser.wait_text("#you-recs-note", "item kNN run #", timeout=60)
    assert browser.driver.find_element(By.CSS_SELECTOR, "#you-to-read input").is_selected()

    browser.click("#you-forget")
    browser.wait_text("#you-report", "No export yet")
    browser.wait_text("#you-recs", "once an export")
    browser.idle()
    assert fingerprint(warehouse) == before
    browser.assert_no_console_errors()


def test_a_file_that_is_not_an_export_gets_a_notice(browser, tmp_path: Path) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_text("date,amount,note\n2024-01-02,12.50,groceries\n", encoding="utf-8")
    browser.open("/for-you")
    # The file chooser's path, this time: the same component as a drop.
    browser.wait_for("#you-upload input[type=file]").send_keys(str(notes))
    notice = browser.wait_text(
        "#you-report .notice-error", "not a Goodreads library export", timeout=60
    )
    assert notice.startswith("notes.csv: line 1:") and "no Book Id or Title column" in notice
    assert "Not read: notes.csv" in browser.wait_text("#you-file-name", "Not read")
    browser.wait_text("#you-recs", "once an export")
    assert "Traceback" not in browser.driver.page_source
    browser.assert_no_console_errors()


def test_a_large_export_is_read_and_one_over_the_cap_is_refused_with_a_notice(
    dashboard, warehouse: Path
) -> None:
    browser = dashboard(warehouse, max_upload_bytes=2 * 1024 * 1024)
    browser.open("/for-you")
    assert "2 MB at most" in browser.wait_text("#you-upload", "Drop")
    # About 1.9 MB: the request carrying it is over the 1 MB a callback may send.
    large = library(warehouse, padding=370)["text"]
    assert 1.8e6 < len(large) < 2 * 1024 * 1024
    drop(browser, large, "large.csv")
    browser.wait_text("#you-kpis", "Books in the file", timeout=90)
    assert browser.texts("#you-kpis .kpi-value")[:3] == ["386", "14", "372"]
    browser.wait(lambda: len(recommended(browser)) == 10, "ten recommendations", 60)

    drop(browser, "x" * (5 * 1024 * 1024 // 2), "huge.csv")
    notice = browser.wait_text("#you-report .notice-error", "more than a library export")
    assert notice == "huge.csv: 2.5 MB is more than a library export (2 MB at most)"
    browser.idle()
    # A refused request (413) would be a console error too.
    browser.assert_no_console_errors()

"""The For you page without a browser: an export read in memory, the match report, recommendations
with reasons, the map, bad files, and the one callback allowed a body over the 1 MB cap."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import fingerprint, reader_library
from test_dashboard import DashClient

from dashboards.app import DashboardSettings, create_app

NOT_AN_EXPORT = "date,amount,note\n2024-01-02,12.50,groceries\n"


@pytest.fixture(scope="module")
def warehouse(published_warehouse: Path) -> Path:
    return published_warehouse


@pytest.fixture(scope="module")
def app(warehouse: Path):
    return create_app(DashboardSettings(db_path=warehouse))


@pytest.fixture(scope="module")
def library(warehouse: Path) -> dict[str, Any]:
    """A reader's export of books in the matrix (by Goodreads id, one by ISBN-13 only), rated,
    read unrated and to-read, plus two books no catalogue has."""
    return reader_library(warehouse, last_by_isbn13=True)


def data_url(data: bytes | str, kind: str = "text/csv") -> str:
    raw = data.encode() if isinstance(data, str) else data
    return f"data:{kind};base64," + base64.b64encode(raw).decode()


def upload(client: DashClient, name: str, data: bytes | str) -> dict:
    out = client.call(
        "you-shelf.data", {"you-file.data": {"name": name, "contents": data_url(data)}}
    )
    return out["you-shelf"]["data"]


def test_an_export_is_matched_in_memory_and_recommended_from_with_reasons(
    app, warehouse: Path, library: dict
) -> None:
    before = fingerprint(warehouse)
    client = DashClient(app)
    assert '"you-page"' in client.render("/for-you")
    shelf = upload(client, "goodreads_library_export.csv", library["text"])
    assert shelf["rows"] == 16 and shelf["matched"] == 14 and shelf["n_unmatched"] == 2
    assert shelf["methods"] == {"goodreads_id": 13, "isbn13": 1}
    assert set(shelf["keys"]) == set(library["keys"]) and len(shelf["marks"]) == 14
    assert [u[1] for u in shelf["unmatched"]] == ["A Book Nobody Has", "Another Missing One"]

    report = json.dumps(client.call("you-report.children", {"you-shelf.data": shelf}))
    for text in ("Books in the file", "Goodreads book id", "ISBN-13", "A Book Nobody Has"):
        assert text in report, text
    assert "no book with this Goodreads id, title and author (and no ISBN)" in report

    for kind in ("mf", "als", "knn"):
        out = client.call(
            "you-recs.children",
            {"you-shelf.data": shelf, "you-kind.value": kind, "you-to-read.value": []},
        )
        recs = out["you-rec-keys"]["data"]
        assert recs["kind"] == kind and len(recs["keys"]) == 10
        assert not set(recs["keys"]) & set(library["keys"]), kind  # never a shelved book
        text = json.dumps(out["you-recs"]["children"])
        assert text.count("because ") == 10 and "you rated " in text and " stars" in text

        fig = client.call("you-map.figure", {"you-rec-keys.data": recs, "you-shelf.data": shelf})
        traces = fig["you-map"]["figure"]["data"]
        names = [t["name"] for t in traces]
        high = next(t for t in traces if t["name"].startswith("you rated 4-5"))
        star = next(t for t in traces if t["name"].startswith("recommended for you"))
        assert set(high["customdata"]) <= library["rated_high"], names
        if kind == "knn":  # no book vectors: the default map, with knn's recommendations on it
            assert "has no book vectors" in json.dumps(fig["you-map-caption"])
        assert set(star["customdata"]) <= set(recs["keys"]) and len(star["customdata"]) > 0
    assert fingerprint(warehouse) == before


def test_counting_the_to_read_shelf_changes_the_recommendations_but_never_lists_them(
    app, library: dict
) -> None:
    client = DashClient(app)
    shelf = upload(client, "export.csv", library["text"])
    keys = {}
    for flag in ([], ["include"]):
        out = client.call(
            "you-recs.children",
            {"you-shelf.data": shelf, "you-kind.value": "als", "you-to-read.value": flag},
        )
        keys[bool(flag)] = out["you-rec-keys"]["data"]["keys"]
        assert not set(keys[bool(flag)]) & library["to_read"]
        assert ("and to-read" in json.dumps(out["you-recs"]["children"])) is bool(flag)
    assert keys[True] != keys[False]


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("bank.csv", NOT_AN_EXPORT, "bank.csv: line 1: not a Goodreads library export"),
        ("empty.csv", "", "empty.csv: line 1: the file is empty"),
        ("latin1.csv", "Book Id,Title\n1,Caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        ("header.csv", "Book Id,Title\n", "the export has a header but no books"),
    ],
)
def test_a_file_that_is_not_an_export_gets_the_parsers_one_line_as_a_notice(
    app, name: str, data: str | bytes, message: str
) -> None:
    client = DashClient(app)
    shelf = upload(client, name, data)
    assert shelf["file"] == name and message in shelf["error"]
    out = client.call("you-report.children", {"you-shelf.data": shelf})
    report = json.dumps(out["you-report"]["children"])
    assert "notice-error" in report and message in report and "Traceback" not in report
    recs = client.call("you-recs.children", {"you-shelf.data": shelf, "you-kind.value": "mf"})
    assert "once an export" in json.dumps(recs["you-recs"]["children"])


def test_forged_uploads_and_sessions_are_notices_or_nothing(app) -> None:
    client = DashClient(app)
    for contents in ("not a data url", "data:text/csv;base64,@@@", "data:text/csv,plain"):
        out = client.call("you-shelf.data", {"you-file.data": {"name": "x", "contents": contents}})
        assert "not a file upload" in out["you-shelf"]["data"]["error"], contents
    out = client.call("you-shelf.data", {"you-file.data": {"forget": True}})
    assert out["you-shelf"]["data"] is None
    # A session whose keys and marks do not line up is no session at all.
    forged = {"file": "f", "rows": 2, "matched": 2, "books": 2, "n_unmatched": 0}
    for keys, marks in (([1, 2], "5"), ([1, "x"], "55"), ([1, 1], "55"), ([1, 2], "5z")):
        values = {
            "you-shelf.data": {**forged, "keys": keys, "marks": marks},
            "you-kind.value": "mf",
        }
        out = client.call("you-recs.children", values)
        assert "once an export" in json.dumps(out["you-recs"]["children"]), (keys, marks)
        out = client.call("you-report.children", {"you-shelf.data": values["you-shelf.data"]})
        assert "No export yet" in json.dumps(out["you-report"]["children"])


def test_settings_cap_the_upload_at_the_parsers_limit(tmp_path: Path) -> None:
    s = DashboardSettings(db_path=tmp_path / "w.duckdb")
    assert s.max_upload_bytes == 20 * 1024 * 1024 and s.max_body_bytes == 1_000_000
    assert s.upload_body_bytes == 4 * -(-s.max_upload_bytes // 3) + s.max_body_bytes
    for bad in (0, 21 * 1024 * 1024):
        with pytest.raises(ValueError):
            DashboardSettings(db_path=tmp_path, max_upload_bytes=bad)


def test_only_the_upload_callback_takes_a_body_over_the_callback_cap(
    warehouse: Path, library: dict
) -> None:
    cap = 2 * 1024 * 1024
    settings = DashboardSettings(db_path=warehouse, max_upload_bytes=cap)
    client = DashClient(create_app(settings))
    # An export of about 1.9 MB (long reviews of books no catalogue has) is a 2.6 MB request.
    text = reader_library(warehouse, last_by_isbn13=True, padding=370)["text"]
    assert 1.8e6 < len(text) < cap and len(data_url(text)) > settings.max_body_bytes
    shelf = upload(client, "big.csv", text)
    assert "error" not in shelf and shelf["matched"] == 14 and shelf["n_unmatched"] == 372
    # A file over the cap, which the browser would not have sent: the server's own message.
    shelf = upload(client, "huge.csv", "x" * (cap + 10))
    assert "more than a library export (2 MB at most)" in shelf["error"]

    def post(payload: dict) -> int:
        body = json.dumps(payload).encode()
        return client.client.post(
            "/_dash-update-component", data=body, content_type="application/json"
        ).status_code

    # The upload's callback takes a body up to upload_body_bytes (a forged value is no update)...
    assert (
        post(
            {
                "output": "you-shelf.data",
                "inputs": [{"id": "you-file", "property": "data", "value": "x" * 2_000_000}],
                "state": [],
                "outputs": {"id": "you-shelf", "property": "data"},
                "changedPropIds": ["you-file.data"],
            }
        )
        == 204
    )
    assert post({"output": "you-shelf.data", "pad": "x" * settings.upload_body_bytes}) == 413
    # ...every other callback keeps the 1 MB cap.
    for dep in client.deps:
        if dep["output"] != "you-shelf.data":
            assert post({"output": dep["output"], "pad": "x" * 1_100_000}) == 413, dep["output"]

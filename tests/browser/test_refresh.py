"""A refresh while the dashboard serves: zero failed responses, and the new run shows without a
restart."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from warehouse.db import open_for_reading

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# What rewrites the warehouse while the dashboard serves. Each `fit` publishes a new run and
# replaces the read snapshot, as `shelfwise refresh` will; swap in ("refresh",) once that command
# exists.
REFRESH = ("fit", "mf", "--no-tsne")
ROUNDS = 2


class Poller(threading.Thread):
    """Requests the dashboard's pages and callback endpoints over HTTP in a loop, recording every
    status."""

    def __init__(self, base: str, da_vinci: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.statuses: list[tuple[str, int]] = []
        self.run_ids: set[int] = set()
        deps = json.loads(self._fetch("/_dash-dependencies")[1])
        self.calls = {
            "router /": self._payload(
                deps,
                "_pages_content.children",
                {"_pages_location.pathname": "/", "_pages_location.search": ""},
            ),
            "router /models": self._payload(
                deps,
                "_pages_content.children",
                {"_pages_location.pathname": "/models", "_pages_location.search": ""},
            ),
            "router /embeddings": self._payload(
                deps,
                "_pages_content.children",
                {"_pages_location.pathname": "/embeddings", "_pages_location.search": ""},
            ),
            "header": self._payload(deps, "app-status.children", {"app-poll.n_intervals": 0}),
            "overview": self._payload(deps, "ovw-kpis.children", {"app-data-version.data": "poll"}),
            "models": self._payload(
                deps,
                "mdl-chart.figure",
                {"mdl-scope.value": "all", "app-data-version.data": "poll"},
            ),
            "neighbours": self._payload(
                deps,
                "nbr-columns.children",
                {"nbr-book.value": da_vinci, "app-data-version.data": "poll"},
            ),
            "recommendations": self._payload(
                deps,
                "nbr-recs.children",
                {
                    "nbr-favs.value": [da_vinci],
                    "nbr-fav-kind.value": "mf",
                    "app-data-version.data": "poll",
                },
            ),
        }

    @staticmethod
    def _payload(deps: list[dict], output: str, values: dict) -> dict:
        dep = next(d for d in deps if output in d["output"] and not d.get("clientside_function"))
        outs = [o.rsplit(".", 1) for o in dep["output"].strip(".").split("...")]
        value = lambda d: values.get(f"{d['id']}.{d['property']}")  # noqa: E731
        return {
            "output": dep["output"],
            "outputs": [{"id": i, "property": p} for i, p in outs]
            if len(outs) > 1
            else {"id": outs[0][0], "property": outs[0][1]},
            "inputs": [{**d, "value": value(d)} for d in dep["inputs"]],
            "state": [{**d, "value": value(d)} for d in dep["state"]],
            "changedPropIds": [f"{d['id']}.{d['property']}" for d in dep["inputs"]][:1],
        }

    def _fetch(self, path: str, body: dict | None = None) -> tuple[int, str]:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError as exc:  # refused, reset, timed out: a failed response too
            return -1, str(exc)

    def run(self) -> None:
        pages = ("/", "/models", "/neighbours", "/_dash-layout", "/_dash-dependencies")
        while not self.stop.is_set():
            for path in pages:
                self.statuses.append((path, self._fetch(path)[0]))
            for name, payload in self.calls.items():
                status, body = self._fetch("/_dash-update-component", payload)
                self.statuses.append((name, status))
                if name == "overview" and status == 200:
                    self.run_ids |= {int(r) for r in re.findall(r'"data-run-id": ?"(\d+)"', body)}
                time.sleep(0.02)


def test_refresh_while_the_dashboard_serves(dashboard, cli, private_warehouse: Path) -> None:
    db = private_warehouse
    with open_for_reading(db) as con:
        before = con.execute("select max(run_id) from models.runs").fetchall()[0][0]
        da_vinci = con.execute(
            "select book_key from core.books where starts_with(title, 'The Da Vinci Code')"
        ).fetchall()[0][0]
    browser = dashboard(db, poll_seconds=0.5)
    browser.open("/")
    browser.wait_for(f'#ovw-runs-table tr[data-run-id="{before}"]')
    browser.driver.execute_script("window.__not_reloaded = true")
    browser.responses()  # start counting from here

    poller = Poller(browser.base, da_vinci)
    poller.start()
    try:
        for _ in range(ROUNDS):
            cli(*REFRESH, db=db)
        with open_for_reading(db) as con:
            newest = con.execute("select max(run_id) from models.runs where published").fetchall()[
                0
            ][0]
        assert newest > before
        # The open page shows the new run by itself: no reload, no restart.
        browser.wait_text("#app-status", f"latest run #{newest}", timeout=30)
        browser.wait_for(f'#ovw-runs-table tr[data-run-id="{newest}"]', timeout=30)
        assert browser.driver.execute_script("return window.__not_reloaded === true")
        browser.wait(
            lambda: newest in poller.run_ids,
            f"run #{newest} in the polled overview callback",
            timeout=30,
        )
    finally:
        poller.stop.set()
        poller.join(timeout=60)

    failed = [(what, status) for what, status in poller.statuses if status != 200]
    assert len(poller.statuses) > 50, f"the poller made only {len(poller.statuses)} requests"
    assert not failed, (
        f"{len(failed)} of {len(poller.statuses)} polled responses failed: {failed[:10]}"
    )
    browser_failed = [
        (url, status) for url, status in browser.responses() if status is None or status >= 400
    ]
    assert not browser_failed, f"the browser saw failed responses: {browser_failed[:10]}"
    browser.assert_no_console_errors()

"""Server time of every dashboard page and callback on one warehouse, through Flask's test client;
optionally many clients at once against the production server and the previous one.

Usage:
  python benchmarks/bench_dashboard.py --db PATH [--repeats 5] [--clients 16 --seconds 30]
PATH: a warehouse with published runs (full goodbooks with every kind, or a UCSD-size one with a
few), its read snapshot ``PATH.read`` written. Target (issue 14): every callback median <= 1000 ms
on full goodbooks and on a 100k-book UCSD-size warehouse; the exit status is 1 when one is over.

With ``--clients N`` the requests timed one by one are then replayed by N client threads at once,
for ``--seconds`` each, against waitress (``shelfwise dashboard``: 8 threads) and against the
previous server, werkzeug's threaded development server (what ``app.run`` used), each in its own
process, one after the other; the report gives requests per second and latency percentiles.

The app is built with ``create_app`` and called the way the browser calls it: a GET of each page,
the Pages router callback that runs each page's ``layout()``, and a POST to
``/_dash-update-component`` for each page's main interactions, with inputs taken from the
warehouse (the layouts' initial values, what the typeaheads offer, the published runs). Times are
the whole request in process (callback, queries, figure building, JSON), not the network or the
browser's drawing. Every callback opens its own read-only connection, as in production.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine

from dashboards import queries
from dashboards.app import DashboardSettings, create_app
from warehouse.db import snapshot_path

TARGET_MS = 1000.0
PAGES = ("/", "/embeddings", "/biases", "/neighbours", "/users", "/models", "/compare")


@dataclass
class Timing:
    name: str
    ms: list[float] = field(default_factory=list)
    size: int = 0
    note: str = ""


class Bench:
    """Calls an app's pages and callbacks like the browser and records how long each took."""

    def __init__(self, app, repeats: int) -> None:
        self.client = app.server.test_client()
        self.repeats = repeats
        self.deps = self.client.get("/_dash-dependencies").get_json()
        self.timings: list[Timing] = []
        # (method, path, JSON body or None) of every request timed, for the concurrency replay.
        self.requests: list[tuple[str, str, bytes | None]] = []

    def _timed(self, name: str, request: Callable[[], Any]) -> Any:
        timing = Timing(name)
        response = None
        for _ in range(self.repeats):
            start = time.perf_counter()
            response = request()
            body = response.get_data()  # the whole body, as the browser would receive it
            timing.ms.append((time.perf_counter() - start) * 1000)
            if response.status_code not in (200, 204):
                raise SystemExit(f"{name}: HTTP {response.status_code}: {body[:500]!r}")
        timing.size = len(body)
        text = body.decode("utf-8", "replace")
        if "notice-warn" in text or "notice-error" in text:
            timing.note = "answered with a warning notice"
        self.timings.append(timing)
        return response

    def get(self, path: str) -> None:
        self.requests.append(("GET", path, None))
        self._timed(f"GET {path}", lambda: self.client.get(path))

    def dep(self, output: str, first_input: str | None = None) -> dict:
        """The server-side callback whose outputs include ``output`` (and whose first input is
        ``first_input``)."""
        for d in self.deps:
            if d.get("clientside_function"):
                continue
            outs = [o for o in d["output"].strip(".").split("...")]
            if not any(o == output or o.split("@")[0] == output for o in outs):
                continue
            if (
                first_input
                and f"{d['inputs'][0]['id']}.{d['inputs'][0]['property']}" != first_input
            ):
                continue
            return d
        raise SystemExit(
            f"no callback outputs {output} (first input {first_input}); the app changed?"
        )

    def call(
        self,
        name: str,
        output: str,
        values: dict[str, Any],
        changed: list[str] | None = None,
        *,
        first_input: str | None = None,
    ) -> dict:
        """POST one callback; ``values`` maps "id.prop" -> value; ``changed`` defaults to every
        input given."""
        d = self.dep(output, first_input)
        outs = [o.rsplit(".", 1) for o in d["output"].strip(".").split("...")]
        keys = [f"{i['id']}.{i['property']}" for i in d["inputs"]]
        payload = {
            "output": d["output"],
            "outputs": [{"id": i, "property": p} for i, p in outs]
            if len(outs) > 1
            else {"id": outs[0][0], "property": outs[0][1]},
            "inputs": [
                {**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in d["inputs"]
            ],
            "state": [{**s, "value": values.get(f"{s['id']}.{s['property']}")} for s in d["state"]],
            "changedPropIds": changed if changed is not None else [k for k in keys if k in values],
        }
        self.requests.append(("POST", "/_dash-update-component", json.dumps(payload).encode()))
        response = self._timed(
            name, lambda: self.client.post("/_dash-update-component", json=payload)
        )
        if response.status_code == 204:
            return {}
        return response.get_json()["response"]

    def layout(self, path: str, search: str = "") -> dict:
        """The router callback for ``path`` (runs the page's layout()); the layout tree."""
        out = self.call(
            f"layout {path}{search}",
            "_pages_content.children",
            {"_pages_location.pathname": path, "_pages_location.search": search},
        )
        return out["_pages_content"]["children"]


def find(tree: Any, component_id: str) -> dict | None:
    """The props of the component with this id in a serialised layout tree."""
    if isinstance(tree, dict):
        props = tree.get("props")
        if isinstance(props, dict) and props.get("id") == component_id:
            return props
        for value in tree.values():
            if (found := find(value, component_id)) is not None:
                return found
    elif isinstance(tree, list):
        for value in tree:
            if (found := find(value, component_id)) is not None:
                return found
    return None


def option_values(options: list[dict] | None) -> list:
    return [o["value"] for o in options or [] if not o.get("disabled")]


def run(db: Path, repeats: int) -> Bench:
    app = create_app(DashboardSettings(db_path=db))
    b = Bench(app, repeats)
    version = queries.data_version(db)

    for path in PAGES:
        b.get(path)
    b.call("shell: poll (header status)", "app-data-version.data", {"app-poll.n_intervals": None})

    # Overview: everything on the page comes from one callback.
    b.layout("/")
    b.call("overview: load", "ovw-kpis.children", {"app-data-version.data": version})

    # Embeddings: every model, run capabilities, each stored projection x each offered colour,
    # custom axes, search matches, a chosen book, a selection (table, CSV, isolate).
    tree = b.layout("/embeddings")
    kinds = option_values(find(tree, "emb-kind")["options"])
    run_of: dict[str, int] = {}
    no_poles = {f"emb-{n}.value": None for n in ("xa", "xb", "ya", "yb")}
    map_inputs = {"emb-isolate.value": [], "emb-selection.data": [], "emb-find.value": ""}

    def draw(name: str, values: dict) -> dict:
        # As the browser sends it when the run, projection or colour changes.
        return b.call(
            name,
            "emb-map.figure",
            {**no_poles, **map_inputs, "emb-selected.data": None, **values},
            ["emb-run.value", "emb-method.value", "emb-colour.value", "emb-isolate.value"],
            first_input="emb-run.value",
        )

    overlay_at = None
    for kind in kinds:
        out = b.call(
            f"embeddings: runs of {kind}",
            "emb-run.options",
            {
                "emb-kind.value": kind,
                "app-data-version.data": version,
                "emb-run.value": None,
                "emb-run.options": None,
            },
        )
        run_id = out["emb-run"]["value"]
        run_of[kind] = run_id
        caps = b.call(
            f"embeddings: capabilities of {kind} run",
            "emb-method.options",
            {"emb-run.value": run_id, "emb-method.value": "tsne", "emb-colour.value": "tag"},
        )
        methods = [m for m in option_values(caps["emb-method"]["options"]) if m != "custom"]
        colours = option_values(caps["emb-colour"]["options"])
        for method in methods:
            for colour in colours:
                out = draw(
                    f"embeddings: map {kind} {method} by {colour}",
                    {
                        "emb-run.value": run_id,
                        "emb-method.value": method,
                        "emb-colour.value": colour,
                    },
                )
                overlay_at = overlay_at if overlay_at is not None else out["emb-overlay-at"]["data"]
        with queries.reading(db) as con:
            tags = [
                r[0]
                for r in con.execute(
                    """select unnest(b.top_tags) as tag, count(*) as n from models.run_books rb
                       join core.books b using (book_key) where rb.run_id = ?
                       group by tag order by n desc, tag limit 4""",
                    [run_id],
                ).fetchall()
            ]
        poles = {
            f"emb-{n}.value": f"tag:{t}"
            for n, t in zip(("xa", "xb", "ya", "yb"), tags, strict=False)
        }
        custom = {"emb-run.value": run_id, "emb-method.value": "custom", "emb-colour.value": "tag"}
        draw(
            f"embeddings: custom axes {kind}: 2 tags, y = PCA orthogonal",
            {
                **custom,
                "emb-xa.value": poles["emb-xa.value"],
                "emb-xb.value": poles["emb-xb.value"],
            },
        )
        draw(f"embeddings: custom axes {kind}: 2 x 2 tags", {**custom, **poles})

    emb_kind = kinds[0]
    emb_run = run_of[emb_kind]
    emb_method = option_values(
        b.call(
            "embeddings: capabilities (again)",
            "emb-method.options",
            {"emb-run.value": emb_run, "emb-method.value": "tsne", "emb-colour.value": "tag"},
        )["emb-method"]["options"]
    )[0]
    view = {"emb-run.value": emb_run, "emb-method.value": emb_method, "emb-colour.value": "tag"}
    b.call(
        "embeddings: pole typeahead 'fan'",
        "emb-xa.options",
        {"emb-xa.search_value": "fan", "emb-xa.value": None, "emb-run.value": emb_run},
    )
    out = b.call(
        "embeddings: search 'da vinci'",
        "emb-search.options",
        {
            "emb-search.search_value": "da vinci",
            "emb-search.value": None,
            "emb-map.clickData": None,
            "emb-run.value": emb_run,
        },
        ["emb-search.search_value"],
    )
    found = option_values(out["emb-search"]["options"])
    if not found:  # a generated UCSD catalogue: the most-rated book instead
        out = b.call(
            "embeddings: search '' (most-rated books)",
            "emb-search.options",
            {
                "emb-search.search_value": "",
                "emb-search.value": None,
                "emb-map.clickData": None,
                "emb-run.value": emb_run,
            },
            ["emb-search.search_value"],
        )
        found = option_values(out["emb-search"]["options"])
    book = int(found[0])
    b.call(
        "embeddings: choose the book",
        "emb-search.options",
        {
            "emb-search.search_value": "",
            "emb-search.value": book,
            "emb-map.clickData": None,
            "emb-run.value": emb_run,
        },
        ["emb-search.value", "emb-search.search_value"],
    )
    b.call(
        "embeddings: click a point",
        "emb-search.options",
        {
            "emb-search.search_value": None,
            "emb-search.value": None,
            "emb-run.value": emb_run,
            "emb-map.clickData": {"points": [{"customdata": [book]}]},
        },
        ["emb-map.clickData"],
    )
    overlays = {**no_poles, **view, "emb-overlay-at.data": overlay_at, "emb-isolate.value": []}
    b.call(
        "embeddings: overlays for the chosen book",
        "emb-map.figure",
        {**overlays, "emb-selected.data": book, "emb-selection.data": [], "emb-find.value": ""},
        ["emb-selected.data"],
        first_input="emb-selected.data",
    )
    for text in ("dan brown", "the"):
        b.call(
            f"embeddings: mark every match of '{text}'",
            "emb-map.figure",
            {
                **overlays,
                "emb-selected.data": None,
                "emb-selection.data": [],
                "emb-find.value": text,
            },
            ["emb-find.value"],
            first_input="emb-selected.data",
        )
    with queries.reading(db) as con:
        points, _ = queries.projection_points(con, emb_run, emb_method, "tag", 1000)
    selection = points["book_key"].to_list()
    b.call(
        f"embeddings: selection overlay ({len(selection):,} books)",
        "emb-map.figure",
        {
            **overlays,
            "emb-selected.data": None,
            "emb-selection.data": selection,
            "emb-find.value": "",
        },
        ["emb-selection.data"],
        first_input="emb-selected.data",
    )
    b.call(
        f"embeddings: selection table ({len(selection):,} books)",
        "emb-selection-table.children",
        {"emb-selection.data": selection, "emb-run.value": emb_run},
    )
    b.call(
        f"embeddings: selection CSV ({len(selection):,} books)",
        "emb-download.data",
        {"emb-csv.n_clicks": 1, "emb-selection.data": selection, "emb-run.value": emb_run},
    )
    draw(
        f"embeddings: isolate {len(selection):,} books and their neighbours",
        {**view, "emb-isolate.value": ["on"], "emb-selection.data": selection},
    )
    b.call(
        "embeddings: chosen book panel",
        "emb-detail.children",
        {"emb-selected.data": book, "emb-run.value": emb_run},
    )
    b.layout("/embeddings", f"?book={book}")
    b.layout(
        "/embeddings",
        f"?kind={emb_kind}&run={emb_run}&proj=custom&xa=tag%3A{tags[0]}&xb=tag%3A{tags[1]}&q=the",
    )

    # Biases: each rating model at the page's default minimum, and at the highest step.
    tree = b.layout("/biases")
    bias_kinds = option_values(find(tree, "bia-kind")["options"])
    steps = find(tree, "bia-steps")["data"]
    default = find(tree, "bia-min")["value"]
    for kind in bias_kinds:
        for step in sorted({default, len(steps) - 1}):
            b.call(
                f"biases: {kind}, min {steps[step]:,} ratings",
                "bia-top.figure",
                {
                    "bia-kind.value": kind,
                    "bia-min.value": step,
                    "bia-steps.data": steps,
                    "app-data-version.data": version,
                },
            )

    # Neighbours: the typeahead, one book under every model, recommendations from three favourites.
    b.layout("/neighbours")
    out = b.call(
        "neighbours: search 'da vinci'",
        "nbr-book.options",
        {"nbr-book.search_value": "da vinci", "nbr-book.value": None},
    )
    nbr_book = int((option_values(out["nbr-book"]["options"]) or [book])[0])
    b.call(
        "neighbours: the book under every model",
        "nbr-columns.children",
        {"nbr-book.value": nbr_book, "app-data-version.data": version},
    )
    out = b.call(
        "neighbours: favourites search 'harry potter'",
        "nbr-favs.options",
        {"nbr-favs.search_value": "harry potter", "nbr-favs.value": [nbr_book]},
    )
    favourites = list(
        dict.fromkeys([nbr_book, *(int(v) for v in option_values(out["nbr-favs"]["options"]))])
    )[:3]
    for kind in kinds:
        b.call(
            f"neighbours: 3 favourites under {kind}",
            "nbr-recs.children",
            {
                "nbr-favs.value": favourites,
                "nbr-fav-kind.value": kind,
                "app-data-version.data": version,
            },
        )
    b.layout("/neighbours", f"?book={nbr_book}")

    # Users: the typeahead, a random reader, and the most active reader found under every model.
    tree = b.layout("/users")
    user_kind = find(tree, "usr-kind")["value"]
    out = b.call(
        "users: search '1'",
        "usr-user.options",
        {
            "usr-user.search_value": "1",
            "usr-random.n_clicks": 0,
            "usr-user.value": None,
            "usr-kind.value": user_kind,
        },
        ["usr-user.search_value"],
    )
    user = int(option_values(out["usr-user"]["options"])[0])
    b.call(
        "users: pick a random reader",
        "usr-user.options",
        {
            "usr-user.search_value": None,
            "usr-random.n_clicks": 1,
            "usr-user.value": None,
            "usr-kind.value": user_kind,
        },
        ["usr-random.n_clicks"],
    )
    for kind in kinds:
        b.call(
            f"users: ratings + recommendations under {kind}",
            "usr-rated.children",
            {"usr-user.value": user, "usr-kind.value": kind, "app-data-version.data": version},
        )
    b.layout("/users", f"?user={user}")

    # Compare: a book under two runs, and every book's overlap between them.
    tree = b.layout("/compare")
    run_a, run_b = find(tree, "cmp-a")["value"], find(tree, "cmp-b")["value"]
    for name, (a, b_run) in {
        "default pair": (run_a, run_b),
        f"{kinds[0]} vs {kinds[-1]}": (run_of[kinds[0]], run_of[kinds[-1]]),
    }.items():
        b.call(
            f"compare: a book under two runs ({name})",
            "cmp-lists.children",
            {
                "cmp-book.value": book,
                "cmp-a.value": a,
                "cmp-b.value": b_run,
                "app-data-version.data": version,
            },
        )
        b.call(
            f"compare: overlap of every book ({name})",
            "cmp-overlap.figure",
            {"cmp-a.value": a, "cmp-b.value": b_run, "app-data-version.data": version},
        )
    b.layout("/compare", f"?a={run_a}&b={run_b}&book={book}")

    # Models: metrics of the latest runs and of every run.
    b.layout("/models")
    for scope in ("latest", "all"):
        b.call(
            f"models: {scope} runs",
            "mdl-chart.figure",
            {"mdl-scope.value": scope, "app-data-version.data": version},
        )
    return b


# One dashboard server in its own process: "waitress" (shelfwise dashboard) or "werkzeug" (the
# threaded development server app.run used before), printing "ready" once it listens.
SERVER = """
import logging, sys
from dashboards.app import DashboardSettings, create_app
kind, db, port, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = create_app(DashboardSettings(db_path=db, poll_seconds=3600))
logging.getLogger("werkzeug").setLevel(logging.ERROR)
logging.getLogger("waitress").setLevel(logging.ERROR)
if kind == "waitress":
    from dashboards.server import make_server
    server = make_server(app, "127.0.0.1", port, threads=threads)
    print("ready", flush=True)
    server.run()
else:
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    print("ready", flush=True)
    server.serve_forever()
"""


@dataclass
class Load:
    server: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_test(
    db: Path, server: str, requests: list, clients: int, seconds: float, threads: int
) -> Load:
    """``clients`` threads replay ``requests`` (each from its own offset) for ``seconds`` against
    ``server`` started in a child process; every latency recorded."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, server, str(db), str(port), str(threads)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        if child.stdout is None or child.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {server} server did not start")

        def one(con: http.client.HTTPConnection, method: str, path: str, body: bytes | None):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            con.request(method, path, body=body, headers=headers)
            response = con.getresponse()
            response.read()
            return response.status

        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for method, path, body in requests:  # warm-up: imports, caches, first connections
            one(warm, method, path, body)
        warm.close()
        result = Load(server, seconds)
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def client(offset: int) -> None:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            i = offset
            while time.perf_counter() < stop:
                method, path, body = requests[i % len(requests)]
                i += 1
                start = time.perf_counter()
                try:
                    status = one(con, method, path, body)
                except (OSError, http.client.HTTPException):
                    con.close()
                    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    status = 0
                took = time.perf_counter() - start
                with lock:
                    if status in (200, 204):
                        result.latencies.append(took)
                    else:
                        result.failures += 1
            con.close()

        workers = [
            threading.Thread(target=client, args=(k * len(requests) // clients,))
            for k in range(clients)
        ]
        started = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        result.seconds = time.perf_counter() - started
        return result
    finally:
        child.terminate()
        child.wait(timeout=30)


def load_report(loads: list[Load], clients: int, n_requests: int, threads: int) -> None:
    print(
        f"\n{clients} concurrent clients, each replaying the {n_requests} requests above from its "
        f"own offset (keep-alive); waitress with {threads} threads; load average before: "
        f"{os.getloadavg()[0]:.2f}\n"
    )
    print("| round | server | requests | requests/s | median ms | p95 ms | max ms | failed |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(loads):
        print(
            f"| {i // 2 + 1} | {r.server} | {len(r.latencies):,} | "
            f"{len(r.latencies) / r.seconds:,.1f} | {r.pct(0.5):,.0f} | {r.pct(0.95):,.0f} | "
            f"{r.pct(1.0):,.0f} | {r.failures} |"
        )
    print("\nAll rounds together (medians of the rounds' requests/s; latencies pooled):\n")
    print("| server | requests/s (median of rounds) | median ms | p95 ms | failed |")
    print("|---|---:|---:|---:|---:|")
    for server in ("waitress", "werkzeug"):
        mine = [r for r in loads if r.server == server]
        pooled = Load(server, sum(r.seconds for r in mine))
        pooled.latencies = [x for r in mine for x in r.latencies]
        rate = statistics.median(len(r.latencies) / r.seconds for r in mine)
        print(
            f"| {server} | {rate:,.1f} | {pooled.pct(0.5):,.0f} | {pooled.pct(0.95):,.0f} | "
            f"{sum(r.failures for r in mine)} |"
        )


def report(timings: list[Timing], db: Path, repeats: int) -> int:
    print(f"{machine()}")
    print(
        f"warehouse: {db} (reads {snapshot_path(db) if snapshot_path(db).exists() else db}); "
        f"{repeats} repeats each; target: median <= {TARGET_MS:.0f} ms\n"
    )
    print("| callback | median ms | max ms | response bytes | |")
    print("|---|---:|---:|---:|---|")
    slow = 0
    for t in timings:
        med = statistics.median(t.ms)
        flag = f"**over {TARGET_MS / 1000:.0f} s**" if med > TARGET_MS else ""
        slow += med > TARGET_MS
        print(
            f"| {t.name} | {med:,.0f} | {max(t.ms):,.0f} | {t.size:,} | "
            f"{'; '.join(x for x in (flag, t.note) if x)} |"
        )
    worst = max(timings, key=lambda t: statistics.median(t.ms))
    print(
        f"\n{len(timings)} requests timed; "
        f"slowest median: {worst.name} ({statistics.median(worst.ms):,.0f} ms); "
        f"{slow} over {TARGET_MS:.0f} ms."
    )
    return 1 if slow else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument(
        "--db",
        type=Path,
        required=True,
        help="warehouse file (its read snapshot <db>.read is what is read)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="requests per callback; the max includes the first (cold) one",
    )
    ap.add_argument(
        "--clients", type=int, default=0, help="then replay with this many clients at once"
    )
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each load run")
    ap.add_argument("--rounds", type=int, default=3, help="load runs of each server, alternating")
    ap.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    args = ap.parse_args()
    if queries.data_version(args.db) is None:
        raise SystemExit(f"no warehouse at {args.db}")
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bench = run(args.db, args.repeats)
    status = report(bench.timings, args.db, args.repeats)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.clients:
        # Rounds alternate the two servers, so a change in the machine's load hits both alike.
        loads = [
            load_test(args.db, server, bench.requests, args.clients, args.seconds, args.threads)
            for _ in range(args.rounds)
            for server in ("waitress", "werkzeug")
        ]
        load_report(loads, args.clients, len(bench.requests), args.threads)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.exit(status)


if __name__ == "__main__":
    main()

"""Server time of every dashboard page and callback on one warehouse, through Flask's test client.

Usage:
  python benchmarks/bench_dashboard.py --db PATH [--repeats 5]
PATH: a full-size goodbooks warehouse with published svd/als/mf/baseline runs, evaluated
(``shelfwise evaluate --db PATH`` stores the metrics and writes the read snapshot ``PATH.read``).
Target (issue: "callbacks answer within 1 s on full goodbooks"): every median <= 1000 ms; the exit
status is 1 when one is over.

The app is built with ``create_app`` and called the way the browser calls it: a GET of each page,
the Pages router callback that runs each page's ``layout()``, and a POST to
``/_dash-update-component`` for each page's main interactions, with inputs taken from the
warehouse (the layouts' initial values, what the typeaheads offer, the published runs). Times are
the whole request in process (callback, queries, figure building, JSON), not the network or the
browser's drawing. Every callback opens its own read-only connection, as in production.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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
PAGES = ("/", "/embeddings", "/biases", "/neighbours", "/users", "/models")


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


def run(db: Path, repeats: int) -> list[Timing]:
    app = create_app(DashboardSettings(db_path=db))
    b = Bench(app, repeats)
    version = queries.data_version(db)

    for path in PAGES:
        b.get(path)
    b.call("shell: poll (header status)", "app-data-version.data", {"app-poll.n_intervals": None})

    # Overview: everything on the page comes from one callback.
    b.layout("/")
    b.call("overview: load", "ovw-kpis.children", {"app-data-version.data": version})

    # Embeddings: every model, run capabilities, each stored projection x each offered colour.
    tree = b.layout("/embeddings")
    kinds = option_values(find(tree, "emb-kind")["options"])
    run_of: dict[str, int] = {}
    highlight_at = None
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
        methods = option_values(caps["emb-method"]["options"])
        colours = option_values(caps["emb-colour"]["options"])
        for method in methods:
            for colour in colours:
                out = b.call(
                    f"embeddings: map {kind} {method} by {colour}",
                    "emb-map.figure",
                    {
                        "emb-run.value": run_id,
                        "emb-method.value": method,
                        "emb-colour.value": colour,
                        "emb-selected.data": None,
                    },
                    first_input="emb-run.value",
                )
                if kind == kinds[0] and method == methods[0]:
                    highlight_at = out["emb-highlight-at"]["data"]
    emb_run = run_of[kinds[0]]
    emb_method = option_values(
        b.call(
            "embeddings: capabilities (again)",
            "emb-method.options",
            {"emb-run.value": emb_run, "emb-method.value": "tsne", "emb-colour.value": "tag"},
        )["emb-method"]["options"]
    )[0]
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
    if not found:
        raise SystemExit("searching 'da vinci' found no book: is this a goodbooks warehouse?")
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
    b.call(
        "embeddings: highlight the book",
        "emb-map.figure",
        {
            "emb-selected.data": book,
            "emb-run.value": emb_run,
            "emb-method.value": emb_method,
            "emb-highlight-at.data": highlight_at,
        },
        first_input="emb-selected.data",
    )
    b.call(
        "embeddings: chosen book panel",
        "emb-detail.children",
        {"emb-selected.data": book, "emb-run.value": emb_run},
    )
    b.layout("/embeddings", f"?book={book}")

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
    nbr_book = int(option_values(out["nbr-book"]["options"])[0])
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

    # Models: metrics of the latest runs and of every run.
    b.layout("/models")
    for scope in ("latest", "all"):
        b.call(
            f"models: {scope} runs",
            "mdl-chart.figure",
            {"mdl-scope.value": scope, "app-data-version.data": version},
        )
    return b.timings


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
    args = ap.parse_args()
    if queries.data_version(args.db) is None:
        raise SystemExit(f"no warehouse at {args.db}")
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    timings = run(args.db, args.repeats)
    sys.exit(report(timings, args.db, args.repeats))


if __name__ == "__main__":
    main()

"""Fit time and peak memory of every model kind, side by side, each in a fresh process.

Usage:
  python benchmarks/bench_kinds.py                      # full goodbooks (generated), every kind
  python benchmarks/bench_kinds.py --source ucsd --data benchmarks/out/ucsd-N --kinds knn,ease

Builds (or reuses, with --reuse) a warehouse from the raw folder (load + transform through the
CLI), then fits and publishes each kind with the registry's defaults (or the warehouse's tuned
values), in registry order so the blends find their components, each in its own worker process
running ``fit_and_publish`` exactly as ``shelfwise fit`` and ``refresh`` do. The worker times the
phases through the fit's progress messages (fit, neighbours, t-SNE map, publish) and samples its
own RSS (``/proc/self/statm``, every 20 ms) so the fit's peak is told apart from the process's.

A kind that refuses the matrix (ease above ``max_books``) is reported with its one-line error, as
`shelfwise fit` prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
CLI = [sys.executable, "-m", "shelfwise.cli", "-q"]
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**30


class Sampler:
    """Peak RSS since the last ``reset``, sampled on a thread."""

    def __init__(self, every: float = 0.02) -> None:
        self.peak = rss_gb()
        self._maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak = max(self.peak, rss_gb())

    def reset(self) -> float:
        """The peak since the last reset; start a new interval at the current RSS.

        A C call holding the GIL can hide a short peak from the thread, so a rise of the
        process's ``ru_maxrss`` during the interval counts too."""
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        peak = max(self.peak, rss_gb(), maxrss if maxrss > self._maxrss else 0.0)
        self.peak, self._maxrss = rss_gb(), maxrss
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def worker(kind: str, db: Path, tsne: bool, neighbours: int) -> None:
    """Fit and publish one kind; print one JSON line of phase seconds and peaks."""
    sys.path.insert(0, str(ROOT))
    from base.config import PublishConfig
    from base.errors import ShelfwiseError
    from shelfwise.pipeline.fit import fit_and_publish
    from shelfwise.pipeline.tune import params_for
    from warehouse import store
    from warehouse.db import writer

    sampler = Sampler()
    phases: list[tuple[str, float, float]] = []  # (phase, seconds, peak GB)
    mark = [("read ratings", time.perf_counter())]

    def step(message: str) -> None:
        phase = message.split(": ", 1)[1] if ": " in message else message
        if phase.startswith("iteration"):
            return
        name = (
            "fit"
            if phase.startswith("fitting")
            else "neighbours + PCA"
            if "neighbours" in phase
            else "t-SNE"
            if "t-SNE" in phase
            else "publish"
            if phase.startswith("publishing")
            else phase
        )
        now = time.perf_counter()
        label, since = mark[0]
        phases.append((label, now - since, sampler.reset()))
        mark[0] = (name, now)

    start = time.perf_counter()
    result: dict = {"kind": kind}
    try:
        with writer(db) as con:
            data = store.read_ratings(con)
            result["shape"] = list(data.shape)
            result["train"] = int(data.train.nnz)
            params = params_for(con, kind)
            run_id = fit_and_publish(
                con,
                kind,
                params,
                PublishConfig(neighbours=neighbours, tsne=tsne, keep_runs=1),
                data=data,
                step=step,
            )
            label, since = mark[0]
            phases.append((label, time.perf_counter() - since, sampler.reset()))
            result["run_seconds"] = con.execute(
                "select seconds from models.runs where run_id = ?", [run_id]
            ).fetchall()[0][0]
    except ShelfwiseError as exc:
        result["error"] = str(exc)
    # The writer copies the file to its read snapshot on exit: part of a fit's cost.
    label, since = mark[0]
    if "error" not in result:
        phases.append(("snapshot copy", time.perf_counter() - since, sampler.reset()))
    sampler.stop()
    result["phases"] = phases
    result["wall"] = time.perf_counter() - start
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(result), flush=True)


def run_worker(kind: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--db",
        str(args.db),
        "--neighbours",
        str(args.neighbours),
        "--tsne" if args.tsne else "--no-tsne",
    ]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"kind": kind, "error": f"worker exit {proc.returncode}", "process_wall": wall}
    result = json.loads(lines[-1][len("RESULT ") :])
    result["process_wall"] = wall
    result["load_before"] = load
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--worker", metavar="KIND", help=argparse.SUPPRESS)
    ap.add_argument("--source", choices=["goodbooks", "ucsd"], default="goodbooks")
    ap.add_argument("--data", type=Path, default=OUT / "goodbooks-full")
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="keep an existing warehouse at --db")
    ap.add_argument("--kinds", default=None, help="comma-separated (default: every fittable kind)")
    ap.add_argument("--tsne", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--neighbours", type=int, default=50)
    args = ap.parse_args()
    args.db = args.db or OUT / f"kinds-{args.source}.duckdb"
    if args.worker:
        worker(args.worker, args.db, args.tsne, args.neighbours)
        return

    sys.path.insert(0, str(ROOT))
    from base.registry import fittable
    from benchmarks.common import machine, timed

    print(machine(), flush=True)
    kinds = args.kinds.split(",") if args.kinds else list(fittable())
    if not (args.reuse and args.db.exists()):
        for p in (args.db, Path(f"{args.db}.wal"), Path(f"{args.db}.read")):
            p.unlink(missing_ok=True)
        wall, rss = timed([*CLI, "load", args.source, str(args.data), "--db", str(args.db)])
        print(f"load: {wall:.1f}s, peak RSS {rss:.2f} GB", flush=True)
        transform = ["transform", "--db", str(args.db)]
        if args.source != "goodbooks":
            transform += ["--source", args.source]
        wall, rss = timed([*CLI, *transform])
        print(f"transform: {wall:.1f}s, peak RSS {rss:.2f} GB", flush=True)

    results = []
    for kind in kinds:
        r = run_worker(kind, args)
        results.append(r)
        print(json.dumps(r), flush=True)

    shape = next((r["shape"] for r in results if "shape" in r), None)
    if shape:
        train = next(r["train"] for r in results if "train" in r)
        print(f"\nMatrix {shape[0]:,} users x {shape[1]:,} books, {train:,} train ratings.")
    print(
        "\n| kind | fit s | fit peak RSS GB | neighbours + maps s | publish + snapshot s "
        "| process wall s | process peak RSS GB | load (1 min) before |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['kind']} | refused: {r['error']} | | | | {r['process_wall']:.1f} | | |")
            continue
        ph = {}
        peaks = {}
        for name, seconds, peak in r["phases"]:
            ph[name] = ph.get(name, 0.0) + seconds
            peaks[name] = max(peaks.get(name, 0.0), peak)
        maps = ph.get("neighbours + PCA", 0.0) + ph.get("t-SNE", 0.0)
        publish = ph.get("publish", 0.0) + ph.get("snapshot copy", 0.0)
        print(
            f"| {r['kind']} | {ph.get('fit', 0.0):.1f} | {peaks.get('fit', 0.0):.2f} | "
            f"{maps:.1f} | {publish:.1f} | {r['process_wall']:.1f} | {r['peak_gb']:.2f} | "
            f"{r['load_before']:.1f} |"
        )


if __name__ == "__main__":
    main()

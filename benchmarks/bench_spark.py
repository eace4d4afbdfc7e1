"""The Spark engine against the local one: quality on real ratings, fit time and peak memory.

Usage:
  python benchmarks/bench_spark.py quality --db TUNED.duckdb --work DIR
      On a warehouse already tuned (`shelfwise tune als mf`): als with the tuned params on both
      engines (and Spark with the untranslated params, to show what the translation is for), mf
      with the tuned params but no SVD++ term on both; `evaluate` scores each pair on the test
      split with 95% bootstrap intervals.
  python benchmarks/bench_spark.py speed --db WAREHOUSE.duckdb [--repeats 3] [--kinds als,mf]
      Each kind on each engine in a fresh process, engines alternating within each repeat (side by
      side in one run); prints the median fit time and peak memory (Python + the driver JVM).
  python benchmarks/bench_spark.py one --db ... --kind als --engine spark   (what `speed` runs)

Spark runs in local[2] with an 8 GB driver heap (--spark-conf spark.driver.memory=8g), the
stage on local disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, machine

sys.path.insert(0, str(ROOT))

DRIVER_MEMORY = "8g"


def peak_gb(pid: int | str = "self") -> float:
    """VmHWM (peak resident set) of a process, in GB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def engine_for(kind_engine: str, stage: Path):
    from base.config import EngineConfig

    if kind_engine == "local":
        return EngineConfig()
    return EngineConfig(
        engine="spark",
        master="local[2]",
        stage=str(stage),
        conf=(("spark.driver.memory", DRIVER_MEMORY),),
    )


# ----------------------------------------------------------------------------- one fit


def one(db: Path, kind: str, engine_name: str, stage: Path) -> dict:
    """Fit and publish ``kind`` (no t-SNE) in this process; times and peak memory as a dict."""
    from base.config import PublishConfig
    from shelfwise.pipeline.fit import fit_and_publish
    from shelfwise.pipeline.spark import runtime
    from shelfwise.pipeline.tune import params_for
    from warehouse import store
    from warehouse.db import writer

    engine = engine_for(engine_name, stage)
    out: dict = {"kind": kind, "engine": engine_name}
    with writer(db, create=False) as con:
        params = params_for(con, kind)
        if kind == "mf":  # like for like: Spark's mf has no SVD++ term
            params = dataclasses.replace(params, implicit_reg=0.0)
        start = time.perf_counter()
        if engine_name == "local":
            data = store.read_ratings(con)
            out["read_s"] = time.perf_counter() - start
            run_id = fit_and_publish(
                con, kind, params, PublishConfig(tsne=False), data=data, engine=engine
            )
            jvm = 0.0
        else:
            with runtime.session(engine) as spark:
                out["session_s"] = time.perf_counter() - start
                run_id = fit_and_publish(
                    con, kind, params, PublishConfig(tsne=False), engine=engine
                )
                java = spark.sparkContext._gateway.proc.pid
                jvm = peak_gb(java)
        out["total_s"] = time.perf_counter() - start
        seconds, info = con.execute(
            "select seconds, info from models.runs where run_id = ?", [run_id]
        ).fetchall()[0]
    info = json.loads(info)
    out["run_s"] = seconds
    if engine_name == "spark":
        out |= {f"spark_{k}_s": v for k, v in info["spark_seconds"].items()}
    out["python_gb"] = peak_gb()
    out["jvm_gb"] = jvm
    out["params"] = dataclasses.asdict(params)
    return out


# ----------------------------------------------------------------------------- speed


def speed(db: Path, repeats: int, kinds: list[str], stage: Path) -> None:
    print(machine())
    results: dict[tuple[str, str], list[dict]] = {}
    for r in range(repeats):
        for kind in kinds:
            for engine in ("local", "spark"):
                load = os.getloadavg()[0]
                cmd = [sys.executable, __file__, "one", "--db", str(db), "--kind", kind]
                cmd += ["--engine", engine, "--stage", str(stage)]
                done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row["load_before"] = load
                results.setdefault((kind, engine), []).append(row)
                print(f"repeat {r + 1}: {json.dumps(row)}", flush=True)
    print("\n| kind | engine | fit (median) | run seconds | peak Python | peak JVM | load |")
    print("|---|---|---|---|---|---|---|")
    for (kind, engine), rows in results.items():
        fit = [x["spark_total_s"] if engine == "spark" else x["run_s"] for x in rows]

        def med(key: str, rows: list[dict] = rows) -> float:
            return statistics.median(x[key] for x in rows)

        print(
            f"| {kind} | {engine} | {statistics.median(fit):.1f} s "
            f"({', '.join(f'{v:.1f}' for v in fit)}) | {med('run_s'):.1f} s | "
            f"{med('python_gb'):.2f} GB | {med('jvm_gb'):.2f} GB | "
            f"{min(x['load_before'] for x in rows):.1f}-{max(x['load_before'] for x in rows):.1f} |"
        )


# ----------------------------------------------------------------------------- quality


def quality(db: Path, work: Path) -> None:
    from base.config import PublishConfig
    from shelfwise.pipeline.evaluate import evaluate
    from shelfwise.pipeline.fit import fit_and_publish
    from shelfwise.pipeline.spark import fit as spark_fit
    from shelfwise.pipeline.spark import runtime
    from shelfwise.pipeline.tune import params_for
    from warehouse.db import writer

    print(machine(), f"load {os.getloadavg()}")
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "quality.duckdb"
    shutil.copyfile(db, copy)
    spark = engine_for("spark", work / "stage")
    local = engine_for("local", work / "stage")
    runs: dict[str, int] = {}
    publish = PublishConfig(tsne=False, keep_runs=10)
    translated = spark_fit.als_mapping
    with writer(copy, create=False) as con, runtime.session(spark):
        als = params_for(con, "als")
        mf = dataclasses.replace(params_for(con, "mf"), implicit_reg=0.0)
        print("als", als, "\nmf", mf, flush=True)
        plan = [
            ("als local", "als", als, local, None),
            ("mf local (no SVD++)", "mf", mf, local, None),
            ("als spark", "als", als, spark, None),
            ("mf spark", "mf", mf, spark, None),
            # What the translation is for: Spark with the local numbers copied as they are.
            (
                "als spark, untranslated",
                "als",
                als,
                spark,
                lambda p, cells, users, books: {
                    "alpha": p.alpha,
                    "regParam": p.regularization,
                    "shift": 0.0,
                },
            ),
        ]
        for label, kind, params, engine, mapping in plan:
            spark_fit.als_mapping = mapping or translated
            start = time.perf_counter()
            runs[label] = fit_and_publish(con, kind, params, publish, engine=engine)
            print(f"{label}: run {runs[label]} in {time.perf_counter() - start:.1f}s", flush=True)
            evaluate(con, n_boot=200)  # scores the latest run of each kind: this one
        spark_fit.als_mapping = translated
        print("\n| run | RMSE | NDCG@10 | recall@10 | fit s |\n|---|---|---|---|---|")
        for label, run_id in runs.items():
            got = {
                m: (v, lo, hi)
                for m, v, lo, hi in con.execute(
                    "select metric, value, ci_low, ci_high from models.metrics "
                    "where run_id = ? and split = 'test'",
                    [run_id],
                ).fetchall()
            }
            seconds = con.execute(
                "select seconds from models.runs where run_id = ?", [run_id]
            ).fetchall()[0][0]

            def cell(name: str, got: dict = got) -> str:
                if name not in got:
                    return ""
                v, lo, hi = got[name]
                return f"{v:.4f} [{lo:.4f}, {hi:.4f}]"

            print(
                f"| {label} | {cell('rmse')} | {cell('ndcg')} | {cell('recall')} | {seconds:.1f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["quality", "speed", "one"])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "spark")
    ap.add_argument("--stage", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", default="als,mf")
    ap.add_argument("--kind", default="als")
    ap.add_argument("--engine", default="local")
    args = ap.parse_args()
    stage = args.stage or args.work / "stage"
    if args.mode == "quality":
        quality(args.db, args.work)
    elif args.mode == "speed":
        speed(args.db, args.repeats, args.kinds.split(","), stage)
    else:
        print(json.dumps(one(args.db, args.kind, args.engine, stage)))


if __name__ == "__main__":
    main()

"""One Spark session per job: checks that fail in one line before any run is recorded, and
every Spark or JVM failure turned into one line that says what was being done."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from base.config import EngineConfig
from base.errors import ShelfwiseError
from shelfwise.pipeline.spark import stage

log = logging.getLogger(__name__)

# What Spark's own launcher accepts as a master (Spark 4 dropped Mesos).
MASTER = re.compile(
    r"^(local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?"
    r"|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]"
    r"|spark://[^/\s]+"
    r"|k8s://\S+"
    r"|yarn)$"
)
# Spark 4 runs on Java 17 and later.
MIN_JAVA = 17
LOG4J = Path(__file__).with_name("log4j2.properties")


def java_binary() -> str | None:
    """The ``java`` Spark's launcher will run: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def check_java() -> str:
    """The Java runtime's path, or a one-line error saying how to install one."""
    java = java_binary()
    if java is None:
        raise ShelfwiseError(
            f"the spark engine needs a Java runtime ({MIN_JAVA} or later) and found none on PATH "
            "or in JAVA_HOME: install one (Debian: apt-get install openjdk-17-jre-headless)"
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShelfwiseError(f"the spark engine cannot run {java}: {exc}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(2):  # "1.8.0" is Java 8
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise ShelfwiseError(
            f"the spark engine needs Java {MIN_JAVA} or later; {java} is "
            f"{'Java ' + str(major) if major else 'not a Java runtime it recognises'}"
        )
    return java


def check_master(master: str, *, timeout: float = 5.0) -> None:
    """A master URL Spark can parse, and for ``spark://`` and ``k8s://`` one that answers."""
    if not MASTER.match(master):
        raise ShelfwiseError(
            f"--spark-master {master!r} is not a Spark master URL: use local[N], "
            "spark://HOST:PORT, k8s://https://HOST:PORT or yarn"
        )
    if master.startswith("spark://"):
        addresses = [a.strip() for a in master.removeprefix("spark://").split(",")]
    elif master.startswith("k8s://"):
        url = master.removeprefix("k8s://")
        parts = urlsplit(url if "://" in url else f"https://{url}")
        addresses = [f"{parts.hostname}:{parts.port or 443}"]
    else:
        return
    errors = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ShelfwiseError(f"--spark-master {master!r}: {address!r} is not HOST:PORT")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    raise ShelfwiseError(f"--spark-master {master}: no master answers ({'; '.join(errors)})")


def check_pyspark() -> str:
    """pyspark's version, or a one-line error naming the extra to install."""
    try:
        import pyspark
    except ImportError:
        raise ShelfwiseError(
            "the spark engine needs pyspark: pip install 'shelfwise[spark]'"
        ) from None
    return str(pyspark.__version__)


def check(engine: EngineConfig) -> None:
    """Everything that can be known wrong before a run is recorded: pyspark, Java, the master
    URL (and that it answers) and a writable stage directory. Each failure is one line."""
    check_pyspark()
    check_java()
    check_master(engine.master)
    stage.check_writable(engine.stage)


def driver_log(engine: EngineConfig) -> Path:
    """Where the JVM's log goes: the stage's ``logs/`` when the stage is local, else temp."""
    if stage.is_remote(engine.stage):
        folder = Path(tempfile.gettempdir()) / "shelfwise-spark"
    else:
        folder = Path(stage.root(engine.stage)) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "driver.log"


def settings(engine: EngineConfig) -> dict[str, str]:
    """Spark settings: ours first (quiet console, the JVM's log to a file), then ``engine.conf``.

    The web UI is off unless ``--spark-conf spark.ui.enabled=true``: a local job is short and
    the UI costs start-up time and a port.
    """
    java_options = (
        f"-Dlog4j2.configurationFile=file:{LOG4J} -Dshelfwise.spark.log={driver_log(engine)}"
    )
    ours = {
        "spark.app.name": "shelfwise",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": java_options,
    }
    return {**ours, **dict(engine.conf)}


@contextlib.contextmanager
def session(engine: EngineConfig) -> Iterator[Any]:
    """The active SparkSession if there is one (a job or a test already started it), else a new
    one on ``engine.master`` that is stopped when the block ends."""
    check_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    builder = SparkSession.builder
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Launched by spark-submit (deploy/spark/submit.py), the JVM already holds the master
        # and settings spark-submit was given: they win.
        builder = builder.master(engine.master)
        for key, value in settings(engine).items():
            builder = builder.config(key, value)
    with errors(engine, "starting Spark"):
        spark = builder.getOrCreate()
    log.info("spark %s session on %s", spark.version, engine.master)
    try:
        yield spark
    finally:
        with contextlib.suppress(Exception):  # a dead driver cannot be stopped; nothing to undo
            spark.stop()


def driver_gone() -> bool:
    """Whether this process started a driver JVM that has since died (killed, out of memory)."""
    try:
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        proc = getattr(gateway, "proc", None)
        return proc is not None and proc.poll() is not None
    except Exception:
        return False


def describe(exc: BaseException, engine: EngineConfig, doing: str) -> str:
    """One line for a failure of Spark or of its JVM while ``doing``."""
    name = type(exc).__name__
    text = str(exc).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), name)
    if driver_gone() or name in ("Py4JNetworkError", "ConnectionRefusedError"):
        return (
            f"the Spark driver went away while {doing} (master {engine.master}); nothing was "
            f"published (Spark's log: {driver_log(engine)})"
        )
    if "JAVA_GATEWAY_EXITED" in text or "Java gateway process exited" in text:
        return (
            f"Spark's JVM exited before it started while {doing} (see {driver_log(engine)}; "
            "check --spark-conf values such as spark.driver.memory)"
        )
    if "SparkContext was shut down" in text or "stopped SparkContext" in text:
        return f"the Spark cluster went away while {doing} (master {engine.master}): {first[:300]}"
    return f"Spark failed while {doing}: {first[:300]} (Spark's log: {driver_log(engine)})"


@contextlib.contextmanager
def errors(engine: EngineConfig, doing: str) -> Iterator[None]:
    """Turn any Spark, py4j or JVM failure inside the block into one ShelfwiseError line."""
    try:
        yield
    except ShelfwiseError:
        raise
    except Exception as exc:
        raise ShelfwiseError(describe(exc, engine, doing)) from exc

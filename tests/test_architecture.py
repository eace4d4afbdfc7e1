"""The shape of the code: layers only point down, and each concern has one home."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from base.registry import REGISTRY

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("base", "analytics", "synth", "warehouse", "shelfwise", "dashboards")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_layers_only_point_down():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_the_layer_check_fails_on_a_planted_upward_import(tmp_path):
    for name in (*PACKAGES, "pyproject.toml"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    store = tmp_path / "warehouse" / "store.py"
    store.write_text(store.read_text() + "\nfrom shelfwise.serving import run_for  # planted\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "warehouse.store -> shelfwise.serving" in result.stdout


def _source(package: str) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in (REPO / package).rglob("*.py")}


def test_no_python_module_defines_a_models_table_or_the_latest_run():
    """models.* DDL and "the latest published run" live in sql/ only (main.latest_runs)."""
    for package in PACKAGES:
        for path, text in _source(package).items():
            assert not re.search(r"create\s+table[^;]*\bmodels\.", text, re.I), path
            # (coalesce(max(run_id), 0) + 1 is the next run's id, not the latest published.)
            assert not re.search(r"max\(\s*run_id\s*\)(?!, 0\) \+ 1)", text), path


def test_kind_names_are_written_only_in_the_registry():
    """Every list of kinds derives from base.registry: no module spells out a tuple of kinds."""
    names = "|".join(REGISTRY)
    listing = re.compile(rf"""[\(\[]\s*["']({names})["']\s*,\s*["']({names})["']""")
    for package in PACKAGES:
        for path, text in _source(package).items():
            if path.name == "registry.py":
                continue
            assert not listing.search(text), f"{path.relative_to(REPO)}: {listing.search(text)[0]}"


@pytest.mark.parametrize("kind", list(REGISTRY))
def test_each_fit_function_takes_its_kinds_params_and_repeats_none_of_their_defaults(kind):
    from shelfwise.pipeline.fitting import fit_function

    entry = REGISTRY[kind]
    signature = inspect.signature(fit_function(kind))
    positional = list(signature.parameters)[:2]
    assert positional[0] == "train" and positional[1] == "params"
    fields = set(entry.params.__dataclass_fields__)
    assert not fields & set(signature.parameters), "a hyper-parameter with its own default"


def test_the_kind_table_in_docs_models_md_lists_the_registry():
    text = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    # The kind table is the one headed "| kind | model |" (the fold-in table after it groups kinds).
    kind_table = text.split("| kind | model |", 1)[1].split("\n\n", 1)[0]
    table = re.findall(r"^\| `([a-z_]+)` \|", kind_table, re.M)
    assert sorted(table) == sorted(REGISTRY)

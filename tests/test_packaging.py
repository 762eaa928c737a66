"""Packaging: environment.yml and pyproject.toml agree; the console script works."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> tuple[str, str]:
    req = req.strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    name = m.group(1).lower().replace("_", "-")
    return name + (m.group(2) or ""), m.group(3).replace(" ", "")


def test_environment_yml_mirrors_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = dict(_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_reqs = dict(_norm(r) for r in pip_section if not r.startswith("-e"))
    assert conda_reqs == pip_reqs
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert py.replace("python", "") == project["requires-python"]


def _imports_ibis(package: Path) -> bool:
    # Import lines read as text, so a module being edited elsewhere cannot break this test.
    pattern = re.compile(r"^\s*(?:import|from)\s+ibis\b", re.MULTILINE)
    return any(pattern.search(path.read_text()) for path in package.rglob("*.py"))


def test_ibis_only_as_a_declared_dependency_with_its_sqlglot_pin() -> None:
    # docs/adr/0006: no Ibis until the Spark port. Whoever brings it back declares it,
    # and pins sqlglot below 30.18 (newer sqlglot breaks Ibis' DuckDB create_table).
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {_norm(r)[0].split("[")[0]: _norm(r)[1] for r in deps}
    if _imports_ibis(ROOT / "journeylib"):
        assert "ibis-framework" in names, "journeylib imports ibis but pyproject.toml does not declare ibis-framework"
    if "ibis-framework" in names:
        assert names.get("sqlglot") == "<30.18", "ibis-framework needs sqlglot<30.18 (see docs/adr/0006)"


def test_console_script_lists_subcommands() -> None:
    out = subprocess.run([sys.executable, "-m", "journeylib.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for sub in ("synth", "ingest", "report", "dashboard", "demo"):
        assert sub in out


def test_public_api_resolves() -> None:
    import journeylib

    for name in journeylib.__all__:
        assert getattr(journeylib, name) is not None, name

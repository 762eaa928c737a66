"""The layout keeps its promises: layers import one way, no private names cross modules, SQL stays in the store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "journeylib"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every absolute import inside journeylib."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("journeylib"):
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names if a.name.startswith("journeylib"))
    return out


def test_no_relative_imports() -> None:
    found = [
        f"{p.relative_to(PACKAGE.parent)}:{n.lineno}"
        for p in _modules()
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(n, ast.ImportFrom) and n.level > 0
    ]
    assert not found, f"relative imports (use journeylib.<package>.<module>): {found}"


def test_no_private_names_imported_across_modules() -> None:
    found = []
    for path in _modules():
        here = _module_name(path)
        for module, names, line in _imports(path):
            private_module = any(part.startswith("_") and part != "__init__" for part in module.split("."))
            private_names = [n for n in names if n.startswith("_") and n != "__version__"]
            if module != here and (private_module or private_names):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} {private_names}")
    assert not found, "private names imported across modules (make them public where they belong):\n" + "\n".join(found)


def test_only_the_store_imports_duckdb() -> None:
    offenders = []
    for path in _modules():
        if path.relative_to(PACKAGE).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "duckdb" for n in names):
                offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert not offenders, f"duckdb imported outside journeylib/store/: {offenders}"


# Layers, lowest first; a module may import from its own layer or a lower one only.
LAYERS: list[tuple[str, ...]] = [
    ("exceptions",),
    ("store", "io", "datasets"),
    ("config", "scope"),
    ("journey", "customers", "voice", "health", "stats", "cache", "actions"),
    ("context",),
    ("charts",),
    ("widgets", "notebook"),
    ("reports",),
    ("cli",),
]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_layers_import_one_way(path: Path) -> None:
    here = _layer(_module_name(path))
    if here is None:
        return
    upward = []
    for module, _names, line in _imports(path):
        there = _layer(module)
        if there is not None and there > here:
            upward.append(f"line {line}: {module}")
    # the store reads config models and io readers; io reads config models: allowed pairs within the data layers
    allowed = {("store", "config"), ("io", "config"), ("store", "scope")}
    top = _module_name(path).split(".")[1]
    upward = [u for u in upward if (top, u.split(": ")[1].split(".")[1]) not in allowed]
    assert not upward, f"{path.name} imports upward: {upward}"


def test_architecture_map_names_every_package() -> None:
    text = DOCS.read_text(encoding="utf-8")
    packages = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    missing = [f"journeylib/{name}/" for name in packages if f"journeylib/{name}/" not in text]
    missing += [f"journeylib/{name}.py" for name in modules if f"journeylib/{name}.py" not in text]
    assert not missing, f"docs/architecture.md does not mention {missing}"


# DuckDB-only SQL: outside journeylib/store/ it is built by journeylib/store/dialect.py (named after each
# pattern), so a port to another engine rewrites one module. Keywords are matched in upper case (as the SQL
# of journeylib is written), function names in any case and followed directly by "(".
DUCKDB_ONLY_SQL: dict[str, str] = {
    "SELECT * REPLACE / EXCLUDE (sql_replace_columns)": r"\*\s*(REPLACE|EXCLUDE)\s*\(",
    "SEMI / ANTI JOIN (sql_semi_join, sql_anti_join)": r"\b(SEMI|ANTI)\s+JOIN\b",
    ":: cast (CAST(x AS T), sql_cast)": r"::\s*[A-Za-z]",
    "TIMESTAMPTZ (sql_timestamp, sql_cast)": r"\bTIMESTAMPTZ\b",
    "INTERVAL n UNIT (sql_add_days, sql_date_range)": r"\bINTERVAL\s+\d",
    "GROUP BY ALL / ORDER BY ALL (explicit columns)": r"\b(GROUP|ORDER)\s+BY\s+ALL\b",
    "FILTER (WHERE ...) (sql_filtered, sql_nth_smallest)": r"\bFILTER\s*\(\s*WHERE\b",
    "QUALIFY / USING SAMPLE": r"\bQUALIFY\b|\bUSING\s+SAMPLE\b",
    "temporary tables (Store.create_temp_table)": r"\bTEMP(ORARY)?\s+TABLE\b",
    "epoch functions (sql_days_between, sql_epoch_microseconds)": r"(?i:\bepoch(_us|_ms|_ns)?\()",
    "to_microseconds (sql_add_days, sql_add_microseconds)": r"(?i:\bto_(micro|milli)seconds\()",
    "date_diff / date_trunc / date_part (sql_week_start, sql_weeks_between)": r"(?i:\b(date_(diff|trunc|part|add|sub)|datediff)\()",
    "timezone() (sql_utc_clock)": r"(?i:\btimezone\()",
    "strftime / strptime (sql_iso_week)": r"(?i:\bstr[fp]time\()",
    "regexp_* (sql_regexp_replace_all)": r"(?i:\bregexp_\w+\()",
    "lists and unnest (sql_values, sql_date_range)": r"(?i:\b(list(_\w+)?|unnest|generate_series|array_\w+)\()",
    "arg_min / arg_max / min_by / max_by": r"(?i:\b(arg_(min|max)|(min|max)_by)\()",
    "quantile / percentile aggregates (sql_quantiles)": r"(?i:\b(quantile\w*|percentile\w*|approx_\w+)\()",
    "JSON functions and operators (sql_json_text)": r"(?i:\bjson_\w+\()|->>",
    "md5 (sql_seeded_order)": r"(?i:\bmd5\()",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def _analysis_modules() -> list[Path]:
    return [p for p in _modules() if p.relative_to(PACKAGE).parts[0] != "store"]


def test_no_duckdb_only_sql_outside_the_store() -> None:
    found = []
    for path in _analysis_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                for name, pattern in DUCKDB_ONLY_SQL.items():
                    if re.search(pattern, node.value):
                        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}: {node.value.strip()[:80]!r}")
    assert not found, "DuckDB-only SQL outside journeylib/store/ (use journeylib/store/dialect.py):\n" + "\n".join(found)


def test_only_the_store_touches_the_connection() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in _analysis_modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "con"
    ]
    assert not found, f"the DuckDB connection (.con) used outside journeylib/store/ (use Store.query / execute / temp_tables): {found}"

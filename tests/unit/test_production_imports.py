"""Production packages hold production code: no test, simulation or moto import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = ("control_plane", "regional_stack", "nginx_lua", "streamfleet")
FORBIDDEN = ("moto", "simulators", "tests", "bench")
# The `streamfleet` command dispatches to simulators by module name (strings,
# imported only when that subcommand runs), which this check does not see.


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", PRODUCTION)
def test_production_modules_import_no_test_or_simulation_code(package: str) -> None:
    offenders = {
        f"{path.relative_to(REPO)}: {module}"
        for path in (REPO / package).rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    }
    assert not offenders, sorted(offenders)


def test_the_pool_manager_cli_loads_without_moto() -> None:
    code = (
        "import sys, regional_stack.pool.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'simulators'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr

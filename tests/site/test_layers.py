"""The import contracts in .importlinter hold, and they catch a wrong-way import.

``make test`` runs ``lint-imports`` itself; these tests show that the contracts
have teeth: a copy of the code with one import added the wrong way breaks them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ["accounts", "courses", "enrollments", "organisations", "codes", "reports", "demo", "enrollment_site"]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def code_copy(tmp_path) -> Path:
    """The Python packages and .importlinter, copied to a scratch directory."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "templates", "static"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_code_keeps_the_import_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_the_copy_keeps_the_contracts_too(code_copy):
    result = _lint_imports(code_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "complaint"),
    [
        ("accounts/models.py", "from organisations import models", "accounts is not allowed to import organisations"),
        ("courses/services.py", "from enrollments import services", "courses is not allowed to import enrollments"),
        ("enrollments/selectors/__init__.py", "from reports.selectors import pending_tasks", "enrollments is not allowed to import reports"),
        ("organisations/selectors/access.py", "import codes.models", "organisations is not allowed to import codes"),
        ("enrollment_site/lib/bulk.py", "from courses.models import Course", "enrollment_site.lib is not allowed to import courses"),
        ("reports/services.py", "from demo.management.commands import seed_demo", "reports is not allowed to import demo"),
    ],
)
def test_a_wrong_way_import_breaks_the_layers(code_copy, module, line, complaint):
    _add_import(code_copy / module, line)
    result = _lint_imports(code_copy)
    assert result.returncode == 1
    assert "Apps depend downwards only BROKEN" in result.stdout
    assert complaint in " ".join(result.stdout.split())


def test_a_view_importing_another_apps_view_breaks_the_views_contract(code_copy):
    # reports may import codes (a lower layer), but not its views.
    _add_import(code_copy / "reports/views.py", "from codes.views import course_scope")
    result = _lint_imports(code_copy)
    assert result.returncode == 1
    assert "Apps depend downwards only KEPT" in result.stdout
    assert "No app imports another app's views BROKEN" in result.stdout
    assert "reports.views is not allowed to import codes.views" in " ".join(result.stdout.split())

"""What a `pip install` of the package carries: migrations and dev tools yes, tests no."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files setuptools puts into the wheel (its build_py step), without a wheel build."""
    build = tmp_path_factory.mktemp("build")
    setup = "import setuptools; setuptools.setup()"
    command = [sys.executable, "-c", setup, "-q", "build_py", "--build-lib", str(build)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return build / "backend"


def test_the_package_ships_every_migration_so_migrate_works_when_installed(
    installed: Path,
) -> None:
    shipped = ScriptDirectory(str(installed / "migrations"))
    source = ScriptDirectory(str(ROOT / "alembic"))
    assert shipped.get_heads() == source.get_heads()
    assert {s.revision for s in shipped.walk_revisions()} == {
        s.revision for s in source.walk_revisions()
    }


def test_the_package_ships_the_emulators_and_dev_mode_but_not_the_tests(installed: Path) -> None:
    assert (installed / "devtools" / "emulators" / "webpush.py").is_file()
    assert (installed / "devtools" / "dev.py").is_file()
    assert not (installed / "tests").exists()

"""The built wheel ships the whole `signalbox` package: every module and data file.

The package list is derived (setup.py) from pyproject's package-dir mapping, so a new
subpackage ships without an edit; a directory of Python files without an
`__init__.py`, or a data file no package-data glob matches, would still be left out
silently, and this test names it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from signalbox.testing.broker import REPO

#: What the build reads: pyproject names README.md as the readme.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md")


def _package_dirs() -> dict[str, str]:
    with (REPO / "pyproject.toml").open("rb") as f:
        mapping: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return mapping


def _source_files(directory: Path) -> set[str]:
    """Files a checkout holds under `directory`, relative to it (no bytecode)."""
    return {path.relative_to(directory).as_posix() for path in directory.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    mapping = _package_dirs()
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy(REPO / name, source / name)
    for directory in set(mapping.values()):
        shutil.copytree(REPO / directory, source / directory,
                        ignore=shutil.ignore_patterns("__pycache__"))
    # In-process backend, no isolated env: fast, and offline (setuptools is a dev dependency).
    build = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
         "print(build_meta.build_wheel(sys.argv[1]))", str(tmp_path / "dist")],
        cwd=source, capture_output=True, text=True, check=False, timeout=120)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = tmp_path / "dist" / build.stdout.strip().splitlines()[-1]
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if not name.endswith("/")}

    expected: set[str] = set()
    for package, directory in mapping.items():
        prefix = package.replace(".", "/")
        # A nested mapping (signalbox.schemas) is its own directory, not part of services/.
        nested = {other.removeprefix(package + ".").replace(".", "/")
                  for other in mapping if other.startswith(package + ".")}
        expected.update(f"{prefix}/{name}" for name in _source_files(REPO / directory)
                        if name.split("/")[0] not in nested)
    missing = sorted(expected - shipped)
    assert not missing, f"the wheel leaves out {len(missing)} file(s): {missing[:20]}"


def test_every_directory_of_python_files_is_a_package() -> None:
    """find_packages only sees directories with an __init__.py; say which one lacks it."""
    for directory in set(_package_dirs().values()):
        root = REPO / directory
        for module in root.rglob("*.py"):
            for parent in module.relative_to(root).parents:
                if parent != Path("."):
                    init = root / parent / "__init__.py"
                    assert init.exists(), f"{root / parent} holds Python files but no {init.name}"

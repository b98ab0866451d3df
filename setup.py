"""The package list of the `signalbox` distribution, derived from the tree.

pyproject.toml maps import packages to directories (`signalbox` -> services/,
`signalbox.schemas` -> schemas/). setuptools' own discovery cannot follow such a
mapping (it would name the packages `services.*`), and a hand-kept list silently drops
a new subpackage from the wheel. So every package with an `__init__.py` under each
mapped directory ships, named through the mapping; tests/test_packaging.py checks that
a built wheel holds every directory with Python files and the package data.
"""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def discovered_packages() -> list[str]:
    """Every mapped package and its subpackages, sorted."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        package_dir: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    packages: set[str] = set()
    for package, directory in package_dir.items():
        packages.add(package)
        packages.update(f"{package}.{sub}" for sub in find_packages(str(ROOT / directory)))
    return sorted(packages)


if __name__ == "__main__":
    setup(packages=discovered_packages())

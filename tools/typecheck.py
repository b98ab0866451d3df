"""Strict mypy over the `signalbox` package where it lives, and its tests and benchmarks.

mypy names a module after its path (services/common/clock.py would be
`services.common.clock`) and cannot map a directory to another package name; the
editable install maps it with an import hook, which mypy, being static, never runs.
So this hands mypy every file of the package with its import name, derived from
pyproject's package-dir mapping (the one setup.py ships), and the [tool.mypy] options.
tests/ and bench/ go into the same build, named after their paths (tests.evaluator.x,
bench.engine): checked alone, their `import signalbox...` would find nothing and
everything they read from the package would silently be Any.
Usage: python tools/typecheck.py (what `make typecheck` runs).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.fscache import FileSystemCache
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parents[1]
# Checked under their own names, as pytest and `python -m bench.x` import them.
PATH_PACKAGES = ("tests", "bench")


def package_sources() -> list[BuildSource]:
    """Every module under each mapped directory, named as it is imported."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        mapping: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, directory in mapping.items():
        root = ROOT / directory
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            modules.setdefault(name, path)
    return [BuildSource(str(path), name) for name, path in sorted(modules.items())]


def path_sources() -> list[BuildSource]:
    """Every module of tests/ and bench/, named after its path from the repository root."""
    sources = []
    for top in PATH_PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            sources.append(BuildSource(str(path), name))
    return sources


def main() -> int:
    fscache = FileSystemCache()
    # Only the options are wanted; the one target stands in for the list built here.
    _, options = process_options(
        ["--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "setup.py")], fscache=fscache)
    sources = package_sources() + path_sources()
    try:
        messages = build.build(sources, options, fscache=fscache).errors
    except CompileError as error:
        messages = error.messages
    for message in messages:
        print(message)
    if messages:
        return 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One reader of the environment: the typed getters, and no other module reads it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from signalbox.common.env import Env, SettingsError

SERVICES = Path(__file__).resolve().parents[2] / "services"
#: The reader itself, and the test support package (signalbox.testing: it hands a child
#: process this process's environment plus the settings under test, and finds the test
#: broker's ports); no service reads a setting there.
MAY_READ_THE_ENVIRONMENT = ("common/env.py", "testing/")
_OS_READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _reads_of_os_environment(tree: ast.AST) -> list[int]:
    def reads(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in _OS_READERS and isinstance(node.value, ast.Name) and \
                node.value.id == "os"
        if isinstance(node, ast.ImportFrom):
            return node.module == "os" and any(a.name in _OS_READERS for a in node.names)
        return False

    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute | ast.ImportFrom) and reads(node)]


def test_only_the_env_module_reads_the_process_environment() -> None:
    found = {}
    for path in sorted(SERVICES.rglob("*.py")):
        name = path.relative_to(SERVICES).as_posix()
        lines = _reads_of_os_environment(ast.parse(path.read_text("utf-8"), name))
        if lines and not name.startswith(MAY_READ_THE_ENVIRONMENT):
            found[name] = lines
    assert found == {}, "read the environment through signalbox.common.env.Env"


def test_the_check_sees_every_spelling() -> None:
    source = "import os\nfrom os import getenv\nos.environ.get('A')\nos.getenv('B')\n"
    assert sorted(_reads_of_os_environment(ast.parse(source))) == [2, 3, 4]


def test_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALBOX_TEST_ENV", " value ")
    assert (Env().text("SIGNALBOX_TEST_ENV", "x"), Env().get("SIGNALBOX_TEST_ENV")) == (
        "value", " value ")


def test_get_tells_unset_from_empty() -> None:
    env = Env({"EMPTY": ""})
    assert (env.get("EMPTY"), env.get("UNSET")) == ("", None)


def test_items_are_comma_separated_and_blank_ones_dropped() -> None:
    assert Env({"A": " x, ,y ,"}).items("A") == ("x", "y")
    assert Env({}).items("A") == ()


def test_of_keeps_an_env_and_wraps_a_mapping() -> None:
    env = Env({"A": "1"})
    assert Env.of(env) is env
    assert Env.of({"A": "2"}).integer("A", 0) == 2


@pytest.mark.parametrize(("read", "message"), [
    (lambda e: e.integer("N", 1, minimum=2), "N: must be at least 2, got 1"),
    (lambda e: e.number("X", 1.0), "X: expected a number, got 'x'"),
    (lambda e: e.choice("X", "a", ("a", "b")), "X: expected one of a, b, got 'x'"),
    (lambda e: e.pairs("X", ""), "X: expected name=value pairs, got 'x'"),
])
def test_a_bad_value_names_the_variable_what_was_expected_and_what_was_given(
        read: Callable[[Env], object], message: str) -> None:
    env = Env({"N": "1", "X": "x"})
    with pytest.raises(SettingsError) as err:
        read(env)
    assert str(err.value) == message

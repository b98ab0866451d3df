"""Every signalbox exception has one root and one payload (where, what, why)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import signalbox
from signalbox.common.codec import DecodeError
from signalbox.common.errors import SignalboxError
from signalbox.dispatcher.outcomes import PermanentError
from signalbox.dispatcher.templates import TemplateProblem
from signalbox.evaluator.engine.automations import AutomationError
from signalbox.evaluator.processor import InputRejected
from signalbox.ingest.avro_json import Problem
from signalbox.ingest.sources.mapping import MappingError, PayloadError
from signalbox.ingest.validation import InvalidEvents, InvalidJson


def _exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a module of the signalbox package."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(signalbox.__path__, "signalbox."):
        if info.name.endswith("__main__"):
            continue  # __main__ runs the command line when imported
        module = importlib.import_module(info.name)
        found.extend(obj for obj in vars(module).values()
                     if inspect.isclass(obj) and issubclass(obj, BaseException)
                     and obj.__module__ == module.__name__)
    return found


def test_every_signalbox_exception_derives_from_the_root() -> None:
    found = _exceptions()
    assert len(found) >= 30  # the walk really found the package's exceptions
    strays = [f"{c.__module__}.{c.__qualname__}" for c in found
              if not issubclass(c, SignalboxError)]
    assert strays == []


def test_every_exception_class_names_what_it_is_about() -> None:
    unnamed = [c.__qualname__ for c in _exceptions()
               if c is not SignalboxError
               and (not issubclass(c, SignalboxError) or c.what == SignalboxError.what)]
    assert unnamed == []


def test_root_payload_defaults_to_the_message() -> None:
    error = SignalboxError("the broker is gone")
    assert (str(error), error.where, error.what, error.why) == (
        "the broker is gone", "", "signalbox operation", "the broker is gone")


def test_builtin_bases_still_catch_the_errors() -> None:
    with pytest.raises(ValueError):
        raise DecodeError("short read")
    assert issubclass(InvalidJson, ValueError) and issubclass(MappingError, ValueError)
    # a template problem is still a permanent delivery failure, and a ValueError
    assert issubclass(TemplateProblem, PermanentError) and issubclass(TemplateProblem, ValueError)


@pytest.mark.parametrize(("error", "message", "where", "what", "why"), [
    (DecodeError("truncated datum"), "truncated datum", "", "record", "truncated datum"),
    (InvalidJson("not JSON"), "not JSON", "$", "request body", "not JSON"),
    (InvalidEvents([Problem("$[1].data", "missing")], total=3),
     "3 problem(s), first: $[1].data: missing", "$[1].data", "event", "missing"),
    (MappingError("stripe.yaml", ["a: bad", "b: worse"]),
     "stripe.yaml: a: bad; b: worse", "stripe.yaml", "mapping file", "a: bad; b: worse"),
    (PayloadError("events[0].id", "no value"),
     "events[0].id: no value", "events[0].id", "source payload", "no value"),
    (AutomationError("dunning.yaml", ["steps: empty"]),
     "dunning.yaml: steps: empty", "dunning.yaml", "automation file", "steps: empty"),
    (InputRejected("key != customer_id"), "key != customer_id", "", "input record",
     "key != customer_id"),
    (TemplateProblem("no template 'x'"), "no template 'x'", "", "template", "no template 'x'"),
])
def test_payload_shape_keeps_the_message(error: SignalboxError, message: str, where: str,
                                         what: str, why: str) -> None:
    assert (str(error), error.where, error.what, error.why) == (message, where, what, why)

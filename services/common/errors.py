"""The root of every exception signalbox raises, and the one payload they share.

Callers catch :class:`SignalboxError` to mean "signalbox refused or failed", and read
the same three attributes whatever the subclass, instead of duck-typing ``reason``,
``problems``, ``errors`` or ``problem``:

- ``where``: the place the error is about (a file, a JSONPath, a field, a header);
  ``""`` when the error has no place of its own.
- ``what``: what failed or was refused, as a short noun phrase ("record",
  "automation file"); one per class.
- ``why``: the reason, in words, without the place; by default the message itself.

``str(error)`` stays the message the error was raised with, so user-facing text is
unchanged. Subclasses keep their built-in base (``ValueError``, ``RuntimeError``,
``TypeError``) so ``except ValueError`` callers still catch them, and keep their
structured details (``errors``, ``problems``, ``status``…) next to the payload.

The tree (a test walks the package and checks that every exception derives from the root)::

    SignalboxError
    ├── common:     DecodeError, EncodeError, ConfigError, CommandError (ValueError);
    │               RegistryError, TopicMismatch, LimitUnknown (RuntimeError);
    │               SettingsError (ValueError)
    │               └── KafkaRefused
    │               FileProblems (ValueError): a file's every problem
    │               ├── AutomationError (evaluator)
    │               └── MappingError (ingest)
    ├── client:     EventTooLarge (ValueError)
    ├── ingest:     InvalidJson, InvalidEvents, KeyFileError,
    │               PayloadError (ValueError); ProduceError (RuntimeError)
    ├── evaluator:  InputRejected, SimulationInputError (ValueError);
    │               UnsupportedStore (TypeError); ApprovalConflict
    └── dispatcher: HeaderError, BadSignature,
                    BadToken (ValueError); PreviewError; LedgerWriteFailed; email._Failed
                    DeliveryError
                    ├── TransientError
                    ├── InDoubtError
                    └── PermanentError
                        ├── HttpRefused
                        └── TemplateProblem (also ValueError)
"""

from __future__ import annotations


class SignalboxError(Exception):
    """Base of every signalbox exception; ``where``, ``what`` and ``why`` say what happened."""

    #: What failed or was refused; each subclass names its own.
    what: str = "signalbox operation"
    #: The place the error is about; ``""`` when it has none.
    where: str = ""
    _why: str | None = None

    def __init__(self, *args: object, where: str | None = None, why: str | None = None) -> None:
        super().__init__(*args)
        if where is not None:
            self.where = where
        if why is not None:
            self._why = why

    @property
    def why(self) -> str:
        """The reason without the place: given at construction, else the message."""
        return self._why if self._why is not None else str(self)


class FileProblems(SignalboxError, ValueError):
    """A file that cannot be used; ``errors`` lists every problem found in it, so one
    run of a check reports them all. Subclasses name the kind of file in ``what``."""

    what = "file"

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors), where=source, why="; ".join(errors))

"""The JMESPath functions mappings may use beyond the standard ones. Pure.

Billing systems write times as epoch seconds and currencies in lower case; signalbox
wants epoch milliseconds and ISO 4217 codes. These few functions bridge that in the
mapping itself, so no mapping needs code:

* ``epoch_ms(seconds)``: epoch seconds → epoch milliseconds (``null`` stays ``null``);
* ``upper(text)`` / ``lower(text)`` (``null`` stays ``null``);
* ``minus(a, b)``: ``a - b`` (e.g. a balance change from the previous value);
* ``negate(n)``: ``-n``.
"""

from __future__ import annotations

from typing import Any

from jmespath import functions
from jmespath.visitor import Options


class _Functions(functions.Functions):  # type: ignore[misc]
    @functions.signature({"types": ["number", "null"]})  # type: ignore[untyped-decorator]
    def _func_epoch_ms(self, seconds: float | None) -> int | None:
        return None if seconds is None else round(seconds * 1000)

    @functions.signature({"types": ["string", "null"]})  # type: ignore[untyped-decorator]
    def _func_upper(self, text: str | None) -> str | None:
        return None if text is None else text.upper()

    @functions.signature({"types": ["string", "null"]})  # type: ignore[untyped-decorator]
    def _func_lower(self, text: str | None) -> str | None:
        return None if text is None else text.lower()

    @functions.signature({"types": ["number"]}, {"types": ["number"]})  # type: ignore[untyped-decorator]
    def _func_minus(self, a: Any, b: Any) -> Any:
        return a - b

    @functions.signature({"types": ["number"]})  # type: ignore[untyped-decorator]
    def _func_negate(self, n: Any) -> Any:
        return -n


#: Options for every ``search`` of a mapping's expressions.
OPTIONS = Options(custom_functions=_Functions())
#: The names mapping authors can use besides JMESPath's own.
EXTRA_FUNCTIONS = ("epoch_ms", "upper", "lower", "minus", "negate")

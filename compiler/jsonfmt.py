"""Deterministic, readable JSON: indented objects, arrays of numbers kept on one line."""

from __future__ import annotations

import json
import re
from typing import Any

_NUMBER = r"-?[\d.eE+-]+"
# json.dumps(indent=...) puts every array element on its own line; a per-layer list of kept
# token indices would then take hundreds of lines. Numeric arrays go back on one line.
_NUMBER_ARRAY = re.compile(rf"\[\n\s*((?:{_NUMBER},\n\s*)*{_NUMBER})\n\s*\]")


def dumps(doc: Any) -> str:
    text = json.dumps(doc, indent=1, allow_nan=False)
    text = _NUMBER_ARRAY.sub(
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",\n")) + "]", text
    )
    return text + "\n"

"""Reading a spec file with line numbers: every mistake becomes one line `FILE:LINE: what is wrong (allowed: …)`,
pointing at the key or list item at fault, because a matrix is edited by hand and the person editing it should not
have to read a traceback. Also the duration syntax (`30s`, `500ms`) every spec file uses."""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import SpecError
from ..safeload import cut, load_yaml


def allowed_text(names) -> str:
    return f"(allowed: {', '.join(names)})"


def unknown_text(what: str, name: object, allowed) -> str:
    """`unknown key 'kernal', did you mean 'kernels'? (allowed: …)`: a typo is the usual cause."""
    allowed = list(allowed)
    close = difflib.get_close_matches(cut(name), allowed, n=1)
    hint = f", did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{cut(name)}'{hint} {allowed_text(allowed)}"


# ---- reading YAML with line numbers -----------------------------------------------------------------------------

class Source:
    """One YAML file being validated: knows where each key and item is, so errors can say which line."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> Any:
        return load_yaml(self.path)

    def error(self, line: int | None, message: str) -> SpecError:
        return SpecError(self.path, line, message)

    @staticmethod
    def key_line(node: Any, key: str) -> int | None:
        try:
            return node.lc.key(key)[0] + 1
        except (AttributeError, KeyError, TypeError):
            return None

    @staticmethod
    def value_line(node: Any, key: str) -> int | None:
        try:
            return node.lc.value(key)[0] + 1
        except (AttributeError, KeyError, TypeError):
            return Source.key_line(node, key)

    @staticmethod
    def item_line(seq: Any, index: int) -> int | None:
        try:
            return seq.lc.item(index)[0] + 1
        except (AttributeError, KeyError, TypeError, IndexError):
            return None

    @staticmethod
    def node_line(node: Any) -> int | None:
        try:
            return node.lc.line + 1
        except AttributeError:
            return None

    def mapping(self, node: Any, what: str, line: int | None, allowed: list[str], required: list[str] = (),
                key_word: str = "key") -> dict:
        """Check a mapping's keys: unknown keys name the allowed ones, missing keys name themselves."""
        if not isinstance(node, CommentedMap):
            raise self.error(line, f"{what} must be a mapping {allowed_text(allowed)}")
        for key in node:
            if key not in allowed:
                raise self.error(self.key_line(node, key), unknown_text(key_word, key, allowed))
        for key in required:
            if key not in node:
                raise self.error(line or self.node_line(node),
                                 f"{what} needs '{key}' (required: {', '.join(required)})")
        return node

    def string(self, node: Any, key: str, what: str | None = None) -> str:
        """A text value; floats are refused because YAML would silently turn `1809.10` into `1809.1`."""
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(self.value_line(node, key), f"{what or key} must be a string (quote it)")
        return str(value)

    def sequence(self, node: Any, key: str) -> CommentedSeq:
        value = node[key]
        if not isinstance(value, CommentedSeq):
            raise self.error(self.value_line(node, key), f"{key} must be a list")
        return value


# ---- durations ---------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_DURATION = 86400.0   # in a matrix, a day: longer is a typo (`30h` for `30s`), and would hold a VM for as long


def parse_duration(raw: object, limit: float = math.inf) -> float:
    """`30s`, `500ms`, `1.5s`, `2m` or a plain number of seconds, at most `limit` → seconds; ValueError otherwise
    (also for NaN and infinity, which YAML reads from `.nan` and `.inf`)."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, (int, float)):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(raw)
    if not 0 <= seconds <= limit or seconds == math.inf:   # False for NaN too
        raise ValueError(raw)
    return seconds

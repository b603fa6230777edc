"""Reading the files the lab is handed, without trusting them: the one way in for every file the lab reads.

Specs (matrix.yaml, kernels/*.yaml), results JSONL, run.json, changes.json and bisect step logs are edited by hand,
copied between machines, torn by a crash, or downloaded from a CI server. Whatever they hold, reading them ends in
a value of the expected shape or in one line `FILE:LINE: what is wrong` (a BadFile, exit code 2), never in a
traceback, a hang or a blown-up memory: the file must be a regular file (a FIFO would block the reader forever)
under a size limit, UTF-8 without NUL bytes, nested a few levels deep at most; YAML may not use aliases or tags
(an alias bomb expands a kilobyte into gigabytes), JSON may not hold NaN or Infinity. A results line is different:
one damaged line must not cost the rest of a run, so it is skipped and counted, and each file gets one warning.

Shapes are checked with pydantic models by the module that owns the meaning of the file; this module turns their
complaints into the same one-line messages. Values quoted in messages are cut (`cut`), so a hostile value cannot
flood the terminal or split the line.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import BadFile, display_path, one_line

MiB = 1 << 20
SPEC_LIMIT = 1 * MiB        # a matrix or kernel spec; the largest real one is ~2 KiB
JSON_LIMIT = 16 * MiB       # run.json, changes.json
JSONL_LIMIT = 256 * MiB     # one results file or step log (a record with its timeline and capture is ~10 KiB)
MAX_DEPTH = 32              # nesting of YAML and JSON; the deepest real record nests 6 levels
SHOWN = 80                  # characters of a value quoted in a message

log = logging.getLogger(__name__)
T = TypeVar("T")


def cut(value: object, limit: int = SHOWN) -> str:
    """A value as a message quotes it: one line, at most `limit` characters, `…` where it was cut."""
    if isinstance(value, bool) or value is None:   # as the file spells them
        value = json.dumps(value)
    text = one_line(value if isinstance(value, str) else str(value))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit} bytes"


# ---- bytes and text ------------------------------------------------------------------------------------------------

def read_bytes(path: Path | str, limit: int) -> bytes:
    """The file's bytes: it must exist, be a regular file (never blocks on a FIFO) and hold at most `limit` bytes."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadFile(path, None, "no such file") from None
    except OSError as e:
        raise BadFile(path, None, f"cannot read it: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise BadFile(path, None, "is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise BadFile(path, None, f"is {_kind(mode)}, not a regular file")
    try:
        # O_NONBLOCK: if a FIFO replaced the file since the stat, open and read return instead of waiting
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise BadFile(path, None, f"cannot read it: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadFile(path, None, "is not a regular file")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(MiB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as e:
        raise BadFile(path, None, f"cannot read it: {e.strerror}") from None
    finally:
        os.close(fd)
    if total > limit:
        raise BadFile(path, None, f"too large (over {_size(limit)}; is it the right file?)")
    return b"".join(chunks)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def text_problem(data: bytes) -> tuple[int, str] | None:
    """(line, what is wrong) when the bytes are not UTF-8 text without NUL bytes; None when they are."""
    nul = data.find(b"\0")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        if nul < 0 or e.start < nul:
            return data.count(b"\n", 0, e.start) + 1, f"not UTF-8 text (byte 0x{data[e.start]:02x})"
    if nul >= 0:
        return data.count(b"\n", 0, nul) + 1, "a NUL byte (not a text file)"
    return None


def read_text(path: Path | str, limit: int) -> str:
    data = read_bytes(path, limit)
    problem = text_problem(data)
    if problem:
        raise BadFile(path, *problem)
    return data.decode("utf-8")


# ---- YAML ----------------------------------------------------------------------------------------------------------

def load_yaml(path: Path | str, limit: int = SPEC_LIMIT) -> Any:
    """A spec file as ruamel's round-trip types (they know each key's line). Before anything is built from it, its
    events are checked: no aliases or tags, at most MAX_DEPTH levels, every plain number or date convertible."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    path = Path(path)
    text = read_text(path, limit)
    yaml = YAML(typ="rt")
    try:
        _check_events(path, yaml, text)
        return yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise BadFile(path, line, f"YAML syntax error: {cut(e.problem or e.context, 200)}") from None
    except YAMLError as e:   # e.g. a control character the reader refuses
        position = getattr(e, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        raise BadFile(path, line, f"not YAML: {cut(str(e).splitlines()[0], 200)}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:   # not after _check_events, as far as known
        raise BadFile(path, None, f"unreadable YAML: {cut(e)}") from None


def _check_events(path: Path, yaml, text: str) -> None:
    from ruamel.yaml.events import (AliasEvent, CollectionStartEvent, MappingEndEvent, MappingStartEvent, ScalarEvent,
                                    SequenceEndEvent)
    from ruamel.yaml.nodes import ScalarNode
    keys: list[bool] = []   # per open collection: a mapping's next node is a key (True), else False
    for event in yaml.parse(text):   # the parser is a state machine: deep nesting costs it no recursion
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, AliasEvent):
            raise BadFile(path, line, f"YAML alias '*{cut(event.anchor)}' (aliases are not allowed in specs; "
                                      "write the value out)")
        if getattr(event, "tag", None) is not None:   # only a tag written in the file is set
            raise BadFile(path, line, f"YAML tag '{cut(event.tag)}' (tags are not allowed in specs)")
        if isinstance(event, (MappingEndEvent, SequenceEndEvent)):
            keys.pop()
            continue
        if not isinstance(event, (CollectionStartEvent, ScalarEvent)):
            continue
        if keys and keys[-1] and isinstance(event, CollectionStartEvent):
            raise BadFile(path, line, "a list or mapping as a mapping key (`? [a]`): keys are plain names")
        if keys and isinstance(event, (CollectionStartEvent, ScalarEvent)):
            keys[-1] = not keys[-1] if keys[-1] is not None else None
        if isinstance(event, CollectionStartEvent):
            keys.append(True if isinstance(event, MappingStartEvent) else None)
            if len(keys) > MAX_DEPTH:
                raise BadFile(path, line, f"nested more than {MAX_DEPTH} levels deep")
        elif event.style is None:
            # a plain scalar becomes a number or a date: `2026-13-45` or a 5000-digit number cannot
            tag = yaml.resolver.resolve(ScalarNode, event.value, (True, False))
            try:
                yaml.constructor.construct_object(ScalarNode(tag, event.value), deep=True)
            except (ValueError, OverflowError) as e:
                raise BadFile(path, line, f"bad value '{cut(event.value)}': {cut(e)}") from None


# ---- JSON ----------------------------------------------------------------------------------------------------------

def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):   # 1e999: JSON's grammar allows it, float() makes it infinite
        raise ValueError(f"{cut(text)} is too large a number")
    return value


def parse_json(text: str) -> Any:
    """JSON without NaN/Infinity and nested at most MAX_DEPTH levels; ValueError (with a short reason) otherwise."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _json_problem(e: ValueError) -> tuple[int | None, str]:
    if isinstance(e, json.JSONDecodeError):
        return e.lineno, f"not valid JSON (column {e.colno}: {e.msg})"
    return None, cut(e, 200)


def load_json(path: Path | str, limit: int = JSON_LIMIT, what: str = "") -> Any:
    """A whole JSON file (run.json, changes.json); `what` ("not a changes file") leads a message on its content."""
    text = read_text(path, limit)
    try:
        return parse_json(text)
    except ValueError as e:
        line, why = _json_problem(e)
        raise BadFile(path, line, f"{what}: {why}" if what else why) from None


def load_json_object(path: Path | str, model: type[BaseModel], limit: int = JSON_LIMIT, what: str = "") -> dict:
    """A JSON file that must be an object of `model`'s shape; the object itself is returned, extra keys kept."""
    value = load_json(path, limit, what)
    check(model, value, path, what=what)
    return value


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


# ---- shapes --------------------------------------------------------------------------------------------------------

def problem(error: ValidationError) -> str:
    """pydantic's first complaint in the lab's words: `started: input should be a valid string, found 12`."""
    first = error.errors(include_url=False)[0]
    where = ".".join(cut(part, 40) for part in first["loc"]) or "the value"
    message = first["msg"].removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if first["type"] == "missing":
        return f"{where}: missing"
    if first["type"].endswith("_type") or first["type"] in ("literal_error", "finite_number", "enum"):
        return f"{where}: {message}, found {_shown(first.get('input'))}"
    return f"{where}: {message}"


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _json_type(value)
    return f"'{cut(value)}'" if isinstance(value, str) else cut(value)


def check(model: type[BaseModel], data: Any, path: Path | str, line: int | None = None, what: str = "") -> BaseModel:
    """`data` (a JSON object) in the model's shape, else a BadFile naming the first field at fault."""
    if not isinstance(data, dict):
        why = f"not a JSON object (found {_json_type(data)})"
    else:
        try:
            return model.model_validate(data, strict=True)
        except ValidationError as e:
            why = problem(e)
    raise BadFile(path, line, f"{what}: {why}" if what else why)


# ---- JSONL: damaged lines are skipped, not fatal -------------------------------------------------------------------

def read_jsonl(path: Path | str, parse: Callable[[dict], T], limit: int = JSONL_LIMIT) -> list[T]:
    """What `parse` makes of every intact line (a JSON object); a damaged line (torn by a crash, edited, not an
    object, or refused by `parse` with a ValueError) is skipped, and the file gets one warning that counts them and
    says what was wrong with the first. A file that cannot be read at all is a BadFile."""
    data = read_bytes(path, limit)
    items: list[T] = []
    damaged: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        why = _line_problem(raw)
        if why is None:
            value = None
            try:
                value = parse_json(raw.decode("utf-8"))
            except ValueError as e:
                why = _json_problem(e)[1]
            if why is None and not isinstance(value, dict):
                why = f"not a JSON object (found {_json_type(value)})"
            if why is None:
                try:
                    items.append(parse(value))
                except ValidationError as e:
                    why = problem(e)
                except (ValueError, TypeError, KeyError) as e:
                    why = cut(e, 200)
        if why is not None:
            damaged.append(f"line {number}: {why}")
    if damaged:
        count = f"{len(damaged)} damaged line{'s' if len(damaged) > 1 else ''}"
        log.warning(one_line(f"{display_path(path)}: {count} skipped (first: {damaged[0]})"))
    return items


def _line_problem(raw: bytes) -> str | None:
    found = text_problem(raw)
    return found[1] if found else None


# ---- paths named inside files --------------------------------------------------------------------------------------

def inside_problem(text: str) -> str | None:
    """Why a path read from a file (a record's `logs`) may not be used below a run directory: it must be relative
    and stay below it (no `..`, no absolute path, no control characters). None when it may."""
    if not text:
        return "empty"
    if not text.isprintable() or "\\" in text:
        return "control characters or backslashes in it"
    path = PurePosixPath(text)
    if path.is_absolute() or text.startswith("~"):
        return "an absolute path"
    if ".." in path.parts:
        return "it climbs out with '..'"
    return None


_LINKABLE = re.compile(r"[A-Za-z0-9._=+,@-]+(/[A-Za-z0-9._=+,@-]+)*/?")


def link_target(text: str | None) -> str | None:
    """`text` if it may become an HTML link relative to the run directory: a plain relative path of plain
    characters (so no `javascript:`, no `..`, no `?#%`, nothing to escape); None otherwise (show it as text)."""
    if not text or inside_problem(text) or not _LINKABLE.fullmatch(text):
        return None
    if any(part in (".", "..") for part in text.split("/")):
        return None
    return text


def checked_dataclass(cls: type[T], shape: type[BaseModel], data: dict) -> T:
    """A stored dataclass back from its dict: checked against its pydantic `shape` first (strict; a ValueError if
    it does not fit), then built from the keys it knows, so a newer writer's extra keys are ignored."""
    shape.model_validate(data, strict=True)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in names})

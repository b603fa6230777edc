"""The matrix's `experiment:` section: which experiment runs in each cell (a name of lab.experiments' registry)
and how its timeline is judged; and the optional `timeouts:` section."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..experiments import EXPERIMENTS
from ..safeload import cut
from ..timeouts import Timeouts
from .source import MAX_DURATION, Source, parse_duration, unknown_text


@dataclass(frozen=True)
class Experiment:
    """What runs in each cell and how its timeline is judged (seconds everywhere)."""

    name: str = "rename"
    duration: float = 30.0
    interval: float = 0.5
    pass_within: float = 2.0
    repeats: int = 1
    settle: float = 5.0
    capture: bool = False    # a packet capture of the NFS traffic per cell, decoded into operation counts
    trace_syscalls: bool = True   # strace a bounded number of alice's reads after the change (meta["syscalls"])


MAX_REPEATS = 1000   # runs per cell; more is a typo, and days of VM time
EXPERIMENT_KEYS = ["name", "duration", "interval", "pass_within", "repeats", "settle", "capture", "trace_syscalls"]
DURATION_KEYS = ("duration", "interval", "pass_within", "settle")


def experiment_section(src: Source, doc: CommentedMap) -> Experiment:
    node = src.mapping(doc["experiment"], "experiment", src.key_line(doc, "experiment"), EXPERIMENT_KEYS,
                       required=["duration", "interval", "pass_within"])
    values: dict[str, Any] = {}
    if "name" in node:
        if node["name"] not in EXPERIMENTS:
            raise src.error(src.value_line(node, "name"), unknown_text("experiment", node["name"], EXPERIMENTS))
        values["name"] = str(node["name"])
    for key in DURATION_KEYS:
        if key in node:
            values[key] = _duration(src, node, key)
    if "repeats" in node:
        repeats = node["repeats"]
        if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
            raise src.error(src.value_line(node, "repeats"),
                            f"bad repeats '{cut(repeats)}' (allowed: a whole number from 1 to {MAX_REPEATS})")
        values["repeats"] = repeats
    for key in ("capture", "trace_syscalls"):
        if key in node:
            values[key] = _switch(src, node, key)
    experiment = Experiment(**values)
    if experiment.interval <= 0 or experiment.pass_within > experiment.duration:
        raise src.error(src.key_line(doc, "experiment"), "experiment needs interval > 0 and pass_within <= duration")
    return experiment


def _switch(src: Source, node: CommentedMap, key: str) -> bool:
    """on/off; YAML 1.1 already reads on/off/yes/no/true/false as booleans."""
    value = node[key]
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("on", "off"):
        return str(value).lower() == "on"
    raise src.error(src.value_line(node, key), f"bad {key} '{cut(value)}' (allowed: on, off)")


def _duration(src: Source, node: CommentedMap, key: str) -> float:
    try:
        return parse_duration(node[key], MAX_DURATION)
    except ValueError:
        raise src.error(src.value_line(node, key),
                        f"bad duration '{cut(node[key])}' for {key} (allowed: e.g. 30s, 500ms, 1.5s, 2m, or seconds, "
                        f"up to a day)") \
            from None


TIMEOUT_KEYS = list(Timeouts.__dataclass_fields__)


def timeouts_section(src: Source, doc: CommentedMap) -> Timeouts:
    """The optional `timeouts:` section; a key left out keeps its default."""
    if doc.get("timeouts") is None:
        return Timeouts()
    node = src.mapping(doc["timeouts"], "timeouts", src.key_line(doc, "timeouts"), TIMEOUT_KEYS, key_word="timeout")
    values: dict[str, float] = {}
    for key in node:
        try:
            values[key] = parse_duration(node[key], MAX_DURATION)
        except ValueError:
            values[key] = 0.0
        if values[key] <= 0:
            raise src.error(src.value_line(node, key), f"bad timeout '{cut(node[key])}' for {key} "
                                                       f"(allowed: a duration > 0 and up to a day, e.g. "
                                                       f"{getattr(Timeouts, key):g}s)")
    return Timeouts(**values)

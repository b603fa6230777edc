"""What to bisect, read from the user: a cell given as axis values, a range in an ordered kernel series, or the
changes.json that `lab compare --output` writes (checked against its schema before it is believed)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import Field, field_validator

from .. import safeload
from ..axes import axis as axis_handler
from .step import StoredShape
from .terms import REGRESSION, Terms, parse_terms


def parse_cell(text: str, axes: dict[str, list[str]]) -> tuple[str | None, dict[str, str]]:
    """`mainline-4.19/vers=4.0/leases=on` or `vers=4.0/leases=on` → (kernel or None, params in the matrix's axis
    order). Every axis of the matrix must be given, with a value its axis accepts."""
    parts = [p for p in text.split("/") if p]
    kernel = parts.pop(0) if parts and "=" not in parts[0] else None
    params: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep or not value:
            raise ValueError(f"bad cell '{text}': '{part}' is not axis=value (e.g. debian-6.1/vers=4.0/leases=on)")
        handler = axis_handler(name)
        if name not in axes or handler is None:
            raise ValueError(f"bad cell '{text}': unknown axis '{name}' (allowed: {', '.join(axes)})")
        problem = handler.validate(value)
        if problem:
            raise ValueError(f"bad cell '{text}': {problem}")
        params[name] = value
    missing = [name for name in axes if name not in params]
    if missing:
        raise ValueError(f"bad cell '{text}': no value for {', '.join(missing)} (a cell names every axis: "
                         f"{'/'.join(f'{a}=…' for a in axes)})")
    return kernel, {name: params[name] for name in axes}


def params_label(params: dict[str, str]) -> str:
    return "/".join(f"{key}={value}" for key, value in params.items())


def versions_range(series: list[str], old: str, new: str) -> list[str]:
    """The kernels from the old end to the new end of an ordered series, both included."""
    for name, option in ((old, "--good"), (new, "--bad")):
        if name not in series:
            raise ValueError(f"{option} {name} is not in the kernel series ({', '.join(series)})")
    i, j = series.index(old), series.index(new)
    if i >= j:
        raise ValueError(f"{old} must come before {new} in the kernel series ({', '.join(series)})")
    return series[i:j + 1]


@dataclass(frozen=True)
class VersionsRequest:
    """One versions bisect: a cell's axis values over ordered kernels, old end first, new end last."""

    params: dict
    kernels: list
    terms: Terms = REGRESSION

    @property
    def cell(self) -> str:
        return params_label(self.params)


NOT_CHANGES = "not a changes file from `lab compare`"


class StoredPlan(StoredShape):
    terms: str
    kernels: list[str] = Field(min_length=2, max_length=10000)

    @field_validator("terms")
    @classmethod
    def _known_terms(cls, terms: str) -> str:
        parse_terms(terms)
        return terms

    @field_validator("kernels")
    @classmethod
    def _once_each(cls, kernels: list[str]) -> list[str]:
        if len(set(kernels)) != len(kernels):
            raise ValueError("a kernel is listed twice")
        return kernels


class StoredChange(StoredShape):
    cell: str = ""
    params: dict[str, str]
    bisect: Optional[StoredPlan] = None
    note: str = "no range"


class StoredChanges(StoredShape):
    """changes.json as `lab compare --output` writes it (Comparison.to_dict); only `changes` is read."""

    changes: list[StoredChange] = []


def load_changes(path: Path | str) -> tuple[list[VersionsRequest], list[str]]:
    """changes.json read and checked (a BadFile if it is not one), then its bisects as requests_from_changes."""
    return requests_from_changes(safeload.load_json(path, what=NOT_CHANGES), path)


def requests_from_changes(doc: dict, path: Path | str = "changes.json") -> tuple[list[VersionsRequest], list[str]]:
    """The bisects that `lab compare --output` proposed, and one note for each change it could not propose one for.
    `doc` is checked against StoredChanges first: a BadFile naming `path` if it does not fit."""
    safeload.check(StoredChanges, doc, path, what=NOT_CHANGES)
    requests, notes = [], []
    for change in doc.get("changes", []):
        plan = change.get("bisect")
        if not plan:
            notes.append(f"{change.get('cell')}: no bisect: {change.get('note', 'no range')}")
            continue
        requests.append(VersionsRequest(dict(change["params"]), list(plan["kernels"]), parse_terms(plan["terms"])))
    return requests, notes

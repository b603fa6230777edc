"""Cells: one kernel under one combination of axis values, and the `--cell vers=4.1,leases=on` filter that selects
some of them."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..safeload import cut
from .source import allowed_text, unknown_text


@dataclass(frozen=True)
class Cell:
    """One kernel under one combination of axis values: one run of the experiment, one box of the table."""

    kernel: str
    params: dict[str, str]

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def label(self) -> str:
        """The column name: `vers=4.0 leases=on`."""
        return " ".join(f"{key}={value}" for key, value in self.params.items())

    @property
    def id(self) -> str:
        return "/".join([self.kernel, *(f"{key}={value}" for key, value in self.params.items())])

    @property
    def group(self) -> str:
        """Cells of one kernel share a topology, so they are grouped (xdist_group) by kernel."""
        return self.kernel

    @classmethod
    def from_id(cls, cell_id: str) -> "Cell":
        kernel, *pairs = cell_id.split("/")
        return cls(kernel, dict(pair.split("=", 1) for pair in pairs))


def parse_cell_filter(text: str, axes: dict[str, list[str]]) -> dict[str, str]:
    """`vers=4.1,leases=on` (or `vers=4.1/leases=on`, as a cell id spells it) → {"vers": "4.1", "leases": "on"}:
    the cells with these axis values; an axis left out matches all its values. Only the matrix's axes and values are
    allowed, so a typo is an error (ValueError, one line naming the allowed ones) rather than an empty selection."""
    pairs = [p.strip() for p in re.split(r"[,/]", text) if p.strip()]
    if not pairs:
        raise ValueError(f"no axis=value in '{cut(text)}' (e.g. {_example(axes)})")
    chosen: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise ValueError(f"'{cut(pair)}' is not axis=value (e.g. {_example(axes)}; kernels are chosen with -k)")
        if name not in axes:
            raise ValueError(unknown_text("axis", name, axes))
        if value not in axes[name]:
            raise ValueError(f"unknown value '{cut(value)}' for axis {name} {allowed_text(axes[name])}")
        if name in chosen and chosen[name] != value:
            raise ValueError(f"{name} given twice ({chosen[name]}, {cut(value)}): repeat --cell for either")
        chosen[name] = value
    return {name: chosen[name] for name in axes if name in chosen}


def _example(axes: dict[str, list[str]]) -> str:
    return ",".join(f"{name}={values[0]}" for name, values in axes.items() if values) or "axis=value"

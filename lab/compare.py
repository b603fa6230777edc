"""Comparing a run with a baseline run: which cells changed their verdict, and what to bisect for each.

Cells are compared as the table shows them: each cell's runs added up by lab/aggregate.py. Only a change between
two kernel results (pass ↔ fail) is a change. An ERROR or a SKIP on either side says nothing about the kernel, so
such a cell is reported as "no data" and never starts a bisect. A flaky cell (its runs disagree) is reported as
flaky, not as a change, and proposes no bisect — unless `flaky` names a policy (pass, fail, majority: as in
aggregate.resolve) that turns it into a pass or a fail. For each real change the comparison proposes a versions
bisect along the kernel series, ordered by release version (the records' `kernel_release`, else the version in the
kernel's name; table order breaks ties): the nearest earlier kernel whose same cell still shows the baseline's
verdict is the old end, and the changed kernel is the new end. Pure: records in, a plain dict out (written as
changes.json for `lab bisect versions --from-changes`).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .aggregate import CellResult, cells_of, resolve
from .results import ResultRecord

KERNEL_RESULTS = ("pass", "fail")
_VERSION = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?:\.(\d+))?")


def _side(cell: CellResult | None) -> dict | None:
    if cell is None:
        return None
    return {"status": cell.status, "summary": cell.summary(), "runs": cell.counts_text(),
            "kernel_release": cell.kernel_release, "run_id": cell.runs[-1].run_id}


def _params_key(cell: CellResult) -> tuple:
    return tuple(cell.params.items())


@dataclass
class Comparison:
    """The differences between a baseline and a new run, cell by cell."""

    baseline: str
    new: str
    series: list[str]
    changes: list[dict] = field(default_factory=list)    # pass ↔ fail: real changes
    flaky: list[dict] = field(default_factory=list)      # flaky on either side (under --flaky skip)
    no_data: list[dict] = field(default_factory=list)    # an error or skip on either side
    added: list[dict] = field(default_factory=list)      # only in the new run
    removed: list[dict] = field(default_factory=list)    # only in the baseline
    unchanged: int = 0
    flaky_policy: str = "skip"

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "new": self.new, "series": self.series, "flaky_policy": self.flaky_policy,
                "changes": self.changes, "flaky": self.flaky, "no_data": self.no_data, "added": self.added,
                "removed": self.removed, "unchanged": self.unchanged}

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def lines(self) -> list[str]:
        """What a CI log shows: one line per cell that differs, then a count."""
        out = []
        for c in self.changes:
            plan = c["bisect"]
            then = (f"bisect {plan['terms']}: {plan['kernels'][0]} … {plan['kernels'][-1]}" if plan
                    else f"no bisect: {c['note']}")
            out.append(f"CHANGED {c['cell']}: {c['before']['summary']} → {c['after']['summary']}; {then}")
        for c in self.flaky:
            out.append(f"FLAKY   {c['cell']}: {c['before']['summary']} → {c['after']['summary']} (not a change; "
                       f"--flaky pass|fail|majority counts it)")
        for c in self.no_data:
            before = c["before"]["summary"] if c["before"] else "-"
            out.append(f"NO DATA {c['cell']}: {before} → {c['after']['summary'] if c['after'] else '-'}")
        out += [f"ADDED   {c['cell']}: {c['after']['summary']}" for c in self.added]
        out += [f"REMOVED {c['cell']}: {c['before']['summary']}" for c in self.removed]
        out.append(f"{len(self.changes)} changed, {len(self.flaky)} flaky, {len(self.no_data)} without data, "
                   f"{len(self.added)} added, {len(self.removed)} removed, {self.unchanged} unchanged")
        return out


def version_key(text: str) -> tuple[int, int, int] | None:
    """The first release version in a kernel release or name: `6.1.0-28-amd64` → (6, 1, 0), `4.19.1` →
    (4, 19, 1), `debian-6.12` → (6, 12, 0), `centos7-3.10` → (3, 10, 0); None when there is none."""
    match = _VERSION.search(text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def series_of(records: list[ResultRecord], meta: dict) -> list[str]:
    """The run's kernels ordered by release version, for proposing bisects: a kernel's version is the release its
    runs booted (`kernel_release`), else the one in its name; table order (run.json, else the order results
    appear) breaks ties, and kernels without a version come last in table order."""
    order = list(meta.get("kernels") or [])
    for record in records:
        if record.kernel not in order:
            order.append(record.kernel)
    releases: dict[str, Counter] = {}
    for record in records:
        if record.kernel_release:
            releases.setdefault(record.kernel, Counter())[record.kernel_release] += 1
    versions = {k: version_key(releases[k].most_common(1)[0][0] if k in releases else k) for k in order}
    # a release without a version in it (an odd local build) falls back to the name
    versions = {k: v if v is not None else version_key(k) for k, v in versions.items()}
    return sorted(order, key=lambda k: (versions[k] is None, versions[k] or (0, 0, 0), order.index(k)))


def compare(baseline: list[ResultRecord], new: list[ResultRecord], series: list[str], baseline_name: str = "",
            new_name: str = "", flaky: str = "skip") -> Comparison:
    """Cell by cell, baseline → new (every run's record on each side, as RunDir.runs() gives)."""
    before = {c.cell_id: c for c in cells_of(baseline)}
    after = {c.cell_id: c for c in cells_of(new)}
    result = Comparison(baseline_name, new_name, list(series), flaky_policy=flaky)
    for cell_id in [*after, *(c for c in before if c not in after)]:
        old, now = before.get(cell_id), after.get(cell_id)
        entry = {"cell": cell_id, "kernel": (now or old).kernel, "params": dict((now or old).params),
                 "before": _side(old), "after": _side(now)}
        if old is None:
            result.added.append(entry)
        elif now is None:
            result.removed.append(entry)
        elif flaky == "skip" and "flaky" in (old.status, now.status):
            result.flaky.append(entry)
        elif resolve(old.tally, flaky) is None or resolve(now.tally, flaky) is None:
            if old.status != now.status:
                result.no_data.append(entry)
            else:
                result.unchanged += 1
        elif resolve(old.tally, flaky) != resolve(now.tally, flaky):
            entry["direction"] = "now fails" if resolve(now.tally, flaky) == "fail" else "now passes"
            entry["bisect"], entry["note"] = propose_bisect(now, old, after, series, flaky)
            result.changes.append(entry)
        else:
            result.unchanged += 1
    return result


def propose_bisect(changed: CellResult, baseline: CellResult, new_run: dict[str, CellResult], series: list[str],
                   flaky: str = "skip") -> tuple[dict | None, str]:
    """The versions bisect for one changed cell: from the nearest earlier kernel of the series whose same cell
    shows the baseline's verdict in the new run, to the changed kernel. None (and why) when there is none."""
    old_status = resolve(baseline.tally, flaky)
    if changed.kernel not in series:
        return None, f"{changed.kernel} is not in the kernel series"
    same_params = {c.kernel: c for c in new_run.values() if _params_key(c) == _params_key(changed)}
    index = series.index(changed.kernel)
    for old_end in reversed(series[:index]):
        cell = same_params.get(old_end)
        if cell is not None and resolve(cell.tally, flaky) == old_status:
            terms = "regression" if old_status == "pass" else "fixed/unfixed"
            kernels = series[series.index(old_end):index + 1]
            return {"terms": terms, "kernels": kernels}, f"{old_end} still shows {old_status}"
    releases = (f", kernel {baseline.kernel_release} → {changed.kernel_release}"
                if baseline.kernel_release != changed.kernel_release else ", same kernel release")
    return None, (f"no earlier kernel in the series shows {old_status} for this cell: the change is within "
                  f"{changed.kernel} itself{releases} (a new package, the lab, or a flaky cell)")

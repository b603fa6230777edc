"""Comparing a run with a baseline run: which cells changed their verdict, and what to bisect for each.

Only a change between two kernel results (pass ↔ fail) is a change. An ERROR or a SKIP on either side says
nothing about the kernel, so such a cell is reported as "no data" and never starts a bisect. For each real change
the comparison proposes a versions bisect: along the ordered kernel series (the new run's rows, or `--kernels`),
the nearest earlier kernel whose same cell still shows the baseline's verdict is the old end, and the changed
kernel is the new end. Pure: records in, a plain dict out (written as changes.json for `lab bisect versions
--from-changes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .results import ResultRecord

KERNEL_RESULTS = ("pass", "fail")


def _side(record: ResultRecord | None) -> dict | None:
    if record is None:
        return None
    return {"status": record.status, "summary": record.verdict_obj.summary(), "kernel_release": record.kernel_release,
            "run_id": record.run_id}


def _params_key(record: ResultRecord) -> tuple:
    return tuple(record.params.items())


@dataclass
class Comparison:
    """The differences between a baseline and a new run, cell by cell."""

    baseline: str
    new: str
    series: list[str]
    changes: list[dict] = field(default_factory=list)    # pass ↔ fail: real changes
    no_data: list[dict] = field(default_factory=list)    # an error or skip on either side
    added: list[dict] = field(default_factory=list)      # only in the new run
    removed: list[dict] = field(default_factory=list)    # only in the baseline
    unchanged: int = 0

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "new": self.new, "series": self.series, "changes": self.changes,
                "no_data": self.no_data, "added": self.added, "removed": self.removed, "unchanged": self.unchanged}

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
        for c in self.no_data:
            before = c["before"]["summary"] if c["before"] else "-"
            out.append(f"NO DATA {c['cell']}: {before} → {c['after']['summary'] if c['after'] else '-'}")
        out += [f"ADDED   {c['cell']}: {c['after']['summary']}" for c in self.added]
        out += [f"REMOVED {c['cell']}: {c['before']['summary']}" for c in self.removed]
        out.append(f"{len(self.changes)} changed, {len(self.no_data)} without data, {len(self.added)} added, "
                   f"{len(self.removed)} removed, {self.unchanged} unchanged")
        return out


def series_of(records: list[ResultRecord], meta: dict) -> list[str]:
    """The run's kernels in table order (run.json), else in the order their results appear."""
    order = list(meta.get("kernels") or [])
    for record in records:
        if record.kernel not in order:
            order.append(record.kernel)
    return order


def compare(baseline: list[ResultRecord], new: list[ResultRecord], series: list[str], baseline_name: str = "",
            new_name: str = "") -> Comparison:
    """Cell by cell, baseline → new (one record per cell each, as RunDir.records() gives)."""
    before = {r.cell_id: r for r in baseline}
    after = {r.cell_id: r for r in new}
    result = Comparison(baseline_name, new_name, list(series))
    for cell_id in [*after, *(c for c in before if c not in after)]:
        old, now = before.get(cell_id), after.get(cell_id)
        entry = {"cell": cell_id, "kernel": (now or old).kernel, "params": dict((now or old).params),
                 "before": _side(old), "after": _side(now)}
        if old is None:
            result.added.append(entry)
        elif now is None:
            result.removed.append(entry)
        elif old.status not in KERNEL_RESULTS or now.status not in KERNEL_RESULTS:
            if old.status != now.status:
                result.no_data.append(entry)
            else:
                result.unchanged += 1
        elif old.status != now.status:
            entry["direction"] = "now fails" if now.status == "fail" else "now passes"
            entry["bisect"], entry["note"] = propose_bisect(now, old, after, series)
            result.changes.append(entry)
        else:
            result.unchanged += 1
    return result


def propose_bisect(changed: ResultRecord, baseline: ResultRecord, new_run: dict[str, ResultRecord],
                   series: list[str]) -> tuple[dict | None, str]:
    """The versions bisect for one changed cell: from the nearest earlier kernel of the series whose same cell
    shows the baseline's verdict in the new run, to the changed kernel. None (and why) when there is none."""
    old_status = baseline.status
    if changed.kernel not in series:
        return None, f"{changed.kernel} is not in the kernel series"
    same_params = {r.kernel: r for r in new_run.values() if _params_key(r) == _params_key(changed)}
    index = series.index(changed.kernel)
    for old_end in reversed(series[:index]):
        record = same_params.get(old_end)
        if record is not None and record.status == old_status:
            terms = "regression" if old_status == "pass" else "fixed/unfixed"
            kernels = series[series.index(old_end):index + 1]
            return {"terms": terms, "kernels": kernels}, f"{old_end} still shows {old_status}"
    releases = (f", kernel {baseline.kernel_release} → {changed.kernel_release}"
                if baseline.kernel_release != changed.kernel_release else ", same kernel release")
    return None, (f"no earlier kernel in the series shows {old_status} for this cell: the change is within "
                  f"{changed.kernel} itself{releases} (a new package, the lab, or a flaky cell)")

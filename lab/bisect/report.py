"""The published bisect: report.md (the answer first, then how sure it is, then every step) and report.json; and
`bisect_versions`, which runs a versions bisect and returns its report."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..files import write_atomic
from .input import VersionsRequest
from .search import Bisection, bisect, step_bound
from .step import Probe, Step
from .terms import SKIP, Settings


@dataclass
class Report:
    """A finished bisect as it is published: the question, the answer, and every step that led to it."""

    mode: str                   # "versions" | "git"
    cell: str
    old: str                    # the old end (kernel name or commit)
    new: str
    settings: Settings
    bisection: Bisection
    wall_s: float = 0.0
    command: str = ""
    titles: dict = field(default_factory=dict)     # candidate → kernel title or commit subject
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """confirmed | unconfirmed | ambiguous (skips hide the answer) | none (the search stopped unanswered)."""
        if self.bisection.culprit is None:
            return "ambiguous" if self.bisection.suspects else "none"
        return "confirmed" if self.bisection.confirmed else "unconfirmed"

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome == "confirmed" else 1

    @property
    def tested(self) -> int:
        """Candidates strictly after the old end: what the search chose among."""
        return len(self.bisection.candidates) - 1

    def to_dict(self) -> dict:
        b = self.bisection
        return {"mode": self.mode, "cell": self.cell, "terms": self.settings.terms.key,
                "old": {"term": self.settings.terms.old, "candidate": self.old},
                "new": {"term": self.settings.terms.new, "candidate": self.new},
                "repeat": self.settings.repeat, "flaky": self.settings.flaky, "outcome": self.outcome,
                "culprit": b.culprit, "parent": b.parent, "confirmed": b.confirmed, "suspects": b.suspects,
                "candidates": b.candidates, "search_steps": len(b.steps), "step_bound": step_bound(self.tested) + 1,
                "skipped": [s.candidate for s in b.steps if s.result == SKIP], "wall_s": round(self.wall_s),
                "command": self.command, "titles": self.titles, "notes": self.notes,
                "steps": [asdict(s) for s in b.steps + b.confirm_steps]}

    def name(self, candidate: str | None) -> str:
        if candidate is None:
            return "-"
        title = self.titles.get(candidate)
        return f"`{short_name(candidate)}` {title}" if title else f"`{short_name(candidate)}`"


def short_name(candidate: str) -> str:
    """Commits by 12 hex digits, kernel names as they are."""
    if len(candidate) == 40 and all(c in "0123456789abcdef" for c in candidate):
        return candidate[:12]
    return candidate


MARKS = {"pass": "✓", "fail": "✗", "error": "ERROR", "skip": "SKIP"}


def render_markdown(report: Report) -> str:
    """The report a person reads: the answer first, then how sure it is, then every step."""
    t, b = report.settings.terms, report.bisection
    what = "commit" if report.mode == "git" else "kernel"
    lines = [f"# nfslab bisect: {report.cell}", "",
             f"- **Question:** the first {what} that is `{t.new}` ({t.describe()}).",
             f"- **Range:** {t.old} {report.name(report.old)} … {t.new} {report.name(report.new)}: "
             f"{report.tested} {what}s after the {t.old} end.",
             f"- **Answer:** {_answer(report)}",
             f"- **Search steps:** {len(b.steps)} (without skips at most ceil(log2 {report.tested})+1 = "
             f"{step_bound(report.tested) + 1}); skipped: "
             f"{', '.join(report.name(s.candidate) for s in b.steps if s.result == SKIP) or 'none'}.",
             f"- **Each step:** the cell {report.settings.repeat}×, flaky policy `{report.settings.flaky}`; a lab "
             f"error or a failed build is a skip.",
             f"- **Wall time:** {report.wall_s:.0f} s.", ]
    if report.command:
        lines.append(f"- **Command:** `{report.command}`")
    lines += [f"- {note}" for note in report.notes]
    lines += ["", f"| # | phase | {what} | build | runs | result | why | time |", "|---|---|---|---|---|---|---|---|"]
    for number, step in enumerate(b.steps + b.confirm_steps, 1):
        runs = " ".join(MARKS.get(s, s) for s in step.statuses) or "-"
        build = f"{step.build.get('result', '?')} {step.build.get('seconds', 0):.0f}s"
        lines.append(f"| {number} | {step.phase} | {report.name(step.candidate)} | {build} | {runs} | "
                     f"**{step.term}** | {_cell_text(step.why)} | {step.seconds:.0f}s |")
    lines += ["", "Runs: " + ", ".join(f"{mark} {status}" for status, mark in MARKS.items()) + ".", ""]
    return "\n".join(lines)


def _answer(report: Report) -> str:
    t, b = report.settings.terms, report.bisection
    if report.outcome == "none":
        return "no answer (see the notes and the step log)."
    if report.outcome == "ambiguous":
        return (f"skipped steps hide it: the first {t.new} one is one of "
                f"{', '.join(report.name(s) for s in b.suspects)}.")
    text = f"first {t.new}: {report.name(b.culprit)}, after {report.name(b.parent)}"
    if b.confirmed:
        return text + f" — **confirmed**: it was {t.new} and its parent {t.old} in every rerun."
    rerun = "; ".join(f"{short_name(s.candidate)}: {s.term} ({s.tally})" for s in b.confirm_steps)
    return text + f" — **not confirmed** ({rerun or 'not rerun'})."


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(report: Report, directory: Path | str) -> tuple[Path, Path]:
    """report.md and report.json in the bisect's directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    md, js = directory / "report.md", directory / "report.json"
    write_atomic(md, render_markdown(report))
    write_atomic(js, json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return md, js


def bisect_versions(request: VersionsRequest, probe: Probe, settings: Settings,
                    on_step: Callable[[Step], None] = lambda step: None, command: str = "",
                    clock: Callable[[], float] = time.monotonic) -> Report:
    """Bisect one cell over the request's kernels and return its report."""
    started = clock()
    settings = replace(settings, terms=request.terms)
    found = bisect(request.kernels, probe, settings, on_step)
    return Report(mode="versions", cell=request.cell, old=request.kernels[0], new=request.kernels[-1],
                  settings=settings, bisection=found, wall_s=clock() - started, command=command,
                  titles={k: probe.title(k) for k in request.kernels if probe.title(k)})

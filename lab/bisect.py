"""Bisecting one cell: which kernel version or commit first changed its verdict. The search, its rules, its log and
its report, kept pure: a `Probe` says how to build a candidate and run the cell once, so tests drive the search with
fake probes, `lab bisect versions` with the Runner, and `lab bisect git` lets `git bisect run` do the halving while
each `lab bisect-step` process judges one commit with `run_step`.

Why the rules are strict: a bisect that guesses once names the wrong commit with full confidence. So every step
repeats the cell (`repeat`, default 3) and only unanimous runs count; disagreeing runs are a skip unless the user
chose another `--flaky` policy; a lab ERROR or a failed build is always a skip, never a verdict on the kernel; and
the culprit is confirmed afterwards by running it and its parent `repeat` times more, unanimously.

Words: the older end of the range is `old`, the newer is `new`, as in git. With the default terms ("regression")
old = good = the cell passes and new = bad = it fails. `fixed/unfixed` turns that round to find the commit that
fixed a cell: unfixed (old) = it fails, fixed (new) = it passes. Internally a step's result is GOOD (like the old
end), BAD (like the new end) or SKIP, which is also how `git bisect run` reads exit codes 0, 1 and 125.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import safeload
from .aggregate import Tally, resolve
from .files import append_line as _append_line
from .results import now_iso, write_atomic

GOOD, BAD, SKIP = "good", "bad", "skip"
#: what `lab bisect-step` exits with, as `git bisect run` reads it
EXIT_CODES = {GOOD: 0, BAD: 1, SKIP: 125}
#: git bisect run aborts the whole bisect on an exit code of 128 or more: bad input must never read as "bad"
EXIT_ABORT = 128
FLAKY_POLICIES = ("skip", "good", "bad", "majority")


# ---- terms -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Terms:
    """What the two ends of the range are called and which cell status means "like the old end"."""

    key: str
    old: str
    new: str
    old_status: str     # "pass" for a regression, "fail" when looking for a fix

    def result_of(self, status: str) -> str:
        """GOOD or BAD for a kernel result (pass | fail); anything else is no result."""
        if status not in ("pass", "fail"):
            return SKIP
        return GOOD if status == self.old_status else BAD

    def name(self, result: str) -> str:
        return {GOOD: self.old, BAD: self.new}.get(result, SKIP)

    @property
    def new_status(self) -> str:
        return "fail" if self.old_status == "pass" else "pass"

    @property
    def git_start_args(self) -> list[str]:
        """Arguments of `git bisect start` that name the terms (none for git's own good/bad)."""
        if (self.old, self.new) == ("good", "bad"):
            return []
        return [f"--term-old={self.old}", f"--term-new={self.new}"]

    def describe(self) -> str:
        return (f"{self.old} = the cell {_status_words(self.old_status)}, "
                f"{self.new} = it {_status_words(self.new_status)}")


def _status_words(status: str) -> str:
    return "passes" if status == "pass" else "fails"


REGRESSION = Terms("regression", "good", "bad", "pass")
FIX = Terms("fixed/unfixed", "unfixed", "fixed", "fail")
TERMS = {REGRESSION.key: REGRESSION, FIX.key: FIX}


def parse_terms(text: str) -> Terms:
    """`regression` (default) or `fixed/unfixed`; ValueError naming the allowed ones otherwise."""
    try:
        return TERMS[text]
    except KeyError:
        raise ValueError(f"unknown terms '{text}' (allowed: {', '.join(TERMS)})") from None


def parse_flaky(text: str, terms: Terms) -> str:
    """A flaky policy: skip | good | bad | majority; the terms' own words (unfixed, fixed) work for good and bad."""
    policy = {terms.old: GOOD, terms.new: BAD}.get(text, text)
    if policy not in FLAKY_POLICIES:
        allowed = list(FLAKY_POLICIES) + [w for w in (terms.old, terms.new) if w not in FLAKY_POLICIES]
        raise ValueError(f"unknown flaky policy '{text}' (allowed: {', '.join(allowed)})")
    return policy


@dataclass(frozen=True)
class Settings:
    """How each step is judged."""

    repeat: int = 3
    flaky: str = "skip"
    terms: Terms = REGRESSION

    def __post_init__(self):
        if self.repeat < 1:
            raise ValueError(f"bad repeat {self.repeat} (allowed: a whole number >= 1)")
        if self.flaky not in FLAKY_POLICIES:
            raise ValueError(f"unknown flaky policy '{self.flaky}' (allowed: {', '.join(FLAKY_POLICIES)})")


# ---- one step ----------------------------------------------------------------------------------------------------

@dataclass
class Trial:
    """One run of the cell on a candidate: its verdict status (pass | fail | error | skip) and summary."""

    status: str
    summary: str = ""
    seconds: float = 0.0


@dataclass
class Build:
    """Getting a candidate's kernel: built (or fetched), unavailable here, or failed; with how long it took."""

    result: str = "ok"        # "ok" | "failed" | "unavailable"
    seconds: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def _nothing_to_build(candidate: str) -> Build:
    return Build()


def _no_title(candidate: str) -> str:
    return ""


@dataclass
class Probe:
    """How to test a candidate: `prepare` it once (build or fetch), then `run` the cell on it, as often as asked."""

    run: Callable[[str], Trial]
    prepare: Callable[[str], Build] = _nothing_to_build
    title: Callable[[str], str] = _no_title


@dataclass
class Step:
    """One candidate judged: what was built, every run's verdict, and the result the search acts on."""

    candidate: str
    phase: str                  # "search" | "confirm"
    result: str                 # GOOD | BAD | SKIP
    term: str                   # the result in the user's words (good, bad, fixed, unfixed, skip)
    why: str
    statuses: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    trial_seconds: list[float] = field(default_factory=list)
    build: dict = field(default_factory=dict)
    title: str = ""
    started: str = ""
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> "Step":
        """A logged step, checked against StoredStep first (a ValueError if it does not fit)."""
        StoredStep.model_validate(data, strict=True)
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    @property
    def tally(self) -> str:
        """`2 of 3 failed`: the count, not a rate, is what a reader can check."""
        return f"{self.statuses.count('fail')} of {len(self.statuses)} failed" if self.statuses else "not run"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class StoredBuild(_Shape):
    result: str = "ok"
    seconds: float = Field(default=0.0, ge=0, le=1e7)
    detail: str = ""


class StoredStep(_Shape):
    """One line of steps.jsonl, as the report reads it."""

    candidate: str
    phase: str
    result: str
    term: str
    why: str
    statuses: list[str] = []
    summaries: list[str] = []
    trial_seconds: list[float] = []
    build: StoredBuild = StoredBuild()
    title: str = ""
    started: str = ""
    seconds: float = Field(default=0.0, ge=0, le=1e7)

    @field_validator("result")
    @classmethod
    def _known_result(cls, result: str) -> str:
        if result not in (GOOD, BAD, SKIP):
            raise ValueError(f"unknown result '{safeload.cut(result)}' (allowed: {GOOD}, {BAD}, {SKIP})")
        return result


def judge(statuses: list[str], settings: Settings) -> tuple[str, str]:
    """A step's result from its runs' statuses, and why. The runs add up as a table cell's do (lab/aggregate.py:
    the same tally, the same flaky rule); a step is stricter in one way: a lab error or an unavailable kernel in
    any run makes it a skip, never a guess."""
    n = len(statuses)
    if not n:
        return SKIP, "not run"
    tally = Tally.of(statuses)
    if tally.errors:
        return SKIP, f"lab error in {tally.errors} of {n} runs: no kernel result"
    if tally.skipped:
        return SKIP, "kernel unavailable here"
    terms = settings.terms
    count = f"{tally.failed} of {n} failed"
    if tally.status != "flaky":
        result = terms.result_of(tally.status)
        return result, f"{count}: {terms.name(result)}"
    # --flaky good|bad name a side in the terms' words; the aggregation's policies name a cell status
    policy = {GOOD: terms.old_status, BAD: terms.new_status}.get(settings.flaky, settings.flaky)
    status = resolve(tally, policy)
    if status is None:
        why = "skipped (--flaky skip)" if settings.flaky == "skip" else "no majority, skipped"
        return SKIP, f"flaky, {count}: {why}"
    result = terms.result_of(status)
    if settings.flaky in (GOOD, BAD):
        return result, f"flaky, {count}: counted {terms.name(result)} (--flaky {settings.flaky})"
    return result, f"flaky, {count}: majority {terms.name(result)}"


def decided(statuses: list[str], settings: Settings) -> bool:
    """More runs cannot change the result: an error or an unavailable kernel, or a disagreement under `skip`."""
    if any(s not in ("pass", "fail") for s in statuses):
        return True
    return settings.flaky == "skip" and len(set(statuses)) > 1


def run_step(candidate: str, probe: Probe, settings: Settings, phase: str = "search",
             clock: Callable[[], float] = time.monotonic) -> Step:
    """Build the candidate once, run the cell up to `repeat` times (stopping once the result is settled), judge."""
    started_iso, started = now_iso(), clock()
    build = probe.prepare(candidate)
    trials: list[Trial] = []
    if build.ok:
        while len(trials) < settings.repeat:
            trials.append(probe.run(candidate))
            if decided([t.status for t in trials], settings):
                break
        result, why = judge([t.status for t in trials], settings)
    else:
        result, why = SKIP, f"build {build.result}: {build.detail}" if build.detail else f"build {build.result}"
    return Step(candidate=candidate, phase=phase, result=result, term=settings.terms.name(result), why=why,
                statuses=[t.status for t in trials], summaries=[t.summary for t in trials],
                trial_seconds=[round(t.seconds, 1) for t in trials],
                build=asdict(replace(build, seconds=round(build.seconds, 1))), title=probe.title(candidate),
                started=started_iso, seconds=round(clock() - started, 1))


# ---- the search --------------------------------------------------------------------------------------------------

def next_index(lo: int, hi: int, skipped: set[int]) -> int | None:
    """The untested index between lo and hi nearest their middle (the lower one on a tie); None when none is left."""
    middle = (lo + hi) / 2
    left = [i for i in range(lo + 1, hi) if i not in skipped]
    return min(left, key=lambda i: (abs(i - middle), i)) if left else None


def step_bound(count: int) -> int:
    """How many search steps halving `count` candidates needs at most without skips: ceil(log2 count)."""
    return math.ceil(math.log2(count)) if count > 1 else 0


@dataclass
class Bisection:
    """What a search found: the first candidate like the new end, or the ones it could be when steps were skipped."""

    candidates: list[str]
    steps: list[Step]
    suspects: list[str]                  # the first new candidate is one of these
    confirm_steps: list[Step] = field(default_factory=list)
    first_parent: str | None = None      # a commit's parent, when it is not the candidate before it

    @property
    def culprit(self) -> str | None:
        return self.suspects[0] if len(self.suspects) == 1 else None

    @property
    def parent(self) -> str | None:
        """The candidate just before the culprit (its first parent, for commits)."""
        if self.culprit is None:
            return None
        return self.first_parent or self.candidates[self.candidates.index(self.culprit) - 1]

    @property
    def confirmed(self) -> bool | None:
        """None when there was nothing to confirm (no single culprit) or confirmation was not run."""
        if self.culprit is None or len(self.confirm_steps) < 2:
            return None
        culprit, parent = self.confirm_steps[-2:]
        return culprit.result == BAD and parent.result == GOOD


def search(candidates: list[str], probe: Probe, settings: Settings,
           on_step: Callable[[Step], None] = lambda step: None) -> Bisection:
    """Binary search for the first candidate like the new end. candidates[0] is the old end and candidates[-1] the
    new end, both taken as the user stated them (confirmation re-checks the pair that matters); skipped candidates
    are stepped around, and if they hide the answer every candidate it could be is returned."""
    if len(candidates) < 2:
        raise ValueError("a bisect needs at least the two ends")
    lo, hi, skipped, steps = 0, len(candidates) - 1, set(), []
    while (i := next_index(lo, hi, skipped)) is not None:
        step = run_step(candidates[i], probe, settings)
        steps.append(step)
        on_step(step)
        if step.result == GOOD:
            lo = i
        elif step.result == BAD:
            hi = i
        else:
            skipped.add(i)
    suspects = [candidates[i] for i in range(lo + 1, hi + 1) if i in skipped or i == hi]
    return Bisection(list(candidates), steps, suspects)


def confirm(culprit: str, parent: str, probe: Probe, settings: Settings,
            on_step: Callable[[Step], None] = lambda step: None) -> list[Step]:
    """Run the culprit and its parent `repeat` times each; only unanimous runs confirm (KernelCI does the same),
    whatever flaky policy the search used."""
    strict = replace(settings, flaky="skip")
    steps = []
    for candidate in (culprit, parent):
        step = run_step(candidate, probe, strict, phase="confirm")
        steps.append(step)
        on_step(step)
    return steps


def bisect(candidates: list[str], probe: Probe, settings: Settings,
           on_step: Callable[[Step], None] = lambda step: None) -> Bisection:
    """Search, then confirm a single culprit."""
    found = search(candidates, probe, settings, on_step)
    if found.culprit is not None:
        found.confirm_steps = confirm(found.culprit, found.parent, probe, settings, on_step)
    return found


# ---- the step log ------------------------------------------------------------------------------------------------

class StepLog:
    """Every step as one JSON line, appended as it ends, by whichever process ran it (git bisect runs a process
    per commit): a bisect cut short still leaves the steps it did."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def append(self, step: Step) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _append_line(self.path, step.to_json())

    def steps(self) -> list[Step]:
        """The steps logged so far; a torn line (from a killed step) or a damaged one is skipped with a warning."""
        if not self.path.exists():
            return []
        return safeload.read_jsonl(self.path, Step.from_dict)


# ---- the report --------------------------------------------------------------------------------------------------

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


# ---- what to bisect ----------------------------------------------------------------------------------------------

def parse_cell(text: str, axes: dict[str, list[str]]) -> tuple[str | None, dict[str, str]]:
    """`mainline-4.19/vers=4.0/leases=on` or `vers=4.0/leases=on` → (kernel or None, params in the matrix's axis
    order). Every axis of the matrix must be given, with a value its axis accepts."""
    from .axes import axis as axis_handler
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


class StoredPlan(_Shape):
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


class StoredChange(_Shape):
    cell: str = ""
    params: dict[str, str]
    bisect: Optional[StoredPlan] = None
    note: str = "no range"


class StoredChanges(_Shape):
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

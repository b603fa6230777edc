"""Judging one candidate: build it once, run the cell up to `repeat` times, and turn the runs' statuses into
GOOD, BAD or SKIP. Only unanimous runs count unless the user chose another flaky policy; a lab ERROR or a failed
build is always a skip, never a verdict on the kernel."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import safeload
from ..aggregate import Tally, resolve
from ..results import now_iso
from .terms import BAD, GOOD, SKIP, Settings


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
        return safeload.checked_dataclass(cls, StoredStep, data)

    @property
    def tally(self) -> str:
        """`2 of 3 failed`: the count, not a rate, is what a reader can check."""
        return f"{self.statuses.count('fail')} of {len(self.statuses)} failed" if self.statuses else "not run"


class StoredShape(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class StoredBuild(StoredShape):
    result: str = "ok"
    seconds: float = Field(default=0.0, ge=0, le=1e7)
    detail: str = ""


class StoredStep(StoredShape):
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

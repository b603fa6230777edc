"""From what Alice saw to a verdict: the Observation (a timeline of reads) and the pure rule that judges it.

The verdict keeps the shape of the timeline — how long stale data lasted, whether ESTALE followed, whether the
client recovered on its own and whether an `ls` of the directory cleared it — because kernels that all "fail"
differ exactly there, and the table has to show it. A lab failure (empty timeline, bob's mv failed) is an ERROR,
never a kernel result.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

NEW_TEXT = "2 - New file"
OLD_TEXT = "1 - Old file"
KINDS = ("new", "old", "estale", "error")
STATUSES = ("pass", "fail", "error", "skip")


@dataclass(frozen=True)
class Read:
    """One `cat test1.txt` by Alice."""

    t: float      # seconds since bob's rename completed (negative = before it)
    kind: str     # "new" | "old" | "estale" | "error"
    text: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Read":
        return cls(float(data["t"]), data["kind"], data.get("text", ""))


@dataclass
class Observation:
    """Everything the experiment saw in one cell, before any judgement."""

    reads: list[Read]
    ls_output: str = ""             # one `ls -l` of the directory after the timeline
    after_ls: Read | None = None    # one read right after that ls
    mv_ok: bool = True              # bob's rename succeeded
    meta: dict = field(default_factory=dict)  # versions, negotiated mount options, …

    def to_dict(self) -> dict:
        return {"reads": [r.to_dict() for r in self.reads], "ls_output": self.ls_output,
                "after_ls": self.after_ls.to_dict() if self.after_ls else None, "mv_ok": self.mv_ok,
                "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: dict) -> "Observation":
        after = data.get("after_ls")
        return cls(reads=[Read.from_dict(r) for r in data.get("reads", [])], ls_output=data.get("ls_output", ""),
                   after_ls=Read.from_dict(after) if after else None, mv_ok=data.get("mv_ok", True),
                   meta=dict(data.get("meta", {})))


def classify_text(text: str, rc: int, old: str = OLD_TEXT, new: str = NEW_TEXT) -> str:
    """What one read showed; the contents decide, because a stale read still exits 0. `old`/`new` are what the
    experiment's read prints before and after the change (file contents, or a ref's commit for git)."""
    if text.strip() == new:
        return "new"
    if text.strip() == old:
        return "old"
    if "Stale file handle" in text:
        return "estale"
    return "error"


@dataclass
class Criteria:
    """How strict the judgement is (from the matrix's experiment)."""

    pass_within: float
    settle: float = 5.0


ROUNDING_STEP = 0.1   # what _seconds keeps: tenths


def _seconds(value: float) -> str:
    """Tenths are all a 0.5 s read interval can tell apart: 25.732 → 25.7s, 18.0 → 18s."""
    return f"{round(value, 1):g}s"


def near(value: float, criterion: float | None) -> bool:
    """Within one rounding step of the criterion: tenths could hide which side of it the figure lies on."""
    return criterion is not None and abs(value - criterion) <= ROUNDING_STEP + 1e-9


def seconds_text(values: list[float], criterion: float | None = None, compare: bool = False) -> str:
    """One figure or the spread of several (`0.5s`, `24.1–25.0s`), in tenths; near the criterion in hundredths,
    and with `compare` also which side of it they all lie on: `2.04s > 2s`, `1.96–2.00s ≤ 2s`."""
    lo, hi = min(values), max(values)
    precise = any(near(v, criterion) for v in (lo, hi))
    if precise:
        text = f"{lo:.2f}s" if lo == hi else f"{lo:.2f}–{hi:.2f}s"
    elif round(lo, 1) == round(hi, 1):
        text = _seconds(lo)
    else:
        text = f"{lo:.1f}–{hi:.1f}s"
    if precise and compare:
        if hi <= criterion:
            text += f" ≤ {criterion:g}s"
        elif lo > criterion:
            text += f" > {criterion:g}s"
    return text


@dataclass
class Verdict:
    """The judgement of one cell, with the numbers that tell one failing kernel from another."""

    status: str                            # "pass" | "fail" | "error" | "skip"
    reason: str = ""     # fail: stale-data, estale, read-error, late-new-data joined by "+"; error: step; skip: why
    first_new_after: float | None = None   # t of the first new read after the rename
    stale_for: float = 0.0                 # last t at which old data was read after the rename
    estale_for: float = 0.0                # span of the ESTALE window
    recovered: bool = True                 # the timeline ended steadily reading new data
    ls_clears: bool | None = None          # None: nothing to clear; else whether the read after `ls` was new
    detail: str = ""                       # error message, log path, …
    ended_in: str = ""                     # kind of the last read; says which phase "never recovers"
    pass_within: float | None = None       # the criterion it was judged by (None in records older than it)
    within_race_window: bool = False       # fail, but every wrong read came within pass_within of the change

    @classmethod
    def error(cls, step: str, message: str, log_path: str | None = None) -> "Verdict":
        """The lab failed at `step`: not a kernel result."""
        detail = f"{message} (log: {log_path})" if log_path else message
        return cls(status="error", reason=step, recovered=False, detail=detail)

    @classmethod
    def skip(cls, reason: str) -> "Verdict":
        return cls(status="skip", reason=reason, recovered=False)

    def summary(self) -> str:
        """The short text of a table cell: `✓ new after 0.5s`, `✗ stale never recovers, ls clears`."""
        if self.status == "pass":
            return f"✓ {pass_text([self])}"
        if self.status == "error":
            return f"ERROR {self.reason}: {self.detail}" if self.detail else f"ERROR {self.reason}"
        if self.status == "skip":
            return f"SKIP {self.reason}"
        return f"✗ {fail_text([self])}"

    @property
    def shape(self) -> tuple:
        """What a failing timeline looked like apart from its figures; runs of one shape share one text."""
        return (self.reason, self.recovered, "" if self.recovered else self.ended_in, self.ls_clears,
                self.within_race_window, self.first_new_after is None)

    def _ended_in(self, kind: str) -> bool:
        return not self.recovered and self.ended_in == kind

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        """Tolerant of keys added later, so old result files stay readable."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _criterion(verdicts: list[Verdict]) -> float | None:
    return next((v.pass_within for v in verdicts if v.pass_within is not None), None)


def pass_text(verdicts: list[Verdict]) -> str:
    """`new after 0.5s`, or over several passing runs `new after 0.5–0.7s`."""
    return f"new after {seconds_text([v.first_new_after or 0.0 for v in verdicts], _criterion(verdicts), True)}"


def fail_text(verdicts: list[Verdict]) -> str:
    """The phases in the order Alice lived them, the one still going at the end marked `never recovers`; over
    several failing runs of one shape (Verdict.shape), each phase with the spread of its figure."""
    first, criterion = verdicts[0], _criterion(verdicts)
    reasons = first.reason.split("+")
    phases = []
    if "stale-data" in reasons:
        phases.append(f"stale {_phase_time(first, 'old', [v.stale_for for v in verdicts], criterion)}")
    if "estale" in reasons:
        phases.append(f"ESTALE {_phase_time(first, 'estale', [v.estale_for for v in verdicts], None)}")
    if "read-error" in reasons:
        phases.append("read errors" + (" never recover" if first._ended_in("error") else ""))
    if not phases:
        phases.append(_late_text([v.first_new_after for v in verdicts], criterion))
    text = "→".join(phases)
    if first.ls_clears is not None:
        text += ", ls clears" if first.ls_clears else ", ls does not clear"
    if first.within_race_window:
        text += f", only within the {criterion:g}s race window"
    return text


def _phase_time(first: Verdict, kind: str, values: list[float], criterion: float | None) -> str:
    """Old data is judged against pass_within, so near it the figure says which side; an ESTALE window is not
    (any ESTALE fails)."""
    if first._ended_in(kind):
        return "never recovers"
    return seconds_text(values, criterion, compare=criterion is not None and min(values) > criterion)


def _late_text(values: list[float | None], criterion: float | None) -> str:
    if any(v is None for v in values):
        return "no new data"
    if criterion is None:   # a record from before the criterion was stored
        return f"new only after {seconds_text(values)}"
    text = seconds_text(values, criterion, compare=True)
    return f"new after {text}" if ">" in text else f"new after {text} > {criterion:g}s"


# ---- the rule ----------------------------------------------------------------------------------------------------

def classify(obs: Observation, criteria: Criteria) -> Verdict:
    """Judge one timeline. Pass = new data within pass_within, never old again after that, no ESTALE, no errors."""
    if not obs.mv_ok:
        return Verdict.error("mv", "bob's mv -f test2.txt test1.txt failed")
    after = sorted((r for r in obs.reads if r.t >= 0), key=lambda r: r.t)
    if not after:
        return Verdict.error("read", "empty timeline: alice made no read after the rename")
    first_new = next((r.t for r in after if r.kind == "new"), None)
    reasons = _fail_reasons(after, first_new, criteria)
    recovered = _recovered(after, criteria.settle)
    late = [r for r in after if r.t > criteria.pass_within]
    return Verdict(
        status="fail" if reasons else "pass",
        reason="+".join(reasons),
        first_new_after=first_new,
        stale_for=max((r.t for r in after if r.kind == "old"), default=0.0),
        estale_for=_span(after, "estale"),
        recovered=recovered,
        ls_clears=None if recovered or obs.after_ls is None else obs.after_ls.kind == "new",
        ended_in=after[-1].kind,
        pass_within=criteria.pass_within,
        # the relaxed reading, shown beside the strict status and never instead of it: nothing was wrong once the
        # race window (pass_within after the change) was over
        within_race_window=bool(reasons) and first_new is not None and first_new <= criteria.pass_within and
        bool(late) and all(r.kind == "new" for r in late),
    )


def _fail_reasons(after: list[Read], first_new: float | None, criteria: Criteria) -> list[str]:
    """Why a timeline fails, in the order they matter to a reader: stale data, then ESTALE, then other errors."""
    reasons = []
    late_old = any(r.kind == "old" and r.t > criteria.pass_within for r in after)
    old_after_new = first_new is not None and any(r.kind == "old" and r.t > first_new for r in after)
    if late_old or old_after_new:
        reasons.append("stale-data")
    if any(r.kind == "estale" for r in after):
        reasons.append("estale")
    if any(r.kind == "error" for r in after):
        reasons.append("read-error")
    if not reasons and (first_new is None or first_new > criteria.pass_within):
        reasons.append("late-new-data")  # new data arrived late with nothing else wrong (e.g. a gap in reads)
    return reasons


def _recovered(after: list[Read], settle: float) -> bool:
    """Ended on new data, and every read in the last `settle` seconds was new (not a lucky last read)."""
    if after[-1].kind != "new":
        return False
    return all(r.kind == "new" for r in after if r.t >= after[-1].t - settle)


def _span(after: list[Read], kind: str) -> float:
    """From the first read of this kind to the first read after its last one (or its last one, if at the end)."""
    times = [i for i, r in enumerate(after) if r.kind == kind]
    if not times:
        return 0.0
    first, last = times[0], times[-1]
    end = after[last + 1].t if last + 1 < len(after) else after[last].t
    return end - after[first].t

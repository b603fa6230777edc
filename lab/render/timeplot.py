"""Alice's timelines drawn to scale, as inline SVG for the HTML table.

Every plot on a page shares one time axis (TimeAxis: the same seconds → pixels, ticks at round seconds), so a 6 s
pass and a 32 s ESTALE window look as different as they are, and the rename (t = 0) lines up in every plot. A read
holds until the next one; where the next one is late (a read that hung, a reader that stalled) the read holds for
one usual spacing and the rest is drawn hatched as "no read", with a tooltip that says how long. Two kinds of plot:
- strips_svg: one cell's runs, one strip each (what every read showed, before and after the change);
- windows_svg: one axis combination, one row per kernel, one thin bar per run for the time after the change that
  the client served old data, ESTALE or errors, over a band from the shortest to the longest window of the runs.

Pure: observations in, SVG text out. The strings are marked safe by the HTML renderer, so every text that came
from a record (kernel names, read kinds, labels) is escaped here.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from html import escape
from statistics import median

KIND_COLOURS = {"new": "#2e9e4f", "old": "#e0a020", "estale": "#d03030", "error": "#7040a0"}
WRONG = ("old", "estale", "error")           # what a client must not serve after the change
NOREAD = "nfslab-noread"                     # id of the hatch pattern (defs_svg, once a page)
STRIP_PX = 360                               # the longest timeline of a page fits in this many pixels
MAX_PX_PER_S = 40.0                          # a page of short timelines is not blown up beyond this
TICK_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600)
MIN_TICK_PX = 34                             # ticks at least this far apart: labels like "-10s" never touch
LATE_FACTOR = 2.5                            # a next read later than this many usual spacings leaves a gap
ROW, BAR, AXIS_H = 16, 12, 14                # strip row height, bar height, axis height (pixels)
FONT = 'font-size="9" font-family="sans-serif"'


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _s(t: float) -> str:
    """A time in a tooltip: `5.5s`, `-2s`, `0`."""
    return "0" if abs(t) < 0.05 else f"{round(t, 1):g}s"


# ---- reads → segments ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """Consecutive reads of one kind, or a stretch without reads (kind "gap")."""

    kind: str
    start: float
    end: float
    reads: int = 0
    first: float = 0.0      # times of its first and last read
    last: float = 0.0

    def title(self) -> str:
        if self.kind == "gap":
            return (f"no read for {self.end - self.start:.1f}s: the read after the one at {_s(self.first)} came "
                    f"{self.end - self.first:.1f}s later")
        when = _s(self.first) if self.reads == 1 else f"{_s(self.first)}…{_s(self.last)}"
        return f"{self.kind} {when} ×{self.reads}" + (" (before the change)" if self.last < 0 else "")


def spacing(times: list[float], default: float = 0.5) -> float:
    """The usual time between two reads of a timeline (the median; `default` for fewer than two reads)."""
    steps = [b - a for a, b in zip(times, times[1:]) if b > a]
    return median(steps) if steps else default


def segments(reads: list[dict] | None) -> list[Segment]:
    """A timeline's reads as segments: each read holds until the next one, unless that one comes later than
    LATE_FACTOR usual spacings, when it holds one spacing and a gap follows; the last read holds one spacing.
    Reads of one kind merge, but never across the change (t = 0), so what came before it can be drawn apart."""
    points = sorted((float(r["t"]), str(r["kind"])) for r in reads or [])
    if not points:
        return []
    step = spacing([t for t, _ in points])
    out: list[Segment] = []
    for i, (t, kind) in enumerate(points):
        following = points[i + 1][0] if i + 1 < len(points) else t + step
        end = following if following - t <= LATE_FACTOR * step else t + step
        last = out[-1] if out else None
        if last and last.kind == kind and last.end == t and (last.last < 0) == (t < 0):
            out[-1] = replace(last, end=end, reads=last.reads + 1, last=t)
        else:
            out.append(Segment(kind, t, end, 1, t, t))
        if end < following:
            out.append(Segment("gap", end, following, first=t, last=t))
    return out


def window_segments(reads: list[dict] | None) -> list[Segment]:
    """What went wrong after the change: old, ESTALE and error segments from t = 0 on, and the gaps that follow
    one of them (nobody knows what the client would have served then)."""
    out, previous = [], None
    for seg in segments(reads):
        wrong = seg.kind in WRONG or (seg.kind == "gap" and previous in WRONG)
        if wrong and seg.end > 0:
            out.append(replace(seg, start=max(seg.start, 0.0)))
        previous = seg.kind
    return out


# ---- the page's axis ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeAxis:
    """Seconds → pixels, one for the whole page: from `lo` to `hi` seconds at `px_per_s`, `left` pixels of labels
    before it."""

    lo: float
    hi: float
    px_per_s: float
    left: int = 30
    right: int = 12

    @classmethod
    def fit(cls, observations, width: int = STRIP_PX) -> "TimeAxis":
        """The axis every timeline of the page fits on: whole seconds around all reads and `ls` reads, the change
        (t = 0) always in."""
        lo, hi = 0.0, 1.0
        for obs in observations:
            segs = segments((obs or {}).get("reads"))
            if segs:
                lo, hi = min(lo, segs[0].start), max(hi, segs[-1].end)
            after = (obs or {}).get("after_ls")
            if after:
                hi = max(hi, float(after["t"]) + 0.5)
        lo, hi = math.floor(lo), math.ceil(hi)
        return cls(lo, hi, min(MAX_PX_PER_S, width / (hi - lo)))

    def from_zero(self, left: int, right: int) -> "TimeAxis":
        """The same scale from the change on (the window plots)."""
        return replace(self, lo=0.0, left=left, right=right)

    def x(self, t: float) -> float:
        return round(self.left + (min(max(t, self.lo), self.hi) - self.lo) * self.px_per_s, 1)

    @property
    def width(self) -> int:
        return math.ceil(self.x(self.hi)) + self.right

    @property
    def step(self) -> int:
        """Seconds between ticks: the first round step that leaves MIN_TICK_PX between labels (beyond an hour,
        1, 2 or 5 × a power of ten, for a timeline no experiment makes but a damaged record may claim)."""
        need = MIN_TICK_PX / self.px_per_s
        steps = itertools.chain(TICK_STEPS, (m * 10 ** e for e in itertools.count(4) for m in (1, 2, 5)))
        return next(s for s in steps if s >= need)

    def ticks(self) -> list[int]:
        step = self.step
        return list(range(math.ceil(self.lo / step) * step, math.floor(self.hi) + 1, step))

    def grid(self, top: float, bottom: float) -> str:
        return "".join(f'<line x1="{self.x(t)}" y1="{top}" x2="{self.x(t)}" y2="{bottom}" stroke="#e4e4e4"/>'
                       for t in self.ticks())

    def labels(self, y: float) -> str:
        """Tick marks and round-second labels along y: `0`, `10s`, `-2s`."""
        out = []
        for t in self.ticks():
            x = self.x(t)
            out.append(f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y + 3}" stroke="#777"/>'
                       f'<text x="{x}" y="{y + 12}" text-anchor="middle" fill="#555">{_e(_s(t))}</text>')
        return f'<line x1="{self.x(self.lo)}" y1="{y}" x2="{self.x(self.hi)}" y2="{y}" stroke="#999"/>' + "".join(out)

    def marks(self, top: float, bottom: float, criterion: float | None) -> str:
        """The change (t = 0, black) and the criterion (pass_within, dashed)."""
        out = (f'<line x1="{self.x(0)}" y1="{top}" x2="{self.x(0)}" y2="{bottom}" stroke="#000" stroke-width="1.5">'
               f'<title>the change (t = 0)</title></line>')
        if criterion is not None and self.lo <= criterion <= self.hi:
            x = self.x(criterion)
            out += (f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#000" stroke-dasharray="2,2">'
                    f'<title>pass_within {criterion:g}s: new contents due by then</title></line>')
        return out


def defs_svg() -> str:
    """The hatch of "no read" segments, defined once a page; the plots refer to it by id."""
    return (f'<svg width="0" height="0" style="position:absolute" aria-hidden="true" focusable="false"><defs>'
            f'<pattern id="{NOREAD}" width="4" height="4" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="4" height="4" fill="#fff"/>'
            f'<line x1="1" y1="0" x2="1" y2="4" stroke="#9a9a9a" stroke-width="1.5"/></pattern></defs></svg>')


def _fill(kind: str) -> str:
    return f"url(#{NOREAD})" if kind == "gap" else KIND_COLOURS.get(kind, "#999")


def _bar(axis: TimeAxis, seg: Segment, y: float, height: float, title: str | None = None) -> str:
    x0, x1 = axis.x(seg.start), axis.x(seg.end)
    dim = ' fill-opacity="0.4"' if seg.kind != "gap" and seg.last < 0 else ""
    return (f'<rect x="{x0}" y="{y}" width="{max(round(x1 - x0, 1), 1.0)}" height="{height}" '
            f'fill="{_fill(seg.kind)}"{dim}><title>{_e(title or seg.title())}</title></rect>')


# ---- the plots ------------------------------------------------------------------------------------------------------

def strips_svg(runs: list[tuple[str, dict | None]], axis: TimeAxis, criterion: float | None = None) -> str:
    """One cell's runs on the page's axis: a strip per run (labelled when there are several; reads before the
    change are pale), the `ls` read as a dot after the timeline, then the round seconds. "" without reads."""
    if not any(segments((obs or {}).get("reads")) for _, obs in runs):
        return ""
    body, bottom = [], len(runs) * ROW
    for i, (label, obs) in enumerate(runs):
        y = i * ROW + 2
        if len(runs) > 1:
            body.append(f'<text x="{axis.left - 5}" y="{y + 9}" text-anchor="end" fill="#555">{_e(label)}</text>')
        body += [_bar(axis, seg, y, BAR) for seg in segments((obs or {}).get("reads"))]
        after = (obs or {}).get("after_ls")
        if after:
            t, kind = float(after["t"]), str(after["kind"])
            body.append(f'<circle cx="{axis.x(t)}" cy="{y + BAR / 2}" r="3" fill="{_fill(kind)}" stroke="#000" '
                        f'stroke-width="0.5"><title>{_e(f"after ls at {_s(t)}: {kind}")}</title></circle>')
    height = bottom + AXIS_H + 2
    return (f'<svg class="strips" width="{axis.width}" height="{height}" viewBox="0 0 {axis.width} {height}" '
            f'{FONT} role="img">{axis.grid(0, bottom)}{"".join(body)}{axis.marks(0, bottom, criterion)}'
            f'{axis.labels(bottom + 1)}</svg>')


@dataclass(frozen=True)
class WindowRow:
    """One kernel in a window plot: its runs' timelines and verdicts, what to write beside them, where to link."""

    kernel: str
    runs: list[tuple[dict | None, bool]]        # (observation, recovered) of each run with a kernel result
    label: str                                  # `24.0–25.0s`, `never`, `✓`, `ERROR`…
    title: str                                  # the cell's text, as a tooltip
    band: tuple[float, float] | None = None     # the shortest and longest window of the runs that recovered
    href: str | None = None                     # the cell's anchor, `#cell-…`


def label_width(texts: list[str]) -> int:
    """Room for the longest of these texts (kernel names, figures) at the plots' font size."""
    return min(220, 12 + math.ceil(5.6 * max((len(t) for t in texts), default=4)))


def windows_svg(rows: list[WindowRow], axis: TimeAxis, criterion: float | None = None) -> str:
    """One axis combination: a row per kernel (in the order given), a bar per run from the change on, coloured by
    what the client served wrong (old, ESTALE, error; a gap hatched), an arrow where it never recovered, a green
    tick where it served new data at once, over a grey band from the shortest to the longest window; the figure on
    the right. `axis` starts at 0 (TimeAxis.from_zero)."""
    body, y = [], 0.0
    for row in rows:
        n = max(len(row.runs), 1)
        bar = 4 if n <= 4 else max(1.5, round(16 / n, 1))
        height = max(n * (bar + 1) + 5, 13)
        name = f'<text x="{axis.left - 6}" y="{y + height / 2 + 3}" text-anchor="end">{_e(row.kernel)}</text>'
        body.append(f'<a href="{_e(row.href)}">{name}</a>' if row.href else name)
        if row.band:
            lo, hi = row.band
            tip = f"{row.kernel}: windows {_s(lo)}…{_s(hi)}, the shortest and longest of the runs that recovered"
            body.append(f'<rect x="{axis.x(lo)}" y="{y + 1}" width="{max(round(axis.x(hi) - axis.x(lo), 1), 1.5)}" '
                        f'height="{height - 2}" fill="#ddd"><title>{_e(tip)}</title></rect>')
        for j, (obs, recovered) in enumerate(row.runs):
            top = y + 3 + j * (bar + 1)
            wrong = window_segments((obs or {}).get("reads"))
            body += [_bar(axis, seg, top, bar, f"{row.kernel}: {seg.title()}") for seg in wrong]
            if wrong and not recovered:
                tip = axis.x(wrong[-1].end)
                body.append(f'<path d="M{tip},{top - 1.5} l5,{bar / 2 + 1.5} l-5,{bar / 2 + 1.5} z" fill="#000">'
                            f'<title>{_e(f"{row.kernel}: never recovered while alice read")}</title></path>')
            if not wrong:
                first = next((s.first for s in segments((obs or {}).get("reads")) if s.kind == "new" and s.end > 0),
                             None)
                if first is not None:
                    body.append(f'<rect x="{axis.x(max(first, 0))}" y="{top}" width="1.5" height="{bar}" '
                                f'fill="{KIND_COLOURS["new"]}"><title>{_e(f"{row.kernel}: new at {_s(first)}")}'
                                f'</title></rect>')
        body.append(f'<text x="{axis.x(axis.hi) + 6}" y="{y + height / 2 + 3}"><title>{_e(row.title)}</title>'
                    f'{_e(row.label)}</text>')
        y += height
    height = y + AXIS_H + 2
    return (f'<svg class="windows" width="{axis.width}" height="{height}" viewBox="0 0 {axis.width} {height}" '
            f'{FONT} role="img">{axis.grid(0, y)}{"".join(body)}{axis.marks(0, y, criterion)}{axis.labels(y + 1)}'
            f'</svg>')

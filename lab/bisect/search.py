"""The search: binary search for the first candidate like the new end, stepping around skipped ones, then the
confirmation of a single culprit against its parent (a bisect that guesses once names the wrong commit with full
confidence)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

from .step import Probe, Step, run_step
from .terms import BAD, GOOD, Settings


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

"""The words of a bisect and its rules: what the two ends are called (regression or fixed/unfixed), the exit codes
`git bisect run` reads, and the flaky policy a step's disagreeing runs are judged by.

With the default terms ("regression") old = good = the cell passes and new = bad = it fails. `fixed/unfixed` turns
that round to find the commit that fixed a cell: unfixed (old) = it fails, fixed (new) = it passes. Internally a
step's result is GOOD (like the old end), BAD (like the new end) or SKIP, which is also how `git bisect run` reads
exit codes 0, 1 and 125.
"""
from __future__ import annotations

from dataclasses import dataclass

GOOD, BAD, SKIP = "good", "bad", "skip"
#: what `lab bisect-step` exits with, as `git bisect run` reads it
EXIT_CODES = {GOOD: 0, BAD: 1, SKIP: 125}
#: git bisect run aborts the whole bisect on an exit code of 128 or more: bad input must never read as "bad"
EXIT_ABORT = 128
FLAKY_POLICIES = ("skip", "good", "bad", "majority")


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

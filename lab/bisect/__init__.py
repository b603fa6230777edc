"""Bisecting one cell: which kernel version or commit first changed its verdict. The search, its rules, its log and
its report, kept pure: a `Probe` says how to build a candidate and run the cell once, so tests drive the search with
fake probes, `lab bisect versions` with the Runner, and `lab bisect git` lets `git bisect run` do the halving while
each `lab bisect-step` process judges one commit with `run_step`.

Why the rules are strict: a bisect that guesses once names the wrong commit with full confidence. So every step
repeats the cell (`repeat`, default 3) and only unanimous runs count; disagreeing runs are a skip unless the user
chose another `--flaky` policy; a lab ERROR or a failed build is always a skip, never a verdict on the kernel; and
the culprit is confirmed afterwards by running it and its parent `repeat` times more, unanimously.

  terms.py      the words (regression, fixed/unfixed), exit codes, flaky policies, Settings
  step.py       judging one candidate: Probe, Trial, Build, Step, judge, run_step
  search.py     the binary search and the confirmation of a culprit
  steplog.py    steps.jsonl, appended step by step
  report.py     report.md and report.json; bisect_versions
  input.py      what to bisect: a cell, a kernel range, changes.json from `lab compare`
  git.py        driving `git bisect` in a Linux tree, one `lab bisect-step` per commit
  predicate.py  `--bad-if "window > 5s"`: judging a run by its figures
"""
from __future__ import annotations

from .input import (NOT_CHANGES, StoredChange, StoredChanges, StoredPlan, VersionsRequest, load_changes,
                    params_label, parse_cell, requests_from_changes, versions_range)
from .report import MARKS, Report, bisect_versions, render_markdown, short_name, write_report
from .search import Bisection, bisect, confirm, next_index, search, step_bound
from .step import (Build, Probe, Step, StoredBuild, StoredShape, StoredStep, Trial, decided, judge, run_step)
from .steplog import StepLog
from .terms import (BAD, EXIT_ABORT, EXIT_CODES, FIX, FLAKY_POLICIES, GOOD, REGRESSION, SKIP, TERMS, Settings, Terms,
                    parse_flaky, parse_terms)

__all__ = ["BAD", "EXIT_ABORT", "EXIT_CODES", "FIX", "FLAKY_POLICIES", "GOOD", "MARKS", "NOT_CHANGES", "REGRESSION",
           "SKIP", "TERMS", "Bisection", "Build", "Probe", "Report", "Settings", "Step", "StepLog", "StoredBuild",
           "StoredChange", "StoredChanges", "StoredPlan", "StoredShape", "StoredStep", "Terms", "Trial",
           "VersionsRequest", "bisect", "bisect_versions", "confirm", "decided", "judge", "load_changes",
           "next_index", "params_label", "parse_cell", "parse_flaky", "parse_terms", "render_markdown",
           "requests_from_changes", "run_step", "search", "short_name", "step_bound", "versions_range",
           "write_report"]

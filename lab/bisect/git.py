"""Driving `git bisect` in a Linux repository for `lab bisect git`: start it with the range and the terms, let
`git bisect run` call `lab bisect-step` on each commit git picks, read the answer back from `git bisect log`, reset.

git does the halving and the stepping around skipped commits; nfslab only judges one commit per step. The bisect
is started with `--no-checkout`: a step builds from `git archive <commit>` (lab/kernels.py) and never reads the work
tree, so checking out a whole kernel tree at every step would only cost time and touch the user's files. The commit
under test is then BISECT_HEAD instead of HEAD.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from .input import params_label
from .report import Report
from .search import Bisection, confirm
from .step import Probe
from .steplog import StepLog
from .terms import Settings, Terms

HEX40 = re.compile(r"^[0-9a-f]{40}$")


class GitError(Exception):
    """The repository or a revision is not what the command needs; one line for the user."""


class Repo:
    """A git work tree, asked only what a bisect needs."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def git(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise GitError(f"git {' '.join(args)} in {self.path}: {message[-1] if message else 'failed'}")
        return proc.stdout

    def check(self) -> "Repo":
        if not self.path.is_dir():
            raise GitError(f"{self.path}: no such directory")
        if self.git("rev-parse", "--is-inside-work-tree", check=False).strip() != "true":
            raise GitError(f"{self.path}: not a git work tree")
        return self

    @property
    def git_dir(self) -> Path:
        path = Path(self.git("rev-parse", "--git-dir").strip())
        return path if path.is_absolute() else self.path / path

    def commit(self, rev: str) -> str:
        sha = self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False).strip()
        if not HEX40.match(sha):
            raise GitError(f"{rev}: not a commit in {self.path}")
        return sha

    def subject(self, rev: str) -> str:
        return self.git("log", "-1", "--format=%s", rev).strip()

    def parent(self, rev: str) -> str | None:
        sha = self.git("rev-parse", "--verify", "--quiet", f"{rev}^", check=False).strip()
        return sha if HEX40.match(sha) else None

    def is_ancestor(self, old: str, new: str) -> bool:
        return subprocess.run(["git", "-C", str(self.path), "merge-base", "--is-ancestor", old, new],
                              capture_output=True).returncode == 0

    def commits_between(self, old: str, new: str) -> list[str]:
        """Commits after `old` up to `new` on the paths between them, oldest first: what git bisects over."""
        return self.git("rev-list", "--reverse", "--ancestry-path", f"{old}..{new}").split()

    @property
    def bisecting(self) -> bool:
        return (self.git_dir / "BISECT_START").exists()

    def under_test(self) -> str:
        """The commit a bisect step is about: BISECT_HEAD in a --no-checkout bisect, else HEAD."""
        if (self.git_dir / "BISECT_HEAD").exists():
            return self.commit("BISECT_HEAD")
        return self.commit("HEAD")


def start(repo: Repo, old: str, new: str, terms: Terms) -> None:
    """`git bisect start --no-checkout` with the terms, then mark both ends."""
    if repo.bisecting:
        raise GitError(f"a bisect is already in progress in {repo.path} (`git -C {repo.path} bisect reset` ends it)")
    repo.git("bisect", "start", "--no-checkout", *terms.git_start_args)
    repo.git("bisect", terms.old, old)
    repo.git("bisect", terms.new, new)


def run(repo: Repo, argv: list[str], env: dict | None = None, echo: Callable[[str], None] = lambda line: None
        ) -> tuple[int, str]:
    """`git bisect run ARGV`, its output passed line by line to `echo` as it comes, and returned whole."""
    proc = subprocess.Popen(["git", "-C", str(repo.path), "bisect", "run", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        echo(line.rstrip("\n"))
    return proc.wait(), "".join(lines)


def log(repo: Repo) -> str:
    return repo.git("bisect", "log", check=False)


def finished(repo: Repo, terms: Terms) -> bool:
    """git already named the first new commit (a range of one commit is answered by marking its ends)."""
    return bool(suspects(log(repo), terms))


def suspects(bisect_log: str, terms: Terms, output: str = "") -> list[str]:
    """What git found: [the first new commit], or every commit it could be when only skipped ones are left;
    [] when git did not get that far."""
    first = re.findall(rf"^# first {re.escape(terms.new)} commit: \[([0-9a-f]{{40}})\]", bisect_log, re.M)
    if first:
        return first[-1:]
    possible = re.findall(rf"^# possible first {re.escape(terms.new)} commit: \[([0-9a-f]{{40}})\]", bisect_log,
                          re.M)
    if possible:
        return possible
    # older git logs neither: read the list `git bisect run` printed
    match = re.search(r"could be any of:\n((?:[0-9a-f]{40}\n?)+)", output)
    return match.group(1).split() if match else []


def reset(repo: Repo) -> None:
    repo.git("bisect", "reset", check=False)


def bisect_commits(repo: Repo, old: str, new: str, settings: Settings, step_argv: list[str], steps: StepLog,
                   probe: Probe, cell: str, env: dict | None = None, echo: Callable[[str], None] = lambda line: None,
                   command: str = "", clock: Callable[[], float] = time.monotonic) -> Report:
    """The whole `lab bisect git`: start, `git bisect run` the step command, read the answer, confirm the culprit
    against its first parent with `probe` (in this process), and always end with `git bisect reset`.

    The steps in the report are those the step processes appended to `steps`; `old` and `new` are commits."""
    started = clock()
    notes: list[str] = []
    start(repo, old, new, settings.terms)
    try:
        output, code = "", 0
        if not finished(repo, settings.terms):
            code, output = run(repo, step_argv, env, echo)
        found = suspects(log(repo), settings.terms, output)
        if not found:
            notes.append(f"git bisect run stopped (exit {code}) before naming a commit; its output is above the "
                         f"report in the CI log and each step is in {steps.path}")
        if steps.path.parent.is_dir():
            (steps.path.parent / "git-bisect.log").write_text(log(repo))
        bisection = Bisection([old, *repo.commits_between(old, new)],
                              [s for s in steps.steps() if s.phase == "search"], found)
        if bisection.culprit is not None:
            bisection.first_parent = repo.parent(bisection.culprit)
        if bisection.first_parent is not None:
            bisection.confirm_steps = confirm(bisection.culprit, bisection.first_parent, probe, settings,
                                              steps.append)
    finally:
        reset(repo)
    titles = {sha: repo.subject(sha) for sha in {old, new, *found, *(s.candidate for s in bisection.steps)}
              | ({bisection.first_parent} if bisection.first_parent else set())}
    return Report(mode="git", cell=cell, old=old, new=new, settings=settings, bisection=bisection,
                  wall_s=clock() - started, command=command, titles=titles, notes=notes)


def step_command(repo: Path, params: dict, base: str, settings: Settings, log: Path, runs: Path, matrix: Path,
                 scope: Optional[str], bad_if: Optional[str] = None) -> list[str]:
    """What `git bisect run` runs for each commit: this interpreter's `lab bisect-step`, every path absolute (git
    runs it inside the repository), --keep-host (the host outlives the steps; `lab bisect git` releases it), and
    --bad-if when the runs are judged by a predicate."""
    return [sys.executable, "-m", "lab", "bisect-step", "--repo", str(repo.resolve()), "--cell", params_label(params),
            "--base", base, "--terms", settings.terms.key, "--repeat", str(settings.repeat), "--flaky",
            settings.flaky, "--log", str(log.resolve()), "--runs", str(runs.resolve()), "--matrix",
            str(matrix.resolve()), "--keep-host", *(["--scope", scope] if scope else []),
            *(["--bad-if", bad_if] if bad_if else [])]


def step_env() -> dict[str, str]:
    """The environment of each step: it runs `python -m lab` inside the repository, so it must import this very
    lab, installed or not (the directory that holds the `lab` package goes first on PYTHONPATH)."""
    here = str(Path(__file__).resolve().parents[2])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))

"""`lab bisect versions`, `lab bisect git` and `lab bisect-step` (what `git bisect run` calls); lab/bisect/ does
the work, lab/probes.py runs the cell.

`lab bisect-step` is different in one way: `git bisect run` reads its exit code, and 2 would mean "bad commit", so
anything that is not a verdict on the commit (bad input, a lab that cannot run, a bug) exits 128, which makes git
abort the bisect instead of recording a wrong answer. A bug is also reported as every command reports one
(lab/crash.py): one line, the traceback in a file (the bisect's directory). A commit that does not build is not a
bug: that step is a skip (125), whatever the build printed.

Exit codes of `lab bisect versions|git`: 0 the culprit is named and confirmed; 1 it is not (skipped steps hide it,
or the reruns of it and its parent disagreed); 2 bad input; 130 interrupted.
"""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from .. import crash
from ..bisect import git as gitbisect
from ..errors import BadFile, HostNotReady, LabError
from ..log import log as logger   # `log` is bisect-step's --log, the step log
from ..spec import SpecError
from .common import MatrixOpt, Usage, app, matrix_path, out, raise_interrupt

bisect_app = typer.Typer(no_args_is_help=True,
                         help="Find the kernel version or the commit that changed a cell's verdict.")
app.add_typer(bisect_app, name="bisect")

RepeatOpt = typer.Option(3, "--repeat", "-n", help="runs of the cell per step; they must agree (default 3)")
FlakyOpt = typer.Option("skip", "--flaky", help="when a step's runs disagree: skip (default) | good | bad | majority; "
                                                "with --terms fixed/unfixed, unfixed and fixed work too")
TermsOpt = typer.Option("regression", "--terms",
                        help="regression: good = the cell passes, bad = it fails (default); fixed/unfixed: find the "
                             "fix, unfixed = it fails, fixed = it passes")
ReportOpt = typer.Option(None, "--report", help="directory for steps.jsonl, report.md, report.json and the cells' "
                                                "runs (default: runs/bisect-<id>)")
KeepHostOpt = typer.Option(False, "--keep-host", help="leave the lab namespace and libvirtd running afterwards")
OldOpt = typer.Option(None, "--good", "--old", help="the older end: good for a regression, unfixed for a fix")
NewOpt = typer.Option(None, "--bad", "--new", help="the newer end: bad for a regression, fixed for a fix")
BadIfOpt = typer.Option(None, "--bad-if", help='judge each run by its figures instead of the strict verdict: it '
                                               'fails when EXPR holds, e.g. "window > 5s" (figures: window, stale, '
                                               'estale, first_new; see lab/bisect/predicate.py); errors stay skips')


def _settings(repeat: int, flaky: str, terms: str):
    from ..bisect import Settings, parse_flaky, parse_terms
    try:
        chosen = parse_terms(terms)
    except ValueError as e:
        raise Usage(f"--terms: {e}") from None
    try:
        policy = parse_flaky(flaky, chosen)
    except ValueError as e:
        raise Usage(f"--flaky: {e}") from None
    try:
        return Settings(repeat=repeat, flaky=policy, terms=chosen)
    except ValueError as e:
        raise Usage(f"--repeat: {e}") from None


def _predicate(text: Optional[str]):
    """--bad-if's expression, or None for the strict verdict."""
    from ..bisect.predicate import parse
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as e:
        raise Usage(f"--bad-if: {e}") from None


def _predicate_note(predicate) -> str:
    return (f'A run fails when `{predicate}` holds on its figures and passes when it does not (--bad-if; '
            f'lab/bisect/predicate.py defines them); a lab error is still a skip.')


def _matrix(path: Optional[Path]):
    from ..spec import load_matrix
    return load_matrix(matrix_path(path))


def _cell(text: str, matrix):
    from ..bisect import parse_cell
    try:
        return parse_cell(text, matrix.axes)
    except ValueError as e:
        raise Usage(f"--cell: {e}") from None


def _report_dir(report: Optional[Path]) -> Path:
    """A fresh directory: steps of two bisects in one step log would make one report of both."""
    from ..results import new_run_id
    directory = report or Path("runs") / f"bisect-{new_run_id()}"
    if (directory / "steps.jsonl").exists():
        raise Usage(f"--report {directory}: already holds a bisect (steps.jsonl); choose another directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _show_step(step) -> None:
    """One line per step. Its text is the build's, git's or the lab's own words (make errors hold `[file:line:
    target]`, commit subjects `[media]`): logged as it is, never parsed."""
    from ..bisect import short_name
    logger.info("%s %s%s: %s (%s; build %s %.0fs; %.0fs)", step.phase, short_name(step.candidate),
                f" {step.title}" if step.title else "", step.term, step.why, step.build.get("result"),
                step.build.get("seconds", 0), step.seconds)


def _recorder(log):
    """Each step into the step log as it ends, and one progress line."""
    def record(step) -> None:
        log.append(step)
        _show_step(step)
    return record


@contextmanager
def _interruptible():
    """Ctrl-C and SIGTERM end a bisect like `lab run`: tear down, keep what was logged, exit 130."""
    before = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        logger.warning("interrupted: tearing down (the steps so far are in the step log)")
        raise typer.Exit(130) from None
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _publish(report, directory: Path) -> None:
    from ..bisect import write_report
    md, _ = write_report(report, directory)
    out.print(md.read_text(), highlight=False, markup=False, soft_wrap=True)   # table rows stay whole
    out.print(f"report: {md} (+ report.json, steps.jsonl)", markup=False)


# ---- lab bisect versions -----------------------------------------------------------------------------------------

@bisect_app.command("versions")
def bisect_versions(cell: Optional[str] = typer.Option(None, "--cell", help="the cell's axis values, e.g. "
                                                       "vers=4.0/leases=on (a kernel in front is ignored)"),
                    good: Optional[str] = OldOpt, bad: Optional[str] = NewOpt,
                    kernels: Optional[str] = typer.Option(None, "--kernels", "-k", help="the ordered kernel series, "
                                                          "oldest first, comma-separated (default: the matrix's rows)"),
                    from_changes: Optional[Path] = typer.Option(None, "--from-changes", help="changes.json from "
                                                                "`lab compare`: bisect every change it gives a range"),
                    repeat: int = RepeatOpt, flaky: str = FlakyOpt, terms: str = TermsOpt,
                    matrix: Optional[Path] = MatrixOpt, report: Optional[Path] = ReportOpt,
                    keep_host: bool = KeepHostOpt, bad_if: Optional[str] = BadIfOpt):
    """Binary search over an ordered list of kernel specs for the first one whose cell verdict is like --bad's."""
    from ..bisect import StepLog, bisect_versions as run_bisect
    from ..host import require_root
    from ..probes import CellProbe, with_kernels
    from ..results import RunDir
    m = _matrix(matrix)
    settings = _settings(repeat, flaky, terms)
    predicate = _predicate(bad_if)
    requests, notes = _versions_requests(m, cell, good, bad, kernels, from_changes, settings.terms)
    for note in notes:
        logger.info("%s", note)
    if not requests:
        logger.info("nothing to bisect")
        return
    try:
        m = with_kernels(m, sorted({k for r in requests for k in r.kernels}))
    except ValueError as e:
        if from_changes is not None:
            raise BadFile(from_changes, None, f"changes for another matrix: {e}") from None
        raise Usage(f"--kernels: {e}") from None
    require_root()
    directory = _report_dir(report)
    crash.save_into(directory)
    probe = CellProbe(m, requests[0].params, RunDir(directory / "cells"), progress=logger.info, predicate=predicate)
    codes = []
    with _interruptible():
        try:
            for request in requests:
                where = directory if len(requests) == 1 else directory / request.cell.replace("/", "__")
                log = StepLog(where / "steps.jsonl")
                probe.params = dict(request.params)
                logger.info("bisect %s over %d kernels (%s)", request.cell, len(request.kernels), settings.terms.key)
                result = run_bisect(request, probe.probe(), settings, on_step=_recorder(log),
                                    command=" ".join(["lab", *sys.argv[1:]]))
                if predicate is not None:
                    result.notes.append(_predicate_note(predicate))
                _publish(result, where)
                codes.append(result.exit_code)
        finally:
            probe.close(keep_host)
    raise typer.Exit(max(codes))


def _versions_requests(m, cell, good, bad, kernels, from_changes, terms):
    """The bisects asked for: one from the options, or each one changes.json proposes (with notes on the rest)."""
    from ..bisect import VersionsRequest, load_changes, parse_cell, versions_range
    if from_changes is not None:
        if any(v is not None for v in (cell, good, bad, kernels)):
            raise Usage("--from-changes takes cells and ranges from the file: leave out --cell, --good, --bad and "
                        "--kernels")
        requests, notes = load_changes(from_changes)
        for request in requests:   # the file names cells: they must be cells of this matrix
            try:
                parse_cell(request.cell, m.axes)
            except ValueError as e:
                raise BadFile(from_changes, None, f"changes for another matrix: {e}") from None
        return requests, notes
    missing = [name for name, value in (("--cell", cell), ("--good", good), ("--bad", bad)) if value is None]
    if missing:
        raise Usage(f"bisect versions needs {', '.join(missing)} (or --from-changes FILE)")
    _, params = _cell(cell, m)
    series = [k.strip() for k in kernels.split(",") if k.strip()] if kernels else m.kernel_names
    if len(set(series)) != len(series):
        raise Usage(f"--kernels: a kernel is listed twice ({', '.join(series)})")
    try:
        return [VersionsRequest(params, versions_range(series, good, bad), terms)], []
    except ValueError as e:
        raise Usage(str(e) if kernels is None else f"--kernels: {e}") from None


# ---- lab bisect git and its step ---------------------------------------------------------------------------------

def _git_plan(m, cell: str, base: Optional[str], scope: Optional[str]):
    """(the base spec, the cell's params) for a commit bisect, checked before git or the lab is touched."""
    from ..probes import SCOPES, commit_kernel, with_kernels
    kernel_name, params = _cell(cell, m)
    if base and kernel_name and base != kernel_name:
        raise Usage(f"--cell names kernel {kernel_name} but --base is {base}: give one of them")
    base = base or kernel_name
    if not base:
        raise Usage("bisect git needs --base KERNEL_SPEC (or a cell that starts with it, e.g. "
                    "mainline-4.19/vers=4.0/leases=on)")
    if scope is not None and scope not in SCOPES:
        raise Usage(f"--scope: unknown scope '{scope}' (allowed: {', '.join(SCOPES)})")
    try:
        spec = with_kernels(m, [base]).kernel(base)
        commit_kernel(spec, Path("."), "0" * 40, scope)
    except ValueError as e:
        raise Usage(f"--base: {e}") from None
    if (scope or spec.source.get("scope")) == "module:fs/nfs" and not spec.base:
        raise Usage(f"--scope module:fs/nfs: {spec.name} names no base kernel whose headers the modules are built "
                    f"against (a module spec like debian-6.1-nofix has `base: debian-6.1`)")
    return with_kernels(m, [base]), spec, params


def _repo(path: Path):
    from ..bisect.git import GitError, Repo
    try:
        return Repo(path).check()
    except GitError as e:
        raise Usage(f"--repo: {e}") from None


@bisect_app.command("git")
def bisect_git(repo: Path = typer.Option(..., "--repo", help="a git work tree of Linux"),
               good: Optional[str] = OldOpt, bad: Optional[str] = NewOpt,
               cell: str = typer.Option(..., "--cell", help="e.g. mainline-4.19/vers=4.0/leases=on"),
               base: Optional[str] = typer.Option(None, "--base", help="the kernel spec whose config, patches and "
                                                  "expectations every commit is built with (default: the cell's)"),
               scope: Optional[str] = typer.Option(None, "--scope", help="full | module:fs/nfs (only fs/nfs of each "
                                                   "commit, built against the base's kernel; default: the base's)"),
               terms: str = TermsOpt, repeat: int = RepeatOpt, flaky: str = FlakyOpt,
               matrix: Optional[Path] = MatrixOpt, report: Optional[Path] = ReportOpt,
               keep_host: bool = KeepHostOpt, bad_if: Optional[str] = BadIfOpt):
    """`git bisect run` over commits: each step builds the commit and runs the cell (lab bisect-step); the culprit is
    then confirmed against its parent, a report written, and the bisect reset."""
    from ..bisect import StepLog, params_label
    from ..bisect.git import GitError, bisect_commits
    from ..host import require_root
    from ..probes import CellProbe, commit_probe, use_tree
    from ..results import RunDir
    m = _matrix(matrix)
    settings = _settings(repeat, flaky, terms)
    predicate = _predicate(bad_if)
    m, spec, params = _git_plan(m, cell, base, scope)
    if good is None or bad is None:
        raise Usage(f"bisect git needs --good and --bad (with --terms fixed/unfixed: --old is {settings.terms.old}, "
                    f"--new is {settings.terms.new})")
    r = _repo(repo)
    try:
        old, new = r.commit(good), r.commit(bad)
    except GitError as e:
        raise Usage(str(e)) from None
    if old == new or not r.is_ancestor(old, new):
        raise Usage(f"--good {good} must be an ancestor of --bad {bad}")
    if r.bisecting:
        raise Usage(f"--repo: a bisect is already in progress in {repo} (`git -C {repo} bisect reset` ends it)")
    require_root()
    directory = _report_dir(report)
    crash.save_into(directory)
    steps = StepLog(directory / "steps.jsonl")
    use_tree(r.path)
    step_argv = gitbisect.step_command(r.path, params, spec.name, settings, steps.path, directory / "cells", m.path, scope,
                             str(predicate) if predicate else None)
    env = gitbisect.step_env()
    cell_probe = CellProbe(m, params, RunDir(directory / "cells"), progress=logger.info, predicate=predicate)
    with _interruptible():
        try:
            cell_probe.runner.prepare()   # the host stays up across the step processes, and a broken one stops us here
            result = bisect_commits(r, old, new, settings, step_argv, steps,
                                    commit_probe(cell_probe, spec, r.path, scope),
                                    cell=f"{spec.name}/{params_label(params)}", env=env,
                                    echo=lambda line: print(line, file=sys.stderr, flush=True),
                                    command=" ".join(["lab", *sys.argv[1:]]))
        except GitError as e:
            raise LabError("git bisect", str(e)) from None
        finally:
            cell_probe.close(keep_host)
    if predicate is not None:
        result.notes.append(_predicate_note(predicate))
    _publish(result, directory)
    raise typer.Exit(result.exit_code)


@app.command("bisect-step")
def bisect_step(repo: Path = typer.Option(..., "--repo"), cell: str = typer.Option(..., "--cell"),
                base: str = typer.Option(..., "--base"), scope: Optional[str] = typer.Option(None, "--scope"),
                terms: str = TermsOpt, repeat: int = RepeatOpt, flaky: str = FlakyOpt,
                log: Path = typer.Option(..., "--log", help="the step log (JSONL) to append this step to"),
                runs: Path = typer.Option(..., "--runs", help="the run directory the cell's results and logs go to"),
                matrix: Optional[Path] = MatrixOpt, keep_host: bool = KeepHostOpt,
                bad_if: Optional[str] = BadIfOpt):
    """One step of `git bisect run` (lab bisect git runs it): build the commit under test and run the cell N times.
    Exit 0 good (old), 1 bad (new), 125 skip (failed build, lab ERROR, disagreeing runs), 128 abort the bisect (bad
    input, or the lab itself cannot run)."""
    from ..bisect import EXIT_ABORT
    from ..bisect.git import GitError
    crash.save_into(log.parent)   # a traceback goes into the bisect's directory, next to its step log
    try:
        code = _bisect_step(repo, cell, base, scope, terms, repeat, flaky, log, runs, matrix, keep_host, bad_if)
    except (SpecError, Usage, HostNotReady, LabError, GitError) as e:
        print(f"lab bisect-step: {e} (aborting the bisect)", file=sys.stderr)
        code = EXIT_ABORT
    except KeyboardInterrupt:
        code = 130
    except Exception as e:   # a bug is not a verdict on the commit: say so, keep the traceback, stop the bisect
        path = crash.save(e)
        logger.debug("the traceback of the internal error:", exc_info=e)
        print(f"lab bisect-step: {crash.one_line(e, path)} (aborting the bisect)", file=sys.stderr)
        code = EXIT_ABORT
    raise typer.Exit(code)


def _bisect_step(repo, cell, base, scope, terms, repeat, flaky, log, runs, matrix, keep_host, bad_if=None) -> int:
    from ..bisect import EXIT_CODES, StepLog, run_step
    from ..bisect.git import Repo
    from ..host import require_root
    from ..probes import CellProbe, commit_probe, use_tree
    from ..results import RunDir
    m = _matrix(matrix)
    settings = _settings(repeat, flaky, terms)
    predicate = _predicate(bad_if)
    m, spec, params = _git_plan(m, cell, base, scope)
    r = Repo(repo).check()
    commit = r.under_test()
    require_root()
    use_tree(r.path)
    runs.mkdir(parents=True, exist_ok=True)
    cell_probe = CellProbe(m, params, RunDir(runs), progress=logger.info, predicate=predicate)
    logger.info("bisect-step %s %s", commit[:12], r.subject(commit))
    try:
        step = run_step(commit, commit_probe(cell_probe, spec, r.path, scope), settings)
    finally:
        cell_probe.close(keep_host)
    StepLog(log).append(step)
    _show_step(step)
    return EXIT_CODES[step.result]

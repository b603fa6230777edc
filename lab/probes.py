"""The real-lab side of bisecting: a probe that gets a candidate kernel (fetch or build, cached as usual) and runs
one cell on it with the Runner, and the kernel specs a bisect needs beyond the matrix's rows: the kernels of a
series, and the base spec moved onto one commit of a git repository.

One Runner serves every candidate, so a kernel's topology is booted once and reverted between its repeats; a new
candidate replaces it. Each run's logs are kept apart (`logs/<cell>/run-N/`), because a flaky cell is only
understood by putting its runs side by side.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from . import kernels
from .bisect import Build, Probe, Trial
from .errors import KernelUnavailable, LabError
from .paths import LabHome
from .bisect.predicate import Predicate
from .results import RunDir
from .runner import Runner
from .spec import Cell, Kernel, Matrix, load_with_bases


def _quiet(msg: str) -> None:
    pass


class CellProbe:
    """Runs one cell's axis values on whichever kernel a bisect asks for. With a `predicate` (--bad-if), a run's
    status is whether the predicate holds on its figures (fail) or not (pass), instead of the strict verdict."""

    def __init__(self, matrix: Matrix, params: dict, run_dir: RunDir, home: LabHome | None = None,
                 progress=_quiet, predicate: Predicate | None = None):
        self.params = dict(params)
        self.predicate = predicate
        self.runner = Runner(matrix, run_dir, home=home, progress=progress)
        self.progress = progress
        self.runs: dict[str, int] = {}

    def add(self, kernel: Kernel) -> None:
        """Make a kernel spec that is not in the matrix (a commit of a repository) known to the runner."""
        matrix = self.runner.matrix
        self.runner.matrix = replace(matrix, known={**matrix.known, kernel.name: kernel})

    def probe(self) -> Probe:
        return Probe(run=self.run, prepare=self.prepare, title=self.title)

    def prepare(self, candidate: str) -> Build:
        """Fetch or build the candidate's kernel. The host and the box come first, and a failure there is the
        lab's (LabError goes up and stops the bisect); a kernel that fails to build is a skipped step, and so is
        one whose build or unpacking fails at the file level (a tree that cannot be archived or unpacked)."""
        if self.runner.box is None:
            self.runner.prepare()
        started = time.monotonic()
        try:
            kernels.check_files(kernels.resolve(self.runner.matrix.kernel(candidate), self.runner.home,
                                                self.runner.box, self.progress))
        except KernelUnavailable as e:
            return Build("unavailable", time.monotonic() - started, str(e))
        except (LabError, OSError) as e:
            return Build("failed", time.monotonic() - started, str(e))
        return Build("ok", time.monotonic() - started)

    def run(self, candidate: str) -> Trial:
        record = self.runner.run_cell(Cell(candidate, dict(self.params)))
        self._keep_logs(record.cell_id)
        verdict = record.verdict_obj
        if self.predicate is None:
            return Trial(record.status, verdict.summary(), record.duration_s)
        return Trial(self.predicate.status(verdict), f"{verdict.summary()}; {self.predicate.explain(verdict)}",
                     record.duration_s)

    def title(self, candidate: str) -> str:
        return self.runner.matrix.kernel(candidate).title

    def _keep_logs(self, cell_id: str) -> None:
        """The next run of the same cell writes the same log directory: copy this run's files aside."""
        self.runs[cell_id] = self.runs.get(cell_id, 0) + 1
        log_dir = self.runner.run_dir.log_dir(cell_id)
        keep = log_dir / f"run-{self.runs[cell_id]}"
        keep.mkdir(parents=True, exist_ok=True)
        for f in log_dir.iterdir() if log_dir.is_dir() else []:
            if f.is_file():
                shutil.copy2(f, keep / f.name)

    def close(self, keep_host: bool = False) -> None:
        """Destroy the topology, and take the shared host down unless someone else still uses it."""
        from .cleanup import release
        self.runner.close()
        release(self.runner.host, self.runner.run_dir.path, keep_host)


def with_kernels(matrix: Matrix, names: list[str]) -> Matrix:
    """The matrix with every named kernel spec known (and the bases of builds), rows or not: a version series
    may name specs that matrix.yaml does not list, looked up where the matrix's own are. ValueError names an
    unknown one."""
    files = matrix.files
    known = dict(matrix.known)
    for name in names:
        if name not in files and name not in known:
            raise ValueError(f"unknown kernel '{name}' (allowed: {', '.join(sorted(files))})")
        load_with_bases(name, files, known)   # as load_matrix does for rows: bases checked, loops refused
    return replace(matrix, known=known)


SCOPES = ("full", "module:fs/nfs")


def commit_kernel(base: Kernel, repo: Path, commit: str, scope: str | None = None) -> Kernel:
    """The base spec (config, patches, expectations) with its tree moved to `repo` at `commit`: the build then
    archives that commit from git, and its cache is keyed by the commit."""
    if base.source_kind != "build":
        raise ValueError(f"--base {base.name} is a '{base.source_kind}' kernel: a git bisect needs a 'build' spec "
                         f"whose config and scope it can reuse (e.g. mainline-4.19)")
    source = {**base.source, "tree": str(Path(repo).resolve()), "ref": commit}
    if scope:
        source["scope"] = scope
    # `-g<commit>` as git describe writes it: the name goes into build directories, where Kbuild wants plain paths
    return replace(base, name=f"{base.name}-g{commit[:12]}", title=f"{base.title}, tree at {commit[:12]}",
                   source=source)


def use_tree(repo: Path) -> None:
    """NFSLAB_LINUX_TREE overrides every spec's tree (lab/kernels.py): point it at the bisected repository, so a
    value left in the environment cannot make every step build the same other tree."""
    os.environ["NFSLAB_LINUX_TREE"] = str(Path(repo).resolve())


def commit_probe(cells: CellProbe, base: Kernel, repo: Path, scope: str | None = None) -> Probe:
    """A probe whose candidates are commits of `repo`: each becomes the base spec at that commit."""
    from .bisect.git import Repo

    def kernel_name(commit: str) -> str:
        kernel = commit_kernel(base, repo, commit, scope)
        cells.add(kernel)
        return kernel.name

    return Probe(run=lambda commit: cells.run(kernel_name(commit)),
                 prepare=lambda commit: cells.prepare(kernel_name(commit)),
                 title=lambda commit: Repo(repo).subject(commit))

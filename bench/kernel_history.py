"""Git histories of the pruned Linux 4.19.1 tree, for commit bisects on real VMs: what bench/bisect_history.py and
bench/stable_history.py share. The base commit is the tree from ../shared/kernels/ (tag `base`); every commit has a
fixed author, committer and date, so a history has the same commit ids on every machine, and so have the build
caches keyed by them. A finished history (tag `tip`) is reused as it is; `--force` makes it again.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TARBALL = PROJECT.parent / "shared/kernels/linux-4.19.1-pruned.tar.xz"
HISTORIES = Path("/var/lib/nfslab/bisect")
BENCH = ("nfslab bench", "nfslab@localhost")
#: 4.19.1 was released on 2018-11-04
BASE_DATE = "2018-11-04T12:00:00+0000"


def git(dest: Path, *args: str, author: tuple[str, str] = BENCH, date: str = BASE_DATE,
        committer_date: str | None = None) -> str:
    """git in the history as `author` on `date`; the committer is always nfslab bench (on `date` unless told)."""
    env = dict(os.environ, GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1], GIT_AUTHOR_DATE=date,
               GIT_COMMITTER_NAME=BENCH[0], GIT_COMMITTER_EMAIL=BENCH[1],
               GIT_COMMITTER_DATE=committer_date or date)
    return subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def start(dest: Path, tarball: Path, branch: str) -> None:
    """DEST as a new repository whose first commit (tag `base`) is the unpacked tarball."""
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xJf", str(tarball), "-C", str(dest)], check=True)
    git(dest, "init", "-q", f"--initial-branch={branch}")
    for key, value in (("gc.auto", "0"), ("core.autocrlf", "false")):
        git(dest, "config", key, value)
    git(dest, "add", "-A", "-f", ".")
    git(dest, "commit", "-q", "-m", "Linux 4.19.1 (pruned to the lab's x86_64 config)")
    git(dest, "tag", "base")


def reusable(dest: Path, force: bool, program: str) -> bool:
    """True when DEST already holds a finished history to reuse; False when it is to be made (removed first
    with --force). Anything else at DEST stops the program: it is not ours to overwrite."""
    if force and dest.exists():
        shutil.rmtree(dest)
    if not dest.exists():
        return False
    finished = subprocess.run(["git", "-C", str(dest), "rev-parse", "-q", "--verify", "tip"],
                              capture_output=True).returncode == 0
    if not (dest / ".git").is_dir() or not finished:
        sys.exit(f"{program}: {dest} exists and is not a finished history (--force makes it again)")
    return True


def require(program: str, *paths: Path) -> None:
    for path in paths:
        if not path.exists():
            sys.exit(f"{program}: {path}: not found")

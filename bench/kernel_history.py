"""Git histories of Linux 4.19.1, for commit bisects on real VMs: what bench/bisect_history.py and
bench/stable_history.py share.

The base commit (tag `base`) is the 4.19.1 tree of lab/data/kernels/mainline-4.19.yaml, found as the lab finds a
spec's release tarball (lab/tarballs.py: the NFSLAB_MIRROR directories, `mirror:` in $NFSLAB_HOME/config.yaml, the
kernel cache, else kernel.org; its pruned alternative where that is the one there), or the tarball given with
--tarball. NFSLAB_LINUX_TREE is not asked: it names a tree to build (often one of these histories), not 4.19.1.
Every commit has a fixed author, committer and date, so a history of the same base tree has the same commit ids on
every machine, and so have the build caches keyed by them. A finished history (tag `tip`) is reused as it is;
`--force` makes it again.
"""
from __future__ import annotations

import argparse

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lab import kernels, tarballs
from lab.errors import KernelUnavailable, LabError
from lab.paths import KERNELS, LabHome
from lab.spec import SpecError, load_kernel

#: the spec whose `tree:` names 4.19.1 (the upstream release and the pruned tree accepted in its place)
SPEC = KERNELS / "mainline-4.19.yaml"
PRUNED = "linux-4.19.1-pruned.tar.xz"
HISTORIES = Path("/var/lib/nfslab/bisect")
BENCH = ("nfslab bench", "nfslab@localhost")
#: 4.19.1 was released on 2018-11-04
BASE_DATE = "2018-11-04T12:00:00+0000"
TARBALL_HELP = ("a 4.19.1 tarball, upstream or pruned (default: mainline-4.19's tree, found in NFSLAB_MIRROR, the "
                "config's mirror or the kernel cache, else downloaded)")


def git(dest: Path, *args: str, author: tuple[str, str] = BENCH, date: str = BASE_DATE,
        committer_date: str | None = None) -> str:
    """git in the history as `author` on `date`; the committer is always nfslab bench (on `date` unless told)."""
    env = dict(os.environ, GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1], GIT_AUTHOR_DATE=date,
               GIT_COMMITTER_NAME=BENCH[0], GIT_COMMITTER_EMAIL=BENCH[1],
               GIT_COMMITTER_DATE=committer_date or date)
    return subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def find_tarball(program: str, given: Path | None = None, home: LabHome | None = None, progress=print) -> Path:
    """--tarball when given, else mainline-4.19's release tarball where lab/tarballs.py finds it (checked against
    its sha256); the program stops with the lab's one line on what to download, and where to, when it cannot."""
    if given is not None:
        require(program, given)
        return given
    try:
        tree = load_kernel(SPEC).source["tree"]
        return tarballs.find(tree, home or LabHome.default(), progress).path
    except (SpecError, KernelUnavailable, LabError, OSError) as e:   # OSError: a cache it may not write
        sys.exit(f"{program}: the 4.19.1 tree: {e}")


def start(dest: Path, tarball: Path, branch: str) -> None:
    """DEST as a new repository whose first commit (tag `base`) is the unpacked tarball (a top directory, as in
    kernel.org's linux-4.19.1/, is dropped: the pruned tree has none)."""
    kernels.unpack_tree(tarball, None, dest, dest.with_name(dest.name + ".unpack.log"))
    git(dest, "init", "-q", f"--initial-branch={branch}")
    for key, value in (("gc.auto", "0"), ("core.autocrlf", "false")):
        git(dest, "config", key, value)
    git(dest, "add", "-A", "-f", ".")
    git(dest, "commit", "-q", "-m", "Linux 4.19.1 (pruned to the lab's x86_64 config)" if tarball.name == PRUNED
        else "Linux 4.19.1")
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


def cli(program: str, doc: str, default_dest: Path, inputs: list[Path], make, summary) -> int:
    """The command line both history scripts share: DEST [--force] [--tarball T]; make the history unless one
    can be reused, then print its summary."""
    parser = argparse.ArgumentParser(prog=program, description=doc.split("\n\n")[0])
    parser.add_argument("dest", nargs="?", type=Path, default=default_dest)
    parser.add_argument("--force", action="store_true", help="remove DEST and make the history again")
    parser.add_argument("--tarball", type=Path, help=TARBALL_HELP)
    args = parser.parse_args()
    dest = args.dest.resolve()
    if not reusable(dest, args.force, program):
        require(program, *inputs)
        make(dest, find_tarball(program, args.tarball))
    print(summary(dest))
    return 0

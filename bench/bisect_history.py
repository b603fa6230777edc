#!/usr/bin/env python3
"""Make a git history of Linux 4.19.1 in which exactly one commit is the fix be189f7e, for bench/bisect_real.sh.

The base commit is the 4.19.1 tree of lab/data/kernels/mainline-4.19.yaml, found as the lab finds it (a mirror, the
kernel cache, or kernel.org; the pruned tarball where it is the one there), or --tarball (tag `base`; see
bench/kernel_history.py). Ten commits follow (tag `tip`): nine harmless ones that only reword comments or text
(fs/nfs, net/sunrpc, README, MAINTAINERS; same line count, so the code and the build stay the same) and, as the 7th,
lab/data/kernels/patches/be189f7e-4.19.patch as "NFS: Fix dentry revalidation on NFSv4 lookup". The 7th of 10 is
not the middle: a search that only ever looks at the middle does not find it by luck. Authors and dates are fixed,
so the commit ids are the same on every machine, and so are the build caches keyed by them (for the same base
tree).

    bench/bisect_history.py [DEST] [--force] [--tarball T]   (default DEST: /var/lib/nfslab/bisect/linux-4.19-history)

An existing history at DEST is reused as it is; --force makes it again. It takes about a minute (unpack + commit
~14k files). The source tarball is only read.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: python bench/bisect_history.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kernel_history as history         # noqa: E402
from bench.kernel_history import BENCH              # noqa: E402
from lab.paths import KERNELS                       # noqa: E402

PATCH = KERNELS / "patches/be189f7e-4.19.patch"
DEFAULT_DEST = history.HISTORIES / "linux-4.19-history"
FIX_AUTHOR = ("Trond Myklebust", "trond.myklebust@hammerspace.com")
FIX_SUBJECT = "NFS: Fix dentry revalidation on NFSv4 lookup"
FIX = "fix"   # marks the commit that applies the patch instead of an edit

#: (file, old text, new text, subject): each old text occurs exactly once, and no edit adds or removes a line
HISTORY = [
    ("README", "There are various text files in the Documentation/ subdirectory,",
     "There are various text files in the Documentation/ directory,", "README: say directory, not subdirectory"),
    ("fs/nfs/dir.c", " *  nfs directory handling functions", " *  NFS directory handling functions",
     "NFS: spell NFS in capitals in dir.c's header"),
    ("fs/nfs/inode.c", " *  nfs inode and superblock handling functions",
     " *  NFS inode and superblock handling functions", "NFS: spell NFS in capitals in inode.c's header"),
    ("fs/nfs/file.c", " *  Expire cache on write to a file by Wai S Kok (Oct 1994).",
     " *  Expire the cache on write to a file by Wai S Kok (Oct 1994).", "NFS: reword a comment in file.c"),
    ("MAINTAINERS", "W:\thttp://client.linux-nfs.org", "W:\thttps://client.linux-nfs.org",
     "MAINTAINERS: the NFS client web page over https"),
    ("fs/nfs/nfs4state.c", " *  Client-side XDR for NFSv4.", " *  Client-side state management for NFSv4.",
     "NFSv4: nfs4state.c manages client state, it is not XDR"),
    (FIX, "", "", FIX_SUBJECT),
    ("fs/nfs/super.c", " *  nfs superblock handling functions", " *  NFS superblock handling functions",
     "NFS: spell NFS in capitals in super.c's header"),
    ("fs/nfs/read.c", " * Block I/O for NFS", " * Block I/O for NFS (the read side)",
     "NFS: say which side read.c is about"),
    ("net/sunrpc/clnt.c", " *  This file contains the high-level RPC interface.",
     " *  This file contains the high level RPC interface.", "SUNRPC: a comment's hyphen"),
]

FIX_BODY = f"""{FIX_SUBJECT}

Upstream commit be189f7e7f03 (v4.20), applied from kernels/patches/be189f7e-4.19.patch:
can_open_cached() gets the open's claim and refuses the cached open for NFS4_OPEN_CLAIM_NULL and
NFS4_OPEN_CLAIM_FH, so an open by name always goes to the server and the dentry is revalidated.
"""


def git(dest: Path, *args: str, author: tuple[str, str] = BENCH, day: int = 0) -> str:
    """git in the history, as a fixed author on a fixed date: `day` days after 4.19.1's release."""
    return history.git(dest, *args, author=author, date=f"2018-11-{4 + day:02d}T12:00:00+0000")


def edit(dest: Path, path: str, old: str, new: str) -> None:
    target = dest / path
    text = target.read_text(errors="surrogateescape")
    if text.count(old) != 1 or old.count("\n") != new.count("\n"):
        sys.exit(f"bisect_history: {path}: expected the text {old!r} exactly once")
    target.write_text(text.replace(old, new), errors="surrogateescape")


def make(dest: Path, tarball: Path) -> None:
    history.start(dest, tarball, branch="history")
    for day, (path, old, new, subject) in enumerate(HISTORY, 1):
        if path == FIX:
            git(dest, "apply", "--index", str(PATCH))
            git(dest, "commit", "-q", "-m", FIX_BODY, author=FIX_AUTHOR, day=day)
        else:
            edit(dest, path, old, new)
            git(dest, "add", path)
            git(dest, "commit", "-q", "-m", subject, day=day)
    git(dest, "tag", "tip")


def summary(dest: Path) -> str:
    commits = git(dest, "rev-list", "--reverse", "base..tip").split()
    lines = [f"history in {dest}: base {git(dest, 'rev-parse', 'base')[:12]} + {len(commits)} commits"]
    for number, sha in enumerate(commits, 1):
        subject = git(dest, "log", "-1", "--format=%s", sha)
        lines.append(f"  {number:2}. {sha[:12]} {subject}" + ("   <- the fix" if subject == FIX_SUBJECT else ""))
    fix = git(dest, "log", "--format=%H", f"--grep={FIX_SUBJECT}", "base..tip")
    lines.append(f"expected culprit (first fixed commit): {fix}")
    return "\n".join(lines)


def main() -> int:
    return history.cli("bisect_history", __doc__, DEFAULT_DEST, [PATCH], make, summary)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Make a git history of Linux 4.19.1 plus the NFS client commits that 4.19.64 backported, one commit each, for
bench/bisect_v41_window.sh: which of them opened the ~25 s vers=4.1 window (issue 17)?

The base commit is 4.19.1, found as bench/bisect_history.py finds it (mainline-4.19's tree: a mirror, the kernel
cache or kernel.org, or --tarball; bench/kernel_history.py) (tag `base`).
The patches are the texts in bench/stable-4.19.64/ (committed, never downloaded), applied in upstream order, each
committed with its upstream subject, author and author date and the stable-style line `commit <sha> upstream.`:

    1. NFS: Fix dentry revalidation on NFSv4 lookup      be189f7e7f03  tag up-be189f7e
    2. NFS: Refactor nfs_lookup_revalidate()             5ceb9d7fdaaf  tag up-5ceb9d7f
    3. NFSv4: Fix lookup revalidate of regular files     c7944ebb9ce9  tag up-c7944ebb, v4.19.64-nfs
    4. NFS: Remove redundant semicolon                   42f72cf368c5  tag up-42f72cf3, tip

1–3 are 4.19.64's own (4.19.64-stable review of 2019-08-02, patches 03–05 of 32; released unchanged on
2019-08-04). 4 is not in 4.19.64 nor in any 4.19.y: Greg Kroah-Hartman declined it for stable on 2019-07-31 ("not
needed in a stable kernel tree"). It turns `;;` into `;` and generates the same code; it is here because issue 17
names it, last, so that `v4.19.64-nfs` is exactly 4.19.64's NFS revalidation code on 4.19.1.

What 4.19.64 also changed in fs/nfs and this history leaves out: "NFS: Cleanup if nfs_match_client is interrupted"
(fs/nfs/client.c, mount-time client matching). It needs "NFS: make nfs_match_client killable" (950a578c6128) and
its follow-up fix from earlier 4.19.y releases, which are not in 4.19.1; none of them is on the lookup or open path.

A reading of the diffs, not a measurement (the bisect is the measurement): c7944ebb drops nfs4_lookup_revalidate()'s
`if (NFS_SB(dentry->d_sb)->caps & NFS_CAP_ATOMIC_OPEN_V1) goto no_open;`, so on vers=4.1 a cached name is trusted
for an open as long as its directory's cached attributes say it did not change, and the open goes by file handle:
the shape of the 4.1 windows, which end with the first LOOKUP, when the directory's cached attributes expire.

Authors and author dates are the upstream ones, the committer is nfslab bench on 4.19.64's release date: the
commit ids are the same on every machine, and so are the build caches keyed by them.

    bench/stable_history.py [DEST] [--force] [--tarball T]   (default DEST: /var/lib/nfslab/bisect/linux-4.19-stable)

An existing history at DEST is reused as it is; --force makes it again. It takes about a minute (unpack + commit
~14k files). The source tarball is only read.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: python bench/stable_history.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import kernel_history as history         # noqa: E402

SERIES = Path(__file__).resolve().parent / "stable-4.19.64"
DEFAULT_DEST = history.HISTORIES / "linux-4.19-stable"
#: 4.19.64's release announcement (Greg Kroah-Hartman, 2019-08-04 12:13:55 +0200): every commit's committer date
RELEASED = "2019-08-04T12:13:55+0200"
#: the tag of the last commit that is 4.19.64's: the history up to it is 4.19.64's NFS revalidation code
STABLE_TAG = "v4.19.64-nfs"


@dataclass(frozen=True)
class Patch:
    """One file of bench/stable-4.19.64/ and the tag of its commit."""

    file: str
    tag: str
    in_stable: bool = True


# What each patch text needed to apply to 4.19.1, and where its metadata comes from. The diffs are the mails'
# byte for byte: no hunk's context had to change. Checked with `patch -p1 --dry-run` and `git apply --check`, in
# order, on the pruned tree (only fs/nfs/dir.c and fs/nfs/nfs4proc.c are touched, and both are whole in it).
PATCHES = [
    # be189f7e7f03, [PATCH 4.19 03/32]. No change. All three hunks (can_open_cached(), nfs4_try_open_cached(),
    # nfs4_open_prepare()) apply 6 lines earlier than the mail's numbers: 4.19.2-4.19.63 added 6 lines above them
    # to fs/nfs/nfs4proc.c, none inside their context. The diff's lines equal be189f7e-4.19.patch of lab/data/kernels/
    # (that file only has 4.19.1's line numbers, no function names in its @@ lines, and its own header).
    # Author date: not in the mail; the series' date (that of 5ceb9d7fdaaf, its child upstream) is used.
    Patch("0001-NFS-Fix-dentry-revalidation-on-NFSv4-lookup.patch", "up-be189f7e"),
    # 5ceb9d7fdaaf, [PATCH 4.19 04/32]. No change; both hunks apply at the mail's line numbers (fs/nfs/dir.c of
    # 4.19.1 and 4.19.63 agree up to there). The result, nfs_lookup_revalidate_done() to the end of
    # nfs_do_lookup_revalidate(), is byte-identical to a later 4.19.y tree's (LineageOS/android_kernel_qcom_sm8250
    # at 8d124ffc). Author date 2018-09-28 09:04:05 -0400: upstream commit page (git.zx2c4.com, linux-dev mirror).
    Patch("0002-NFS-Refactor-nfs_lookup_revalidate.patch", "up-5ceb9d7f"),
    # c7944ebb9ce9, [PATCH 4.19 05/32]. No change; all three hunks apply at the mail's line numbers. The result,
    # nfs4_do_lookup_revalidate() and nfs4_lookup_revalidate(), equals the 4.19.y tree above (";;" included).
    # Author date: not in the mail; the series' date, as for 0001.
    Patch("0003-NFSv4-Fix-lookup-revalidate-of-regular-files.patch", "up-c7944ebb"),
    # 42f72cf368c5, Qian Lu's 4.14 backport ([PATCH 4/4], 2019-07-31), never in 4.19.y. No change; its one hunk
    # (made for 4.14) applies 19 lines later. Author date: the day only, 2019-02-12, from Amazon Linux's kernel
    # changelog (which lists the author date of each commit it carries); the time is a placeholder.
    Patch("0004-NFS-Remove-redundant-semicolon.patch", "up-42f72cf3", in_stable=False),
]

NOT_IN_STABLE = ("[nfslab: not in 4.19.64 nor any 4.19.y: declined for the stable trees on 2019-07-31 (\"not needed "
                 "in a stable kernel tree\"); upstream since v5.1. Kept last: issue 17 names it, and it changes no "
                 "generated code.]")


@dataclass(frozen=True)
class Commit:
    """What git needs to commit one patch as its upstream author, read from the patch file's own header."""

    author: tuple[str, str]
    date: str
    subject: str
    body: str            # from "commit <sha> upstream." to the last Signed-off-by

    @property
    def upstream(self) -> str:
        return re.search(r"^commit ([0-9a-f]{40}) upstream\.$", self.body, re.M).group(1)


def read_commit(path: Path) -> Commit:
    """The From:, Date: and Subject: lines and the message up to the `---` before the diffstat."""
    text = path.read_text()
    head = re.search(r"^From: (.+?) <(.+?)>\nDate: (.+)\nSubject: (.+)\n\n", text, re.M)
    if not head:
        sys.exit(f"stable_history: {path}: no From:/Date:/Subject: header")
    rest = text[head.end():]
    body = rest[:rest.index("\n---\n")].strip()
    if not re.search(r"^commit [0-9a-f]{40} upstream\.$", body, re.M):
        sys.exit(f"stable_history: {path}: no 'commit <sha> upstream.' line")
    return Commit((head.group(1), head.group(2)), head.group(3), head.group(4), body)


def make(dest: Path, tarball: Path) -> None:
    history.start(dest, tarball, branch="stable")
    for patch in PATCHES:
        path = SERIES / patch.file
        commit = read_commit(path)
        message = f"{commit.subject}\n\n{commit.body}\n" + ("" if patch.in_stable else f"\n{NOT_IN_STABLE}\n")
        history.git(dest, "apply", "--index", str(path))
        history.git(dest, "commit", "-q", "-m", message, author=commit.author, date=commit.date,
                    committer_date=RELEASED)
        history.git(dest, "tag", patch.tag)
        if patch == [p for p in PATCHES if p.in_stable][-1]:
            history.git(dest, "tag", STABLE_TAG)
    history.git(dest, "tag", "tip")


def summary(dest: Path) -> str:
    commits = history.git(dest, "rev-list", "--reverse", "base..tip").split()
    lines = [f"history in {dest}: base {history.git(dest, 'rev-parse', 'base')[:12]} + {len(commits)} commits"]
    for number, sha in enumerate(commits, 1):
        subject = history.git(dest, "log", "-1", "--format=%s", sha)
        upstream = re.search(r"^commit ([0-9a-f]{12})", history.git(dest, "log", "-1", "--format=%b", sha), re.M)
        tags = history.git(dest, "tag", "--points-at", sha).split()
        lines.append(f"  {number}. {sha[:12]} {subject} (upstream {upstream.group(1) if upstream else '?'}; "
                     f"tags {', '.join(tags)})")
    return "\n".join(lines)


def main() -> int:
    return history.cli("stable_history", __doc__, DEFAULT_DEST, [SERIES / p.file for p in PATCHES], make, summary)


if __name__ == "__main__":
    sys.exit(main())

"""The seed's original symptom: `git gc` on one NFS client while another reads the repository's refs failed with
`fatal: Couldn't read ./packed-refs: Stale file handle` (or showed refs from before the gc).

Alice plays a long-lived git reader (Gitaly's `git cat-file --batch` keeps packed-refs mapped): she holds
.git/packed-refs open and resolves `refs/heads/nfslab` once per interval, which lstat()s the loose ref and then
opens packed-refs by name. Bob moves the branch and packs refs the way `git gc` does (`git pack-refs --all`):
git writes packed-refs.lock and renames it over packed-refs — the seed's rename-over, done by git — and removes
the loose ref. Before bob's change alice resolves the old commit; after it, a correct client the new one.
"""
from __future__ import annotations

from .. import nfs
from ..errors import LabError
from ..remote import Remote
from .race import Scenario

REPO = "repo"
BRANCH = "refs/heads/nfslab"
#: fixed identities and dates, so the two commits have the same ids in every cell and every run
GIT_ENV = ("HOME=/root GIT_AUTHOR_NAME=nfslab GIT_AUTHOR_EMAIL=nfslab@lab GIT_COMMITTER_NAME=nfslab "
           "GIT_COMMITTER_EMAIL=nfslab@lab GIT_AUTHOR_DATE=2018-08-01T00:00:00Z "
           "GIT_COMMITTER_DATE=2018-08-01T00:00:00Z")


def server_script() -> str:
    """Create the repository on the server's own filesystem: two commits, the branch at the first, every ref
    packed; world-writable, because bob's writes arrive root-squashed. Prints the old and the new commit."""
    repo = f"{nfs.EXPORT}/{REPO}"
    return f"""set -e
export {GIT_ENV}
rm -rf {nfs.EXPORT}/* {nfs.EXPORT}/.[!.]* 2>/dev/null || true
git init -q -b main {repo}
cd {repo}
echo old > f && git add f && git commit -q -m old
echo new > f && git commit -q -am new
git update-ref {BRANCH} HEAD~1
git pack-refs --all
test ! -e .git/{BRANCH}
chmod -R a+rwX {repo}
git rev-parse HEAD~1 HEAD
"""


def scenario(old: str, new: str) -> Scenario:
    return Scenario(name="git-packed-refs", workdir=f"{nfs.MOUNTPOINT}/{REPO}", hold=".git/packed-refs",
                    read=f"git rev-parse {BRANCH}", change=f"git update-ref {BRANCH} {new} && git pack-refs --all",
                    old=old, new=new, stat=".git/packed-refs", bob_check=f"git rev-parse {BRANCH}",
                    listdir=".git", touch=(".git/packed-refs",))


def prepare(server: Remote) -> Scenario:
    out = server.run(server_script(), step="git-packed-refs: create repository", timeout=120).stdout.split()
    if len(out) != 2 or not all(len(c) == 40 for c in out):
        raise LabError("git-packed-refs: create repository", f"expected two commit ids, got {out!r}", server.log)
    return scenario(*out)

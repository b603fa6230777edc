#!/usr/bin/env bash
# Issue 17 on real VMs: which NFS commit of 4.19.64 opened the ~25 s vers=4.1 window, and does reverting it close it?
#
#   bench/bisect_v41_window.sh [REPO] [REPORT_DIR]        (TARBALL=… for a 4.19.1 tarball to use as it is)
#
# 1. bench/stable_history.py makes (or reuses) REPO: 4.19.1 (tag base) + be189f7e, 5ceb9d7f, c7944ebb (4.19.64's,
#    tag v4.19.64-nfs) + 42f72cf3 (tag tip), one commit each with its upstream author and id. 4.19.1 is
#    mainline-4.19's tree, found as the lab finds it: the NFSLAB_MIRROR directories, `mirror:` in
#    $NFSLAB_HOME/config.yaml, the kernel cache, else kernel.org (lab/tarballs.py).
# 2. `lab bisect git --bad-if "window > 5s"` over base..tip: each step builds the commit (mainline-4.19's config,
#    full scope, ccache), boots server + alice + bob on it and runs mainline-4.19/vers=4.1/leases=on 3 times. A run
#    is bad when old data or ESTALE lasted more than 5 s after the rename, or never ended (lab/bisect/predicate.py), and
#    good otherwise: the strict verdict cannot ask this, it already fails 4.19.1 + be189f7e on one ESTALE read.
#    Runs that disagree or a lab error make a skip; the culprit is then rerun 3 times against its parent.
# 3. KernelCI's revert check. The culprit is reverted on tip (`git revert --no-commit` in a scratch work tree of
#    REPO; if a later commit touches the same lines, again with -X theirs, which keeps the culprit's parent's text
#    there) and the diff written to /var/lib/nfslab/bisect/revert-culprit-4.19.64.patch, the patch of
#    matrices/kernels/stable-4.19.64-tip-revert.yaml. Then
#    a. `lab bisect versions` over (tip-revert, tip) with the same predicate, on matrices/v41-window-revert.yaml
#       (the matrix whose kernels/ has both specs): two candidates leave nothing to search, so it only confirms:
#       tip must be bad in 3 of 3 runs and tip minus the culprit good in 3 of 3;
#    b. `lab run --matrix matrices/v41-window-revert.yaml`: both kernels' table at vers=4.1, leases on and off.
# It prints the culprit, the revert check and the wall time, and exits 0 only when the bisect confirmed a culprit
# and the revert check confirmed it again.
#
# Needs root, `lab setup` (./quickstart.sh --setup-only) and a 4.19.1 tarball the lab can find. This machine cannot
# reach kernel.org: its pruned tarball is in ../shared/kernels/ beside the checkout, which this script puts first in
# NFSLAB_MIRROR when it is there (as .ci/run does); elsewhere, set NFSLAB_MIRROR=<dir with the tarball> or TARBALL=.
# Expected on this 2-core TCG machine: the history ~15 s; 4 commits to search, so at most ceil(log2 4)+1 = 3 search
# steps + 2 confirmation steps, each a build (the first cold ~4 min, then ~0.5-1 min with ccache), a boot
# (~1-1.5 min) and 3 runs (~1 min for a short window, ~4 min for a long one: alice reads until 5 s of new data or
# 60 s); the revert check 2 builds, 2 x 3 runs and a 4-cell table. About 40-70 min in all.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:-/var/lib/nfslab/bisect/linux-4.19-stable}
report=${2:-runs/bisect-v41-window-$(date -u +%Y%m%d-%H%M%S)}
predicate="window > 5s"
revert_patch=/var/lib/nfslab/bisect/revert-culprit-4.19.64.patch   # matrices/kernels/stable-4.19.64-tip-revert.yaml's
lab=.venv/bin/lab
[ -x "$lab" ] || lab="python3 -m lab"
py=.venv/bin/python                   # the history scripts import lab (lab/tarballs.py finds the 4.19.1 tree)
[ -x "$py" ] || py=python3
if [ -d ../shared/kernels ]; then
  NFSLAB_MIRROR="$(realpath ../shared/kernels)${NFSLAB_MIRROR:+:$NFSLAB_MIRROR}"
  export NFSLAB_MIRROR
fi
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]) or "")' "$@" 2>/dev/null \
         || true; }

$py bench/stable_history.py "$repo" ${TARBALL:+--tarball "$TARBALL"}
repo=$(cd "$repo" && pwd)
export NFSLAB_LINUX_TREE="$repo"      # the stable-4.19.64-* specs build commits of this history
mkdir -p "$report"
started=$(date +%s)

# ---- 2. the bisect ------------------------------------------------------------------------------------------------
set +e
$lab bisect git --repo "$repo" --old base --new tip --cell mainline-4.19/vers=4.1/leases=on --bad-if "$predicate" \
  --repeat 3 --report "$report/bisect"
bisect_rc=$?
set -e
culprit=$(json "$report/bisect/report.json" culprit)
outcome=$(json "$report/bisect/report.json" outcome)
echo "== bisect: exit $bisect_rc, outcome ${outcome:-none}, culprit ${culprit:-none}"
if [ "$bisect_rc" != 0 ] || [ -z "$culprit" ]; then
  echo "== no confirmed culprit: no revert check. Read $report/bisect/report.md (steps.jsonl: every run's figures)."
  echo "   If every step was good, tip's window is not long here: the window is not in this series."
  exit 1
fi
subject=$(git -C "$repo" log -1 --format=%s "$culprit")
upstream=$(git -C "$repo" log -1 --format=%b "$culprit" | sed -n 's/^commit \([0-9a-f]\{40\}\) upstream\./\1/p')

# ---- 3. the revert check ------------------------------------------------------------------------------------------
scratch=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$scratch/tree" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git -C "$repo" worktree add -q --detach "$scratch/tree" tip
revert() { git -C "$scratch/tree" -c user.name="nfslab bench" -c user.email=nfslab@localhost revert --no-commit "$@" \
           "$culprit" >"$scratch/revert.log" 2>&1; }
how="cleanly"
if ! revert; then
  git -C "$scratch/tree" revert --abort >/dev/null 2>&1 || git -C "$scratch/tree" reset -q --hard tip
  conflicts=$(grep -o 'Merge conflict in .*' "$scratch/revert.log" | tr '\n' ' ' || true)
  how="with -X theirs: ${conflicts}kept the culprit's parent's text"
  if ! revert -X theirs; then
    cat "$scratch/revert.log"
    echo "== $culprit does not revert on tip, even with -X theirs: the revert check needs a hand-made patch at"
    echo "   $revert_patch; then run steps 3a and 3b of this script by hand."
    exit 1
  fi
fi
parent_same=$(git -C "$scratch/tree" diff --cached --quiet "$culprit^" -- fs/nfs && echo "equal to" \
              || echo "different from")
mkdir -p "$(dirname "$revert_patch")"
{
  echo "Revert of $culprit \"$subject\" (upstream ${upstream:-?}) on tip of $repo,"
  echo "made by bench/bisect_v41_window.sh ($how). fs/nfs after it: $parent_same the culprit's parent's."
  echo
  git -C "$scratch/tree" diff --cached
} >"$revert_patch"
cp "$revert_patch" "$report/"
echo "== revert patch ($how): $revert_patch; fs/nfs is then $parent_same the culprit's parent's"
if [ "$how" != cleanly ] && [ "$parent_same" != "equal to" ]; then
  echo "   a later commit builds on the culprit: this revert may not build (the check then skips it, exit 1);"
  echo "   if it does not, revert the later commits with it (git revert --no-commit $culprit^..tip) by hand"
fi

set +e
$lab bisect versions --matrix matrices/v41-window-revert.yaml --cell vers=4.1/leases=on \
  --good stable-4.19.64-tip-revert --bad stable-4.19.64-4-42f72cf3 \
  --kernels stable-4.19.64-tip-revert,stable-4.19.64-4-42f72cf3 --bad-if "$predicate" --repeat 3 \
  --report "$report/revert-check"
revert_rc=$?
$lab run --matrix matrices/v41-window-revert.yaml --runs "$report/revert-table"
set -e
wall=$(( $(date +%s) - started ))

echo "== culprit:      $culprit $subject (upstream ${upstream:-?})"
echo "== bisect:       $outcome (report: $report/bisect/report.md, steps: $report/bisect/steps.jsonl)"
echo "== revert check: $([ "$revert_rc" = 0 ] && echo "confirmed: tip bad 3/3, tip minus the culprit good 3/3" \
                        || echo "NOT confirmed (exit $revert_rc)") ($report/revert-check/report.md)"
echo "== table:        $report/revert-table/*/ (lab table <run dir>)"
echo "== wall time:    ${wall}s ($(( wall / 60 )) min)"
[ "$revert_rc" = 0 ]

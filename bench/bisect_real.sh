#!/usr/bin/env bash
# The real commit bisect of issue 6, on real VMs: which commit of a 4.19.1 history FIXED vers=4.0 on NFSv4.0?
#
#   bench/bisect_real.sh [REPO] [REPORT_DIR]
#
# 1. bench/bisect_history.py makes (or reuses) REPO: Linux 4.19.1 + 10 commits, the 7th of which is be189f7e.
# 2. `lab bisect git --terms fixed/unfixed` runs `git bisect run lab bisect-step` over base..tip: each step builds
#    the commit (mainline-4.19's config, full scope, ccache), boots server + alice + bob on it, and runs
#    mainline-4.19/vers=4.0/leases=on 3 times (unfixed = the cell fails, fixed = it passes; disagreeing runs or a
#    lab error = skip). The culprit is then rerun 3 times against its parent, and the bisect reset.
# 3. It prints every step, the culprit and the wall time, and exits 1 unless the confirmed culprit is the commit
#    bisect_history.py put the fix in.
#
# Needs root and `lab setup` (./quickstart.sh --setup-only). Expected on this 2-core TCG machine: 3-4 search steps
# (at most ceil(log2 10)+1 = 5) + 2 confirmation steps; a step is a warm build (~0.5-1 min), a boot (~1-1.5 min)
# and 3 runs (~1 min if fixed, ~4 min if unfixed: alice reads for the full 60 s); about 25-40 min in all.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:-/var/lib/nfslab/bisect/linux-4.19-history}
report=${2:-runs/bisect-real-$(date -u +%Y%m%d-%H%M%S)}
lab=.venv/bin/lab
[ -x "$lab" ] || lab="python3 -m lab"
py=.venv/bin/python
[ -x "$py" ] || py=python3

$py bench/bisect_history.py "$repo"   # the 4.19.1 tree as `lab run` finds it: NFSLAB_MIRROR, the cache, kernel.org
expected=$(git -C "$repo" log --format=%H --grep="NFS: Fix dentry revalidation on NFSv4 lookup" base..tip)

started=$(date +%s)
set +e
$lab bisect git --repo "$repo" --terms fixed/unfixed --old base --new tip \
  --cell mainline-4.19/vers=4.0/leases=on --repeat 3 --report "$report"
rc=$?
set -e
wall=$(( $(date +%s) - started ))

culprit=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["culprit"] or "")' "$report/report.json" \
          2>/dev/null || true)
steps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["search_steps"])' "$report/report.json" \
        2>/dev/null || echo "?")
echo "== bisect: exit $rc, ${wall}s wall ($(( wall / 60 )) min), $steps search steps (bound 5)"
echo "== culprit:  ${culprit:-none}"
echo "== expected: $expected"
echo "== report:   $report/report.md (steps: $report/steps.jsonl, git log: $report/git-bisect.log)"
[ "$rc" = 0 ] && [ "$culprit" = "$expected" ]

"""The seed's experiment: alice holds test1.txt open and re-reads it; bob renames test2.txt over it.

What alice sees is recorded by a loop that runs *inside alice* (one `cat` per interval, timestamped on her clock),
so ssh latency never shapes the timeline. The rename runs on bob and is timestamped on his clock; both clocks are
mapped onto the host clock (`Remote.clock_offset`), and t = 0 is when bob's `mv` returned. After the timeline,
alice runs one `ls -l` of the directory and one more read: the seed says `ls` clears the stale state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..axes import CellSetup
from ..errors import LabError
from ..nfs import MOUNTPOINT
from ..outcome import Observation, Read, classify_text
from ..proc import wait_until
from ..remote import Remote

OLD = "1 - Old file"
NEW = "2 - New file"
FILES = {"test1.txt": OLD, "test2.txt": NEW}
BEFORE_RENAME_S = 2.0   # alice reads the old contents for a while first, so her client has it cached and open
LOOP = "/tmp/nfslab-alice.sh"
TIMELINE = "/tmp/nfslab-alice.timeline"
DONE = "/tmp/nfslab-alice.done"


@dataclass
class RenameSettings:
    duration: float          # at most this long alice reads after the rename
    interval: float          # between reads
    settle: float = 0.0      # stop early once this many seconds of new data follow the rename (0: never early)


def settled(reads: list[Read], settle: float) -> bool:
    """The outcome can no longer change in a way the verdict cares about: since the rename, the reads have shown
    new data without a break for `settle` seconds (the same rule outcome.classify uses for "recovered")."""
    if settle <= 0:
        return False
    run_start = None
    for r in reads:
        if r.t <= 0:
            continue
        if r.kind != "new":
            run_start = None
        elif run_start is None:
            run_start = r.t
    return run_start is not None and reads[-1].t - run_start >= settle


def alice_script(settings: RenameSettings, stat_before_open: bool) -> str:
    """The reading loop. fd 3 keeps test1.txt open the whole time, as Alice's long-lived reader did in the seed;
    each `cat` opens the file by name, which is the open be189f7e7f03 makes go to the server."""
    seconds = int(BEFORE_RENAME_S + settings.duration + 5)
    stat = "stat test1.txt >/dev/null 2>&1" if stat_before_open else ":"
    return f"""#!/bin/sh
cd {MOUNTPOINT} || exit 1
exec 3< test1.txt
end=$(( $(date +%s) + {seconds} ))
rm -f {DONE} {TIMELINE}.stop
while [ $(date +%s) -lt $end ] && [ ! -e {TIMELINE}.stop ]; do
  {stat}
  t=$(date +%s.%N); out=$(cat test1.txt 2>&1); rc=$?
  printf 'R\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')"
  sleep {settings.interval}
done > {TIMELINE}
ls -l {MOUNTPOINT} > {TIMELINE}.ls 2>&1
t=$(date +%s.%N); out=$(cat test1.txt 2>&1); rc=$?
printf 'A\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')" >> {TIMELINE}
exec 3<&-
echo done > {DONE}
"""


def parse_timeline(text: str, offset: float, t0: float) -> tuple[list[Read], Read | None]:
    """Lines `R|A <guest time> <rc> <output>` → Reads with t relative to the rename on the host clock."""
    reads, after_ls = [], None
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) < 3:
            continue  # a line torn by the loop being stopped
        tag, stamp, rc = parts[0], float(parts[1]), int(parts[2])
        out = parts[3] if len(parts) > 3 else ""
        read = Read(t=round(stamp - offset - t0, 3), kind=classify_text(out, rc), text=out.strip())
        if tag == "A":
            after_ls = read
        else:
            reads.append(read)
    return reads, after_ls


def run(alice: Remote, bob: Remote, settings: RenameSettings, setup: CellSetup) -> Observation:
    """Run one rename cell on mounted clients and return alice's timeline."""
    first = alice.run(f"cat {MOUNTPOINT}/test1.txt", step="rename: first read on alice").stdout.strip()
    if first != OLD:
        raise LabError("rename: first read on alice", f"expected {OLD!r} before the rename, read {first!r}",
                       alice.log)
    bob.run(f"cat {MOUNTPOINT}/test1.txt {MOUNTPOINT}/test2.txt >/dev/null", step="rename: bob looks up the files")
    alice_offset, bob_offset = alice.clock_offset(), bob.clock_offset()
    alice.write(LOOP, alice_script(settings, setup.alice_stat_before_open), mode="755")
    alice.run(f"setsid {LOOP} </dev/null >/dev/null 2>&1 &", step="rename: start alice's reader")
    time.sleep(BEFORE_RENAME_S)
    mv = bob.run(f"cd {MOUNTPOINT} && mv -f test2.txt test1.txt; rc=$?; date +%s.%N; exit $rc", check=False,
                 step="rename: bob renames")
    t0 = float(mv.stdout.split()[-1]) - bob_offset if mv.stdout.split() else time.time()
    _wait_until_settled(alice, settings, alice_offset, t0)
    alice.run(f"touch {TIMELINE}.stop", step="rename: stop alice's reader")
    _wait_for_done(alice, timeout=settings.interval + 60)
    reads, after_ls = parse_timeline(alice.run(f"cat {TIMELINE}", step="rename: fetch timeline").stdout,
                                     alice_offset, t0)
    ls_output = alice.run(f"cat {TIMELINE}.ls", check=False).stdout
    bob_view = bob.run(f"cat {MOUNTPOINT}/test1.txt 2>&1", check=False).stdout.strip()
    return Observation(reads=reads, ls_output=ls_output, after_ls=after_ls, mv_ok=mv.ok,
                       meta={"mv_rc": mv.rc, "mv_stderr": mv.stderr.strip(), "bob_reads_after": bob_view,
                             "clock_offset_alice": round(alice_offset, 3), "clock_offset_bob": round(bob_offset, 3)})


def _wait_until_settled(alice: Remote, settings: RenameSettings, offset: float, t0: float) -> None:
    """Sleep until the duration is over, or stop early once the timeline has settled (issue: a passing cell
    needs ~7 s instead of the full duration)."""
    while time.time() < t0 + settings.duration:
        time.sleep(min(1.0, max(0.0, t0 + settings.duration - time.time())))
        if settings.settle > 0:
            text = alice.run(f"cat {TIMELINE}", check=False, step="rename: watch timeline").stdout
            reads, _ = parse_timeline(text, offset, t0)
            if reads and settled(reads, settings.settle):
                return


def _wait_for_done(alice: Remote, timeout: float) -> None:
    wait_until(lambda: alice.run(f"test -e {DONE}", check=False, step="rename: wait for alice").ok,
               timeout=timeout, interval=0.5, step="rename: wait for alice", what="alice's reader to finish",
               log=alice.log)

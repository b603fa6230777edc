"""The shape every nfslab experiment shares: alice keeps a file open and reads through it by name in a loop while
bob replaces that file on the other client; what alice saw after bob's change is the timeline the verdict judges.

A `Scenario` (rename.py, gitrefs.py) says which file, how alice reads, what bob runs and what the old and new
reads look like; this module does the rest the same way for all of them. Alice's loop runs *inside alice* (one read
per interval, timestamped on her clock), so ssh latency never shapes the timeline. Bob's change is timestamped on
his clock; both clocks are mapped onto the host clock (`Remote.clock_offset`), and t = 0 is when bob's command
returned. After the timeline, alice runs one `ls -l` of the directory and one more read: the seed says `ls` clears
the stale state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..axes import CellSetup
from ..errors import LabError
from ..outcome import Observation, Read, classify_text
from ..proc import wait_until
from ..remote import Remote
from ..spec import Timeouts

BEFORE_CHANGE_S = 2.0   # alice reads the old contents for a while first, so her client has it cached and open
LOOP = "/tmp/nfslab-alice.sh"
TIMELINE = "/tmp/nfslab-alice.timeline"
DONE = "/tmp/nfslab-alice.done"


@dataclass(frozen=True)
class Scenario:
    """One experiment's moving parts, as shell run in a directory of the NFS mount."""

    name: str
    workdir: str     # alice and bob cd here
    hold: str        # the file alice keeps open on fd 3 the whole time (the seed's long-lived reader)
    read: str        # alice's read, once per interval; its output is compared with old/new
    change: str      # bob's command; t = 0 is when it returns
    old: str         # what `read` prints before the change
    new: str         # … and after it, on a correct client
    stat: str        # what alice stat()s before each read when the cell asks for stat_before_open
    bob_check: str   # bob reads once afterwards: his own view, for the record
    listdir: str = "."   # the directory holding `hold`, relative to workdir: the seed's `ls` that clears it


@dataclass
class Settings:
    duration: float          # at most this long alice reads after the change
    interval: float          # between reads
    settle: float = 0.0      # stop early once this many seconds of new data follow the change (0: never early)
    finish: float = Timeouts.experiment   # then, at most this long for alice's reader to stop and hand over


def settled(reads: list[Read], settle: float) -> bool:
    """The outcome can no longer change in a way the verdict cares about: since the change, the reads have shown
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


def alice_script(scenario: Scenario, settings: Settings, stat_before_open: bool) -> str:
    """The reading loop. fd 3 keeps `hold` open the whole time; each read opens the file by name again, which is
    the open be189f7e7f03 makes go to the server."""
    seconds = int(BEFORE_CHANGE_S + settings.duration + 5)
    stat = f"stat {scenario.stat} >/dev/null 2>&1" if stat_before_open else ":"
    return f"""#!/bin/sh
cd {scenario.workdir} || exit 1
exec 3< {scenario.hold}
end=$(( $(date +%s) + {seconds} ))
rm -f {DONE} {TIMELINE}.stop
while [ $(date +%s) -lt $end ] && [ ! -e {TIMELINE}.stop ]; do
  {stat}
  t=$(date +%s.%N); out=$({scenario.read} 2>&1); rc=$?
  printf 'R\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')"
  sleep {settings.interval}
done > {TIMELINE}
ls -l {scenario.listdir} > {TIMELINE}.ls 2>&1
t=$(date +%s.%N); out=$({scenario.read} 2>&1); rc=$?
printf 'A\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')" >> {TIMELINE}
exec 3<&-
echo done > {DONE}
"""


def parse_timeline(text: str, offset: float, t0: float, scenario: Scenario) -> tuple[list[Read], Read | None]:
    """Lines `R|A <guest time> <rc> <output>` → Reads with t relative to the change on the host clock."""
    reads, after_ls = [], None
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) < 3:
            continue  # a line torn by the loop being stopped
        tag, stamp, rc = parts[0], float(parts[1]), int(parts[2])
        out = parts[3] if len(parts) > 3 else ""
        read = Read(t=round(stamp - offset - t0, 3), kind=classify_text(out, rc, scenario.old, scenario.new),
                    text=out.strip())
        if tag == "A":
            after_ls = read
        else:
            reads.append(read)
    return reads, after_ls


def run(alice: Remote, bob: Remote, scenario: Scenario, settings: Settings, setup: CellSetup,
        on_change=lambda t0: None) -> Observation:
    """Run one cell on mounted clients and return alice's timeline. `on_change(t0)` gets the host time of t = 0."""
    first = alice.run(f"cd {scenario.workdir} && {scenario.read}", check=False,
                      step=f"{scenario.name}: first read on alice").stdout.strip()
    if first != scenario.old:
        raise LabError(f"{scenario.name}: first read on alice",
                       f"expected {scenario.old!r} before the change, read {first!r}", alice.log)
    bob.run(f"cd {scenario.workdir} && {scenario.bob_check} >/dev/null", step=f"{scenario.name}: bob looks first")
    alice_offset, bob_offset = alice.clock_offset(), bob.clock_offset()
    alice.write(LOOP, alice_script(scenario, settings, setup.alice_stat_before_open), mode="755")
    alice.run(f"setsid {LOOP} </dev/null >/dev/null 2>&1 &", step=f"{scenario.name}: start alice's reader")
    time.sleep(BEFORE_CHANGE_S)
    change = bob.run(f"cd {scenario.workdir} && {{ {scenario.change} ; }}; rc=$?; date +%s.%N; exit $rc",
                     check=False, step=f"{scenario.name}: bob changes the file")
    t0 = float(change.stdout.split()[-1]) - bob_offset if change.stdout.split() else time.time()
    on_change(t0)
    _wait_until_settled(alice, scenario, settings, alice_offset, t0)
    alice.run(f"touch {TIMELINE}.stop", step=f"{scenario.name}: stop alice's reader")
    _wait_for_done(alice, scenario, timeout=settings.interval + settings.finish)
    reads, after_ls = parse_timeline(alice.run(f"cat {TIMELINE}", step=f"{scenario.name}: fetch timeline").stdout,
                                     alice_offset, t0, scenario)
    ls_output = alice.run(f"cat {TIMELINE}.ls", check=False).stdout
    bob_view = bob.run(f"cd {scenario.workdir} && {scenario.bob_check} 2>&1", check=False).stdout.strip()
    return Observation(reads=reads, ls_output=ls_output, after_ls=after_ls, mv_ok=change.ok,
                       meta={"experiment": scenario.name, "change": scenario.change, "change_rc": change.rc,
                             "change_stderr": change.stderr.strip()[-2000:], "bob_reads_after": bob_view,
                             "clock_offset_alice": round(alice_offset, 3), "clock_offset_bob": round(bob_offset, 3)})


def _wait_until_settled(alice: Remote, scenario: Scenario, settings: Settings, offset: float, t0: float) -> None:
    """Sleep until the duration is over, or stop early once the timeline has settled (a passing cell needs
    ~7 s instead of the full duration)."""
    while time.time() < t0 + settings.duration:
        time.sleep(min(1.0, max(0.0, t0 + settings.duration - time.time())))
        if settings.settle > 0:
            text = alice.run(f"cat {TIMELINE}", check=False, step=f"{scenario.name}: watch timeline").stdout
            reads, _ = parse_timeline(text, offset, t0, scenario)
            if reads and settled(reads, settings.settle):
                return


def _wait_for_done(alice: Remote, scenario: Scenario, timeout: float) -> None:
    wait_until(lambda: alice.run(f"test -e {DONE}", check=False, step=f"{scenario.name}: wait for alice").ok,
               timeout=timeout, interval=0.5, step=f"{scenario.name}: wait for alice",
               what="alice's reader to finish", log=alice.log)

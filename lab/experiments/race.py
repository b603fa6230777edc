"""The shape every nfslab experiment shares: alice keeps a file open and reads through it by name in a loop while
bob replaces that file on the other client; what alice saw after bob's change is the timeline the verdict judges.

A `Scenario` (rename.py, gitrefs.py) says which file, how alice reads, what bob runs and what the old and new
reads look like; this module does the rest the same way for all of them. Alice's loop runs *inside alice* (one read
per interval, timestamped on her clock), so ssh latency never shapes the timeline. Bob's change is timestamped on
his clock; both clocks are mapped onto the host clock (`Remote.clock_offset`), and t = 0 is when bob's command
returned. After the timeline, alice runs one `ls -l` of the directory and one more read: the seed says `ls` clears
the stale state.

What the experiment can control, it fixes (`Timing`): the windows a buggy client shows end when alice's cached
attributes of the directory expire, and that timeout runs from her client's last fetch of them and grows from
acdirmin towards acdirmax while the directory stays unchanged. So a fixed time before the change bob changes the
directory (creates and removes a marker file) and touches the files, which resets their age; a fixed time before
the change alice opens the directory, which makes her client fetch its attributes (close-to-open: an open(2) of a
directory always revalidates, a stat(2) may be answered from the cache on newer kernels) and, since the directory
changed, restart their timeout at acdirmin; then she starts reading. Both steps wait for their planned moment on
the guest's own clock, so ssh latency does not move them; what was achieved goes into meta["ages"].
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from ..axes import CellSetup
from ..errors import LabError
from ..outcome import Observation, Read, classify_text
from ..proc import wait_until
from ..remote import Remote
from ..spec import Timeouts

LOOP = "/tmp/nfslab-alice.sh"
TIMELINE = "/tmp/nfslab-alice.timeline"
DONE = "/tmp/nfslab-alice.done"
MARKER = ".nfslab-dir-marker"   # bob creates and removes it: the directory changes, nothing else stays


@dataclass(frozen=True)
class Timing:
    """When the steps before the change happen, in seconds before it (planned; meta["ages"] has what was
    achieved). The one place for these offsets."""

    dir_changed: float = 5.0    # bob creates + removes a marker in the directory and touches the files
    dir_fetched: float = 2.0    # alice opens the directory (fresh attributes, timeout acdirmin), then reads the old
    #                             contents until the change, so her client has the file cached and open

    def __post_init__(self):
        if not 0 < self.dir_fetched < self.dir_changed:
            raise ValueError(f"bad timing {self}: needs 0 < dir_fetched < dir_changed")


#: a POSIX sh function: sleep until $1, milliseconds since the epoch on this machine's clock (GNU date's %3N)
WAIT_UNTIL = ('wait_until() { now=$(date +%s%3N); ms=$(( $1 - now )); '
              'if [ "$ms" -gt 0 ]; then sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; fi; }')


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
    touch: tuple[str, ...] = ()   # files whose age bob resets before the change (relative to workdir)


@dataclass
class Settings:
    duration: float          # at most this long alice reads after the change
    interval: float          # between reads
    settle: float = 0.0      # stop early once this many seconds of new data follow the change (0: never early)
    finish: float = Timeouts.experiment   # then, at most this long for alice's reader to stop and hand over
    timing: Timing = Timing()


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
    """The reading loop; its argument is when to start (milliseconds since the epoch, alice's clock). It first opens
    the directory (a forced GETATTR of it: fresh attributes; `true`, not `:`, whose failed redirection would end
    the shell) and stamps that `F <before> <rc> <after>`, then holds
    `hold` open on fd 3 the whole time; each read opens the file by name again, which is the open be189f7e7f03
    makes go to the server."""
    seconds = int(settings.timing.dir_fetched + settings.duration + 5)
    stat = f"stat {scenario.stat} >/dev/null 2>&1" if stat_before_open else ":"
    return f"""#!/bin/sh
cd {scenario.workdir} || exit 1
rm -f {DONE} {TIMELINE}.stop
{WAIT_UNTIL}
wait_until "$1"
a=$(date +%s.%N); true < {scenario.listdir}; rc=$?; b=$(date +%s.%N)
printf 'F\\t%s\\t%s\\t%s\\n' "$a" "$rc" "$b" > {TIMELINE}
exec 3< {scenario.hold}
end=$(( $(date +%s) + {seconds} ))
while [ $(date +%s) -lt $end ] && [ ! -e {TIMELINE}.stop ]; do
  {stat}
  t=$(date +%s.%N); out=$({scenario.read} 2>&1); rc=$?
  printf 'R\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')"
  sleep {settings.interval}
done >> {TIMELINE}
ls -l {scenario.listdir} > {TIMELINE}.ls 2>&1
t=$(date +%s.%N); out=$({scenario.read} 2>&1); rc=$?
printf 'A\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')" >> {TIMELINE}
exec 3<&-
echo done > {DONE}
"""


def bob_touch_script(scenario: Scenario) -> str:
    """Bob resets the files' age and changes the directory, stamping each (his clock): `<files touched> <dir
    changed>`. A marker created and removed changes the directory's mtime and change attribute and leaves
    nothing behind."""
    marker = MARKER if scenario.listdir == "." else f"{scenario.listdir}/{MARKER}"
    files = " ".join(shlex.quote(f) for f in scenario.touch)
    touch = f"touch -c -- {files}" if files else ":"
    return (f"cd {scenario.workdir} && {touch} && date +%s.%N && true > {marker} && rm -f {marker} && "
            f"date +%s.%N")


def bob_change_script(scenario: Scenario, at_ms: int) -> str:
    """Bob waits for the planned moment on his own clock, changes the file and stamps when his command returned
    (t = 0); the exit code is the change's."""
    return (f"{WAIT_UNTIL}; cd {scenario.workdir} && wait_until {at_ms} && {{ {scenario.change} ; }}; rc=$?; "
            f"date +%s.%N; exit $rc")


def parse_timeline(text: str, offset: float, t0: float, scenario: Scenario) -> tuple[list[Read], Read | None]:
    """Lines `R|A <guest time> <rc> <output>` → Reads with t relative to the change on the host clock (other lines,
    like alice's `F` stamp, are not reads)."""
    reads, after_ls = [], None
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) < 3 or parts[0] not in ("R", "A"):
            continue  # a line torn by the loop being stopped, or not a read
        try:
            tag, stamp, rc = parts[0], float(parts[1]), int(parts[2])
        except ValueError:
            continue
        out = parts[3] if len(parts) > 3 else ""
        read = Read(t=round(stamp - offset - t0, 3), kind=classify_text(out, rc, scenario.old, scenario.new),
                    text=out.strip())
        if tag == "A":
            after_ls = read
        else:
            reads.append(read)
    return reads, after_ls


def parse_fetch(text: str) -> tuple[float, float, int] | None:
    """alice's `F <before> <rc> <after>` line: when she opened the directory (her clock), and how it went."""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "F":
            try:
                return float(parts[1]), float(parts[3]), int(parts[2])
            except ValueError:
                return None
    return None


def ages(timing: Timing, t0: float, touched: float | None, changed: float | None,
         fetch: tuple[float, float, int] | None) -> dict:
    """meta["ages"]: how old the directory, the files and alice's cached attributes of the directory were at the
    change (host clock, from the guests' stamps), next to the plan. `off_plan_s` is the largest difference."""
    out: dict = {"planned": {"dir_touched_before_change_s": timing.dir_changed,
                             "file_written_before_change_s": timing.dir_changed,
                             "dir_attrs_fetched_before_change_s": timing.dir_fetched}}
    if changed is not None:
        out["dir_touched_before_change_s"] = round(t0 - changed, 3)
    if touched is not None:
        out["file_written_before_change_s"] = round(t0 - touched, 3)
    if fetch is not None:
        out["dir_attrs_fetched_before_change_s"] = round(t0 - fetch[1], 3)
        out["dir_open_s"] = round(fetch[1] - fetch[0], 3)
        out["dir_open_rc"] = fetch[2]
    achieved = [(out[key], plan) for key, plan in out["planned"].items() if key in out]
    if achieved:
        out["off_plan_s"] = round(max(abs(got - plan) for got, plan in achieved), 3)
    return out


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
    timing = settings.timing
    step = f"{scenario.name}: bob changes the directory"
    stamps = bob.run(bob_touch_script(scenario), step=step).stdout.split()
    if len(stamps) < 2:
        raise LabError(step, f"expected two time stamps from bob, got {stamps!r}", bob.log)
    touched, changed = (float(stamps[-2]) - bob_offset, float(stamps[-1]) - bob_offset)
    change_at = changed + timing.dir_changed                  # host clock
    fetch_at = change_at - timing.dir_fetched
    alice.run(f"setsid {LOOP} {_ms(fetch_at + alice_offset)} </dev/null >/dev/null 2>&1 &",
              step=f"{scenario.name}: start alice's reader")
    change = bob.run(bob_change_script(scenario, _ms(change_at + bob_offset)), check=False,
                     timeout=timing.dir_changed + bob.command_timeout,
                     step=f"{scenario.name}: bob changes the file")
    t0 = float(change.stdout.split()[-1]) - bob_offset if change.stdout.split() else time.time()
    on_change(t0)
    _wait_until_settled(alice, scenario, settings, alice_offset, t0)
    alice.run(f"touch {TIMELINE}.stop", step=f"{scenario.name}: stop alice's reader")
    _wait_for_done(alice, scenario, timeout=settings.interval + settings.finish)
    text = alice.run(f"cat {TIMELINE}", step=f"{scenario.name}: fetch timeline").stdout
    reads, after_ls = parse_timeline(text, alice_offset, t0, scenario)
    fetch = parse_fetch(text)
    if fetch is not None:
        fetch = (fetch[0] - alice_offset, fetch[1] - alice_offset, fetch[2])
    ls_output = alice.run(f"cat {TIMELINE}.ls", check=False).stdout
    bob_view = bob.run(f"cd {scenario.workdir} && {scenario.bob_check} 2>&1", check=False).stdout.strip()
    return Observation(reads=reads, ls_output=ls_output, after_ls=after_ls, mv_ok=change.ok,
                       meta={"experiment": scenario.name, "change": scenario.change, "change_rc": change.rc,
                             "change_stderr": change.stderr.strip()[-2000:], "bob_reads_after": bob_view,
                             "clock_offset_alice": round(alice_offset, 3), "clock_offset_bob": round(bob_offset, 3),
                             "ages": ages(timing, t0, touched, changed, fetch)})


def _ms(host_or_guest_time: float) -> int:
    return int(round(host_or_guest_time * 1000))


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

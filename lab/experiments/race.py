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

from .. import syscalls
from ..axes import CellSetup
from ..errors import LabError
from ..outcome import Observation, Read, classify_text
from ..proc import wait_until
from ..readers import DEFAULT as DEFAULT_READER, READERS
from ..remote import Remote
from ..timeouts import Timeouts

LOOP = "/tmp/nfslab-alice.sh"
TIMELINE = "/tmp/nfslab-alice.timeline"
DONE = "/tmp/nfslab-alice.done"
NEVER = 99999999999999   # the planned change when none is given: no read is traced
STRACE_DIR = "/tmp/nfslab-strace"   # one file per traced read, named by its number in the S line
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
    read_file: str = ""  # when `read` is `cat <read_file>`: the file, so the reader axis can swap cat for another
    #                      program and strace's calls on it can be picked out; "" for a read of another kind


@dataclass
class Settings:
    duration: float          # at most this long alice reads after the change
    interval: float          # between reads
    settle: float = 0.0      # stop early once this many seconds of new data follow the change (0: never early)
    finish: float = Timeouts.experiment   # then, at most this long for alice's reader to stop and hand over
    timing: Timing = Timing()
    trace_syscalls: bool = True   # strace some of alice's reads after the change (lab/syscalls.py)


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


def read_command(scenario: Scenario, reader: str = DEFAULT_READER) -> str:
    """Alice's read with the cell's reader: the scenario's own read for cat (so a matrix without the axis runs what
    it always ran), else the reader's program on the same file."""
    if reader == DEFAULT_READER:
        return scenario.read
    if not scenario.read_file:
        raise ValueError(f"{scenario.name}: reader {reader!r} needs a read of a file by name")
    return f"{READERS[reader].command} {scenario.read_file}"


def tracing(scenario: Scenario, settings: Settings) -> bool:
    """Reads are traced when the matrix asks and the read is of one file whose calls can be picked out."""
    return settings.trace_syscalls and bool(scenario.read_file)


def _traced_read(scenario: Scenario, read: str) -> str:
    """The loop's read, under strace for a bounded number of reads from the planned change on (`$2`, milliseconds on
    alice's clock): the first syscalls.FIRST, then any read after one that was not the new contents, at most
    syscalls.CAP in all. Each traced read stamps `S <time> <n>`; its calls go to STRACE_DIR/<n>. The time is cut to
    milliseconds without a fork: %N always has nine digits."""
    return f"""t=$(date +%s.%N); ms=${{t%.*}}${{t#*.}}; ms=${{ms%??????}}
  if [ "$tracing" = 1 ] && [ "$ms" -ge "$change" ] && [ "$traced" -lt {syscalls.CAP} ] && \\
     {{ [ "$after" -lt {syscalls.FIRST} ] || [ "$prev" != new ]; }}; then
    traced=$((traced + 1)); printf 'S\\t%s\\t%s\\n' "$t" "$traced"
    out=$({syscalls.strace_prefix(f'{STRACE_DIR}/$traced')} {read} 2>&1); rc=$?
  else
    out=$({read} 2>&1); rc=$?
  fi
  if [ "$ms" -ge "$change" ]; then after=$((after + 1)); fi
  if [ "$out" = {shlex.quote(scenario.new)} ]; then prev=new; else prev=other; fi"""


def alice_script(scenario: Scenario, settings: Settings, stat_before_open: bool,
                 reader: str = DEFAULT_READER) -> str:
    """The reading loop; its first argument is when to start, the second when bob's change is planned
    (milliseconds since the epoch, alice's clock; the second only matters when reads are traced). It first opens
    the directory (a forced GETATTR of it: fresh attributes; `true`, not `:`, whose failed redirection would end
    the shell) and stamps that `F <before> <rc> <after>`, then holds
    `hold` open on fd 3 the whole time; each read opens the file by name again, which is the open be189f7e7f03
    makes go to the server. With stat_before_open, `stat` is its own command before the read (whatever the
    reader), so the reader's calls are the same with and without it."""
    seconds = int(settings.timing.dir_fetched + settings.duration + 5)
    stat = f"stat {scenario.stat} >/dev/null 2>&1" if stat_before_open else ":"
    read = read_command(scenario, reader)
    if tracing(scenario, settings):
        setup = (f"tracing=0; command -v strace >/dev/null 2>&1 && tracing=1\n"
                 f"after=0; traced=0; prev=new; change=${{2:-{NEVER}}}\n"
                 f"rm -rf {STRACE_DIR}; mkdir -p {STRACE_DIR}\n"
                 f"printf 'T\\t%s\\n' \"$tracing\" >> {TIMELINE}\n")
        body = _traced_read(scenario, read)
    else:
        setup, body = "", f"t=$(date +%s.%N); out=$({read} 2>&1); rc=$?"
    return f"""#!/bin/sh
cd {scenario.workdir} || exit 1
rm -f {DONE} {TIMELINE}.stop
{WAIT_UNTIL}
wait_until "$1"
a=$(date +%s.%N); true < {scenario.listdir}; rc=$?; b=$(date +%s.%N)
printf 'F\\t%s\\t%s\\t%s\\n' "$a" "$rc" "$b" > {TIMELINE}
{setup}exec 3< {scenario.hold}
end=$(( $(date +%s) + {seconds} ))
tick=$(date +%s%3N)
while [ $(date +%s) -lt $end ] && [ ! -e {TIMELINE}.stop ]; do
  {stat}
  {body}
  printf 'R\\t%s\\t%s\\t%s\\n' "$t" "$rc" "$(printf '%s' "$out" | tr '\\t\\n' '  ')"
  tick=$((tick + {round(settings.interval * 1000)})); now=$(date +%s%3N); ms=$((tick - now))
  if [ "$ms" -gt 0 ]; then sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; else tick=$now; fi
done >> {TIMELINE}
ls -l {scenario.listdir} > {TIMELINE}.ls 2>&1
t=$(date +%s.%N); out=$({read} 2>&1); rc=$?
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
        on_change=lambda t0: None, on_planned=lambda change_at: None) -> Observation:
    """Run one cell on mounted clients and return alice's timeline. `on_planned(change_at)` gets the host time bob's
    change is planned for as soon as it is known (Timing.dir_changed before it), `on_change(t0)` the host time of
    t = 0 once bob's command has returned: the runner keeps other workers' heavy phases out of the seconds around
    the change with them (lab/quiet.py)."""
    read = read_command(scenario, setup.alice_reader)
    first = alice.run(f"cd {scenario.workdir} && {read}", check=False,
                      step=f"{scenario.name}: first read on alice").stdout.strip()
    if first != scenario.old:
        raise LabError(f"{scenario.name}: first read on alice",
                       f"expected {scenario.old!r} before the change, read {first!r}", alice.log)
    bob.run(f"cd {scenario.workdir} && {scenario.bob_check} >/dev/null", step=f"{scenario.name}: bob looks first")
    alice_offset, bob_offset = alice.clock_offset(), bob.clock_offset()
    alice.write(LOOP, alice_script(scenario, settings, setup.alice_stat_before_open, setup.alice_reader),
                mode="755")
    timing = settings.timing
    step = f"{scenario.name}: bob changes the directory"
    stamps = bob.run(bob_touch_script(scenario), step=step).stdout.split()
    if len(stamps) < 2:
        raise LabError(step, f"expected two time stamps from bob, got {stamps!r}", bob.log)
    touched, changed = (float(stamps[-2]) - bob_offset, float(stamps[-1]) - bob_offset)
    change_at = changed + timing.dir_changed                  # host clock
    fetch_at = change_at - timing.dir_fetched
    on_planned(change_at)
    alice.run(f"setsid {LOOP} {_ms(fetch_at + alice_offset)} {_ms(change_at + alice_offset)} "
              f"</dev/null >/dev/null 2>&1 &",
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
    meta = {"experiment": scenario.name, "change": scenario.change, "change_rc": change.rc,
            "change_stderr": change.stderr.strip()[-2000:], "bob_reads_after": bob_view,
            "clock_offset_alice": round(alice_offset, 3), "clock_offset_bob": round(bob_offset, 3),
            "ages": ages(timing, t0, touched, changed, fetch)}
    if setup.alice_reader != DEFAULT_READER:
        meta["reader"] = setup.alice_reader
    if tracing(scenario, settings):
        collected = alice.run(COLLECT, check=False, step=f"{scenario.name}: fetch alice's strace files").stdout
        meta["syscalls"] = syscalls_meta(text, collected, alice_offset, t0, scenario, setup.alice_reader)
    return Observation(reads=reads, ls_output=ls_output, after_ls=after_ls, mv_ok=change.ok, meta=meta)


#: prints every per-read strace file behind a `=== <n>` line (syscalls.split_collected reads it)
COLLECT = f'for f in {STRACE_DIR}/*; do [ -f "$f" ] && printf "=== %s\\n" "${{f##*/}}" && cat "$f"; done; true'


def parse_trace_stamps(text: str) -> tuple[bool | None, dict[str, float]]:
    """From the timeline: whether alice had strace (`T 1|0`; None without the line) and each traced read's guest
    time by its number (`S <time> <n>`)."""
    available, stamps = None, {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] == "T":
            available = parts[1].strip() == "1"
        elif len(parts) == 3 and parts[0] == "S":
            try:
                stamps[parts[2].strip()] = float(parts[1])
            except ValueError:
                continue
    return available, stamps


def syscalls_meta(timeline: str, collected: str, offset: float, t0: float, scenario: Scenario,
                  reader: str) -> dict:
    """meta["syscalls"]: the reader, how many reads were traced, and per phase what their calls on the file
    returned (lab/syscalls.py), with t relative to the change on the host clock like the reads'."""
    available, stamps = parse_trace_stamps(timeline)
    out: dict = {"reader": reader, "file": scenario.read_file}
    if available is False:
        return {**out, "skipped": "strace is not installed on alice"}
    files = syscalls.split_collected(collected)
    traced = [(round(stamps[n] - offset - t0, 3), files[n]) for n in sorted(stamps, key=int) if n in files]
    return {**out, "traced": len(traced),
            **syscalls.summarise(traced, scenario.read_file, scenario.old, scenario.new)}


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

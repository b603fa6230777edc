"""What `lab run` and the builds show while they work (lab/progress.py): the ETA arithmetic and texts, the
object counter of a kernel build fed by its log, and `lab run`'s plain lines where stderr is not a terminal."""
import re

import pytest
from rich.console import Console

from lab import log as logs
from lab import progress
from lab.errors import LabError
from lab.outcome import Verdict
from lab.proc import run
from tests.unit.test_output import LINE, MAKE_ERROR, assert_literal, record


@pytest.fixture(autouse=True)
def _log_reset():
    yield
    logs.setup()


# ---- ETA and texts -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, text", [(0, "0s"), (27.6, "28s"), (59.4, "59s"), (60, "1m00s"), (372, "6m12s"),
                                           (599, "9m59s"), (600, "10m"), (1860, "31m"), (3600, "1h00m"),
                                           (3900, "1h05m"), (-3, "0s")])
def test_durations_read_as_a_person_says_them(seconds, text):
    assert progress.duration(seconds) == text


def test_eta_is_the_mean_of_finished_runs_times_runs_left():
    assert progress.eta_seconds([], 10) is None
    assert progress.eta_text([], 10) == "ETA —"                       # nothing measured yet: no guess
    assert progress.eta_seconds([60, 120], 10) == 900                  # mean 90 s × 10
    assert progress.eta_text([60, 120], 10) == "ETA 15m"
    assert progress.eta_seconds([60, 120], 10, current=30) == 870      # the running one has used 30 s of it
    assert progress.eta_text([100], 1, current=500) == "ETA 0s"       # slower than the mean: never negative
    assert progress.eta_text([100], 0) == "ETA 0s"


def test_counts_and_the_line_after_each_run():
    assert progress.counts_text(5, 36, 5, 36) == "5/36 cells, 13%"
    assert progress.counts_text(7, 72, 3, 36) == "7/72 runs, 3/36 cells, 9%"
    assert progress.counts_text(0, 0, 0, 0) == "0/0 cells, 100%"
    line = progress.finished_line("5/36 cells, 13%", "debian-6.1/vers=4.1/leases=on", "✗ ESTALE 27.6s", 56.2,
                                  372, "ETA 31m")
    assert line == "[5/36 cells, 13%] debian-6.1/vers=4.1/leases=on: ✗ ESTALE 27.6s (56s) — elapsed 6m12s, ETA 31m"


# ---- builds ------------------------------------------------------------------------------------------------------

BUILD_LOG = f"""\
  SYNC    include/config/auto.conf
  CC      scripts/mod/empty.o
  HOSTCC  scripts/basic/fixdep
  CC      fs/nfs/dir.o
  CC [M]  /home/x/build-k-1/src/fs/nfs/inode.o
  AS      arch/x86/entry/entry_64.o
  LD      vmlinux.o
  AR      fs/nfs/built-in.a
fs/nfs/dir.c:12:1: error: expected ';' before '}}' token [/p/Makefile:1: y]
  CC      [/p/Makefile:1: y].o
{MAKE_ERROR}
make: *** [Makefile:1: all] Error 2
  CC      100%.o"""   # the last line has no newline: it counts too


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_build_counts_objects_from_its_log_while_make_runs(tmp_path):
    """The output of a failing `make` goes into the log as it comes; every `CC`/`AS` object line counts, make's
    error lines (markup look-alikes included) count as nothing and break nothing; the error names the log."""
    said = []
    counter = progress.BuildProgress("k", said.append, every=0)
    log = tmp_path / "build.log"
    script = tmp_path / "make.sh"
    script.write_text(f"cat <<'EOF'\n{BUILD_LOG}\nEOF\nsleep 0.6\necho '  CC      late.o' >&2\nexit 2\n")
    with pytest.raises(LabError) as e:
        run(["sh", str(script)], step="build: k", timeout=30, log=log, follow=counter.follow)
    assert counter.count == 6
    assert said[-1] == "k: building: 6 objects compiled"              # a first build: no percentage
    assert str(e.value.log) == str(log) and "exited 2:" in str(e.value) and "late.o" in str(e.value)
    text = log.read_text()
    assert text.startswith("$ sh ") and MAKE_ERROR in text and text.rstrip().endswith("]")
    assert re.search(r"\n\[rc=2 [0-9.]+s\]\n$", text), text


def test_build_progress_says_how_far_at_most_every_ten_seconds_and_remembers_the_count(tmp_path):
    clock, said = Clock(), []
    record_file = tmp_path / "objects" / "k-config"
    counter = progress.BuildProgress("k", said.append, record_file, clock=clock)
    assert counter.expected is None
    for _ in range(5):
        clock.now += 3
        counter.follow("  CC      fs/nfs/dir.o")
        counter.follow(MAKE_ERROR)
    assert said == ["k: building: 4 objects compiled"]                 # at 12 s; 3, 6, 9 and 15 s said nothing
    counter.finished()
    assert said[-1] == "k: built: 5 objects in 15s" and record_file.read_text() == "5\n"

    said.clear()
    counter = progress.BuildProgress("k", said.append, record_file, clock=clock)
    clock.now += 11
    counter.follow("  CC [M]  fs/nfs/dir.o")
    clock.now += 11
    for _ in range(5):
        counter.follow("  CC      fs/nfs/dir.o")
    assert said == ["k: building: 1/5 objects (20%)", "k: building: 2/5 objects (40%)"]
    assert progress.objects_text(6, 5) == "6 objects compiled"         # more than last time: no false 120%


def test_a_damaged_count_file_is_a_first_build(tmp_path):
    (tmp_path / "count").write_text("[/oops]")
    assert progress.BuildProgress("k", print, tmp_path / "count").expected is None


def test_phases_and_latest_lines_say_their_times():
    clock, said = Clock(), []
    phase = progress.Phases(said.append, clock=clock)
    phase("debootstrap", "box: debootstrap bookworm")
    latest = progress.LatestLine("box: debootstrap", said.append, keep=lambda line: line.startswith("I: "),
                                 clock=clock)
    for i in range(30):
        clock.now += 2
        latest.follow(f"I: Unpacking {LINE} {i}...")
        latest.follow("W: not this one")
    phase("customize", "box: customizing")
    clock.now += 5
    phase.end("box x built")
    assert said[0] == "box: debootstrap bookworm" and said[1] == f"box: debootstrap: I: Unpacking {LINE} 4... (10s)"
    assert len(said) == 1 + 6 + 2                                        # every 10 s of 60, then 2 phases
    assert said[-1] == "box x built in 1m05s (debootstrap 1m00s, customize 5s)"


# ---- lab run -----------------------------------------------------------------------------------------------------

@pytest.fixture
def fake_lab(monkeypatch):
    """`lab run` with the lab replaced: each run says its phases and takes no time."""
    from lab import cleanup, preflight, runner
    from lab.cli import common as cli
    monkeypatch.setattr(preflight, "check", lambda *args, **kwargs: None)
    monkeypatch.setattr(preflight, "check_kernels", lambda *args, **kwargs: None)
    monkeypatch.setattr(cleanup, "release", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner.Runner, "close", lambda self: None)
    monkeypatch.setattr(cli.out, "width", 2000)

    def run_cell(self, cell, repeat=1, repeats=1):
        self.progress(f"{cell.kernel}: building: 12/40 objects (30%)")
        self.progress(f"{cell.id}: reset")
        verdict = Verdict.error("build", MAKE_ERROR) if cell.params.get("leases") == "on" else None
        done = record(kernel=cell.kernel, params=dict(cell.params), run_id=self.run_dir.run_id, verdict=verdict)
        self.run_dir.append(done)
        return done
    monkeypatch.setattr(runner.Runner, "run_cell", run_cell)


def _run_lines(stderr: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in stderr.splitlines() if re.match(r"\d\d:\d\d:\d\d \[", line)]


def test_lab_run_without_a_terminal_prints_one_plain_line_a_run(lab_cli, fake_lab, tmp_path):
    r = lab_cli("run", "--kernels", "mainline-4.19", "--runs", tmp_path / "runs")
    assert r.returncode == 3, r.stderr
    lines = _run_lines(r.stderr)
    n = len(lines)
    assert n > 1, r.stderr
    first = re.fullmatch(rf"\[1/{n} cells, {100 // n}%\] (mainline-4.19/\S+): (.*) \(1s\) — elapsed 0s, ETA (.*)",
                         lines[0])
    assert first, lines[0]
    assert lines[-1].startswith(f"[{n}/{n} cells, 100%] ") and lines[-1].endswith(", ETA 0s")
    assert any(MAKE_ERROR in line for line in lines)                   # the verdict, as it is
    assert "mainline-4.19: building: 12/40 objects (30%)" in r.stderr  # phases stay log lines
    assert f"{first.group(1)}: reset" in r.stderr
    assert "\x1b[" not in r.stderr                                     # no live display, no escapes


def test_lab_run_with_repeats_counts_runs_and_cells(lab_cli, fake_lab, tmp_path):
    r = lab_cli("run", "--kernels", "mainline-4.19", "--runs", tmp_path / "runs", "--repeats", "2")
    lines = _run_lines(r.stderr)
    runs, cells = len(lines), len(lines) // 2
    assert re.match(rf"\[1/{runs} runs, 0/{cells} cells, {100 // runs}%\] mainline-4.19/\S+ run 1/2: ", lines[0])
    assert re.match(rf"\[2/{runs} runs, 1/{cells} cells, {200 // runs}%\] mainline-4.19/\S+ run 2/2: ", lines[1])


def test_on_a_terminal_the_bar_shares_the_log_console_and_shows_names_as_they_are():
    logs.setup(terminal=True)
    console = logs.live_console()
    assert console is not None and console is next(h for h in logs.log.handlers if getattr(h, "lab_handler", False)).console
    logs.setup(logs.QUIET, terminal=True)
    assert logs.live_console() is None                                  # -q: progress off
    logs.setup(terminal=False)
    assert logs.live_console() is None

    from types import SimpleNamespace
    cell = SimpleNamespace(id=f"k-{LINE}/vers=[/oops]")
    console = Console(width=400, record=True, force_terminal=True, color_system=None)
    logs.setup(terminal=True)
    shown = progress.RunProgress([(cell, 1), (cell, 2)], 2, logs.log, console=console)
    shown.start(cell, 1)
    shown.phase(f"{cell.id}: {MAKE_ERROR}")
    status = shown.status_text()
    assert status == f"elapsed 0s · ETA — · {cell.id} run 1/2: {MAKE_ERROR} (0s)", status
    console.print(shown._bar.progress.get_renderable())
    assert_literal(console.export_text(), MAKE_ERROR, "[/oops]", "0/2 runs, 0/1 cells, 0%")


def test_skipped_runs_do_not_pull_the_eta_down():
    """A row that cannot be had is SKIP in 0 s; counting it would promise a 40-minute run in seconds."""
    import logging
    from types import SimpleNamespace
    from lab.spec import Cell
    cells = [Cell("k", {"vers": v}) for v in ("4.0", "4.1", "4.2")]
    p = progress.RunProgress([(c, 1) for c in cells], 1, logging.getLogger("test"))
    p.start(cells[0], 1)
    p.done(cells[0], 1, SimpleNamespace(status="skip", duration_s=0.0, verdict_obj=SimpleNamespace(summary=lambda: "SKIP")))
    assert p.eta() == "ETA —"
    p.start(cells[1], 1)
    p.done(cells[1], 1, SimpleNamespace(status="pass", duration_s=60.0, verdict_obj=SimpleNamespace(summary=lambda: "✓")))
    assert p.eta() == "ETA 1m00s"

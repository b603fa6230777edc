"""Issue 16: the reader as an axis, the syscall evidence of alice's reads, the attributes in the wire decode, and
the mitigations as axes — all without a VM (the C readers and the traced loop run on the host)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lab import axes, boxes, capture, readers, spec, syscalls
from lab.experiments import gitrefs, race, rename
from lab.outcome import NEW_TEXT, OLD_TEXT, classify_text
from lab.paths import LabHome
from tests.unit.test_experiments import run_alice_here

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = race.Settings(duration=30, interval=0.5)
SHELLS = [shell for shell in (["dash"], ["bash"]) if shutil.which(shell[0])]


# ---- the axes ----------------------------------------------------------------------------------------------------

def test_reader_axis_defaults_to_cat_and_lists_its_values():
    assert axes.CellSetup().alice_reader == "cat"
    assert axes.axis("reader").allowed == ("cat", "busybox-cat", "open-read", "open-fstat-read")
    assert axes.cell_setup({"reader": "open-fstat-read"}).alice_reader == "open-fstat-read"
    assert axes.cell_setup({"vers": "4.1"}).alice_reader == "cat"   # a matrix without the axis: today's read


def test_mitigation_axes_are_mount_options_in_the_matrix_order():
    setup = axes.cell_setup({"vers": "4.1", "lookupcache": "none", "actimeo": "3", "acdirmin": "1"})
    assert setup.mount_options == ["vers=4.1", "lookupcache=none", "actimeo=3", "acdirmin=1"]
    assert axes.axis("lookupcache").validate("some") == \
        "unknown mount option 'lookupcache=some' (allowed: all, positive, none)"
    assert axes.axis("acdirmin").validate("1.5") == \
        "bad mount option 'acdirmin=1.5' (allowed: a whole number of seconds >= 0)"


def _matrix(tmp_path: Path, axes_text: str, experiment: str = "rename") -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(f"kernels: [debian-6.1]\nserver: debian-6.1\naxes:\n{axes_text}experiment:\n  name: {experiment}\n"
                    "  duration: 30s\n  interval: 0.5s\n  pass_within: 2s\n")
    return path


def test_an_unknown_reader_is_one_line_at_its_line_with_the_allowed_values(tmp_path):
    path = _matrix(tmp_path, '  vers: ["4.1"]\n  reader: [cat, gnu-cat]\n')
    with pytest.raises(spec.SpecError) as e:
        spec.load_matrix(path)
    assert str(e.value).endswith("matrix.yaml:5: unknown reader 'reader=gnu-cat' "
                                 "(allowed: cat, busybox-cat, open-read, open-fstat-read)")


def test_a_reader_needs_an_experiment_that_reads_a_file(tmp_path):
    with pytest.raises(spec.SpecError, match=r"matrix\.yaml:4: reader 'busybox-cat' needs an experiment that reads a "
                                             r"file by name \(allowed: rename\)"):
        spec.load_matrix(_matrix(tmp_path, "  reader: [cat, busybox-cat]\n", "git-packed-refs"))
    assert spec.load_matrix(_matrix(tmp_path, "  reader: [cat]\n", "git-packed-refs")).axes == {"reader": ["cat"]}


def test_trace_syscalls_is_an_experiment_switch_default_on(tmp_path):
    path = _matrix(tmp_path, "  reader: [cat]\n")
    assert spec.load_matrix(path).experiment.trace_syscalls is True
    path.write_text(path.read_text() + "  trace_syscalls: off\n")
    assert spec.load_matrix(path).experiment.trace_syscalls is False


def test_reader_experiments_are_the_ones_whose_read_is_cat_of_one_file():
    assert rename.SCENARIO.read == f"cat {rename.SCENARIO.read_file}"
    assert gitrefs.scenario("a" * 40, "b" * 40).read_file == ""
    from lab.experiments import READER_EXPERIMENTS
    assert READER_EXPERIMENTS == ("rename",)


@pytest.mark.parametrize("name, cells, readers_", [("mitigations", 6, {"cat"}),
                                                  ("readers", 16, set(readers.READERS))])
def test_the_issue_16_matrices(name, cells, readers_):
    matrix = spec.load_matrix(ROOT / "matrices" / f"{name}.yaml")
    assert len(matrix.cells()) == cells and matrix.experiment.capture and matrix.experiment.trace_syscalls
    assert {c.params["reader"] for c in matrix.cells()} == readers_
    if name == "mitigations":
        assert matrix.kernel_names == ["debian-6.1"] and matrix.server == "debian-6.1"
        assert matrix.axes["vers"] == ["4.1"] and matrix.axes["leases"] == ["on"]
        assert matrix.axes["lookupcache"] == ["all", "positive", "none"]
    else:
        assert matrix.kernel_names == ["debian-6.1", "mainline-4.19"] and matrix.axes["vers"] == ["4.0", "4.1"]


def test_the_default_matrix_keeps_one_reader():
    from lab.paths import DEFAULT_MATRIX
    assert "reader" not in spec.load_matrix(DEFAULT_MATRIX).axes


# ---- alice's loop ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reader, command", [
    ("cat", "cat test1.txt"), ("busybox-cat", "busybox cat test1.txt"),
    ("open-read", "/usr/local/bin/nfslab-read-open-read test1.txt"),
    ("open-fstat-read", "/usr/local/bin/nfslab-read-open-fstat-read test1.txt")])
def test_alice_reads_with_the_cells_reader(reader, command):
    assert race.read_command(rename.SCENARIO, reader) == command
    script = race.alice_script(rename.SCENARIO, SETTINGS, stat_before_open=True, reader=reader)
    assert f"out=$({command} 2>&1); rc=$?" in script                         # the untraced read
    assert f"out=$(strace -f -tt -s 64 -e trace=openat,open,fstat,newfstatat,statx,fadvise64,read," \
           f"copy_file_range,sendfile,close -o /tmp/nfslab-strace/$traced {command} 2>&1); rc=$?" in script
    assert f"A\\t%s" in script and f"t=$(date +%s.%N); out=$({command} 2>&1); rc=$?\nprintf 'A" in script
    # stat_before_open is its own command before the reader, so the reader's calls are the same either way
    assert script.index("stat test1.txt >/dev/null 2>&1") < script.index(f"{command} 2>&1")


def test_the_git_read_is_not_traced_and_takes_no_reader():
    git = gitrefs.scenario("a" * 40, "b" * 40)
    script = race.alice_script(git, SETTINGS, stat_before_open=False)
    assert "strace" not in script and "out=$(git rev-parse refs/heads/nfslab 2>&1)" in script
    with pytest.raises(ValueError, match="needs a read of a file by name"):
        race.read_command(git, "busybox-cat")


def test_tracing_off_gives_the_plain_loop():
    script = race.alice_script(rename.SCENARIO, dataclasses.replace(SETTINGS, trace_syscalls=False), False)
    assert "strace" not in script and "t=$(date +%s.%N); out=$(cat test1.txt 2>&1); rc=$?" in script


def test_tracing_is_bounded_and_starts_at_the_planned_change():
    script = race.alice_script(rename.SCENARIO, SETTINGS, stat_before_open=False)
    assert f'[ "$ms" -ge "$change" ] && [ "$traced" -lt {syscalls.CAP} ]' in script
    assert f'[ "$after" -lt {syscalls.FIRST} ] || [ "$prev" != new ]' in script
    assert "command -v strace" in script and f"change=${{2:-{race.NEVER}}}" in script
    assert "if [ \"$out\" = '2 - New file' ]; then prev=new" in script


@pytest.mark.skipif(not shutil.which("strace"), reason="strace not on this host")
@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: " ".join(s))
def test_traced_loop_runs_in_a_posix_shell(tmp_path, monkeypatch, shell):
    """The loop on the host: strace traces the first reads from the planned change on, each into its own file,
    and what race.run collects parses into meta["syscalls"]."""
    work = tmp_path / "export"
    work.mkdir()
    for name, text in rename.FILES.items():
        (work / name).write_text(text + "\n")
    scenario = dataclasses.replace(rename.SCENARIO, workdir=str(work))
    for name in ("TIMELINE", "DONE", "STRACE_DIR"):
        monkeypatch.setattr(race, name, str(tmp_path / name.lower()))
    script = tmp_path / "alice.sh"
    script.write_text(race.alice_script(scenario, race.Settings(duration=3, interval=0.2), stat_before_open=False))
    start = time.time() + 0.3
    change = start + 0.9
    t0, stderr = run_alice_here(shell, script, [start, change], work, change_at=change, then=2.5)
    text = Path(race.TIMELINE).read_text()
    available, stamps = race.parse_trace_stamps(text)
    if available is not True or not stamps:
        pytest.skip(f"strace cannot trace here: {stderr!r}")
    collect = race.COLLECT.replace("/tmp/nfslab-strace", race.STRACE_DIR)
    collected = subprocess.run(["sh", "-c", collect], capture_output=True, text=True).stdout
    meta = race.syscalls_meta(text, collected, 0.0, t0, scenario, "cat")
    assert 1 <= meta["traced"] <= syscalls.FIRST and meta["reader"] == "cat" and meta["file"] == "test1.txt"
    assert all(t >= -0.2 for t in stamps.values() for t in [t - t0])      # nothing traced before the change
    reads, _ = race.parse_timeline(text, 0.0, t0, scenario)
    assert [r.kind for r in reads if r.t > 0.1] and all(r.kind == "new" for r in reads if r.t > 0.1)
    after = meta["after"]
    assert after["failed_at"] == {} and after["reads"] + meta.get("before", {}).get("reads", 0) == meta["traced"]
    assert any("openat → fd " in seq and "new (13 bytes)" in seq for seq in after["sequences"]), after


# ---- nfslab's own readers ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc not on this host")
    out = tmp_path_factory.mktemp("readers")
    result = {}
    for reader in readers.own():
        binary = out / Path(reader.binary).name
        r = subprocess.run(readers.compile_argv(reader, binary), capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"static gcc build failed here: {r.stderr[-300:]}")
        result[reader.name] = binary
    return result


@pytest.mark.parametrize("name", ["open-read", "open-fstat-read"])
def test_own_readers_print_what_cat_prints_and_name_the_failing_call(built, tmp_path, name):
    (tmp_path / "test1.txt").write_text(OLD_TEXT + "\n")
    ok = subprocess.run([built[name], "test1.txt"], cwd=tmp_path, capture_output=True)
    cat = subprocess.run(["cat", "test1.txt"], cwd=tmp_path, capture_output=True)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, cat.stdout, b"")
    missing = subprocess.run([built[name], "nope.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert (missing.returncode, missing.stdout, missing.stderr) == \
        (1, "", "nfslab-read: open nope.txt: No such file or directory\n")
    directory = subprocess.run([built[name], "."], cwd=tmp_path, capture_output=True, text=True)
    assert directory.stderr == "nfslab-read: read .: Is a directory\n"     # the failing call is named
    # the error line of an ESTALE is what outcome.classify_text recognises
    assert classify_text("nfslab-read: fstat test1.txt: Stale file handle", 1) == "estale"


@pytest.mark.skipif(not shutil.which("strace"), reason="strace not on this host")
def test_own_readers_make_exactly_the_calls_they_are_named_for(built, tmp_path):
    (tmp_path / "test1.txt").write_text(NEW_TEXT + "\n")
    seen = {}
    for name, binary in built.items():
        trace = tmp_path / f"{name}.strace"
        argv = syscalls.strace_prefix(str(trace)).split() + [str(binary), "test1.txt"]
        if subprocess.run(argv, cwd=tmp_path, capture_output=True).returncode != 0:
            pytest.skip("strace cannot trace here")
        seen[name] = syscalls.steps(trace.read_text(), "test1.txt", OLD_TEXT, NEW_TEXT)
    assert seen["open-read"] == ["openat → fd 3", "read → new (13 bytes)", "read → EOF"]
    assert seen["open-fstat-read"] == ["openat → fd 3", "fstat → 0", "read → new (13 bytes)", "read → EOF"]


def test_box_builds_the_readers_and_hashes_their_source(tmp_path, monkeypatch):
    assert "strace" in boxes.PACKAGES
    home = LabHome(tmp_path / "home").ensure()
    boxes.ensure_ssh_key(home)
    inputs = boxes.box_inputs(home)
    assert "nfslab-read.c" in inputs["guest"]
    assert inputs["readers"]["open-fstat-read"] == ["gcc", "-static", "-O2", "-Wall", "-DNFSLAB_FSTAT=1"]
    before = boxes.box_name(home)
    guest = tmp_path / "guest"
    shutil.copytree(boxes.GUEST, guest)
    monkeypatch.setattr(boxes, "GUEST", guest)
    assert boxes.box_name(home) == before                      # same files, same box
    (guest / "nfslab-read.c").write_text((guest / "nfslab-read.c").read_text() + "/* changed */\n")
    assert boxes.box_name(home) != before                      # a changed reader source rebuilds the box
    monkeypatch.setattr(boxes, "GUEST", boxes.GUEST.__class__(readers.GUEST))
    monkeypatch.setattr(readers, "READERS", {**readers.READERS, "open-read": dataclasses.replace(
        readers.READERS["open-read"], cflags=("-DNFSLAB_FSTAT=0", "-g"))})
    assert boxes.box_name(home) != before                      # so does a changed compile line


def test_gcc_and_static_libc_are_lab_box_host_dependencies():
    from lab import hostdeps
    assert hostdeps.LAB_BOX.needs["gcc"] == "gcc" and hostdeps.LAB_BOX.needs["/usr/lib/*/libc.a"] == "libc6-dev"


# ---- the strace parser -------------------------------------------------------------------------------------------

GNU_CAT_ESTALE = """\
812   12:00:01.100001 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
812   12:00:01.100050 newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=8311, ...}, AT_EMPTY_PATH) = 0
812   12:00:01.100090 close(3)                = 0
812   12:00:01.100120 openat(AT_FDCWD, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3
812   12:00:01.100150 read(3, "\\177ELF\\2\\1\\1\\3\\0\\0\\0\\0\\0\\0\\0\\0\\3\\0>\\0\\1\\0\\0\\0"..., 832) = 832
812   12:00:01.100300 close(3)                = 0
812   12:00:01.100400 newfstatat(1, "", {st_mode=S_IFIFO|0600, st_size=0, ...}, AT_EMPTY_PATH) = 0
812   12:00:01.100500 openat(AT_FDCWD, "test1.txt", O_RDONLY) = 4
812   12:00:01.100900 newfstatat(4, "", 0x7ffd3a1c2b40, AT_EMPTY_PATH) = -1 ESTALE (Stale file handle)
812   12:00:01.101000 close(4)                = 0
812   12:00:01.101100 close(1)                = 0
812   12:00:01.101200 +++ exited with 1 +++
"""
BUSYBOX_OLD = """\
901   12:00:02.000001 openat(AT_FDCWD, "test1.txt", O_RDONLY|O_LARGEFILE) = 4
901   12:00:02.000100 read(4, "1 - Old file\\n", 4096) = 13
901   12:00:02.000200 read(4, "", 4096)   = 0
901   12:00:02.000300 close(4)            = 0
"""
OWN_FSTAT = """\
12:00:03.000001 openat(AT_FDCWD, "test1.txt", O_RDONLY) = 3
12:00:03.000100 fstat(3, 0x7ffc12345678) = -1 ESTALE (Stale file handle)
"""


def test_steps_pick_the_calls_on_the_file():
    assert syscalls.steps(GNU_CAT_ESTALE, "test1.txt", OLD_TEXT, NEW_TEXT) == ["openat → fd 4", "fstat → ESTALE"]
    assert syscalls.steps(BUSYBOX_OLD, "test1.txt", OLD_TEXT, NEW_TEXT) == \
        ["openat → fd 4", "read → old (13 bytes)", "read → EOF"]
    assert syscalls.steps(OWN_FSTAT, "test1.txt", OLD_TEXT, NEW_TEXT) == ["openat → fd 3", "fstat → ESTALE"]


def test_steps_handle_open_errors_stat_by_name_and_split_calls():
    text = ('7 12:00:00.1 newfstatat(AT_FDCWD, "test1.txt", {st_mode=S_IFREG|0644, st_size=13, ...}, 0) = 0\n'
            '7 12:00:00.2 openat(AT_FDCWD, "test1.txt", O_RDONLY) = -1 ESTALE (Stale file handle)\n'
            '7 12:00:00.3 open("/mnt/nfs/test1.txt", O_RDONLY) = 5\n'
            '7 12:00:00.4 read(5,  <unfinished ...>\n'
            '7 12:00:00.5 <... read resumed>"2 - New file\\n", 131072) = 13\n'
            '7 12:00:00.6 copy_file_range(5, NULL, 1, NULL, 9223372035781033984, 0) = 0\n'
            '7 12:00:00.7 close(5) = -1 EIO (Input/output error)\n'
            '7 12:00:00.8 read(5, "x", 1) = 1\n')                       # fd closed: not the file any more
    assert syscalls.steps(text, "test1.txt", OLD_TEXT, NEW_TEXT) == [
        "stat → 0", "openat → ESTALE", "open → fd 5", "read → new (13 bytes)", "copy_file_range → 0 bytes",
        "close → EIO"]


def test_failed_at_is_the_first_errno_or_the_old_read():
    assert syscalls.failed_at(["openat → fd 4", "fstat → ESTALE"]) == "fstat → ESTALE"
    assert syscalls.failed_at(["openat → fd 4", "read → old (13 bytes)", "read → EOF"]) == "read → old"
    assert syscalls.failed_at(["openat → fd 4", "read → new (13 bytes)", "read → EOF"]) is None


def test_an_advisory_call_s_error_is_not_where_a_read_failed():
    """Seen on the 4.19 builds (no CONFIG_ADVISE_SYSCALLS): cat's fadvise64 → ENOSYS, then the new contents; the
    table's "Failed at" line named fadvise64 for a cell whose only bad read was one ESTALE."""
    good = ["openat → fd 3", "fstat → 0", "fadvise64 → ENOSYS", "read → new (13 bytes)", "read → EOF"]
    assert syscalls.failed_at(good) is None
    assert syscalls.failed_at(["openat → fd 3", "fadvise64 → ENOSYS", "read → ESTALE"]) == "read → ESTALE"


def test_summarise_per_phase_and_split_collected():
    collected = f"=== 1\n{BUSYBOX_OLD}=== 2\n{GNU_CAT_ESTALE}=== 3\n{GNU_CAT_ESTALE}"
    files = syscalls.split_collected(collected)
    assert sorted(files) == ["1", "2", "3"] and files["1"].startswith("901")
    s = syscalls.summarise([(-0.1, files["1"]), (0.4, files["2"]), (0.9, files["3"])], "test1.txt", OLD_TEXT,
                           NEW_TEXT)
    assert s["before"] == {"reads": 1, "first_s": -0.1, "failed_at": {"read → old": 1},
                           "sequences": {"openat → fd 4 · read → old (13 bytes) · read → EOF": 1}}
    assert s["after"] == {"reads": 2, "first_s": 0.4, "failed_at": {"fstat → ESTALE": 2},
                          "sequences": {"openat → fd 4 · fstat → ESTALE": 2}}
    assert syscalls.main_failure(s) == "fstat → ESTALE"
    assert syscalls.describe(s) == "openat → fd 4 · fstat → ESTALE ×2"


def test_syscalls_meta_times_reads_like_the_timeline_and_says_when_strace_is_missing():
    timeline = "F\t1.0\t0\t1.1\nT\t1\nS\t1100.5\t1\nR\t1100.5\t1\tcat: test1.txt: Stale file handle\nS\t1101.0\t2\n"
    meta = race.syscalls_meta(timeline, f"=== 1\n{GNU_CAT_ESTALE}=== 2\n{GNU_CAT_ESTALE}", offset=100.0, t0=1000.0,
                              scenario=rename.SCENARIO, reader="cat")
    assert meta["traced"] == 2 and meta["after"]["first_s"] == 0.5 and "before" not in meta
    assert race.syscalls_meta("T\t0\n", "", 0.0, 0.0, rename.SCENARIO, "cat") == {
        "reader": "cat", "file": "test1.txt", "skipped": "strace is not installed on alice"}


def test_stored_records_accept_the_syscalls_and_reply_attributes():
    from lab.results import StoredObservationMeta
    meta = {"syscalls": {"reader": "busybox-cat", "file": "test1.txt", "traced": 2,
                         "after": {"reads": 2, "first_s": 0.4, "sequences": {"a": 2}, "failed_at": {"read → old": 2}}},
            "trace": {"alice": {"after": {"reply_attrs": {"OPEN": {"0": {"1234": 34}}}}}}}
    StoredObservationMeta.model_validate(meta)
    with pytest.raises(ValueError, match="unknown reader 'more'"):
        StoredObservationMeta.model_validate({"syscalls": {"reader": "more"}})


# ---- the wire: numlinks and fileid -------------------------------------------------------------------------------

ALICE, SERVER = "192.168.200.11", "192.168.200.10"
ATTRS = "\n".join("\t".join(row) for row in [
    # time, src, dst, msgtyp, opcode, claim, nfsstat4, numlinks, fileid
    ("99.0", SERVER, ALICE, "1", "53,22,18,10,9", "", "0,0,0,0,0", "1", "1234"),        # before: OPEN, 1 link
    ("100.5", ALICE, SERVER, "0", "53,22,18,10,9", "4", "", "", ""),
    ("100.6", SERVER, ALICE, "1", "53,22,18,10,9", "", "0,0,0,0,0", "0", "1234"),       # after: OPEN, 0 links
    ("101.1", SERVER, ALICE, "1", "53,22,18,10,9", "", "0,0,0,0,0", "0,2", "1234,99"),  # + the directory's
    ("101.5", SERVER, ALICE, "1", "53,22,9", "", "0,0,0", "0", "1234"),                 # a GETATTR
    ("102.0", SERVER, ALICE, "1", "53,22,15,10,9", "", "0,0,0,0,0", "1", "1240"),      # LOOKUP: the new file
    ("102.5", SERVER, ALICE, "1", "53,22,9", "", "0,0,0", "1", ""),                     # no fileid decoded
])


def test_capture_counts_numlinks_and_fileid_of_open_lookup_and_getattr_replies():
    assert capture.FIELDS[-2:] == ("nfs.fattr4.numlinks", "nfs.fattr4.fileid")
    s = capture.summarise(ATTRS, {ALICE: "alice"}, t0=100.0)
    assert s["alice"]["before"]["reply_attrs"] == {"OPEN": {"1": {"1234": 1}}}
    assert s["alice"]["after"]["reply_attrs"] == {"OPEN": {"0": {"1234": 2}}, "LOOKUP": {"1": {"1240": 1}},
                                                  "GETATTR": {"0": {"1234": 1}, "1": {"?": 1}}}
    line = ("OPEN replies: numlinks 0 ×2 (fileid 1234) · LOOKUP replies: numlinks 1 ×1 (fileid 1240) · "
            "GETATTR replies: numlinks 0 ×1 (fileid 1234), numlinks 1 ×1")
    assert capture.describe_attrs(s["alice"]["after"]) == line
    assert capture.describe(s["alice"]["after"]).endswith(f"NFS4ERR_STALE replies 0 · {line}")


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not on this host")
def test_the_capture_fields_exist_in_this_tshark():
    names = {line.split("\t")[2] for line in subprocess.run(["tshark", "-G", "fields"], capture_output=True,
                                                            text=True).stdout.splitlines() if line.startswith("F\t")}
    assert set(capture.FIELDS) <= names


def test_busybox_cat_reads_with_sendfile():
    """busybox cat hands the file to stdout with sendfile(out, in, …): seen on a real debian-6.1 guest, where the
    first trace set (no sendfile) showed only `openat → fd 4` for each of its reads."""
    text = ('901 12:00:02.000001 openat(AT_FDCWD, "test1.txt", O_RDONLY|O_LARGEFILE) = 4\n'
            '901 12:00:02.000100 sendfile(1, 4, NULL, 16777216) = 13\n'
            '901 12:00:02.000200 sendfile(1, 4, NULL, 16777216) = -1 ESTALE (Stale file handle)\n')
    assert syscalls.steps(text, "test1.txt", OLD_TEXT, NEW_TEXT) == [
        "openat → fd 4", "sendfile → 13 bytes", "sendfile → ESTALE"]
    assert "sendfile" in syscalls.strace_prefix("/tmp/x")

"""The benchmark's pure parts: goals and ratios, the table, the part selection, log parsing, memory figures, and the
stock baseline's Vagrantfile (golden). Nothing here boots, builds or starts anything."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.libvirt import LibvirtTarget

from bench import figures as F
from bench import lab_bench, stock_box
from lab import topology

KERNEL = topology.KernelFiles(Path("/var/lib/nfslab/bench/boxes/nfslab-stock-bookworm-000000000000/vmlinuz"),
                              Path("/var/lib/nfslab/bench/boxes/nfslab-stock-bookworm-000000000000/initrd"),
                              "6.1.0-50-cloud-amd64")


def stock_sample(driver="qemu"):
    return stock_box.plan(lab_id="abc123", slot=3, box="nfslab-stock-bookworm-000000000000", kernel=KERNEL,
                          driver=driver)


# ---- goals, ratios, verdicts -------------------------------------------------------------------------------------

def test_goals_bound_the_measured_value():
    assert F.Goal("<=", 20, "s").met(19.9) and not F.Goal("<=", 20, "s").met(20.1)
    assert F.Goal(">=", 5, "x").met(5.0) and not F.Goal(">=", 5, "x").met(4.9)
    assert F.Goal("==", False).met(False) and not F.Goal("==", False).met(True)
    assert F.Goal("<=", 20, "s").met(None) is None
    assert str(F.Goal("<=", 20, "s")) == "≤ 20 s" and str(F.Goal(">=", 5, "x")) == "≥ 5×"
    assert str(F.Goal("==", False)) == "= no"
    with pytest.raises(ValueError):
        F.Goal("<", 1)


def test_up_needs_both_its_bound_and_its_ratio():
    fast = F.Figure("up", "up", samples=[18.0, 19.0, 25.0], goal=F.Goal("<=", 20, "s"),
                    baseline_samples=[110.0, 120.0, 115.0], ratio_goal=F.Goal(">=", 5, "x"))
    assert fast.measured == 19.0 and fast.baseline == 115.0      # medians: one slow run does not decide
    assert fast.ratio == pytest.approx(115 / 19)
    assert fast.met is True
    slow_baseline = F.Figure("up", "up", samples=[19.0], goal=F.Goal("<=", 20, "s"), baseline_samples=[60.0],
                             ratio_goal=F.Goal(">=", 5, "x"))
    assert slow_baseline.ratio == pytest.approx(60 / 19) and slow_baseline.met is False
    no_baseline = F.Figure("up", "up", samples=[19.0], goal=F.Goal("<=", 20, "s"), ratio_goal=F.Goal(">=", 5, "x"))
    assert no_baseline.ratio is None and no_baseline.met is None  # a ratio goal without a baseline is not judged


def test_ratio_direction_and_unjudged_figures():
    assert F.Figure("x", "x", samples=[2.0], baseline_samples=[8.0]).ratio == 4.0            # lower is better
    assert F.Figure("x", "x", samples=[8.0], baseline_samples=[2.0], lower_is_better=False).ratio == 4.0
    assert F.Figure("x", "x", samples=[3.0]).met is None                                      # nothing to judge
    assert F.Figure("x", "x", goal=F.Goal("<=", 3, "s")).met is None                          # not measured
    assert F.Figure("x", "x", samples=[1.0], goal=F.Goal("<=", 3, "s"), error="boom").met is False
    assert F.Figure("swap", "swap", unit="", samples=[False], goal=F.Goal("==", False)).met is True


def test_formatting():
    assert F.fmt(23.44, "s") == "23.4 s" and F.fmt(123.4, "s") == "123 s"
    assert F.fmt(345.6, "MiB") == "346 MiB" and F.fmt(5.83, "x") == "5.8×" and F.fmt(400, "MiB") == "400 MiB"
    assert F.fmt(None) == "—" and F.fmt(True) == "yes" and F.fmt("tcg") == "tcg"
    assert F.Figure("x", "x", samples=[21.0, 24.5, 22.0]).spread == "n=3, 21.0–24.5 s"


def test_table_rows_and_text():
    figs = [F.Figure("up", "3-VM cold up → all ssh", samples=[24.0], goal=F.Goal("<=", 20, "s"),
                     baseline_samples=[120.0], baseline_name="stock", ratio_goal=F.Goal(">=", 5, "x"),
                     detail="box upload included: False"),
            F.Figure("revert", "reset: snapshot revert", samples=[2.4], goal=F.Goal("<=", 3, "s")),
            F.Figure("cell", "one cell", goal=F.Goal("<=", 30, "s"), error="nfs: mount on alice")]
    rows = F.rows(figs)
    assert rows[0] == ["3-VM cold up → all ssh", "24.0 s", "≤ 20 s, ≥ 5×", "120 s (stock)", "5.0×", "✗"]
    assert rows[1][-1] == "✓" and rows[1][3] == "—"
    assert rows[2][1] == "error: nfs: mount on alice" and rows[2][-1] == "✗"
    text = F.render_text(figs, width=200)
    for header in F.HEADERS:
        assert header in text
    assert "- 3-VM cold up → all ssh: box upload included: False" in text
    assert F.summary(figs) == {"met": 1, "missed": 2, "not_judged": 0}
    d = figs[0].to_dict()
    assert d["ratio"] == 5.0 and d["met"] is False and d["goal"] == "≤ 20 s, ≥ 5×"


# ---- the benchmark's own plumbing --------------------------------------------------------------------------------

def test_parts_run_in_a_fixed_order_and_unknown_ones_are_named():
    assert lab_bench.parse_parts(None) == list(lab_bench.PARTS)
    assert lab_bench.parse_parts("memory, up,reset") == ["up", "reset", "memory"]
    with pytest.raises(ValueError, match="unknown part boot .*allowed: kvm, build"):
        lab_bench.parse_parts("up,boot")


def test_step_times_reads_the_lab_command_log():
    log = ("$ apt-get update -q\nHit:1 …\n[rc=0 1.5s]\n"
           "$ make -C /h M=/src/fs/nfs -j2 modules\n  CC [M] fs/nfs/dir.o\n[rc=0 13.1s]\n"
           "$ make -C /h M=/src/fs/nfs -j2 modules\n  LD [M] nfs.ko[rc=0 2.0s]\n$ cpio\n[rc=0 0.3s]\n")
    assert lab_bench.step_times(log, " M=") == [13.1, 2.0]
    assert lab_bench.step_times(log, "bzImage") == []


def test_edit_marks_are_stripped_back_to_the_pristine_file():
    pristine = "int x;\n/* a comment */\n"
    edited = pristine + f"{lab_bench.EDIT_MARK} 123 */\n{lab_bench.EDIT_MARK} 456 */\n"
    assert lab_bench.strip_marks(edited) == pristine


def test_cells_cycle_to_the_count_asked_for():
    assert lab_bench.cycle_cells(["a", "b"], 5) == ["a", "b", "a", "b", "a"]


def test_bench_cells_are_ones_debian_6_1_is_expected_to_pass():
    m = lab_bench.bench_matrix()
    cells = m.cells()
    assert [c.id for c in cells] == ["debian-6.1/vers=4.0/leases=on", "debian-6.1/vers=4.0/leases=off"]
    assert all(getattr(m.expected(c), "status", m.expected(c)) == "pass" for c in cells)


def test_estimate_grows_with_runs_and_cells():
    parts = ["up", "reset", "cell", "reuse"]
    assert lab_bench.estimate(parts, 3, 4) > lab_bench.estimate(parts, 1, 4)
    assert lab_bench.estimate(["reuse"], 1, 8) > lab_bench.estimate(["reuse"], 1, 4)


def test_the_build_home_cannot_be_the_lab_home(monkeypatch, tmp_path):
    monkeypatch.setenv("NFSLAB_HOME", str(tmp_path))
    with pytest.raises(SystemExit):
        lab_bench.parse_args(["--build-home", str(tmp_path), "--dry-run"])
    args, parts = lab_bench.parse_args(["--only", "build", "--build-home", str(tmp_path / "b")])
    assert parts == ["build"] and args.runs == 1


def fake_sampler(rss, kind, swapped_out=0):
    mem = {"MemAvailable": 20000 * 1024, "MemTotal": 24000 * 1024, "SwapTotal": 0}
    return SimpleNamespace(rss_max=rss, kind=kind, mem_before=mem, mem_after=mem, mem_min_available=18000 * 1024,
                           vm_before={"pswpin": 0, "pswpout": 0},
                           vm_after={"pswpin": 0, "pswpout": swapped_out}, interval=2.0, foreign_max=0)


def test_memory_figures_compare_lab_and_stock_qemus():
    rss = {"nfslab-a1-server": 350 * 1024, "nfslab-a1-alice": 360 * 1024, "nfslab-b2-bob": 340 * 1024,
           "nfslab-c3-server": 1300 * 1024}
    kind = {"nfslab-a1-server": "lab", "nfslab-a1-alice": "lab", "nfslab-b2-bob": "lab", "nfslab-c3-server": "stock"}
    figs = {f.key: f for f in lab_bench.memory_figures(fake_sampler(rss, kind))}
    assert figs["rss"].measured == 360 and figs["rss"].baseline == 1300 and figs["rss"].met is True
    assert "alice 360, bob 340, server 350 MiB" in figs["rss"].detail
    assert figs["mem_available"].measured == 18000
    assert figs["swap"].measured is False and figs["swap"].met is True
    assert figs["parallel_fit"].measured == 6 * 360 and figs["parallel_fit"].met is True
    swapped = {f.key: f for f in lab_bench.memory_figures(fake_sampler(rss, kind, swapped_out=12))}
    assert swapped["swap"].met is False


# ---- the stock baseline --------------------------------------------------------------------------------------------

def test_stock_vagrantfile_matches_golden(golden):
    golden.check("Vagrantfile.stock", stock_box.render_vagrantfile(stock_sample()))


def test_stock_vagrantfile_keeps_vagrants_defaults():
    text = "\n".join(line for line in stock_box.render_vagrantfile(stock_sample()).splitlines()
                     if not line.lstrip().startswith("#"))
    for fast_setting in ("insert_key", "config.vm.guest", "auto_config", "emulator_path", "private_key_path",
                         "init=/sbin/lab-init", "mitigations=off"):
        assert fast_setting not in text
    assert text.count('m.vm.hostname = "') == 3
    assert 'lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0"' in text
    assert 'lv.cpu_mode = "host-passthrough"' in stock_box.render_vagrantfile(stock_sample("kvm"))


def test_stock_topology_uses_the_lab_names_and_ip_plan():
    stock, lab = stock_sample(), topology.plan(lab_id="abc123", slot=3, kernel_name="debian-6.1", box="b",
                                               server_kernel=KERNEL, client_kernel=KERNEL,
                                               ssh_key=Path("/k"))
    assert stock.domains == lab.domains and stock.mgmt == lab.mgmt and stock.nfs == lab.nfs
    assert [m.nfs_ip for m in stock.machines] == [m.nfs_ip for m in lab.machines]
    assert all(m.cmdline == stock_box.CMDLINE for m in stock.machines)
    assert stock.emulator is None and stock.boot_timeout == stock_box.BOOT_TIMEOUT


def test_stock_management_network_is_isolated_without_no_ping():
    xml = stock_box.network_xml(stock_sample().mgmt)
    assert "<forward" not in xml and "no-ping" not in xml and "<dhcp>" in xml


def test_stock_box_name_is_a_hash_of_its_inputs_outside_lab_clean_pattern():
    name = stock_box.box_name()
    assert name.startswith("nfslab-stock-bookworm-") and len(name.rsplit("-", 1)[1]) == 12
    assert not name.startswith("nfslab-bookworm-")     # `lab clean` prunes nfslab-bookworm-* it does not know
    assert "systemd-sysv" in stock_box.box_inputs()["packages"]


# ---- the orchestration, on a fake lab (no VM, no libvirt, no build) ----------------------------------------------

class FakeHost:
    accel, netns, tcg_wrapper = "tcg", "nfslab-unit-test", Path("/nowhere/qemu-tcg")
    emulator = tcg_wrapper
    libvirt = LibvirtTarget()      # the lab's own

    def stage(self, files):
        return files

    def __init__(self):
        from lab.paths import LabHome
        self.users = 0
        self.home = LabHome.default()
        self._users_dir = self.home.state / "users"

    def virsh(self, *args, **kw):
        return ""

    def libvirtd_running(self):
        return False

    def open_socket(self, *a):
        raise AssertionError("no sockets in unit tests")

    def register_user(self):
        self.users += 1

    def unregister_user(self):
        self.users -= 1


class FakeLive:
    """Stands for LiveTopology and StockTopology: the benchmark only times what these calls take."""

    created: list = []

    def __init__(self, t, host, dir):
        self.topology, self.host, self.dir = t, host, dir
        self.timings, self.targets, self.destroyed = {}, {}, False

    def create(self, progress=lambda m: None):
        self.timings["up"] = 0.01
        self.targets = {m.name: SimpleNamespace(address=m.nfs_ip, port=22) for m in self.topology.machines}
        FakeLive.created.append(self)
        return self

    def wait_ssh(self, machine, timeout):
        return 0.0

    def snapshot(self):
        pass

    def revert(self, *args, **kw):
        return 0.01

    def destroy(self):
        self.destroyed = True


class FakeRemote:
    def __init__(self, name, *a, **kw):
        self.name = name

    def wait_ready(self, *args, **kw):
        return 0.0

    def close(self):
        pass


class FakeRunner:
    runners: list = []

    def __init__(self):
        self.lab, self.closed, self.cells = SimpleNamespace(timings={"revert_s": 0.01}), False, []
        FakeRunner.runners.append(self)

    def run_cell(self, cell):
        self.cells.append(cell.id)
        return SimpleNamespace(cell_id=cell.id, status="pass", duration_s=1.0, verdict={"status": "pass"})

    def close(self):
        self.closed = True


def fake_lab(monkeypatch, tmp_path):
    import lab.cleanup
    import lab.host
    import lab.kernels
    import lab.kernellab
    import lab.nfs
    import lab.remote
    import lab.topology
    monkeypatch.setenv("NFSLAB_HOME", str(tmp_path / "home"))
    FakeLive.created, FakeRunner.runners = [], []
    host = FakeHost()
    kernel = topology.KernelFiles(tmp_path / "vmlinuz", tmp_path / "initrd", "6.1.0-50-cloud-amd64")
    box = SimpleNamespace(name="nfslab-bookworm-000000000000", dir=tmp_path / "box", rootfs=tmp_path / "box/rootfs")
    stock = stock_box.StockBox(stock_box.box_name(), tmp_path / "stock")
    stock.dir.mkdir(parents=True)
    (stock.dir / "release").write_text("6.1.0-50-cloud-amd64\n")

    def prepare_host(self):
        if self.host is None:
            from lab.host import HostLease
            self.host, self.box, self.kernel, self.matrix = host, box, kernel, lab_bench.bench_matrix()
            self.lease = HostLease(host).acquire()

    released = []
    monkeypatch.setattr(lab_bench.Bench, "prepare_host", prepare_host)
    monkeypatch.setattr(lab_bench.Bench, "lab_box", lambda self: box)
    monkeypatch.setattr(lab_bench.Bench, "runner", lambda self, tag: FakeRunner())
    monkeypatch.setattr(lab_bench, "machine_info", lambda: {"cpus": 2})
    monkeypatch.setattr(lab.topology, "LiveTopology", FakeLive)
    monkeypatch.setattr(stock_box, "StockTopology", FakeLive)
    monkeypatch.setattr(stock_box, "ensure", lambda home, progress=None: stock)
    monkeypatch.setattr(lab.remote, "Remote", FakeRemote)
    monkeypatch.setattr(lab.kernellab, "check_release", lambda remote, release: None)
    for name in ("preload_server", "preload_client", "start_server", "mount", "umount"):
        monkeypatch.setattr(lab.nfs, name, lambda *a, **kw: None)
    monkeypatch.setattr(lab.host, "detect_accel", lambda kernel, log: "tcg")
    monkeypatch.setattr(lab.cleanup, "release", lambda h, run_dir, keep_host=False: released.append(run_dir) or [])

    def module_build(kernel, home, box):
        out = home.kernels / f"build-{kernel.name}-key"
        out.mkdir(parents=True, exist_ok=True)
        (out / "initrd").write_text("")
        with (home.kernels / f"build-{kernel.name}.log").open("a") as log:
            log.write("$ make -C /h M=/s/fs/nfs -j2 modules\n[rc=0 5.0s]\n")
        return topology.KernelFiles(box.rootfs / "vmlinuz", out / "initrd", "r", nfs_modules="updates")

    def full_build(kernel, home):
        import hashlib
        tree = Path(os.environ["NFSLAB_LINUX_TREE"])
        key = hashlib.sha256((tree / lab_bench.EDITED).read_bytes()).hexdigest()[:8]
        out = home.kernels / f"build-{kernel.name}-{key}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "vmlinuz").write_text("")
        (out / "build.log").write_text("$ make -C src O=obj bzImage\n[rc=0 7.5s]\n")
        return topology.KernelFiles(out / "vmlinuz", None, "4.19.1")

    def unpack_tree(tree, ref, dest, log):
        (dest / "fs/nfs").mkdir(parents=True)
        (dest / lab_bench.EDITED).write_text("int dir;\n")

    monkeypatch.setattr(lab.kernels, "module_build", module_build)
    monkeypatch.setattr(lab.kernels, "full_build", full_build)
    monkeypatch.setattr(lab.kernels, "unpack_tree", unpack_tree)
    monkeypatch.setattr(lab.kernels, "linux_tree", lambda kernel, home=None: tmp_path / "linux.tar.xz")
    return host, released


import os  # noqa: E402  (used by the fake full_build)


def test_every_part_runs_on_a_fake_lab_and_everything_is_torn_down(monkeypatch, tmp_path):
    host, released = fake_lab(monkeypatch, tmp_path)
    args, parts = lab_bench.parse_args(["--runs", "2", "--reuse-cells", "3", "--build-home", str(tmp_path / "b")])
    from rich.console import Console
    bench = lab_bench.Bench(args, Console(file=open(os.devnull, "w")))
    bench.run(parts)
    bench.cleanup()
    figs = {f.key: f for f in bench.figures}
    assert not [f for f in bench.figures if f.error], [f.error for f in bench.figures if f.error]
    assert {"kvm", "module_cold", "module_warm", "mainline_rebuild", "up", "destroy", "revert", "nfs_ready",
            "between_cells", "cell", "reuse", "rss", "swap"} <= figs.keys()
    assert figs["kvm"].met is True
    assert len(figs["up"].samples) == 2 and len(figs["up"].baseline_samples) == 2
    assert len(figs["revert"].samples) == 2 and len(figs["cell"].samples) == 2
    assert bench.raw["module_build"]["cold_make_s"] == [5.0] and bench.raw["module_build"]["warm_make_s"] == [5.0]
    # the 4.19 edit is undone, and only the build before it is kept
    tree = tmp_path / "b" / "trees" / "linux-4.19.1"
    assert (tree / lab_bench.EDITED).read_text() == "int dir;\n"
    assert len(list((tmp_path / "b" / "kernels").glob("build-mainline-4.19-*"))) == 1
    # reuse: one runner for all cells, then one per cell; every runner closed; the benchmark's own lease held the
    # host across them, and was released before the end-of-run release
    one, *fresh = FakeRunner.runners[-4:]
    assert len(one.cells) == 3 and [len(r.cells) for r in fresh] == [1, 1, 1]
    assert all(r.closed for r in FakeRunner.runners) and host.users == 0 and not bench.lease.held
    # every topology the benchmark booted itself was destroyed, and its state is under the run directory
    assert FakeLive.created and all(t.destroyed for t in FakeLive.created)
    assert not bench.our_topologies() and released == [bench.out]
    report = bench.report(False)
    assert report["figures"] and report["summary"]["met"] >= 1 and report["runs"] == 2


def test_a_failing_part_is_recorded_and_the_next_part_still_runs(monkeypatch, tmp_path):
    fake_lab(monkeypatch, tmp_path)

    def broken(self, tag):
        from lab.errors import LabError
        raise LabError("topology: vagrant up", "vagrant up exited 1", "/tmp/vagrant.log")

    monkeypatch.setattr(lab_bench.Bench, "boot_lab", broken)
    args, parts = lab_bench.parse_args(["--only", "reset,cell"])
    from rich.console import Console
    bench = lab_bench.Bench(args, Console(file=open(os.devnull, "w")))
    bench.run(parts)
    bench.cleanup()
    figs = {f.key: f for f in bench.figures}
    assert "vagrant up exited 1" in figs["reset"].error and figs["reset"].met is False
    assert figs["cell"].error is None and figs["cell"].samples == [1.0]


def test_a_failing_baseline_keeps_the_labs_up_figure(monkeypatch, tmp_path):
    fake_lab(monkeypatch, tmp_path)

    def broken(self, tag):
        from lab.errors import LabError
        raise LabError("stock topology: vagrant up", "CalledProcessError: exit 1", "/tmp/vagrant.log")

    monkeypatch.setattr(lab_bench.Bench, "boot_stock", broken)
    args, parts = lab_bench.parse_args(["--only", "up", "--runs", "2"])
    from rich.console import Console
    bench = lab_bench.Bench(args, Console(file=open(os.devnull, "w")))
    bench.run(parts)
    bench.cleanup()
    up = next(f for f in bench.figures if f.key == "up")
    assert len(up.samples) == 2 and up.baseline_samples == [] and up.error is None
    assert up.met is None                                  # the ratio goal cannot be judged without a baseline
    assert "stock failed 2×: stock topology: vagrant up" in up.detail


def test_up_detail_names_what_each_side_spent():
    lab = [{"vagrant_up_s": 12.0, "networks_and_ssh_config_s": 4.0, "ssh_wait_s": 1.5, "box_upload_included": True},
           {"vagrant_up_s": 14.0, "networks_and_ssh_config_s": 4.2, "ssh_wait_s": 1.1, "box_upload_included": False}]
    stock = [{"vagrant_up_s": 110.0, "ssh_wait_s": 0.8, "box_upload_included": True}]
    text = lab_bench.up_detail(lab, stock, {"lab": [], "stock": []})
    assert text.startswith("lab: vagrant up 13.0s + networks/ssh-config 4.1s + ssh 1.3s, box upload in 1/2 runs")
    assert "stock: vagrant up 110.0s + ssh 0.8s, box upload in 1/1 runs" in text and "no bootloader" in text

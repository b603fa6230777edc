"""Bad input, end to end through `lab`: one row per mistake a user can make, each refused with one line that says
where it is (FILE:LINE) or what is missing, and how to fix it; exit code 2, no traceback, nothing created.

Every row runs the real command line in a subprocess, from a scratch directory holding the row's files. PATH holds
only stand-ins for the lab's host tools (minus those the row takes away), and the effective uid is the one the row
asks for, so a row means the same as root or not, on a host with or without the lab installed. A stand-in only
exits 1: a row whose check failed to fire fails on its message, it never reaches a real tool.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import hostdeps
from lab.paths import KERNELS as PACKAGED_KERNELS
from tests import CHECKOUT

KERNELS = Path(__file__).resolve().parent / "data" / "kernels"   # bad-base, ok-box, ok-build, ok-deb
PACKAGED = {p.stem for p in PACKAGED_KERNELS.glob("*.yaml")}      # nfslab's own, looked up after those

MATRIX = """\
kernels: [ok-deb]
server: ok-deb
axes:
  vers: ["4.0", "4.1"]
  leases: [on, off]
experiment:
  duration: 30s
  interval: 0.5s
  pass_within: 2s
  repeats: 1
"""

KERNEL = """\
name: {name}
title: "A row under test"
source:
  build:
    base: ok-deb
    tree: linux-source-6.1
    scope: module:fs/nfs
expect:
  - when: {{vers: "4.0"}}
    verdict: fail
"""


LIBVIRT_ALLOWED = "qemu:///system, or qemu+ssh://[USER@]HOST/system[?keyfile=KEY&no_verify=1&command=SSH]"


def kernel(name: str, old: str = "", new: str = "") -> dict[str, str]:
    """kernels/<name>.yaml, a valid build row with one mistake put in, listed as the matrix's only row."""
    return {f"kernels/{name}.yaml": KERNEL.format(name=name).replace(old, new),
            "matrix.yaml": MATRIX.replace("kernels: [ok-deb]", f"kernels: [{name}]")}


def box_kernel(name: str, line: str) -> dict[str, str]:
    """kernels/<name>.yaml, a valid box row with one of its lines (`key: value`) replaced, the matrix's only row."""
    spec = BOX_KERNEL.format(name=name)
    key = line.split(":", 1)[0]
    spec = "\n".join(f"    {line}" if text.strip().startswith(f"{key}:") else text for text in spec.split("\n"))
    return {f"kernels/{name}.yaml": spec, "matrix.yaml": MATRIX.replace("kernels: [ok-deb]", f"kernels: [{name}]")}


BOX_KERNEL = """\
name: {name}
title: "A box row under test"
source:
  box:
    name: nfslab/debian-11
    version: "11.11.1"
    file: nfslab-debian-11-11.11.1.box
    kernel_package: linux-image-5.10.0-30-amd64
    suite: bullseye
"""


def row(name: str, args: list[str], message: str, *, files: dict[str, str] | None = None, uid: int = 0,
        without: tuple[str, ...] = ()):
    return pytest.param(args, message, {"matrix.yaml": MATRIX, **(files or {})}, uid, without, id=name)


ROWS = [
    # ---- matrix.yaml ---------------------------------------------------------------------------------------------
    row("yaml-syntax", ["list"], "matrix.yaml:2: YAML syntax error: expected ',' or ']', but got ':'",
        files={"matrix.yaml": MATRIX.replace("[ok-deb]", "[ok-deb")}),
    row("unknown-top-level-key", ["list"], "matrix.yaml:11: unknown key 'timeout', did you mean 'timeouts'? "
        "(allowed: kernels, server, axes, experiment, timeouts)",
        files={"matrix.yaml": MATRIX + "timeout: {boot: 5m}\n"}),
    # the names a matrix can use: its own kernels/, then nfslab's own specs
    row("unknown-kernel", ["list"], "matrix.yaml:1: unknown kernel 'ok-dbe', did you mean 'ok-deb'? "
        f"(allowed: {', '.join(sorted({p.stem for p in KERNELS.glob('*.yaml')} | PACKAGED))})",
        files={"matrix.yaml": MATRIX.replace("[ok-deb]", "[ok-deb, ok-dbe]")}),
    row("duplicate-kernel", ["list"], "matrix.yaml:1: kernel 'ok-deb' is listed twice",
        files={"matrix.yaml": MATRIX.replace("[ok-deb]", "[ok-deb, ok-deb]")}),
    row("unknown-axis", ["list"], "matrix.yaml:5: unknown axis 'lease', did you mean 'leases'? "
        "(allowed: acdirmin, actimeo, leases, lookupcache, reader, stat_before_open, vers)",
        files={"matrix.yaml": MATRIX.replace("leases:", "lease:")}),
    row("bad-axis-value", ["list"], "matrix.yaml:4: unknown mount option 'vers=4.3' (allowed: 3, 4.0, 4.1, 4.2)",
        files={"matrix.yaml": MATRIX.replace('"4.1"', '"4.3"')}),
    row("empty-axis", ["list"], "matrix.yaml:4: axis 'vers' needs a non-empty list of values "
        "(allowed: 3, 4.0, 4.1, 4.2)",
        files={"matrix.yaml": MATRIX.replace('["4.0", "4.1"]', "[]")}),
    row("bad-duration", ["list"], "matrix.yaml:7: bad duration '30 seconds' for duration "
        "(allowed: e.g. 30s, 500ms, 1.5s, 2m, or seconds, up to a day)",
        files={"matrix.yaml": MATRIX.replace("30s", "30 seconds")}),
    row("repeats-0", ["list"], "matrix.yaml:10: bad repeats '0' (allowed: a whole number from 1 to 1000)",
        files={"matrix.yaml": MATRIX.replace("repeats: 1", "repeats: 0")}),
    row("missing-experiment-key", ["list"], "matrix.yaml:6: experiment needs 'interval' "
        "(required: duration, interval, pass_within)",
        files={"matrix.yaml": MATRIX.replace("  interval: 0.5s\n", "")}),
    row("missing-top-level-key", ["list"], "matrix.yaml:1: a matrix needs 'server' "
        "(required: kernels, server, axes, experiment)",
        files={"matrix.yaml": MATRIX.replace("server: ok-deb\n", "")}),
    row("bad-timeout", ["list"], "matrix.yaml:12: bad timeout '0s' for boot (allowed: a duration > 0 and up to a day, "
        "e.g. 300s)",
        files={"matrix.yaml": MATRIX + "timeouts:\n  boot: 0s\n"}),
    row("unknown-timeout", ["list"], "matrix.yaml:12: unknown timeout 'boto', did you mean 'boot'? "
        "(allowed: boot, revert, ssh, command, nfsd, mount, experiment, build)",
        files={"matrix.yaml": MATRIX + "timeouts:\n  boto: 10m\n"}),
    # ---- kernels/*.yaml ------------------------------------------------------------------------------------------
    row("unknown-source-kind", ["list"], "kernels/k.yaml:4: unknown source kind 'tarball' "
        "(allowed: deb, image, box, build)", files=kernel("k", "  build:", "  tarball:")),
    row("missing-tree", ["list"], "kernels/k.yaml:4: source.build needs 'tree' (required: tree, scope)",
        files=kernel("k", "    tree: linux-source-6.1\n")),
    row("bad-expect-axis", ["list"], "kernels/k.yaml:9: unknown axis 'version', did you mean 'vers'? "
        "(allowed: acdirmin, actimeo, leases, lookupcache, reader, stat_before_open, vers)", files=kernel("k", "{vers:", "{version:")),
    row("bad-verdict", ["list"], "kernels/k.yaml:10: unknown verdict 'failed', did you mean 'fail'? "
        "(allowed: pass, fail, unknown)", files=kernel("k", "verdict: fail", "verdict: failed")),
    row("base-loop", ["list"], "kernels/k2.yaml:5: base kernel 'k' makes a loop: k → k2 → k "
        "(a base must lead to a deb or box kernel)",
        files={**kernel("k", "base: ok-deb", "base: k2"),
               "kernels/k2.yaml": KERNEL.format(name="k2").replace("base: ok-deb", "base: k")}),
    row("base-is-itself", ["list"], "kernels/k.yaml:5: base kernel 'k' makes a loop: k → k "
        "(a base must lead to a deb or box kernel)", files=kernel("k", "base: ok-deb", "base: k")),
    row("box-version-injection", ["list"], "kernels/k.yaml:6: bad version '1\" ; system(\"id\")' (allowed: a box "
        "version: numbers and dots, quoted, e.g. \"1809.01\")",
        files=box_kernel("k", 'version: \'1" ; system("id")\'')),
    row("box-suite-injection", ["list"], "kernels/k.yaml:9: bad suite 'bullseye main\\ndeb http://evil' (allowed: "
        "a Debian suite, e.g. bullseye)", files=box_kernel("k", 'suite: "bullseye main\\ndeb http://evil"')),
    # ---- command-line arguments ----------------------------------------------------------------------------------
    row("unknown-kernel-option", ["run", "--kernels", "ok-dbe"],
        "--kernels: unknown kernel 'ok-dbe', did you mean 'ok-deb'? (allowed: ok-deb)"),
    row("resume-missing-dir", ["run", "--resume", "runs/nope"],
        "--resume runs/nope: no such run directory (fix: give one that `lab run` made, e.g. runs/<run-id>)"),
    row("unknown-format", ["table", ".", "--format", "pdf"], "unknown format 'pdf' (allowed: md, html, json, junit, terminal)"),
    row("matrix-missing", ["run", "--matrix", "nope.yaml"],
        "--matrix nope.yaml: no such file (fix: leave --matrix out to use ./matrix.yaml, else nfslab's own)"),
    row("matrix-is-a-directory", ["list", "--matrix", "kernels"],
        "--matrix kernels: is a directory (fix: name the file, e.g. --matrix kernels/matrix.yaml)"),
    # ---- --libvirt-uri: another lab host (docs/remote-libvirt.md) ---------------------------------------------------
    row("libvirt-uri-tls", ["run", "--libvirt-uri", "qemu+tls://lab2/system"],
        "--libvirt-uri qemu+tls://lab2/system: transport 'qemu+tls' is not ssh: the lab reaches the VMs through the "
        f"libvirt host's ssh (allowed: {LIBVIRT_ALLOWED})"),
    row("libvirt-uri-port", ["run", "--libvirt-uri", "qemu+ssh://root@lab2:2222/system"],
        "--libvirt-uri qemu+ssh://root@lab2:2222/system: a port (2222): vagrant-libvirt 0.11.2 cannot proxy ssh to "
        "its VMs with one (fix: set `Port 2222` for lab2 in root's ~/.ssh/config and leave it out here) "
        f"(allowed: {LIBVIRT_ALLOWED})"),
    row("libvirt-uri-typo", ["clean", "--libvirt-uri", "qemu+ssh://lab2/system?keyfle=/k"],
        "--libvirt-uri qemu+ssh://lab2/system?keyfle=/k: unknown parameter 'keyfle' (the ssh transport's: keyfile, "
        f"no_verify, command, socket, mode, proxy, netcat, no_tty) (allowed: {LIBVIRT_ALLOWED})"),
    row("libvirt-uri-missing-key", ["run", "--libvirt-uri", "qemu+ssh://lab2/system?keyfile=/nonexistent/key"],
        "--libvirt-uri qemu+ssh://lab2/system?keyfile=/nonexistent/key: no such file: keyfile=/nonexistent/key"),
    row("libvirt-uri-capture", ["run", "--libvirt-uri", "qemu+ssh://lab2/system"],
        "--libvirt-uri qemu+ssh://lab2/system: the matrix captures NFS traffic (capture: on), and the VMs' tap "
        "devices are on lab2, not here (fix: a matrix with `capture: off`)",
        files={"matrix.yaml": MATRIX.replace("  repeats: 1", "  repeats: 1\n  capture: on")}),
    row("libvirt-netns-local", ["run", "--libvirt-netns", "elsewhere"],
        "--libvirt-netns elsewhere: only for a qemu+ssh:// URI (the local libvirt runs in the lab's own namespace)"),
    # the stand-in virsh exits 1: the host does not answer, and nothing is created
    row("libvirt-uri-no-answer", ["run", "--libvirt-uri", "qemu+ssh://root@lab2/system?keyfile=/dev/null"],
        "--libvirt-uri qemu+ssh://root@lab2/system?keyfile=/dev/null: libvirt does not answer: virsh exited 1"),
    # ---- the host ------------------------------------------------------------------------------------------------
    row("no-vagrant", ["run"], "missing: vagrant (fix: run `lab setup`, or `apt-get install vagrant`)",
        without=("vagrant",)),
    row("no-libvirt", ["run"], "missing: virsh, libvirtd, virtlogd (fix: run `lab setup`, or "
        "`apt-get install libvirt-clients libvirt-daemon-system`)", without=("virsh", "libvirtd", "virtlogd")),
    row("no-qemu", ["run"], "missing: qemu-system-x86_64 (fix: run `lab setup`, or `apt-get install qemu-system-x86`)",
        without=("qemu-system-x86_64",)),
    row("no-debootstrap", ["box", "build"], "missing: debootstrap (fix: run `lab setup`, or "
        "`apt-get install debootstrap`)", without=("debootstrap",)),
    row("clean-without-virsh", ["clean"], "missing: virsh (fix: run `lab setup`, or `apt-get install libvirt-clients`)",
        without=("virsh",)),
    row("no-kernel-build-tools", ["run"], "missing for kernel ok-build (module build): gcc-12, make (fix: run "
        "`lab setup`, or `apt-get install gcc-12 make`)",
        files={"matrix.yaml": MATRIX.replace("[ok-deb]", "[ok-deb, ok-build]")}, without=("make", "gcc-12")),
    row("not-root-run", ["run"], "the lab needs root (network namespaces, libvirtd, debootstrap): run it with sudo",
        uid=1000),
    row("not-root-box-build", ["box", "build"], "the lab needs root (network namespaces, libvirtd, debootstrap): "
        "run it with sudo", uid=1000),
    row("not-root-clean", ["clean"], "the lab needs root (network namespaces, libvirtd, debootstrap): "
        "run it with sudo", uid=1000),
]


def lab(cwd: Path, args: list[str], uid: int, without: tuple[str, ...]) -> subprocess.CompletedProcess:
    """`lab ARGS` as uid, with stand-ins for every host tool but `without` on PATH."""
    tools = cwd / ".bin"
    tools.mkdir()
    for tool in set(hostdeps.commands()) - set(without):
        (tools / tool).write_text("#!/bin/sh\nexit 1\n")
        (tools / tool).chmod(0o755)
    # a stand-in counts as the real command, and the files the lab needs (headers, the Vagrant plugin) as there: a
    # row is about the commands it takes away
    code = (f"import os, shutil; os.geteuid = lambda: {uid}; import lab.hostdeps as d; "
            f"d.present = lambda what: what.startswith('/') or shutil.which(what) is not None; "
            f"from lab.cli import main; main()")
    env = {**os.environ, "PATH": str(tools), "PYTHONPATH": str(CHECKOUT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("args, message, files, uid, without", ROWS)
def test_bad_input_is_one_line_with_a_hint_and_exit_2(tmp_path, args, message, files, uid, without):
    (tmp_path / "kernels").mkdir()
    for spec in KERNELS.glob("*.yaml"):
        (tmp_path / "kernels" / spec.name).write_text(spec.read_text())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = lab(tmp_path, args, uid, without)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert (r.returncode, r.stderr, r.stdout) == (2, f"lab: {message}\n", "")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".bin") == before   # no run directory

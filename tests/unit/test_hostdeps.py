"""Every command lab/ and bench/ run on the host has its Debian package in lab/hostdeps.py, so `lab setup` installs
it: a new `run(["newtool", …])` without its package fails here, not on a user's fresh machine.

The scan reads the source (no import, nothing runs): the argv lists given to `run`/`subprocess.run`/`Popen` (or to
a function whose parameter is `argv`), through variables and `*prefix` splices, and the commands of the shell
strings they run with `sh -c`. A call whose argv it cannot read must be listed in DYNAMIC with what it runs.
"""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from lab import hostdeps, preflight

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = {"run", "Popen", "check_output", "check_call", "call"}
#: argv the scan cannot read, by file and function, and what they run
DYNAMIC = {
    ("lab/topology/live.py", "NetnsVagrant._call_vagrant_command"): {"ip", "vagrant"},
    ("lab/topology/live.py", "NetnsVagrant._run_vagrant_command"): {"ip", "vagrant"},
    ("lab/boxes.py", "customize"): {"gcc"},   # readers.compile_argv
    # libvirtd, alone or wrapped in a mount namespace (the kvm mask, or lab/remotehost.py PrivateLibvirt)
    ("lab/daemons.py", "start_libvirtd"): {"ip", "libvirtd", "unshare", "sh", "mount", "mkdir"},
    # sshd and virtlogd of a remote lab host, in PrivateLibvirt's mount namespace
    ("lab/remotehost.py", "RemoteLabHost.up"): {"ip", "sshd", "virtlogd", "unshare", "sh", "mount", "mkdir"},
    # chroot_script's shell, in a mount namespace of its own; its commands are the callers' (chroot, cp, ls)
    ("bench/distro_box.py", "in_disk"): {"unshare", "sh", "mount", "mknod", "mkdir", "ln", "chroot", "cp", "ls"},
}
SHELL_BUILTINS = {"cd", "exec", "[", "test", "true", "false", "set", "export", "echo"}
HOLE = "\x00"    # stands for an f-string's {…} in a shell string


class Unreadable(Exception):
    pass


class Scan(ast.NodeVisitor):
    """The host commands one module runs: (command, line) pairs, and the calls whose argv it could not read."""

    def __init__(self, tree: ast.Module):
        self.found: list[tuple[str, int]] = []
        self.unreadable: list[tuple[str, int]] = []
        self.stack: list[str] = []
        self.attrs = _assignments(tree, attributes=True)
        self.argv_functions = {f.name: [a.arg for a in f.args.args if a.arg not in ("self", "cls")].index("argv")
                               for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                               and "argv" in [a.arg for a in f.args.args]}
        self.returns = {f.name: [r.value for r in ast.walk(f) if isinstance(r, ast.Return) and r.value is not None]
                        for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
        self.function: ast.AST = tree
        self.visit(tree)

    def visit_ClassDef(self, node):
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node):
        outer = self.function
        self.stack.append(node.name)
        self.function = node
        self.generic_visit(node)
        self.function = outer
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        # `run(…)` (lab/proc.py) and `subprocess.…(…)` always take an argv; another object's .run() (a Remote, a
        # probe) only counts when what it is given is a list
        strict = isinstance(node.func, ast.Name) or ast.unparse(node.func).startswith("subprocess.")
        argv = None
        if name in self.argv_functions:
            index = self.argv_functions[name]
            argv = node.args[index] if len(node.args) > index else next(
                (k.value for k in node.keywords if k.arg == "argv"), None)
        elif name in RUNNERS and node.args:
            argv = node.args[0]
        elif name == "execvp" and len(node.args) == 2:   # os.execvp(argv[0], argv): `lab ssh`
            argv = node.args[1]
        if argv is not None and not _is_text(argv):   # text is a shell command for a VM (Remote.run)
            try:
                self.found += [(command, node.lineno) for command in self.commands(argv)]
            except Unreadable:
                if strict or name in self.argv_functions:
                    self.unreadable.append((".".join(self.stack), node.lineno))
        self.generic_visit(node)

    # ---- reading an argv ------------------------------------------------------------------------------------
    def params(self) -> set[str]:
        f = self.function
        return {a.arg for a in f.args.args + f.args.kwonlyargs} if isinstance(f, ast.FunctionDef) else set()

    def values(self, node: ast.expr) -> list[ast.expr]:
        """What a name or self.attribute may hold: every value assigned to it in the function (or the module)."""
        if isinstance(node, ast.Name):
            values = _assignments(self.function).get(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            values = self.attrs.get(node.attr)
        else:
            values = None
        if not values:
            raise Unreadable
        return values

    def commands(self, node: ast.expr) -> list[str]:
        if isinstance(node, ast.Name) and node.id in self.params():
            return []   # a wrapper: its callers' argv are read where they call it
        if isinstance(node, ast.List):
            return self.list_commands(node.elts)
        if isinstance(node, ast.Call):   # a function of this module that returns the argv (ssh_argv())
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            returns = self.returns.get(name)
            if not returns:
                raise Unreadable
            return [c for value in returns for c in self.commands(value)]
        return [c for value in self.values(node) for c in self.commands(value)]

    def list_commands(self, elts: list[ast.expr]) -> list[str]:
        found: list[str] = []
        for i, elt in enumerate(elts):
            if isinstance(elt, ast.Starred):
                splice = elt.value
                if "prefix" in ast.unparse(splice):   # ip netns exec NAME …
                    found.append("ip")
                    continue
                if isinstance(splice, ast.Name) and splice.id in self.params():
                    return found
                return found + [c for value in self.values(splice) for c in self.commands(value)]
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                found.append(Path(elt.value).name)
                for j in range(i, len(elts) - 2):   # `sh -c SCRIPT`, also behind unshare; chroot's run in the guest
                    if elt.value != "chroot" and _text(elts[j]) == "sh" and _text(elts[j + 1]) == "-c":
                        found += shell_commands(_text(elts[j + 2], holes=True))
                return found
            if ast.unparse(elt) == "sys.executable":
                return found
            raise Unreadable
        return found


def _is_text(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


def _text(node: ast.expr, holes: bool = False) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if holes and isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)
    if holes:
        raise Unreadable
    return None


def _assignments(scope: ast.AST, attributes: bool = False) -> dict[str, list[ast.expr]]:
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if attributes and isinstance(target, ast.Attribute):
                    found.setdefault(target.attr, []).append(node.value)
                elif not attributes and isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
    return found


def shell_commands(script: str) -> list[str]:
    """The commands of a shell script line: first word of each pipeline part, past `VAR=value` and builtins."""
    commands = []
    for part in re.split(r"&&|\|\||[|;\n]", script):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        words = [w for w in words if not re.match(r"^[A-Za-z_]\w*=", w)] if words else []
        while words and words[0] in SHELL_BUILTINS:
            words = words[1:] if words[0] == "exec" else []
        if words and HOLE not in words[0]:
            commands.append(Path(words[0]).name)
    return commands


def scan(path: Path) -> Scan:
    return Scan(ast.parse(path.read_text(), filename=str(path)))


def sources() -> list[Path]:
    return sorted((ROOT / "lab").rglob("*.py")) + sorted((ROOT / "bench").glob("*.py"))


def mapped(command: str) -> bool:
    return any(command in g.needs or any(Path(k).name == command for k in g.needs) for g in hostdeps.GROUPS)


# ---- the tests -----------------------------------------------------------------------------------------------

def test_every_host_command_has_its_package():
    unmapped, unreadable, seen = [], [], set()
    for path in sources():
        rel = str(path.relative_to(ROOT))
        result = scan(path)
        for command, line in result.found:
            seen.add(command)
            if not mapped(command):
                unmapped.append(f"{rel}:{line}: {command}")
        for function, line in result.unreadable:
            if (rel, function) in DYNAMIC:
                seen.update(DYNAMIC[rel, function])
            else:
                unreadable.append(f"{rel}:{line} ({function})")
    assert not unmapped, f"commands without a package in lab/hostdeps.py: {unmapped}"
    assert not unreadable, f"argv the scan cannot read; list them in DYNAMIC with what they run: {unreadable}"
    assert all(mapped(c) for commands in DYNAMIC.values() for c in commands)
    # the scan sees what it must (through variables, splices and shell strings), so a pass means something
    assert {"ip", "virsh", "libvirtd", "unshare", "mount", "dumpcap", "tshark", "debootstrap", "make", "patch",
            "dpkg-deb", "tar", "git", "sort", "cpio", "zstd", "apt-get", "vagrant", "ssh"} <= seen


def test_dynamic_entries_still_exist():
    for (rel, function), _ in DYNAMIC.items():
        assert function in {f for f, _ in scan(ROOT / rel).unreadable}, f"{rel}: {function} is gone: drop it"


def test_a_new_command_is_caught(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from .proc import run\n"
                      "def f(tree, netns_prefix):\n"
                      "    make = ['make', '-C', str(tree)]\n"
                      "    run([*make, 'all'], step='x', timeout=1)\n"
                      "    run([*netns_prefix, 'newtool', '-x'], step='x', timeout=1)\n"
                      "    run(['sh', '-c', f'cd {tree} && LC_ALL=C othertool | tar -x'], step='x', timeout=1)\n"
                      "    remote.run('uname -r')\n")
    assert [c for c, _ in scan(module).found] == ["make", "ip", "newtool", "sh", "othertool", "tar"]
    assert not mapped("newtool") and mapped("make") and mapped("libvirtd")


def test_groups_name_debian_packages():
    for group in hostdeps.GROUPS:
        for what, package in group.needs.items():
            assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", package), (group.name, what, package)
    assert {"bison", "flex", "bc", "libelf-dev", "libssl-dev", "ccache", "gcc", "make"} <= set(
        hostdeps.FULL_BUILD.needs.values())
    assert hostdeps.packages() == sorted(set(hostdeps.packages()))


def test_each_source_kind_has_its_groups():
    assert hostdeps.kernel_groups("build", "full") == (hostdeps.FULL_BUILD,)
    assert hostdeps.kernel_groups("build", "module:fs/nfs") == (hostdeps.DEB, hostdeps.MODULE_BUILD)
    assert hostdeps.kernel_groups("deb") == (hostdeps.DEB,)
    assert hostdeps.kernel_groups("box") == (hostdeps.BOX_ROW,)
    assert hostdeps.kind_label("build", "full") == "full build"


# ---- what `lab run`, `lab setup` and `lab doctor` do with it -----------------------------------------------

@pytest.fixture
def without(monkeypatch):
    """Pretend these commands or files are missing and everything else is there."""
    def take_away(*missing):
        monkeypatch.setattr(hostdeps, "present", lambda what: what not in missing)
    return take_away


def test_run_names_the_packages_a_kernel_row_lacks(without):
    from lab.errors import HostNotReady
    from lab.paths import DEFAULT_MATRIX
    from lab.spec import load_matrix
    matrix = load_matrix(DEFAULT_MATRIX)
    without("bison", "flex")
    with pytest.raises(HostNotReady) as e:
        preflight.check_kernels(matrix, ["mainline-4.19"])
    assert str(e.value) == ("missing for kernel mainline-4.19 (full build): bison, flex "
                            "(fix: run `lab setup`, or `apt-get install bison flex`)")
    preflight.check_kernels(matrix, ["debian-6.1", "debian-6.1-nofix"])   # no full build among them
    without("bison", "gcc-12")
    with pytest.raises(HostNotReady, match=r"missing for kernel debian-6.1-nofix \(module build\): gcc-12; for "
                                           r"kernels mainline-4.19, mainline-4.19-fix \(full build\): bison "
                                           r"\(fix: run `lab setup`, or `apt-get install bison gcc-12`\)"):
        preflight.check_kernels(matrix, ["debian-6.1-nofix", "mainline-4.19", "mainline-4.19-fix"])


def test_run_checks_capture_tools_only_when_the_matrix_captures():
    assert "tshark" in preflight.needs("run") and "tshark" not in preflight.needs("run", capture=False)
    assert set(preflight.needs("setup")) == {what for g in hostdeps.GROUPS for what in g.needs}


def test_setup_installs_only_what_is_missing(monkeypatch, without):
    from lab.cli import setup as cli
    calls = []
    monkeypatch.setattr(cli.subprocess, "run", lambda argv, **kw: calls.append(argv) or type("R", (), {
        "returncode": 0})())
    without()
    cli.apt_install(hostdeps.missing_packages())
    assert calls == []                                   # a set-up host: no apt-get at all
    without("bison", "/usr/include/gelf.h", "dumpcap")
    cli.apt_install(hostdeps.missing_packages())
    assert calls == [["apt-get", "update", "-q"],
                     ["apt-get", "install", "-y", "-q", "--no-install-recommends", "bison", "libelf-dev", "tshark"]]


def test_doctor_reports_each_group_and_exits_2_when_something_is_missing(lab_cli, without):
    without()
    r = lab_cli("doctor")
    assert r.returncode == 0 and "everything the lab runs is installed" in r.stdout
    assert all(f"ok       {g.name}" in r.stdout for g in hostdeps.GROUPS)
    without("flex", "/usr/include/openssl/ssl.h")
    r = lab_cli("doctor")
    assert r.returncode == 2
    assert "missing  full build" in r.stdout and "flex → apt package flex" in r.stdout
    assert "/usr/include/openssl/ssl.h → apt package libssl-dev" in r.stdout
    assert "fix: run `lab setup`, or `apt-get install flex libssl-dev`" in r.stdout


def test_ci_removes_only_packages_lab_setup_installs_again():
    """.ci/run takes the kernel build packages away before `quickstart.sh --setup-only`, so that CI proves `lab
    setup` installs them; it must not take away anything setup would not bring back."""
    from tests import CHECKOUT
    script = (CHECKOUT / ".ci" / "run").read_text()
    removed = re.search(r'^build_packages="([^"]+)"', script, re.M).group(1).split()
    assert {"bison", "flex", "libelf-dev", "openssh-server"} <= set(removed) \
        <= set(hostdeps.packages((hostdeps.FULL_BUILD, hostdeps.REMOTE_HOST)))
    assert script.index("apt-get remove") < script.index("./quickstart.sh --setup-only") < script.index("lab doctor")
    assert 'NFSLAB_MIRROR="$(realpath -m ../shared/kernels)' in script


def elf(path: Path, *segment_types: int) -> str:
    """A minimal x86-64 ELF header with program headers of these types (1 PT_LOAD, 3 PT_INTERP)."""
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    head[32:40] = (64).to_bytes(8, "little")                       # e_phoff
    head[54:56] = (56).to_bytes(2, "little")                       # e_phentsize
    head[56:58] = len(segment_types).to_bytes(2, "little")         # e_phnum
    path.write_bytes(bytes(head) + b"".join(t.to_bytes(4, "little") + bytes(52) for t in segment_types))
    return str(path)


def test_busybox_counts_only_when_statically_linked(tmp_path):
    """It is copied into the initramfs: Debian's dynamic `busybox` would leave the guests without an init."""
    import sys
    assert hostdeps.statically_linked(elf(tmp_path / "static", 1, 1))
    assert not hostdeps.statically_linked(elf(tmp_path / "dynamic", 1, 3, 1))
    assert not hostdeps.statically_linked(sys.executable)
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert not hostdeps.statically_linked(str(tmp_path / "script"))

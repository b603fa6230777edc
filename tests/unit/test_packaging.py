"""nfslab installs as a package: a wheel built from lab/ and pyproject.toml alone, installed (not editable) into a
fresh virtualenv, runs `lab` from a directory that is not the checkout; and pyproject.toml declares exactly the
third-party modules lab/ imports.

The fresh venv gets the wheel only; the third-party packages it needs are the ones this interpreter already has,
made visible by a .pth line, so the test needs no index for them (building the wheel may fetch setuptools).
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests import CHECKOUT

#: distribution → top-level module, where they differ
MODULE_OF = {"python-vagrant": "vagrant", "ruamel.yaml": "ruamel", "pyyaml": "yaml", "pytest-xdist": "xdist"}
#: declared but never imported: used through an entry point or a command line
NOT_IMPORTED = {"pytest-xdist": "a pytest plugin: `pytest --matrix -n 2 --dist loadgroup` (README)"}
OFFLINE = ("No matching distribution", "Could not find a version", "NewConnectionError", "Network is unreachable",
           "Temporary failure in name resolution", "Failed to establish a new connection")


def declared() -> dict[str, str]:
    """pyproject's dependencies: distribution name → top-level module."""
    deps = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.match(r"[A-Za-z0-9_.\-]+", d).group(0).lower() for d in deps]
    return {name: MODULE_OF.get(name, name.replace("-", "_")) for name in names}


def imported() -> dict[str, str]:
    """Third-party top-level modules lab/ imports → one file that does."""
    found: dict[str, str] = {}
    for path in sorted((CHECKOUT / "lab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("lab", "__future__"):
                    found.setdefault(top, str(path.relative_to(CHECKOUT)))
    return found


def test_dependencies_are_exactly_what_lab_imports():
    modules = declared()
    unused = {name for name, module in modules.items() if module not in imported()} - set(NOT_IMPORTED)
    undeclared = {module: where for module, where in imported().items() if module not in modules.values()}
    assert not undeclared, f"imported by lab/ but not in pyproject's dependencies: {undeclared}"
    assert not unused, f"in pyproject's dependencies but imported nowhere in lab/: {sorted(unused)}"


def test_every_data_file_is_declared_package_data():
    """Each file under lab/ that is not Python must match a package-data glob, or a wheel would leave it out."""
    globs = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lab"]
    lab = CHECKOUT / "lab"
    for path in sorted(p for p in lab.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        if path.suffix != ".py":
            assert any(path.relative_to(lab).match(g) for g in globs), f"{path} is not in package-data"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv with nothing but the wheel of this checkout (and a .pth to this interpreter's third-party packages)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, src / name)
    shutil.copytree(CHECKOUT / "lab", src / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
                            str(src)], capture_output=True, text=True, env=env, timeout=300)
    if build.returncode != 0 and any(word in build.stdout + build.stderr for word in OFFLINE):
        pytest.skip(f"cannot build a wheel here: no package index for the build backend ({build.stderr[-200:]})")
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next((tmp / "dist").glob("nfslab-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, env=env, timeout=300, capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, env=env).stdout.strip()
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(purelib) / "_nfslab_test_deps.pth").write_text("\n".join(d for d in ours if Path(d).is_dir()) + "\n")
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    home = tmp / "home"

    def lab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "lab"), *args], cwd=cwd, capture_output=True, text=True,
                              env={**env, "NFSLAB_HOME": str(home)}, timeout=120)
    lab.python = python
    return lab


def test_the_installed_lab_runs_from_anywhere(installed):
    from lab import __version__
    r = installed("--version")
    assert (r.returncode, r.stdout) == (0, f"nfslab {__version__}\n"), r.stderr
    r = installed("list")
    assert r.returncode == 0, r.stderr
    assert "mainline-4.19/vers=4.0/leases=on" in r.stdout and r.stdout.rstrip().endswith("36 cells, 9 kernels")
    r = installed("run", "--help")
    assert r.returncode == 0 and "Usage: lab run" in r.stdout, r.stderr


def test_the_installed_package_is_the_wheel_with_its_data(installed):
    where = subprocess.run([str(installed.python), "-c", "import lab, lab.paths as p; print(lab.__file__); "
                            "print(p.DEFAULT_MATRIX.is_file(), p.VAGRANTFILE_TEMPLATE.is_file(), "
                            "(p.KERNELS / 'patches/be189f7e-4.19.patch').is_file(), p.REPORT_TEMPLATE.is_file())"],
                           capture_output=True, text=True, cwd=CHECKOUT.parent,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    path, files = where.stdout.splitlines()
    assert not Path(path).is_relative_to(CHECKOUT) and "site-packages" in path
    assert files == "True True True True"

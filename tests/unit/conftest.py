"""Shared fixtures for the unit tests: golden-file comparison.

Golden files make a change to rendered output visible in review. Regenerate them with
`UPDATE_GOLDEN=1 python -m pytest tests/unit`, then read the diff before committing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


class Golden:
    """Compare text with tests/unit/golden/<name>, or rewrite the file when UPDATE_GOLDEN=1."""

    def __init__(self, update: bool):
        self.update = update

    def check(self, name: str, text: str) -> None:
        path = GOLDEN / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 to create it"
        assert text == path.read_text(), f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"


@pytest.fixture
def golden() -> Golden:
    return Golden(update=os.environ.get("UPDATE_GOLDEN") == "1")


@pytest.fixture
def pytester_items(tmp_path):
    """The cell items `pytest --matrix` builds, collected in-process (no VMs are touched)."""
    import subprocess  # noqa: F401  (keeps the fixture self-contained)

    from lab.paths import DEFAULT_MATRIX
    collected = []

    class Grab:
        def pytest_collection_finish(self, session):
            collected.extend(session.items)

    pytest.main(["-p", "no:cacheprovider", "--collect-only", "-q", f"--matrix={DEFAULT_MATRIX}",
                 "--kernels", "mainline-4.19", str(tmp_path)], plugins=[Grab()])
    return collected


@pytest.fixture(autouse=True, scope="session")
def _no_real_lab(tmp_path_factory):
    """Unit tests never touch the machine's lab: any pytest/lab they start sees its own home and namespace name."""
    saved = {k: os.environ.get(k) for k in ("NFSLAB_HOME", "NFSLAB_NETNS")}
    os.environ["NFSLAB_HOME"] = str(tmp_path_factory.mktemp("nfslab-home"))
    os.environ["NFSLAB_NETNS"] = "nfslab-unit-test"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True, scope="session")
def _no_real_qemu(tmp_path_factory):
    """A boot path run with fakes (lab/kernellab.py) yields the CPU of its topology's qemu (lab/cpushare.py): here
    it looks for them in an empty /proc and pid directory, so no real VM's priority is ever read or changed.
    tests/unit/test_cpushare.py passes its own trees (and the real /proc, for a child of its own)."""
    from lab import cpushare
    empty = tmp_path_factory.mktemp("no-proc")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpushare, "PROC", empty)
        mp.setattr(cpushare, "PID_DIR", empty)
        yield


@pytest.fixture
def lab_cli(capsys, monkeypatch):
    """`lab ARGS…` run in this process (a subprocess costs ~1 s on a loaded machine): returns its exit code and
    what it printed, as subprocess.run would."""
    from types import SimpleNamespace

    from lab.cli import main
    from tests import CHECKOUT

    def run(*args, cwd=CHECKOUT):
        monkeypatch.setattr("sys.argv", ["lab", *map(str, args)])
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        printed = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=printed.out, stderr=printed.err)
    return run


@pytest.fixture
def scripted_run(monkeypatch):
    """`lab run` with its Runner replaced by `cls` (a scripted one that writes records without VMs): no host
    checks, no host release, no signal handlers. Call it with the class, then run `lab_cli("run", …)`."""
    from lab import cleanup, preflight, runner

    def use(cls) -> None:
        for name in ("check", "check_kernels"):
            monkeypatch.setattr(preflight, name, lambda *args, **kwargs: None)
        monkeypatch.setattr(cleanup, "release", lambda *args, **kwargs: None)
        monkeypatch.setattr(runner, "Runner", cls)
        monkeypatch.setattr("signal.signal", lambda *args: None)
    return use

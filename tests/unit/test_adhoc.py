"""`lab run --kernel`: each kind of SRC maps to a spec of an existing source kind, the spec and matrix written into
the run directory load like any other and repeat the run, a kernel without history shows as such in the table,
and bad input (through the real command line) is one line with exit 2."""
from __future__ import annotations

import json
import struct
import subprocess

import pytest

from lab import adhoc, prebuilt
from lab.paths import DEFAULT_MATRIX
from lab.spec import load_matrix
from tests.unit.test_hostile_input import lab as hostile_lab


def bzimage(path, release="6.8.0-adhoc"):
    """A file with an x86 boot header that names `release`, as a real bzImage's does."""
    data = bytearray(0x1000)
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x20E, 0x400 - 0x200)
    text = f"{release} (builder@host) #1 SMP".encode()
    data[0x400:0x400 + len(text)] = text
    path.write_bytes(bytes(data))
    return path


def deb(path):
    path.write_bytes(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n")
    return path


@pytest.fixture
def tree(tmp_path):
    repo = tmp_path / "linux"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "Makefile").write_text("# linux\n")
    subprocess.run([*git, "add", "Makefile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v6.1"], check=True)
    subprocess.run([*git, "tag", "v6.1"], check=True)
    return repo


def test_bzimage_path_is_an_image_source_pinned_by_sha256(tmp_path):
    image = bzimage(tmp_path / "bzImage")
    a = adhoc.parse(str(image))
    assert a.kind == "image" and a.source == {"file": str(image), "sha256": prebuilt.sha256_of(image)}
    assert a.name.startswith("adhoc-6.8.0-adhoc-") and "6.8.0-adhoc" in a.title
    assert prebuilt.bzimage_release(image) == "6.8.0-adhoc"


def test_deb_path_url_and_package_name_are_deb_sources(tmp_path):
    package = deb(tmp_path / "linux-image-6.9.0_amd64.deb")
    assert adhoc.parse(str(package)).source == {"file": str(package), "sha256": prebuilt.sha256_of(package)}
    by_url = adhoc.parse("https://example.org/k/linux-image-6.9.0_amd64.deb")
    assert (by_url.kind, by_url.source) == ("deb", {"url": "https://example.org/k/linux-image-6.9.0_amd64.deb"})
    assert adhoc.parse("https://example.org/k/bzImage").kind == "image"
    named = adhoc.parse("linux-image-6.1.0-18-cloud-amd64=6.1.76-1")
    assert named.source == {"suite": "bookworm", "package": "linux-image-6.1.0-18-cloud-amd64", "version": "6.1.76-1"}
    assert adhoc.parse("trixie/linux-image-cloud-amd64").source == {"suite": "trixie",
                                                                     "package": "linux-image-cloud-amd64"}


def test_git_ref_is_a_full_build_at_its_commit_with_patches_copied(tmp_path, tree):
    patch = tmp_path / "fix.patch"
    patch.write_text("--- a/x\n+++ b/x\n")
    a = adhoc.parse(f"v6.1:{patch}", str(tree))
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "v6.1"], capture_output=True,
                            text=True).stdout.strip()
    assert a.kind == "build" and a.source["ref"] == commit and a.source["scope"] == "full"
    assert a.source["patches"] == ["patches/01-fix.patch"] and a.copies["patches/01-fix.patch"] == patch
    assert a.name.startswith("adhoc-v6.1-") and "1 patch" in a.title


def test_written_spec_and_matrix_load_with_no_history(tmp_path, tree):
    a = adhoc.parse("v6.1", str(tree))
    path = adhoc.write(a, load_matrix(DEFAULT_MATRIX), tmp_path / "run")
    m = load_matrix(path)
    assert m.kernel_names == [a.name] and m.server == "debian-6.1"
    assert m.axes == load_matrix(DEFAULT_MATRIX).axes
    k = m.kernel(a.name)
    assert k.source_kind == "build" and k.expected({"vers": "4.0", "leases": "on"}) == "unknown"
    assert (tmp_path / "run/kernels/config/lab.config").read_text() == adhoc.BUILD_CONFIG.read_text()


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("/nonexistent/bzImage", "/nonexistent/bzImage: no such file"),
    ("ftp://example.org/bzImage", "URL scheme 'ftp' is not supported (allowed: http, https"),
    ("https://example.org/", "bad URL"),
    ("linux-image-6.1:extra.patch", "no such file"),
])
def test_parse_refuses_with_one_line(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        adhoc.parse(text)


def test_parse_refuses_a_file_that_is_no_kernel_and_patches_on_a_file(tmp_path, tree):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ValueError, match="not an x86 bzImage"):
        adhoc.parse(str(other))
    with pytest.raises(ValueError, match="patches apply to a git build only"):
        adhoc.parse(f"{bzimage(tmp_path / 'bz')}:x.patch")
    with pytest.raises(ValueError, match="no such commit"):
        adhoc.parse("v9.9", str(tree))
    with pytest.raises(ValueError, match="patch 'missing.patch': no such file"):
        adhoc.parse("v6.1:missing.patch", str(tree))


@pytest.mark.parametrize("kernel, message", [
    ("/nonexistent/bzImage", "--kernel /nonexistent/bzImage: /nonexistent/bzImage: no such file"),
    ("gopher://example.org/bzImage", "URL scheme 'gopher' is not supported"),
    ("v6.1;touch${IFS}/tmp/owned", "is not a git ref"),
    ("$(id>pwned)", "is not a git ref"),
    ("v6.1:/nonexistent/fix.patch", "patch '/nonexistent/fix.patch': no such file"),
])
def test_hostile_kernel_is_one_line_and_exit_2(tmp_path, kernel, message):
    """Through the real command line, as an unprivileged user with stand-ins for every host tool."""
    repo = tmp_path / "tree"
    (repo / ".git").mkdir(parents=True)
    r = hostile_lab(tmp_path, ["run", "--kernel", kernel, "--kernel-tree", str(repo), "--runs", str(tmp_path / "r")])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "pwned").exists()


def test_kernel_with_kernels_or_a_missing_tree_is_refused(tmp_path):
    r = hostile_lab(tmp_path, ["run", "--kernel", "v6.1", "--kernels", "debian-6.1"])
    assert r.returncode == 2 and "--kernel and --kernels: give one" in r.stderr
    r = hostile_lab(tmp_path, ["run", "--kernel", "v6.1", "--kernel-tree", str(tmp_path / "none")])
    assert r.returncode == 2 and "no such directory" in r.stderr


def test_lab_run_kernel_writes_a_repeatable_run_and_shows_no_history(tmp_path, lab_cli, scripted_run):
    """`lab run --kernel bzImage` with a scripted runner: the run directory holds the matrix and the spec, the
    failing cell is "no history" (exit 1) with a rerun command that names the run's matrix."""
    from lab.outcome import Verdict
    from lab.results import ResultRecord, now_iso

    class Scripted:
        host = None

        def __init__(self, matrix, run_dir, home=None, progress=None, worker=None, libvirt=None):
            self.matrix, self.run_dir = matrix, run_dir

        def run_cell(self, cell, repeat=1, repeats=1):
            verdict = (Verdict("fail", reason="stale-data", first_new_after=9.0, stale_for=8.5, pass_within=2.0)
                       if cell.params["vers"] == "4.0" else Verdict("pass", first_new_after=0.5, pass_within=2.0))
            record = ResultRecord(run_id=self.run_dir.run_id, cell_id=cell.id, kernel=cell.kernel,
                                  params=dict(cell.params), verdict=verdict.to_dict(),
                                  expected=self.matrix.expected(cell), started=now_iso(), duration_s=1.0,
                                  worker="main", observation=None, logs="", repeat=repeat, repeats=repeats)
            self.run_dir.append(record)
            return record

        def close(self, keep=False):
            return None

    scripted_run(Scripted)
    image = bzimage(tmp_path / "bzImage")
    r = lab_cli("run", "--kernel", image, "--cell", "leases=on", "--runs", "runs", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    m = load_matrix(run_dir / "matrix.yaml")
    name = m.kernel_names[0]
    assert (run_dir / "kernels" / f"{name}.yaml").exists() and m.kernel(name).source["file"] == str(image)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["matrix"] == f"runs/{run_dir.name}/matrix.yaml" and meta["kernels"] == [name]
    rerun = f"lab run -m runs/{run_dir.name}/matrix.yaml -k {name} --cell vers=4.0,leases=on --repeats 1"
    assert f"  {rerun}   # {name}/vers=4.0/leases=on: no-history" in r.stdout
    table = (run_dir / "table.md").read_text()
    assert "✗ (no history)" in table and "1 no history" in table and "0 regression" in table
    assert f"rerun: `{rerun}`" in table
    html = (run_dir / "table.html").read_text() if (run_dir / "table.html").exists() else ""
    assert not html or rerun.replace(" ", " ") in html
    assert not list(tmp_path.glob("nfslab-adhoc-*"))


def test_rerun_names_the_matrix_kept_in_the_run_directory_where_it_is_now():
    from lab.render.context import Context
    from lab.render.provenance import rerun_argv
    from types import SimpleNamespace
    cell = SimpleNamespace(kernel="adhoc-x", params={"vers": "4.1"}, planned=2)
    meta = {"matrix": "runs/20261130-1/matrix.yaml", "run_id": "20261130-1", "axes": {"vers": ["4.1"]}}
    moved = Context(run_dir="/srv/ci/shards/20261130-1", cwd="/srv/ci")
    assert rerun_argv(cell, meta, moved) == ["lab", "run", "-m", "shards/20261130-1/matrix.yaml", "-k", "adhoc-x",
                                             "--cell", "vers=4.1", "--repeats", "2"]
    assert rerun_argv(cell, {**meta, "matrix": "matrices/m.yaml"}, moved)[3] == "matrices/m.yaml"


# ---- which bytes a run tested: the spec in the run directory pins them, a rerun holds to them ------------------

@pytest.fixture
def url_run(tmp_path, monkeypatch):
    """A run directory as `lab run --kernel https://…/bzImage` leaves it, and a runner for it whose downloads come
    from the kernel cache (placed by the test) and whose boot fails at once: no network, no VMs."""
    from lab import runner as runner_module
    from lab.boxes import Box
    from lab.errors import LabError
    from lab.paths import LabHome
    from lab.results import RunDir
    from lab.runner import Runner

    booted = []

    def no_boot(*args, **kw):
        booted.append(kw["kernel_name"])
        raise LabError("boot", "no VMs in unit tests")
    monkeypatch.setattr(runner_module, "boot_lab", no_boot)
    monkeypatch.setattr(prebuilt.urllib.request, "urlopen", lambda *a, **kw: pytest.fail("no download here"))
    box = tmp_path / "box"
    box.mkdir()
    for name, text in (("vmlinuz", "k"), ("initrd", "i"), ("release", "6.1.0-test\n")):
        (box / name).write_text(text)
    home = LabHome(tmp_path / "home")

    def runner(run_dir):
        r = Runner(load_matrix(run_dir / "matrix.yaml"), RunDir(run_dir), home=home)
        r.box = Box("nfslab-test", box)
        return r

    def downloaded(url, release):
        path = prebuilt.download_path(url, home)
        path.parent.mkdir(parents=True, exist_ok=True)
        return bzimage(path, release)

    first = RunDir.create(tmp_path / "runs", "first").path
    a = adhoc.parse("https://example.org/k/bzImage")
    adhoc.write(a, load_matrix(DEFAULT_MATRIX), first)
    from types import SimpleNamespace
    return SimpleNamespace(adhoc=a, first=first, runner=runner, downloaded=downloaded, booted=booted,
                           spec=first / "kernels" / f"{a.name}.yaml", home=home)


def test_a_downloaded_kernel_is_pinned_in_the_run_directorys_spec(url_run):
    url = "https://example.org/k/bzImage"
    image = url_run.downloaded(url, "6.9.0-url")
    assert "sha256" not in load_matrix(url_run.first / "matrix.yaml").kernel(url_run.adhoc.name).source
    r = url_run.runner(url_run.first)
    cell = r.matrix.cells()[0]
    record = r.run_cell(cell)
    assert (record.status, record.verdict["reason"]) == ("error", "boot")   # the kernel was had; the boot is faked
    pinned = load_matrix(url_run.first / "matrix.yaml").kernel(url_run.adhoc.name).source
    assert pinned == {"url": url, "sha256": prebuilt.sha256_of(image)}
    assert url_run.spec.read_text().startswith(f"# {url_run.adhoc.name}: written by `lab run --kernel`")
    assert r.matrix.kernel(url_run.adhoc.name).source["sha256"] == pinned["sha256"]   # the run's later cells too


def test_a_rerun_whose_download_is_other_bytes_is_an_error_naming_both(url_run, tmp_path):
    url = "https://example.org/k/bzImage"
    first = url_run.downloaded(url, "6.9.0-url")
    url_run.runner(url_run.first).run_cell(load_matrix(url_run.first / "matrix.yaml").cells()[0])
    pinned = url_run.spec.read_text()
    other = url_run.downloaded(url, "6.9.1-url")          # what the URL gives now
    from lab.results import RunDir
    rerun = url_run.runner(url_run.first)
    rerun.run_dir = RunDir.create(tmp_path / "runs", "rerun")   # `lab run -m runs/first/matrix.yaml`
    records = [rerun.run_cell(c) for c in rerun.matrix.cells()[:2]]
    assert [r.status for r in records] == ["error", "error"]          # an ERROR, never a FAIL or a SKIP
    assert records[0].verdict["reason"] == "kernel image: verify"
    detail = records[0].verdict["detail"]
    assert "\n" not in detail and detail.startswith(f"{url} (downloaded to ")
    assert f"has sha256 {prebuilt.sha256_of(other)}, but " in detail
    assert f"pins {prebuilt.sha256_of(bzimage(first, '6.9.0-url'))}: not the kernel the spec names" in detail
    assert url_run.booted == [url_run.adhoc.name]                     # the first run's only; the rerun booted none
    assert url_run.spec.read_text() == pinned                         # the spec keeps what the first run tested


def test_a_local_kernel_changed_since_its_run_is_an_error(url_run, tmp_path):
    from lab.errors import LabError
    from lab.spec import load_kernel
    image = bzimage(tmp_path / "bzImage", "6.8.0-file")
    a = adhoc.parse(str(image))
    run = tmp_path / "runs" / "local"
    adhoc.write(a, load_matrix(DEFAULT_MATRIX), run)
    spec = run / "kernels" / f"{a.name}.yaml"
    assert load_kernel(spec).source["sha256"] == prebuilt.sha256_of(image)   # pinned when the spec is written
    assert prebuilt.obtain(load_kernel(spec), url_run.home, "kernel image") == image
    bzimage(image, "6.8.1-file")                                             # rebuilt in place since
    with pytest.raises(LabError, match=r"kernel image: verify: .*bzImage has sha256 [0-9a-f]{64}, but .* pins "):
        prebuilt.obtain(load_kernel(spec), url_run.home, "kernel image")
    assert adhoc.pin(load_kernel(spec), run, url_run.home) is None          # a file's pin is never rewritten


def test_only_an_unpinned_url_spec_of_this_run_directory_is_pinned(url_run, tmp_path):
    from lab.spec import load_kernel
    url_run.downloaded("https://example.org/k/bzImage", "6.9.0-url")
    before = url_run.spec.read_text()
    elsewhere = tmp_path / "runs" / "other"
    assert adhoc.pin(load_kernel(url_run.spec), elsewhere, url_run.home) is None   # another run's spec
    assert url_run.spec.read_text() == before
    assert adhoc.pin(load_kernel(url_run.spec), url_run.first, url_run.home) is not None
    again = url_run.spec.read_text()
    assert adhoc.pin(load_kernel(url_run.spec), url_run.first, url_run.home) is None   # pinned already
    assert url_run.spec.read_text() == again
    assert adhoc.pin(load_matrix(DEFAULT_MATRIX).kernel("debian-6.1"), url_run.first, url_run.home) is None

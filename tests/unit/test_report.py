"""report.py: the compatibility table in every format, from a fixed set of records (golden files)."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from lab.aggregate import aggregate, cells_of
from lab.outcome import Criteria, Observation, Read, Verdict, classify
from lab.render import Context, build_grid, category, cell_text, counts, render, render_terminal, timeline_text
from lab.results import ResultRecord

CRITERIA = Criteria(pass_within=2.0, settle=5.0)
META = {"run_id": "20261123-104500-ab12", "started": "2026-11-23T10:45:00+00:00", "server": "debian-6.1",
        "kernels": ["centos7-3.10", "debian-6.1-nofix", "mainline-4.19-fix", "debian-6.1", "ubuntu1604-4.4"],
        "axes": {"vers": ["4.0", "4.1"], "leases": ["on", "off"]}}


def reads(*phases: tuple[str, float, float]) -> list[Read]:
    out = []
    for kind, start, end in phases:
        out += [Read(start + i * 0.5, kind) for i in range(round((end - start) / 0.5) + 1)]
    return out


SEED = Observation(reads(("old", -1, 30)), after_ls=Read(30.5, "new"))
STALE_ESTALE_NEW = Observation(reads(("old", -1, 5), ("estale", 5.5, 23), ("new", 23.5, 30)))
PASS = Observation(reads(("old", -1, -0.5), ("new", 0, 30)))
LATE_PASS = Observation(reads(("old", -1, 0.5), ("new", 1, 30)))
AFTER = {"calls": 48, "ops": {"CLOSE": 1, "GETATTR": 39, "LOOKUP": 1, "OPEN": 1, "PUTFH": 47, "READ": 1},
         "open_claims": {"NULL": 1}, "stale_replies": 0, "delay_replies": 0, "first_s": {"LOOKUP": 24.1},
         "open_by_name": 1, "reply_attrs": {"OPEN": {"0": {"1234": 1}}, "GETATTR": {"0": {"1234": 38}}}}
SYSCALLS = {"reader": "open-fstat-read", "file": "test1.txt", "traced": 8,
            "after": {"reads": 8, "first_s": 0.2,
                      "sequences": {"openat → fd 4 · fstat → ESTALE": 7, "openat → fd 4 · fstat → 0 · read → new "
                                                                        "(13 bytes) · read → EOF": 1},
                      "failed_at": {"fstat → ESTALE": 7}}}
TRACED = Observation(SEED.reads, after_ls=SEED.after_ls,
                     meta={"trace": {"pcap": "server-nfs.pcapng", "alice": {"before": {}, "after": AFTER}},
                           "syscalls": SYSCALLS})


def make(kernel: str, vers: str, leases: str, expected: str, obs: Observation | None = None,
         verdict: Verdict | None = None, index: int = 0) -> ResultRecord:
    params = {"vers": vers, "leases": leases}
    cell_id = f"{kernel}/vers={vers}/leases={leases}"
    verdict = verdict or classify(obs, CRITERIA)
    return ResultRecord(run_id=META["run_id"], cell_id=cell_id, kernel=kernel, params=params,
                        verdict=verdict.to_dict(), expected=expected,
                        started=f"2026-11-23T10:{45 + index // 60:02d}:{index % 60:02d}+00:00", duration_s=34.0,
                        worker="gw0", observation=obs.to_dict() if obs else None,
                        logs=f"logs/{cell_id.replace('/', '__')}", kernel_release="")


def fixed_records() -> list[ResultRecord]:
    """Every kind of cell once: pass, expected fail, regression, unexpected pass, error, skip, not run."""
    rows = [
        ("centos7-3.10", "4.0", "on", "fail", SEED, None),
        ("centos7-3.10", "4.0", "off", "fail", STALE_ESTALE_NEW, None),
        ("centos7-3.10", "4.1", "on", "pass", PASS, None),
        ("centos7-3.10", "4.1", "off", "pass", LATE_PASS, None),
        ("debian-6.1-nofix", "4.0", "on", "fail", PASS, None),                    # unexpected pass
        ("debian-6.1-nofix", "4.0", "off", "fail", TRACED, None),
        ("debian-6.1-nofix", "4.1", "on", "pass", None,
         Verdict.error("mount", "mount.nfs: Connection timed out", "logs/debian-6.1-nofix__vers=4.1__leases=on")),
        ("mainline-4.19-fix", "4.0", "on", "pass", STALE_ESTALE_NEW, None),       # regression
        ("mainline-4.19-fix", "4.0", "off", "pass", PASS, None),
        ("debian-6.1", "4.0", "on", "pass", PASS, None),
        ("debian-6.1", "4.0", "off", "pass", PASS, None),
        ("debian-6.1", "4.1", "on", "pass", PASS, None),
        ("debian-6.1", "4.1", "off", "pass", PASS, None),
    ] + [("ubuntu1604-4.4", v, l, "fail" if v == "4.0" else "pass", None,
          Verdict.skip("box generic/ubuntu1604 not present and Vagrant Cloud unreachable"))
         for v in ("4.0", "4.1") for l in ("on", "off")]
    return [make(*row[:4], obs=row[4], verdict=row[5], index=i) for i, row in enumerate(rows)]


@pytest.fixture
def records():
    return fixed_records()


def test_categories_and_cell_texts(records):
    by_id = {c.cell_id: c for c in cells_of(records)}
    seed = by_id["centos7-3.10/vers=4.0/leases=on"]
    assert category(seed) == "expected-fail"
    assert cell_text(seed) == "✗ (expected) stale never recovers, ls clears"
    assert cell_text(by_id["mainline-4.19-fix/vers=4.0/leases=on"]) == "⚠ regression ✗ stale 5s→ESTALE 18s"
    assert cell_text(by_id["debian-6.1-nofix/vers=4.0/leases=on"]) == "★ unexpected pass ✓ new after 0s"
    assert cell_text(by_id["centos7-3.10/vers=4.1/leases=off"]) == "✓ new after 1s"
    assert cell_text(by_id["debian-6.1-nofix/vers=4.1/leases=on"]).startswith("ERROR mount: mount.nfs")
    assert cell_text(None) == "—"


def test_counts_keep_errors_and_skips_apart(records):
    assert counts(cells_of(records)) == {"pass": 7, "expected-fail": 3, "regression": 1, "unexpected-pass": 1, "no-history": 0,
                                         "flaky": 0, "error": 1, "skip": 4, "total": 17}


def test_grid_order_comes_from_meta_then_first_appearance(records):
    grid = build_grid(records, META)
    assert grid.rows == META["kernels"]
    assert grid.columns == ["vers=4.0 leases=on", "vers=4.0 leases=off", "vers=4.1 leases=on", "vers=4.1 leases=off"]
    assert grid.get("mainline-4.19-fix", "vers=4.1 leases=on") is None  # not run
    assert grid.get("debian-6.1", "vers=4.0 leases=on").runs == [r for r in records
                                                                 if r.cell_id == "debian-6.1/vers=4.0/leases=on"]
    plain = build_grid(list(reversed(records)))
    assert plain.rows[0] == "ubuntu1604-4.4" and plain.columns[0] == "vers=4.1 leases=off"


def test_timeline_is_folded_into_runs(records):
    assert timeline_text(STALE_ESTALE_NEW.to_dict()) == "old -1s…5s ×13, estale 5.5s…23s ×36, new 23.5s…30s ×14"
    assert timeline_text(SEED.to_dict()).endswith("old -1s…30s ×63, after ls: new")


#: what the golden tables are rendered with: the facts of a finished run, specs that name commits, the cwd
GOLDEN_META = {**META, "finished": "2026-11-23T11:14:20+00:00", "wall_s": 1760,
               "matrix": "/srv/checkout/matrices/rename.yaml",
               "command": "lab run -m /srv/checkout/matrices/rename.yaml --runs /tmp/nfslab-work/full"}
SPECS = {"debian-6.1": {"title": "Debian 12 (bookworm) — Linux 6.1",
                        "notes": "Contains be189f7e7f03 (\"NFS: Fix dentry revalidation on NFSv4 lookup\", 4.20)."},
         "debian-6.1-nofix": {"title": "Linux 6.1 (Debian) without be189f7e",
                              "notes": "be189f7e7f03 reverted; c7944ebb9ce9 kept. Not a commit: 202611231045."}}
CONTEXT = Context(specs=SPECS, cwd="/srv/checkout")
UPSTREAM = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id="


@pytest.mark.parametrize("fmt, name", [("md", "table.md"), ("html", "table.html"), ("junit", "table.junit.xml")])
def test_rendered_tables_match_golden_files(records, golden, fmt, name):
    text = render(records, fmt, title="nfslab: rename over an open file", meta=GOLDEN_META, context=CONTEXT)
    golden.check(name, text)
    assert render(list(reversed(records)), fmt, title="nfslab: rename over an open file", meta=GOLDEN_META,
                  context=CONTEXT) == text


def test_markdown_shape(records):
    text = render(records, "md", meta=META)
    lines = text.splitlines()
    assert lines[0] == "# nfslab: 5 kernels × 4 cells, 2026-11-23, 1 run/cell"
    assert lines[4].startswith("**Criterion:** pass: every read from 2s after the rename shows the new contents")
    assert lines[6] == ("| kernel | vers=4.0 leases=on | vers=4.0 leases=off | vers=4.1 leases=on | "
                        "vers=4.1 leases=off |")
    assert lines[8].startswith("| centos7-3.10 | ✗ (expected) stale never recovers, ls clears |")
    assert "| mainline-4.19-fix | ⚠ regression ✗ stale 5s→ESTALE 18s | ✓ new after 0s | — | — |" in lines
    assert "**Summary:** 7 pass · 3 expected fail · 1 regression · 1 unexpected pass · 1 error · 4 skip" in lines
    assert "- **★ unexpected pass**: expected to fail, passed" in lines


def test_html_is_self_contained_and_links_logs(records):
    text = render(records, "html", meta=META, context=CONTEXT)
    assert "<link" not in text and "<img" not in text and " src=" not in text and "@import" not in text
    assert text.count("<script>") == 1                                   # the filters, inline
    hrefs = re.findall(r'href="([^"]*)"', text)
    outside = {h for h in hrefs if not h.startswith(("#", "logs/"))}
    assert outside == {f"{UPSTREAM}be189f7e7f03", f"{UPSTREAM}c7944ebb9ce9"}, outside
    assert 'class="regression" data-tags="regression"' in text and 'class="expected-fail"' in text
    assert '<a href="logs/centos7-3.10__vers=4.0__leases=on/">logs</a>' in text
    assert "old -1s…5s ×13, estale 5.5s…23s ×36, new 23.5s…30s ×14" in text
    assert "<details>" in text and "Legend" in text
    # only the verdict line of a regression is bold, not every line of its details
    assert "td.regression .verdict" in text and not re.search(r"td\.regression \{[^}]*bold", text)


def test_json_structure(records):
    document = json.loads(render(records, "json", title="t", meta=META))
    assert document["summary"]["regression"] == 1 and document["summary"]["total"] == 17
    assert len(document["records"]) == 17
    first = document["records"][0]
    assert first["cell_id"] == "centos7-3.10/vers=4.0/leases=on"
    assert first["category"] == "expected-fail"
    assert first["verdict"]["reason"] == "stale-data"
    assert document["meta"]["run_id"] == META["run_id"]


def test_junit_one_testcase_per_cell(records):
    root = ET.fromstring(render(records, "junit", title="nfslab", meta=META))
    suite = root.find("testsuite")
    # as pytest reports them: regression and unexpected pass fail, expected failures are skipped (xfail)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("17", "2", "1", "7")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 17
    regression = cases[("mainline-4.19-fix", "vers=4.0 leases=on")]
    assert regression.find("failure").get("message") == "✗ stale 5s→ESTALE 18s"
    xfail = cases[("centos7-3.10", "vers=4.0 leases=on")]
    assert xfail.find("failure") is None
    assert xfail.find("skipped").get("type") == "pytest.xfail"
    assert xfail.find("skipped").get("message") == "expected failure: ✗ stale never recovers, ls clears"
    xpass = cases[("debian-6.1-nofix", "vers=4.0 leases=on")].find("failure")
    assert (xpass.get("type"), xpass.get("message")) == ("unexpected-pass",
                                                         "[XPASS(strict)] ✓ new after 0s (expected: fail)")
    assert suite.find("properties/property").get("name") == "criterion"
    assert cases[("debian-6.1-nofix", "vers=4.1 leases=on")].find("error") is not None
    assert cases[("ubuntu1604-4.4", "vers=4.0 leases=on")].find("skipped") is not None


def test_terminal_table(records):
    table = render_terminal(records, title="nfslab", meta=META)
    assert [str(c.header) for c in table.columns][:2] == ["kernel", "vers=4.0 leases=on"]
    assert table.row_count == 5
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    out = console.export_text()
    assert "⚠ regression" in out and "✗ (expected)" in out and "SKIP box generic/ubuntu1604" in out
    assert "pass: every read from 2s after the rename" in out


def test_unknown_format_is_refused(records):
    with pytest.raises(ValueError, match="unknown table format 'pdf'"):
        render(records, "pdf")


def test_columns_follow_the_matrix_axes_whatever_the_stored_param_order():
    from lab.render import build_grid
    from lab.results import ResultRecord
    rec = ResultRecord(run_id="r", cell_id="k/vers=4.0/leases=on", kernel="k", params={"leases": "on", "vers": "4.0"},
                       verdict={"status": "pass"}, expected="pass", started="2026-11-23T00:00:00Z", duration_s=1.0,
                       worker="main", observation=None, logs="logs/k")
    grid = build_grid([rec], {"axes": {"vers": ["4.0"], "leases": ["on"]}, "kernels": ["k"]})
    assert grid.columns == ["vers=4.0 leases=on"]
    assert grid.get("k", "vers=4.0 leases=on").runs == [rec]


def test_captured_cells_show_their_nfs_operations(records):
    md, html = render(records, "md"), render(records, "html")
    line = ("OPEN 1 (by name 1) · LOOKUP 1 (first at +24.1s) · GETATTR 39 · READ 1 · CLOSE 1 · NFS4ERR_STALE replies 0"
            " · OPEN replies: numlinks 0 ×1 (fileid 1234) · GETATTR replies: numlinks 0 ×38 (fileid 1234)")
    assert f"| debian-6.1-nofix/vers=4.0/leases=off | alice | {line} |" in md
    assert f"alice after t=0: {line}" in html
    assert '<a href="logs/debian-6.1-nofix__vers=4.0__leases=off/server-nfs.pcapng">pcap</a>' in html
    assert html.count(">pcap</a>") == 1   # only the captured cell links a capture


def test_timeline_plot_has_one_bar_per_run_in_its_colour():
    from lab.render.timeplot import KIND_COLOURS
    from lab.render.timeplot import TimeAxis, strips_svg
    obs = STALE_ESTALE_NEW.to_dict()
    svg = strips_svg([("", obs)], TimeAxis.fit([obs]))
    assert svg.count("<rect") == 4          # old before the change (pale), old after it, ESTALE, new
    for kind in ("old", "estale", "new"):
        assert f'fill="{KIND_COLOURS[kind]}"' in svg
    assert "<title>old -1s…-0.5s ×2 (before the change)</title>" in svg and "<title>estale 5.5s…23s ×36</title>" in svg
    assert ">0</text>" in svg and ">30s</text>" in svg
    assert strips_svg([("", {"reads": []})], TimeAxis.fit([])) == ""


# ---- cells of several runs -------------------------------------------------------------------------------------

def repeated(kernel: str, vers: str, expected: str, *observations: Observation, leases: str = "on",
             base: int = 0) -> list[ResultRecord]:
    runs = []
    for k, obs in enumerate(observations, 1):
        r = make(kernel, vers, leases, expected, obs=obs, index=base + k)
        r.repeat, r.repeats = k, len(observations)
        r.logs += f"/run-{k}"
        runs.append(r)
    return runs


ESTALE_RACE = Observation([Read(-0.5, "old"), Read(0.1, "new"), Read(0.7, "estale"), *reads(("new", 1.2, 10))])
ESTALE_25 = Observation(reads(("old", -1, -0.5), ("estale", 0, 24.5), ("new", 25, 31)))
ESTALE_24 = Observation(reads(("old", -1, -0.5), ("estale", 0, 23.5), ("new", 24, 30)))


def repeated_records() -> list[ResultRecord]:
    return (repeated("mainline-4.19-fix", "4.1", "pass", PASS, ESTALE_RACE, PASS)            # flaky, pass expected
            + repeated("mainline-4.19", "4.0", "fail", PASS, SEED, SEED, base=10)            # flaky, fail expected
            + repeated("debian-6.1", "4.1", "pass", ESTALE_25, ESTALE_24, ESTALE_25, base=20)  # consistent fail
            + repeated("debian-6.1", "4.0", "pass", PASS, LATE_PASS, PASS, base=30))           # consistent pass


def test_cells_of_several_runs_say_how_many_agreed():
    by_id = {c.cell_id: c for c in cells_of(repeated_records())}
    flaky = by_id["mainline-4.19-fix/vers=4.1/leases=on"]
    assert category(flaky) == "flaky" and flaky.mismatch == "flaky"
    assert cell_text(flaky) == ("⚠ flaky 1/3 fail · ✗ ESTALE 0.5s, only within the 2s race window · "
                                "✓ new after 0s")
    expected = by_id["mainline-4.19/vers=4.0/leases=on"]
    assert category(expected) == "flaky" and expected.mismatch is None
    assert cell_text(expected).endswith("(fail expected)")
    assert cell_text(by_id["debian-6.1/vers=4.1/leases=on"]) == "⚠ regression ✗ 3/3 ESTALE 24.0–25.0s"
    assert cell_text(by_id["debian-6.1/vers=4.0/leases=on"]) == "✓ 3/3 new after 0.0–1.0s"


def test_a_table_of_repeated_runs(golden):
    meta = {"kernels": ["mainline-4.19", "mainline-4.19-fix", "debian-6.1"], "axes": {"vers": ["4.0", "4.1"],
            "leases": ["on"]}, "experiment": {"pass_within": 2.0, "repeats": 3}}
    records = repeated_records()
    golden.check("table-repeats.md", render(records, "md", meta=meta))
    text = render(records, "md", meta=meta)
    assert "3 runs per cell" in text and "2 flaky" in text
    html = render(records, "html", meta=meta)
    assert html.count('<span class="run-label">run 2/3</span>') == 4
    assert '<a href="logs/debian-6.1__vers=4.1__leases=on/run-3/">logs</a>' in html
    document = json.loads(render(records, "json", meta=meta))
    assert len(document["cells"]) == 4 and len(document["records"]) == 12
    cell = next(c for c in document["cells"] if c["cell_id"] == "debian-6.1/vers=4.1/leases=on")
    assert cell["spread"]["estale_for"] == [24.0, 25.0] and cell["category"] == "regression"


def test_junit_reports_flaky_cells_as_pytest_does():
    root = ET.fromstring(render(repeated_records(), "junit"))
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    flaky = cases[("mainline-4.19-fix", "vers=4.1 leases=on")].find("failure")
    assert flaky.get("type") == "flaky" and flaky.get("message").startswith("flaky 1/3 fail")
    assert "run 2/3: " in flaky.text
    xfail = cases[("mainline-4.19", "vers=4.0 leases=on")].find("skipped")
    assert xfail.get("type") == "pytest.xfail" and xfail.get("message").startswith("expected failure: flaky 2/3 fail")
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("2", "1", "0")


def test_fail_on_names_the_categories_present():
    from lab.render import fail_on_hits
    cells = cells_of(fixed_records())
    assert fail_on_hits(cells, {"regression", "unexpected-pass", "flaky", "error"}) == \
        {"regression": 1, "unexpected-pass": 1, "error": 1}
    assert fail_on_hits(cells, set()) == {}
    assert fail_on_hits(cells_of(repeated_records()), {"flaky"}) == {"flaky": 2}


def test_the_terminal_never_parses_record_text_as_markup():
    bad = make("k", "4.0", "on", "pass", verdict=Verdict.error("mount", "[bold red]boom[/] [link=x]"))
    console = Console(width=300, record=True, color_system=None)
    console.print(render_terminal([bad]))
    assert "[bold red]boom[/] [link=x]" in console.export_text()


def test_conditions_show_the_ages_achieved_and_the_cache_timeouts():
    from lab.render import conditions_text
    meta = {"ages": {"dir_touched_before_change_s": 5.12, "dir_attrs_fetched_before_change_s": 2.09},
            "mounts": {"alice": {"cache": {"acregmin": 3, "acregmax": 60, "acdirmin": 30, "acdirmax": 60,
                                           "lookupcache": "all"}}}}
    assert conditions_text({"meta": meta}) == ("dir changed 5.1s, alice fetched its attributes 2.1s before the "
                                               "change · alice: acdirmin=30 acdirmax=60 acregmin=3 acregmax=60 "
                                               "lookupcache=all")
    assert conditions_text({"meta": {}}) == "" and conditions_text(None) == ""


# ---- syscalls beside the wire ----------------------------------------------------------------------------------

def test_traced_cells_show_alice_s_calls_beside_the_wire_operations(records):
    html = render(records, "html")
    assert ("alice's reads after t=0, open-fstat-read: openat → fd 4 · fstat → ESTALE ×7; openat → fd 4 · "
            "fstat → 0 · read → new (13 bytes) · read → EOF ×1") in html
    assert html.count("alice's reads after t=0") == 1   # only the traced cell


def test_markdown_has_one_failed_at_line_per_failing_traced_cell(records):
    md = render(records, "md")
    assert md.endswith("\n**Failed at** (alice's traced reads after the change, the commonest failing call):\n\n"
                       "- debian-6.1-nofix vers=4.0 leases=off: fstat → ESTALE (open-fstat-read)\n")


def test_failed_at_line_leaves_out_the_reader_column_and_passing_runs():
    from lab.render import failed_at_line, syscall_line
    obs = Observation(SEED.reads, meta={"syscalls": dict(SYSCALLS, reader="busybox-cat", after={
        "reads": 6, "sequences": {"openat → fd 4 · read → old (13 bytes) · read → EOF": 6},
        "failed_at": {"read → old": 6}})})
    rec = make("debian-6.1", "4.1", "on", "pass", obs)
    rec.params["reader"] = "busybox-cat"
    assert failed_at_line(rec) == "debian-6.1 vers=4.1 leases=on: read → old (busybox-cat)"
    assert failed_at_line(make("debian-6.1", "4.1", "on", "pass", PASS)) == ""
    skipped = Observation(PASS.reads, meta={"syscalls": {"reader": "cat", "skipped": "strace is not installed"}})
    assert syscall_line(skipped.to_dict()) == "cat: not traced (strace is not installed)"
    assert syscall_line(PASS.to_dict()) == ""


# ---- a report read at a glance (issue 20) ------------------------------------------------------------------------

def svgs(html: str, kind: str) -> list[str]:
    return re.findall(rf'<svg class="{kind}".*?</svg>', html)


def test_every_timeline_of_a_page_shares_one_time_axis(records):
    """The same seconds → pixels everywhere: every strip as wide, the change (t = 0) at the same x, and the window
    plots on the same scale from the change on."""
    from lab.render.timeplot import MIN_TICK_PX
    html = render(records + repeated_records(), "html", meta=META)
    strips = svgs(html, "strips")
    assert len(strips) >= 12
    assert len({re.search(r'width="(\d+)"', svg).group(1) for svg in strips}) == 1
    zeros = {re.search(r'<line x1="([\d.]+)"[^>]*stroke-width="1.5"><title>the change', svg).group(1)
             for svg in strips}
    assert len(zeros) == 1
    for svg in strips + svgs(html, "windows"):
        ticks = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" fill="#555">([^<]+)</text>', svg)
        xs = [float(x) for x, _ in ticks]
        assert all(b - a >= MIN_TICK_PX for a, b in zip(xs, xs[1:]))      # labels never overprint
        assert all(re.fullmatch(r"0|-?\d+s", label) for _, label in ticks)  # at round seconds


def test_a_late_read_leaves_a_hatched_gap_with_a_tooltip():
    from lab.render.timeplot import NOREAD, TimeAxis, segments, strips_svg
    obs = Observation([Read(-0.5, "old"), Read(0.2, "new"), Read(0.9, "estale"), Read(4.9, "estale"),
                       Read(5.6, "new"), Read(6.3, "new")]).to_dict()
    segs = segments(obs["reads"])
    gap = next(s for s in segs if s.kind == "gap")
    assert (gap.start, gap.end) == (1.6, 4.9)
    assert gap.title() == "no read for 3.3s: the read after the one at 0.9s came 4.0s later"
    assert [s.kind for s in segs] == ["old", "new", "estale", "gap", "estale", "new"]
    svg = strips_svg([("", obs)], TimeAxis.fit([obs]))
    assert f'fill="url(#{NOREAD})"><title>no read for 3.3s' in svg
    html = render([make("k", "4.1", "on", "pass", obs=Observation.from_dict(obs))], "html")
    assert f'<pattern id="{NOREAD}"' in html and "no read (the next read came late)" in html


def test_the_axis_fits_the_page_at_round_seconds():
    from lab.render.timeplot import MAX_PX_PER_S, STRIP_PX, TimeAxis
    long, short = ESTALE_25.to_dict(), PASS.to_dict()
    axis = TimeAxis.fit([long, short])
    assert (axis.lo, axis.hi) == (-1, 32) and axis.px_per_s == STRIP_PX / 33
    assert axis.ticks() == [0, 5, 10, 15, 20, 25, 30]
    assert TimeAxis.fit([{"reads": [{"t": 0.0, "kind": "new"}]}]).px_per_s == MAX_PX_PER_S


def test_window_plots_list_kernels_in_version_order_with_the_spread_of_runs():
    """One plot per axis combination; its rows are the kernels ordered by release version (lab/compare.py), each
    run's window a bar, the label the min–max over the runs."""
    records = (repeated("debian-6.12", "4.1", "pass", ESTALE_25, ESTALE_24, ESTALE_25)
               + repeated("mainline-4.19", "4.1", "fail", SEED, base=10)
               + repeated("debian-6.1", "4.1", "pass", PASS, PASS, base=20)
               + repeated("debian-5.10", "4.1", "pass", ESTALE_24, PASS, base=30))
    html = render(records, "html", meta={"kernels": ["debian-6.12", "debian-6.1", "debian-5.10", "mainline-4.19"]})
    (plot,) = svgs(html, "windows")
    names = re.findall(r"<a href=\"#cell-[^\"]+\"><text[^>]*>([^<]+)</text></a>", plot)
    assert names == ["mainline-4.19", "debian-5.10", "debian-6.1", "debian-6.12"]
    labels = re.findall(r"</title>([^<]+)</text>", plot)
    assert labels == ["never", "⚠ 0.0–24.0s (1/2 fail)", "✓", "24.0–25.0s"]   # a passing run's window is 0
    assert ('<title>debian-6.12: windows 24s…25s, the shortest and longest of the runs that recovered</title>'
            in plot)                                                                   # the min–max band
    assert plot.count('fill="#d03030"') == 3 + 1                                       # a bar per failing run
    assert "never recovered while alice read" in plot                                 # the seed: ▶ at the end
    assert '<a href="#cell-debian-6.12__vers-4.1__leases-on">' in plot                # rows link to their cells


def test_every_cell_has_a_stable_unique_anchor():
    from lab.render import anchor
    assert anchor("debian-6.1/vers=4.1/leases=on") == "cell-debian-6.1__vers-4.1__leases-on"
    hostile = ['k"><script>/vers=4.1', "k x/vers=4.1", "k?x/vers=4.1"]
    records = [make(k, "4.1", "on", "pass", obs=PASS, index=i) for i, k in enumerate(hostile)]
    grid = build_grid(records)
    anchors = grid.anchors()
    assert len(set(anchors.values())) == 3 and all(re.fullmatch(r"[\w.-]+", a) for a in anchors.values())
    html = render(records, "html")
    assert all(f'id="{a}"' in html for a in anchors.values()) and "<script>/" not in html


def test_filters_and_their_markup():
    html = render(repeated_records(), "html", meta={"experiment": {"pass_within": 2.0}})
    assert '<form id="filters" hidden>' in html                     # shown by the script only: no script, no form
    assert re.findall(r'<input type="checkbox" value="([\w-]+)"', html) == ["regression", "flaky"]
    assert html.count('data-tags="flaky"') == 2 and html.count('data-tags="regression"') == 1
    assert "/^#only=([\\w,-]*)$/" in html


def test_commits_named_in_specs_link_upstream(records):
    from lab.render import commit_parts
    assert commit_parts("has be189f7e7f03 (4.20), not 202611231045 or be189f7e") == [
        ("has ", None), ("be189f7e7f03", f"{UPSTREAM}be189f7e7f03"), (" (4.20), not 202611231045 or be189f7e", None)]
    html = render(records, "html", meta=META, context=CONTEXT)
    assert f'<a href="{UPSTREAM}c7944ebb9ce9">c7944ebb9ce9</a> kept' in html
    assert '<dt id="kernel-debian-6.1">debian-6.1</dt>' in html and '<a href="#kernel-debian-6.1">' in html
    md = render(records, "md", meta=META, context=CONTEXT)
    assert f"- **debian-6.1**: Debian 12 (bookworm) — Linux 6.1; commits: [be189f7e7f03]({UPSTREAM}be189f7e7f03)" in md


def test_the_header_says_what_the_report_is_without_machine_paths(records):
    from lab.render import duration_text, meta_line
    assert [duration_text(s) for s in (44, 584, 1760, 7500)] == ["44 s", "9 min 44 s", "29 min 20 s", "2 h 5 min"]
    html = render(records, "html", meta=GOLDEN_META, context=CONTEXT)
    assert "<title>nfslab: 5 kernels × 4 cells, 2026-11-23, 1 run/cell</title>" in html
    line = meta_line(GOLDEN_META, CONTEXT)
    assert "wall time: 29 min 20 s" in line and "matrix: matrices/rename.yaml" in line
    assert "command: lab run -m …/rename.yaml --runs …/full" in line and "/srv/" not in line and "/tmp/" not in line
    assert "matrix: nfslab's default" in meta_line({"matrix": "/usr/lib/python3/dist-packages/lab/data/matrix.yaml"})
    assert meta_line({"matrix": "/elsewhere/m.yaml"}, CONTEXT) == "matrix: m.yaml"


def test_rerun_commands_quote_and_place_the_matrix():
    from lab.render import rerun_command
    cell = cells_of([make("k'1", "4.1", "on", "pass", obs=ESTALE_25)])[0]
    default = {"matrix": "/opt/venv/lib/python3.11/site-packages/lab/data/matrix.yaml"}
    assert rerun_command(cell, default) == "lab run -k 'k'\"'\"'1' --cell vers=4.1,leases=on --repeats 1"
    own = {"matrix": "/srv/checkout/matrices/my matrix.yaml"}
    assert rerun_command(cell, own, Context(cwd="/srv/checkout")).startswith("lab run -m 'matrices/my matrix.yaml' ")
    elsewhere = rerun_command(cell, own, Context(cwd="/home"))
    assert elsewhere.startswith("lab run -m '/srv/checkout/matrices/my matrix.yaml'")
    assert rerun_command(cell, own, Context(for_docs=True)).startswith("lab run -m 'my matrix.yaml' ")
    assert rerun_command(cell, {"matrix": "matrix.yaml"}).startswith("lab run -m matrix.yaml -k")
    passing = cells_of([make("k", "4.1", "on", "pass", obs=PASS)])[0]
    assert rerun_command(passing, default) is None


def test_lab_run_lists_the_rerun_of_each_mismatching_cell(records):
    from lab.render import rerun_lines
    assert rerun_lines(records, META) == [
        "lab run -k debian-6.1-nofix --cell vers=4.0,leases=on --repeats 1   # debian-6.1-nofix/vers=4.0/leases=on: "
        "unexpected-pass",
        "lab run -k debian-6.1-nofix --cell vers=4.1,leases=on --repeats 1   # debian-6.1-nofix/vers=4.1/leases=on: "
        "error",
        "lab run -k mainline-4.19-fix --cell vers=4.0,leases=on --repeats 1   # mainline-4.19-fix/vers=4.0/leases=on: "
        "regression"]


def test_html_details_carry_the_rerun_command_and_every_runs_strip():
    html = render(repeated_records(), "html", meta={"axes": {"vers": ["4.0", "4.1"], "leases": ["on"]}})
    assert ('<div class="rerun">rerun: <code>lab run -k debian-6.1 --cell vers=4.1,leases=on --repeats 3</code>'
            in html)
    cell = html[html.index('id="cell-debian-6.1__vers-4.1__leases-on"'):]
    strip = cell[:cell.index("</svg>")]
    assert [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<text x="25"[^>]*>\d</text>', strip)] == ["1", "2", "3"]


def baseline_comparison(now: list[ResultRecord]):
    from lab.compare import compare, series_of
    before = [make("debian-6.1", "4.0", "on", "pass", obs=PASS), make("mainline-4.19-fix", "4.0", "on", "pass",
                                                                      obs=PASS, index=1)]
    return compare(before, now, series_of(now, META), "/var/ci/runs/20261120-0000-base", "runs/now")


def test_changed_cells_are_marked_against_a_baseline(records):
    context = Context(baseline=baseline_comparison(records))
    md = render(records, "md", meta=META, context=context)
    assert "| mainline-4.19-fix | Δ ⚠ regression ✗ stale 5s→ESTALE 18s | ✓ new after 0s | — | — |" in md
    assert ("- Δ `mainline-4.19-fix/vers=4.0/leases=on` now fails: ✓ new after 0s → ✗ stale 5s→ESTALE 18s"
            in md)
    assert "**Changed since the baseline** `20261120-0000-base`: 1 changed" in md and "/var/ci" not in md
    html = render(records, "html", meta=META, context=context)
    assert 'data-tags="regression changed"' in html and html.count('<span class="delta"') == 1
    assert '<input type="checkbox" value="changed"> Δ changed since the baseline (1)' in html
    console = Console(width=250, record=True, color_system=None)
    console.print(render_terminal(records, meta=META, context=context))
    out = console.export_text()
    assert "Δ ⚠ regression" in out and "Δ changed since the baseline 20261120-0000-base: 1 cell" in out
    document = json.loads(render(records, "json", meta=META, context=context))
    changed = [c for c in document["cells"] if c["changed"]]
    assert [c["cell_id"] for c in changed] == ["mainline-4.19-fix/vers=4.0/leases=on"]


def test_for_docs_no_links_into_the_run_and_no_machine_paths():
    err = Verdict.error("mount", "cannot read /var/lib/nfslab/labs/x/state.json (see /srv/nfs)",
                        "logs/k__vers=4.1__leases=on")
    records = [make("k", "4.1", "on", "pass", verdict=err), make("k", "4.1", "off", "pass", obs=TRACED, index=1)]
    meta = {"matrix": "/work/main/matrices/rename.yaml", "command": "lab run --runs /tmp/x/full"}
    for fmt in ("md", "html"):
        text = render(records, fmt, meta=meta, context=Context(for_docs=True, cwd="/elsewhere"))
        assert not re.search(r"/(var/lib|work|tmp|root)/", text), fmt
        assert 'href="logs' not in text and "logs: logs/" not in text
        assert "cannot read …/state.json (see /srv/nfs)" in text           # a guest's path stays
        assert "lab run -m rename.yaml -k k --cell vers=4.1,leases=on" in text
    linked = render(records, "html", meta=meta)
    assert 'href="logs/k__vers=4.1__leases=off/server-nfs.pcapng"' in linked


def test_rows_without_results_are_named_not_drawn(records):
    meta = {**META, "kernels": ["debian-5.10", *META["kernels"], "debian-6.12"]}
    grid = build_grid(records, meta)
    assert grid.rows == META["kernels"] and grid.unrun == ["debian-5.10", "debian-6.12"]
    md = render(records, "md", meta=meta)
    assert "**Not run:** debian-5.10, debian-6.12 (no results for these rows of the matrix)" in md
    assert "| debian-5.10 |" not in md


def test_an_absurd_timeline_still_gets_few_round_ticks():
    from lab.render.timeplot import MIN_TICK_PX, TimeAxis
    axis = TimeAxis.fit([{"reads": [{"t": -3.0, "kind": "old"}, {"t": 999999.0, "kind": "new"}]}])
    assert axis.step == 200000 and axis.step * axis.px_per_s >= MIN_TICK_PX and len(axis.ticks()) == 11

"""The scheduler of `lab run --jobs N` (lab/schedule.py): shards keep a kernel together, split a long row, go
longest first; with one job nothing changes."""
from types import SimpleNamespace

import pytest

from lab import schedule as S
from lab.session import runs_to_do
from lab.spec import Cell


def row(kernel, *vers_leases):
    return [Cell(kernel, {"vers": v, "leases": l}) for v, l in vers_leases]


CELLS = (row("a", ("4.0", "on"), ("4.0", "off"), ("4.1", "on"), ("4.1", "off"))
         + row("b", ("4.0", "on"), ("4.0", "off"), ("4.1", "on"), ("4.1", "off"))
         + row("c", ("4.0", "on"), ("4.0", "off"), ("4.1", "on"), ("4.1", "off")))
FAILING = {"b/vers=4.1/leases=on", "b/vers=4.1/leases=off", "c/vers=4.1/leases=on", "c/vers=4.1/leases=off"}


def seconds(cell):
    return S.unit_seconds(cell, "fail" if cell.id in FAILING else "pass", {})


def test_one_job_keeps_the_sequential_order_one_shard_a_kernel():
    todo = runs_to_do(CELLS, 3, set())
    shards = S.make_shards(todo, 1, seconds)
    assert [s.kernel for s in shards] == ["a", "b", "c"]
    assert [u for s in shards for u in s.units] == todo


def test_every_unit_is_in_exactly_one_shard_of_its_kernel():
    todo = runs_to_do(CELLS, 3, set())
    for jobs in (2, 3, 4, 6, 12, 40):
        shards = S.make_shards(todo, jobs, seconds)
        units = [u for s in shards for u in s.units]
        assert sorted((c.id, k) for c, k in units) == sorted((c.id, k) for c, k in todo)
        assert all(c.kernel == s.kernel for s in shards for c, _ in s.units)
        assert len(shards) >= 3


def test_a_long_row_is_split_so_it_does_not_bound_the_wall_time():
    # b and c: 6 failing runs of ~70 s each and 6 passing ones; a: 12 passing runs
    todo = runs_to_do(CELLS, 3, set())
    one_a_kernel = sorted(S.make_shards(todo, 1, seconds), key=lambda s: -s.seconds)
    shards = S.make_shards(todo, 6, seconds)
    per_kernel = {k: [s for s in shards if s.kernel == k] for k in "abc"}
    assert len(per_kernel["b"]) == 2 and len(per_kernel["c"]) == 2
    for k in "bc":   # the failing runs of a split row are dealt to both of its shards
        assert all(any(c.id in FAILING for c, _ in s.units) for s in per_kernel[k])
    assert S.makespan(shards, 6) < S.makespan(one_a_kernel, 6)


def test_a_split_that_does_not_shorten_the_wall_time_is_not_made():
    # 3 rows on 4 workers: splitting b alone leaves c as long as before; splitting both makes a fifth shard
    # that waits for a worker: the rows stay whole, and no boot is spent for nothing
    todo = runs_to_do(CELLS, 3, set())
    assert sorted(s.kernel for s in S.make_shards(todo, 4, seconds)) == ["a", "b", "c"]


def test_shards_go_longest_first_and_keep_the_order_of_their_units():
    todo = runs_to_do(CELLS, 3, set())
    shards = S.make_shards(todo, 3, seconds)
    assert [s.seconds for s in shards] == sorted((s.seconds for s in shards), reverse=True)
    for s in shards:
        assert list(s.units) == [u for u in todo if u in s.units]
        assert s.seconds == pytest.approx(S.BOOT_S + sum(seconds(c) for c, _ in s.units))


def test_never_more_shards_of_a_row_than_units_or_jobs():
    todo = runs_to_do(row("a", ("4.1", "on"), ("4.1", "off")), 1, set())
    assert len(S.make_shards(todo, 8, seconds)) == 2              # two units: two shards at most
    long_row = runs_to_do(row("a", ("4.1", "on"), ("4.1", "off")), 6, set())
    assert len(S.make_shards(long_row, 3, seconds)) == 3          # three jobs: three shards at most


def test_longest_first_beats_matrix_order_on_a_skewed_matrix():
    cells = row("short1", ("4.0", "on")) + row("short2", ("4.0", "on")) + row("long", ("4.1", "on"), ("4.1", "off"))
    fail = {c.id for c in cells if c.kernel == "long"}

    def secs(c):
        return S.unit_seconds(c, "fail" if c.id in fail else "pass", {})
    todo = runs_to_do(cells, 3, set())
    lpt = S.make_shards(todo, 2, secs)
    assert lpt[0].kernel == "long"
    in_order = sorted(lpt, key=lambda s: ["short1", "short2", "long"].index(s.kernel))
    assert S.makespan(lpt, 2) <= S.makespan(in_order, 2)


def test_measured_durations_win_over_the_expected_verdict():
    rec = lambda cell, status, s: SimpleNamespace(cell_id=cell, status=status, duration_s=s)   # noqa: E731
    measured = S.measured_seconds([rec("a/x", "pass", 10), rec("a/x", "pass", 30), rec("a/x", "fail", 14),
                                   rec("a/x", "error", 500), rec("b/x", "skip", 0)])
    assert measured == {"a/x": 14}                                 # median of kernel results only
    cell = Cell("a", {"vers": "4.0"})
    cell_x = SimpleNamespace(id="a/x")
    assert S.unit_seconds(cell_x, "fail", measured) == 14
    assert S.unit_seconds(cell, "fail", measured) == S.FAIL_S
    assert S.unit_seconds(cell, "pass", measured) == S.PASS_S


def test_makespan_simulates_workers_taking_the_next_shard():
    shards = [S.Shard("a", (), 100), S.Shard("b", (), 60), S.Shard("c", (), 50), S.Shard("d", (), 40)]
    assert S.makespan(shards, 1) == 250
    assert S.makespan(shards, 2) == 140          # a | b, c joins b (110), d joins a (140)
    assert S.makespan(shards, 4) == 100
    assert S.makespan([], 3) == 0


@pytest.mark.parametrize("text,value", [("1", 1), ("4", 4), (" 6 ", 6), ("auto", "auto"), ("AUTO", "auto"),
                                        (None, 1), (3, 3)])
def test_parse_jobs(text, value):
    assert S.parse_jobs(text) == value


@pytest.mark.parametrize("text", ["0", "-2", "two", "", "1.5"])
def test_parse_jobs_refuses_what_is_not_a_count(text):
    with pytest.raises(ValueError, match="allowed: a whole number >= 1, or auto"):
        S.parse_jobs(text)


def test_auto_jobs_is_bounded_by_cpus_memory_and_work():
    assert S.auto_jobs(cpus=2, mem_available_mib=23000, units=84) == 3            # 1.5 a core
    assert S.auto_jobs(cpus=16, mem_available_mib=6000, units=84) == 3            # (6000-2048) // 1200
    assert S.auto_jobs(cpus=2, mem_available_mib=23000, units=2) == 2             # no idle workers
    assert S.auto_jobs(cpus=2, mem_available_mib=1000, units=84) == 1             # never below one


def test_plan_lines_name_every_shard():
    todo = runs_to_do(CELLS, 1, set())
    lines = S.plan_lines(S.make_shards(todo, 3, seconds), 3)
    assert lines[0].startswith(f"{len(lines) - 1} shard(s) for 3 worker(s): expected ≈ ")
    assert any("vers=4.1/leases=on#1" in line for line in lines[1:])

"""The pipelines in ci/ parse, run only `lab` commands (no logic in YAML) that the real CLI accepts, shard every
kernel of the matrix, and chain shard → table → compare → bisect the way each engine needs it."""
import re
import shlex

import pytest
import typer
from ruamel.yaml import YAML

from lab.cli import app
from lab.paths import PROJECT
from lab.spec import load_matrix

CLI_COMMANDS = {"run", "merge", "table", "clean", "setup", "list", "compare", "bisect", "fetch-baseline"}
CHAIN = ["shard", "table", "compare", "bisect"]
GATE = "gate"    # decides pass/fail from the merged table (`lab table --fail-on`), beside the chain


def load(name: str) -> dict:
    return YAML(typ="safe").load((PROJECT / "ci" / name).read_text())


def commands(doc) -> list[str]:
    found = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("script", "before_script", "after_script", "run") and isinstance(value, (str, list)):
                found += [value] if isinstance(value, str) else value
            else:
                found += commands(value)
    elif isinstance(doc, list):
        for item in doc:
            found += commands(item)
    return found


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_pipeline_calls_only_lab(name):
    doc = YAML(typ="safe").load((PROJECT / "ci" / name).read_text())
    cmds = commands(doc)
    assert cmds
    for cmd in cmds:
        assert cmd.startswith(("./quickstart.sh", ".venv/bin/lab ", "cat compatibility.md")), cmd
        m = re.match(r"\.venv/bin/lab ([\w-]+)", cmd)
        if m:
            assert m.group(1) in CLI_COMMANDS, cmd


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_pipeline_shards_every_matrix_kernel(name):
    text = (PROJECT / "ci" / name).read_text()
    for kernel in load_matrix(PROJECT / "matrix.yaml").kernels:
        assert kernel.name in text, f"{name} has no shard for {kernel.name}"


def lab_argv(cmd: str) -> list[str]:
    """A script line's `lab` arguments, without the shell's `|| [ $? -eq 1 ]` tail."""
    return shlex.split(cmd.split(" || ")[0])[1:]


def parse(argv: list[str]):
    """Parse like `lab` would, down to the leaf command, without running anything. Duck-typed, because typer
    ships its own copy of click in some versions and uses click itself in others."""
    command, name, ctx = typer.main.get_command(app), "lab", None
    while True:
        ctx = command.make_context(name, list(argv), parent=ctx)
        if not hasattr(command, "resolve_command"):
            return ctx
        rest = [*(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []), *ctx.args]
        name, command, argv = command.resolve_command(ctx, rest)


def usage_problem(argv: list[str]) -> str | None:
    try:
        parse(argv)
    except Exception as e:
        if not hasattr(e, "format_message"):
            raise
        return e.format_message()
    return None


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_every_lab_line_is_a_valid_lab_command(name):
    lines = [c for c in commands(load(name)) if c.startswith(".venv/bin/lab ")]
    assert len(lines) >= 8
    for cmd in lines:
        problem = usage_problem(lab_argv(cmd))
        assert problem is None, f"{name}: `{cmd}`: {problem}"


def test_the_command_line_check_can_fail():
    assert usage_problem(["compare", "a", "b", "--output", "c.json"]) is None
    assert "--nosuch" in usage_problem(["compare", "a", "b", "--nosuch"])
    assert "--from-changes" in usage_problem(["bisect", "versions", "--from-changes"])
    assert usage_problem(["bisect", "nosuch"]) is not None


def fail_on(lines: list[str]) -> set[str]:
    """The categories a job's `lab table --fail-on` gates on; each must be one `lab table` knows."""
    from lab.report import FAIL_ON
    [line] = [line for line in lines if "--fail-on" in line]
    argv = lab_argv(line)
    names = set(argv[argv.index("--fail-on") + 1].split(","))
    assert argv[0] == "table" and names <= set(FAIL_ON), line
    return names


def gitlab_jobs(doc: dict) -> dict:
    """Jobs with their `extends` templates merged in (the job's own keys win)."""
    jobs = {}
    for name, body in doc.items():
        if name.startswith(".") or name in ("stages", "variables", "include", "default", "workflow"):
            continue
        merged = {}
        extends = body.get("extends", [])
        for template in [extends] if isinstance(extends, str) else extends:
            assert template in doc, f"{name} extends unknown {template}"
            merged.update(doc[template])
        merged.update(body)
        jobs[name] = merged
    return jobs


def test_gitlab_pipeline_structure():
    doc = load("gitlab-ci.yml")
    jobs = gitlab_jobs(doc)
    stages = CHAIN + [GATE]
    assert doc["stages"] == stages and set(jobs) == set(stages)
    for name, job in jobs.items():
        assert job["stage"] == name, name
        assert job["tags"] == ["nfslab"], name
        assert any("schedule" in rule["if"] for rule in job["rules"]), f"{name} does not run on the schedule"
        assert job["script"] and job["before_script"][0].startswith("./quickstart.sh --"), name
        for need in job.get("needs", []):
            assert stages.index(need) < stages.index(name), f"{name} needs {need}, which runs later"
    assert jobs["shard"]["parallel"]["matrix"][0]["KERNELS"]
    # the compare job fetches the baseline from the job that publishes merged/, and hands changes.json on
    fetch, compare_line = jobs["compare"]["script"]
    assert "job=table" in fetch and "merged/" in jobs["table"]["artifacts"]["paths"]
    assert "--output changes.json" in compare_line and jobs["compare"]["artifacts"]["paths"] == ["changes.json"]
    assert jobs["compare"]["allow_failure"] == {"exit_codes": [1]}, "a change must not stop the bisect job"
    assert jobs["bisect"]["needs"] == ["compare"]
    assert "--from-changes changes.json" in jobs["bisect"]["script"][0]
    for name in ("shard", "bisect"):     # jobs with VMs clean up whatever happens
        assert jobs[name]["after_script"] == [".venv/bin/lab clean"]
    # the gate decides from the merged table; a tripped gate (exit 1) must not cost the table job its success,
    # whose merged/ is the next baseline, nor fail the pipeline the baseline URL needs successful
    gate = jobs[GATE]
    assert gate["needs"] == ["table"] and gate["allow_failure"] == {"exit_codes": [1]}
    assert all("--fail-on" not in line for line in jobs["table"]["script"])
    assert fail_on(gate["script"]) == {"regression", "unexpected-pass", "flaky", "error"}


def test_github_workflow_structure():
    doc = load("github-actions.yml")
    cron = doc["on"]["schedule"][0]["cron"]
    assert len(cron.split()) == 5, cron
    jobs = doc["jobs"]
    assert list(jobs) == CHAIN + [GATE]
    for before, after in zip(CHAIN, CHAIN[1:]):
        assert jobs[after]["needs"] == before
    assert jobs[GATE]["needs"] == "table" and jobs[GATE]["continue-on-error"] is True
    assert fail_on([s.get("run", "") for s in jobs[GATE]["steps"]]) == {"regression", "unexpected-pass", "flaky",
                                                                          "error"}
    uploaded = set()
    for name in CHAIN + [GATE]:
        job = jobs[name]
        assert job["runs-on"] == ["self-hosted", "nfslab"], name
        steps = job["steps"]
        assert steps[0]["uses"] == "actions/checkout@v4" and steps[1]["run"].startswith("./quickstart.sh --")
        for step in steps:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.match(r"^[\w.-]+/[\w.-]+@v\d+$", step["uses"]), f"unpinned action {step['uses']}"
            if step.get("uses", "").startswith("actions/download-artifact") and "name" in step.get("with", {}):
                assert step["with"]["name"] in uploaded, f"{name} downloads {step['with']['name']} before any upload"
            if step.get("uses", "").startswith("actions/upload-artifact"):
                uploaded.add(step["with"]["name"])
    # compare: the baseline is the last successful scheduled run's `merged`; its exit code starts the bisect
    baseline = next(s for s in jobs["compare"]["steps"] if s.get("uses", "").startswith("dawidd6/"))["with"]
    assert (baseline["name"], baseline["workflow_conclusion"], baseline["event"]) == ("merged", "success", "schedule")
    step_ids = {s.get("id") for s in jobs["compare"]["steps"]}
    assert "steps.compare.outcome" in jobs["compare"]["outputs"]["changed"] and "compare" in step_ids
    assert next(s for s in jobs["compare"]["steps"] if s.get("id") == "compare")["continue-on-error"] is True
    assert jobs["bisect"]["if"] == "needs.compare.outputs.changed == 'true'"
    assert any("--from-changes changes.json" in s.get("run", "") for s in jobs["bisect"]["steps"])

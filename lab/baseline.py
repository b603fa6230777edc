"""Getting the last baseline run for `lab compare`: a CI server's artifact archive (zip), downloaded and unpacked.

GitLab serves the artifacts of a ref's latest successful pipeline at one URL
(`$CI_API_V4_URL/projects/$CI_PROJECT_ID/jobs/artifacts/$CI_COMMIT_REF_NAME/download?job=table`, readable with
`JOB-TOKEN: $CI_JOB_TOKEN`), so a scheduled pipeline can fetch the previous one's table with one command. No archive
there (404) is the normal state of a first run, not an error.
"""
from __future__ import annotations

import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .errors import LabError


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"bad header '{text}' (expected 'Name: value')")
    return name.strip(), value.strip()


def fetch(url: str, dest: Path | str, headers: dict[str, str] | None = None, timeout: float = 300) -> bool:
    """Unpack the zip at `url` into dest; False when there is none (404). LabError for any other failure."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise LabError("fetch-baseline", f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise LabError("fetch-baseline", f"{url}: {getattr(e, 'reason', e)}") from None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise LabError("fetch-baseline", f"{url}: not a zip archive ({len(data)} bytes)") from None
    Path(dest).mkdir(parents=True, exist_ok=True)
    archive.extractall(dest)   # member names with .. or a leading / are made safe by zipfile
    return True

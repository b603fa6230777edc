"""Getting the last baseline run for `lab compare`: a CI server's artifact archive (zip), downloaded and unpacked.

GitLab serves the artifacts of a ref's latest successful pipeline at one URL
(`$CI_API_V4_URL/projects/$CI_PROJECT_ID/jobs/artifacts/$CI_COMMIT_REF_NAME/download?job=table`, readable with
`JOB-TOKEN: $CI_JOB_TOKEN`), so a scheduled pipeline can fetch the previous one's table with one command. No archive
there (404) is the normal state of a first run, not an error.

What arrives is not trusted: the download and the unpacked size are bounded (a zip bomb stops before it fills the
disk), and a member whose name would land outside the destination is refused, not silently renamed. The runs it
holds are read by lab/results/ like any other. A damaged archive is a BadFile (one line, exit 2); a network failure
is a LabError.
"""
from __future__ import annotations

import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .errors import BadFile, LabError
from .safeload import MiB, cut, inside_problem

MAX_ARCHIVE = 256 * MiB     # a night's merged run with its logs and captures is a few MiB
MAX_UNPACKED = 1024 * MiB
MAX_MEMBERS = 100_000
MAX_RATIO = 200             # logs and JSON compress ~10:1; a member that expands 200× is a bomb


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
            data = response.read(MAX_ARCHIVE + 1)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise LabError("fetch-baseline", f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise LabError("fetch-baseline", f"{url}: {getattr(e, 'reason', e)}") from None
    if len(data) > MAX_ARCHIVE:
        raise BadFile(url, None, f"larger than {MAX_ARCHIVE // MiB} MiB: not a baseline run")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        check_members(archive, url)
        Path(dest).mkdir(parents=True, exist_ok=True)
        archive.extractall(dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise BadFile(url, None, f"not a usable zip archive ({len(data)} bytes: {cut(e)})") from None
    except OSError as e:
        raise LabError("fetch-baseline", f"unpacking {url} into {dest}: {e.strerror or e}") from None
    return True


def check_members(archive: zipfile.ZipFile, url: str) -> None:
    """Refuse an archive before unpacking any of it: too many members, too large unpacked, a member that expands
    out of all proportion, or a name that would land outside the destination."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise BadFile(url, None, f"{len(members)} members (at most {MAX_MEMBERS})")
    total = 0
    for member in members:
        problem = inside_problem(member.filename.rstrip("/")) if member.filename.rstrip("/") else "empty"
        if problem:
            raise BadFile(url, None, f"member '{cut(member.filename)}' would land outside the destination ({problem})")
        total += member.file_size
        if member.file_size > MiB and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise BadFile(url, None, f"member '{cut(member.filename)}' expands {member.file_size // MiB} MiB from "
                                     f"{member.compress_size} bytes (a zip bomb?)")
    if total > MAX_UNPACKED:
        raise BadFile(url, None, f"unpacks to {total // MiB} MiB (at most {MAX_UNPACKED // MiB} MiB)")

"""Kernel source tarballs that a spec names by file and sha256 (`tree: {url, sha256, alternatives}`): found in a
mirror or the kernel cache, else downloaded into the cache, and checked against their sha256 before any use.

Where a tarball is looked for, by file name, the upstream file before its accepted alternatives at each step:
1. the mirror: the directories in NFSLAB_MIRROR (colon-separated), then those of `mirror:` in
   $NFSLAB_HOME/config.yaml (a list, or one colon-separated string; relative to that file);
2. the kernel cache: $NFSLAB_HOME/kernels/sources/;
3. its URL, downloaded into the cache with urllib: every name lookup, connect and read has a timeout, so a host
   with no route to it makes a quick SKIP that says what to download and where to put it, never a hang.
A file whose sha256 is not the spec's is an error naming both hashes; it is never built.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import KernelUnavailable, LabError
from .paths import LabHome
from .spec import ReleaseTree, Source, Tarball

MIRROR_ENV = "NFSLAB_MIRROR"
CONFIG = "config.yaml"
CONFIG_KEYS = ["mirror"]
#: seconds for the name lookup, the connection and each read of a download
TIMEOUT = 15.0


@dataclass(frozen=True)
class Found:
    """A verified tarball: where it is and which of the spec's files it is."""

    path: Path
    tarball: Tarball


class Unreachable(Exception):
    """The download did not happen (no route, no name, refused, HTTP error): the reason, in a few words."""


def sources_dir(home: LabHome) -> Path:
    return home.kernels / "sources"


def mirror_dirs(home: LabHome) -> list[Path]:
    """NFSLAB_MIRROR's directories, then the config file's, in order."""
    env = [Path(d).expanduser().resolve() for d in os.environ.get(MIRROR_ENV, "").split(":") if d]
    return env + config_mirrors(home.root / CONFIG)


def config_mirrors(path: Path) -> list[Path]:
    """`mirror:` of the optional config file; its mistakes are FILE:LINE errors like a spec's."""
    if not path.exists():
        return []
    src = Source(path)
    doc = src.load()
    if doc is None:
        return []
    src.mapping(doc, "the nfslab config", None, CONFIG_KEYS)
    if doc.get("mirror") is None:
        return []
    value = doc["mirror"]
    if isinstance(value, str):
        entries = value.split(":")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        entries = list(value)
    else:
        raise src.error(src.value_line(doc, "mirror"), "mirror must be a directory, or a list of directories")
    return [(path.parent / Path(entry).expanduser()).resolve() for entry in entries if entry]


def find(tree: ReleaseTree, home: LabHome, progress=lambda msg: None) -> Found:
    """The first of the tree's tarballs in a mirror, else in the cache, else downloaded; KernelUnavailable when none
    can be had, LabError when a file is not what its sha256 says."""
    for directory in mirror_dirs(home):
        for tarball in tree.tarballs:
            if (directory / tarball.file).is_file():
                return Found(verified(directory / tarball.file, tarball), tarball)
    cache = sources_dir(home)
    for tarball in tree.tarballs:
        if (cache / tarball.file).is_file():
            return Found(verified(cache / tarball.file, tarball), tarball)
    reasons = []
    for tarball in tree.tarballs:
        if tarball.url:
            progress(f"downloading {tarball.url} into {cache}")
            try:
                return Found(download(tarball, cache), tarball)
            except Unreachable as e:
                reasons.append(f"{urllib.parse.urlsplit(tarball.url).hostname} unreachable ({e})")
    raise KernelUnavailable(unavailable(tree, cache, reasons))


def unavailable(tree: ReleaseTree, cache: Path, reasons: list[str]) -> str:
    """What to download and where to put it, in one line."""
    main = tree.main
    where = f"{cache}/ or a directory named by {MIRROR_ENV}"
    get = f"download it from {main.url}" if main.url else "get it"
    also = "".join(f"; {t.file} (sha256 {t.sha256}) is accepted instead" for t in tree.alternatives)
    return (f"{main.file} (sha256 {main.sha256}) not in the kernel cache or any mirror"
            f"{' and ' + ', '.join(reasons) if reasons else ''}: {get} into {where}{also}")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(path: Path, tarball: Tarball) -> Path:
    actual = sha256_of(path)
    if actual != tarball.sha256:
        raise LabError("kernel tree: verify", f"{path} has sha256 {actual}, the spec names {tarball.file} with sha256 "
                                              f"{tarball.sha256}: remove or replace that file")
    return path


def download(tarball: Tarball, cache: Path) -> Path:
    """Into cache/<file>, through a temporary name: only a whole file with the right sha256 is ever there."""
    _resolvable(tarball.url)
    cache.mkdir(parents=True, exist_ok=True)
    part = cache / f".{tarball.file}.{os.getpid()}.part"
    h = hashlib.sha256()
    try:
        request = urllib.request.Request(tarball.url, headers={"User-Agent": "nfslab"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, part.open("wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                h.update(block)
                out.write(block)
    except urllib.error.HTTPError as e:
        part.unlink(missing_ok=True)
        raise Unreachable(f"HTTP {e.code}") from None
    except (OSError, http.client.HTTPException) as e:   # URLError, timeouts, refused, reset, a short read
        part.unlink(missing_ok=True)
        raise Unreachable(_reason(e)) from None
    if h.hexdigest() != tarball.sha256:
        part.unlink()
        raise LabError("kernel tree: download", f"{tarball.url} gave sha256 {h.hexdigest()}, the spec says "
                                                f"{tarball.sha256}: not used")
    target = cache / tarball.file
    part.replace(target)
    return target


def _reason(e: BaseException) -> str:
    inner = getattr(e, "reason", None)
    return str(inner if inner is not None else e) or type(e).__name__


def _resolvable(url: str) -> None:
    """The name of the host (or of the proxy urllib would use) resolves within TIMEOUT: getaddrinfo has no timeout
    of its own, and a resolver that is not there can hold it for much longer."""
    target = urllib.parse.urlsplit(url)
    host = target.hostname
    proxy = urllib.request.getproxies().get(target.scheme)
    if proxy and not urllib.request.proxy_bypass(host or ""):
        host = urllib.parse.urlsplit(proxy if "://" in proxy else f"//{proxy}").hostname
    result: dict = {}

    def lookup() -> None:
        try:
            result["ok"] = socket.getaddrinfo(host, None)
        except OSError as e:
            result["error"] = e

    thread = threading.Thread(target=lookup, name=f"resolve-{host}", daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if "ok" not in result:
        raise Unreachable(f"cannot resolve {host}: {_reason(result['error'])}" if "error" in result
                          else f"resolving {host} took more than {TIMEOUT:.0f}s")

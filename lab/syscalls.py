"""What alice's reader asked the kernel, from strace: per traced read, the system calls on the file under test and
what each returned (`openat → fd 4 · fstat → ESTALE`), summed up per phase (before/after the change) into
meta["syscalls"].

Why: the same stale client state reads as ESTALE with one program and as the old contents with another, because
the symptom depends on the calls after open(2). The wire capture shows what the client asked the server; this
shows which call the application saw fail. Pure: race.py runs strace in the guest and hands the text in.

Names are the C library's, not the kernel entry points: an fstat(2) reaches the kernel as newfstatat(fd, "",
AT_EMPTY_PATH) or statx(fd, "", AT_EMPTY_PATH) on current glibc, and is shown as `fstat`; a stat of the path by name
is `stat`. Only calls on the file under test appear (the loader's and the locale's are dropped), and successful
close/fadvise64 are left out because they never differ.
"""
from __future__ import annotations

import re
from collections import Counter

#: the calls strace records (-e trace=): how a reader opens, stats and reads a file, with the variants glibc uses
TRACED = ("openat", "open", "fstat", "newfstatat", "statx", "fadvise64", "read", "copy_file_range", "sendfile", "close")
#: traced reads per cell: the first reads after the change, then the ones after a read that was not the new file
FIRST, CAP = 6, 24


def strace_prefix(output: str) -> str:
    """The guest command that traces one read into `output`: threads followed, wall-clock stamps, 64 bytes of
    each buffer (enough for the file's contents)."""
    return f"strace -f -tt -s 64 -e trace={','.join(TRACED)} -o {output}"


_LINE = re.compile(r"^(?:(?P<pid>\d+)\s+)?(?:(?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)\s+)?(?P<rest>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?)(?:\s+(?P<errno>E[A-Z0-9]+)\b.*)?$")
_UNFINISHED = re.compile(r"^(?P<name>\w+)\((?P<args>.*?)\s*<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>\s*(?P<rest>.*)$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\.\.\.)?')


def _c_string(escaped: str) -> str:
    """strace's C-escaped buffer text → the bytes' text (\\n, \\t, \\\\, \\", \\ooo, \\xHH)."""
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "\\": "\\", '"': '"'}
    while i < len(escaped):
        c = escaped[i]
        if c != "\\" or i + 1 == len(escaped):
            out.append(c)
            i += 1
            continue
        nxt = escaped[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "x" and re.match(r"[0-9a-fA-F]{2}", escaped[i + 2:i + 4]):
            out.append(chr(int(escaped[i + 2:i + 4], 16)))
            i += 4
        else:
            digits = re.match(r"[0-7]{1,3}", escaped[i + 1:i + 4])
            if digits:
                out.append(chr(int(digits.group(0), 8)))
                i += 1 + len(digits.group(0))
            else:
                out.append(nxt)
                i += 2
    return "".join(out)


def calls(text: str) -> list[tuple[str, str, str, str | None]]:
    """Every completed call in strace's output: (name, args, return value, errno or None); an `<unfinished …>`
    call is joined with its `<… resumed>` line, signals and exits are dropped."""
    found, pending = [], {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        pid, rest = m.group("pid") or "", m.group("rest")
        if (u := _UNFINISHED.match(rest)) is not None:
            pending[pid] = (u.group("name"), u.group("args"))
            continue
        if (r := _RESUMED.match(rest)) is not None:
            name, head = pending.pop(pid, (r.group("name"), ""))
            head, tail = head.rstrip().rstrip(","), r.group("rest")
            rest = f"{name}({head}{', ' if head and not tail.startswith(')') else ''}{tail}"
        c = _CALL.match(rest)
        if c is not None:
            found.append((c.group("name"), c.group("args"), c.group("ret"), c.group("errno")))
    return found


def _args(args: str) -> list[str]:
    """Top-level comma-separated arguments (strings, braces and brackets kept whole)."""
    parts, depth, quoted, cur, i = [], 0, False, [], 0
    while i < len(args):
        c = args[i]
        if quoted:
            cur.append(c)
            if c == "\\" and i + 1 < len(args):
                cur.append(args[i + 1])
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
            cur.append(c)
        elif c in "{[(":
            depth += 1
            cur.append(c)
        elif c in "}])":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        parts.append("".join(cur).strip())
    return parts


def _path(arg: str) -> str | None:
    m = _STRING.fullmatch(arg)
    return _c_string(m.group(1)) if m else None


def _same_file(path: str | None, target: str) -> bool:
    return path is not None and (path == target or path.endswith("/" + target) or path == f"./{target}")


def _read_result(ret: int, buffer: str | None, old: str, new: str) -> str:
    if ret == 0:
        return "EOF"
    text = _path(buffer) if buffer else None
    if text is not None:
        for kind, contents in (("old", old), ("new", new)):
            if text.strip() == contents:
                return f"{kind} ({ret} bytes)"
    return f"{ret} bytes"


def steps(text: str, target: str, old: str, new: str) -> list[str]:
    """The calls on `target` in one traced read, in order: `openat → fd 4`, `fstat → 0`, `read → old (13 bytes)`,
    `read → EOF`; a failed call shows its errno (`fstat → ESTALE`)."""
    fds: set[str] = set()
    out = []
    for name, args, ret, errno in calls(text):
        a = _args(args)
        result = errno or ret
        if name in ("openat", "open"):
            path = _path(a[1] if name == "openat" and len(a) > 1 else a[0] if a else "")
            if not _same_file(path, target):
                continue
            if errno is None:
                fds.add(ret)
            out.append(f"{name} → {errno or 'fd ' + ret}")
        elif name in ("newfstatat", "statx") and len(a) > 1:
            path = _path(a[1])
            if path == "" and a[0] in fds:
                out.append(f"fstat → {result}")
            elif _same_file(path, target):
                out.append(f"stat → {result}")
        elif name == "sendfile" and len(a) > 1 and a[1] in fds:   # busybox cat: sendfile(out, in, NULL, n)
            out.append(f"sendfile → {errno or ret + ' bytes'}")
        elif not a or a[0] not in fds:
            continue
        elif name == "fstat":
            out.append(f"fstat → {result}")
        elif name == "read":
            out.append(f"read → {errno or _read_result(int(ret), a[1] if len(a) > 1 else None, old, new)}")
        elif name == "copy_file_range":
            out.append(f"copy_file_range → {errno or ret + ' bytes'}")
        elif name in ("close", "fadvise64"):
            if name == "close":
                fds.discard(a[0])
            if errno:
                out.append(f"{name} → {errno}")
    return out


#: calls whose error a reader ignores: advice only (GNU cat's fadvise64 gets ENOSYS on a kernel built without
#: CONFIG_ADVISE_SYSCALLS, as the lab's 4.19 builds are, and goes on to read the new contents)
ADVISORY = ("fadvise64",)


def failed_at(sequence: list[str]) -> str | None:
    """The step where a read went wrong: the first call that returned an errno, else a read of the old contents;
    None when the read was good. An advisory call's error is not where a read went wrong (ADVISORY)."""
    for step in sequence:
        if step.startswith(ADVISORY):
            continue
        errno = re.search(r"→ E[A-Z0-9]+$", step) and not step.endswith("→ EOF")
        if errno or step.startswith("read → old"):
            return step.split(" (")[0] if step.startswith("read → old") else step
    return None


def summarise(traced: list[tuple[float, str]], target: str, old: str, new: str) -> dict:
    """Per phase (t < 0: before the change, else after): how many reads were traced, each distinct call sequence
    with its count, where the failing ones failed, and when the first traced read of the phase ran. `traced` is
    (t relative to the change, strace text) per read."""
    out = {}
    for phase in ("before", "after"):
        reads = [(t, text) for t, text in traced if (t < 0) == (phase == "before")]
        if not reads:
            continue
        sequences = [steps(text, target, old, new) for _, text in reads]
        failures = Counter(f for seq in sequences if (f := failed_at(seq)))
        out[phase] = {"reads": len(reads), "first_s": round(min(t for t, _ in reads), 3),
                      "sequences": dict(Counter(" · ".join(seq) or "no call on the file" for seq in sequences)
                                        .most_common()),
                      "failed_at": dict(failures.most_common())}
    return out


def split_collected(text: str) -> dict[str, str]:
    """The per-read strace files as race.py collects them (`=== <name>` before each file's text) → name → text."""
    files: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("=== "):
            current = line[4:].strip()
            files[current] = []
        elif current is not None:
            files[current].append(line)
    return {name: "\n".join(lines) for name, lines in files.items()}


def describe(syscalls: dict, phase: str = "after") -> str:
    """One line: `openat → fd 4 · fstat → ESTALE ×5; openat → fd 4 · fstat → 0 · read → new (13 bytes) ×1`."""
    part = (syscalls or {}).get(phase) or {}
    return "; ".join(f"{seq} ×{n}" for seq, n in (part.get("sequences") or {}).items())


def main_failure(syscalls: dict) -> str | None:
    """The commonest step at which the reads after the change failed, e.g. `fstat → ESTALE`."""
    failures = ((syscalls or {}).get("after") or {}).get("failed_at") or {}
    return max(failures, key=lambda k: failures[k]) if failures else None

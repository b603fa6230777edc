"""Per-cell packet capture of the NFS traffic, and its decoding into what a kernel engineer asks first: which
operations did each client send after the rename, and did Alice's reads OPEN the file by name?

The capture runs on the host side — dumpcap on the server's tap device inside the lab's namespace — so the
guests run exactly what they run without it, and every frame is stamped on the host clock, the clock the rename's
t = 0 is already mapped onto. Decoding is tshark's NFSv4 dissector; `summarise` is pure and tested on its output.
"""
from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

from .errors import LabError
from .proc import run, wait_until

#: NFSv4 operation numbers (RFC 7530 / 5661) → names; the dissector gives numbers in field output
OPS = {3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 7: "DELEGPURGE", 8: "DELEGRETURN", 9: "GETATTR",
       10: "GETFH", 11: "LINK", 12: "LOCK", 13: "LOCKT", 14: "LOCKU", 15: "LOOKUP", 16: "LOOKUPP", 17: "NVERIFY",
       18: "OPEN", 19: "OPENATTR", 20: "OPEN_CONFIRM", 21: "OPEN_DOWNGRADE", 22: "PUTFH", 23: "PUTPUBFH",
       24: "PUTROOTFH", 25: "READ", 26: "READDIR", 27: "READLINK", 28: "REMOVE", 29: "RENAME", 30: "RENEW",
       31: "RESTOREFH", 32: "SAVEFH", 33: "SECINFO", 34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM",
       37: "VERIFY", 38: "WRITE", 39: "RELEASE_LOCKOWNER", 40: "BACKCHANNEL_CTL", 41: "BIND_CONN_TO_SESSION",
       42: "EXCHANGE_ID", 43: "CREATE_SESSION", 44: "DESTROY_SESSION", 45: "FREE_STATEID",
       46: "GET_DIR_DELEGATION", 47: "GETDEVICEINFO", 48: "GETDEVICELIST", 49: "LAYOUTCOMMIT", 50: "LAYOUTGET",
       51: "LAYOUTRETURN", 52: "SECINFO_NO_NAME", 53: "SEQUENCE", 54: "SET_SSV", 55: "TEST_STATEID",
       56: "WANT_DELEGATION", 57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE"}
#: open_claim_type4: CLAIM_NULL is an open *by name* (the one be189f7e makes go to the server); CLAIM_FH by handle
CLAIMS = {0: "NULL", 1: "PREVIOUS", 2: "DELEGATE_CUR", 3: "DELEGATE_PREV", 4: "FH", 5: "DELEG_CUR_FH",
          6: "DELEG_PREV_FH"}
NFS4ERR_STALE = 70
NFS4ERR_DELAY = 10008   # e.g. a RENAME held up while the server recalls the other client's delegation
#: the operations the report shows first; the JSON keeps every operation seen
KEY_OPS = ("OPEN", "LOOKUP", "GETATTR", "ACCESS", "READ", "CLOSE", "DELEGRETURN")
FIELDS = ("frame.time_epoch", "ip.src", "ip.dst", "rpc.msgtyp", "nfs.opcode", "nfs.open.claim_type", "nfs.nfsstat4",
          "nfs.fattr4.numlinks", "nfs.fattr4.fileid")
#: the replies whose file attributes are summed up (`OPEN replies: numlinks 0 ×34 (fileid 1234)`), named by their
#: first operation in this order (a LOOKUP compound carries a GETATTR too): a client that OPENs by handle and hears
#: numlinks 0 is holding the unlinked old file, while a LOOKUP's reply shows the new file's fileid
ATTR_REPLIES = ("OPEN", "LOOKUP", "GETATTR")
PCAP_NAME = "server-nfs.pcapng"


def server_interface(domiflist: str, network: str) -> str:
    """The server's tap device on the NFS network, from `virsh domiflist` (Interface Type Source Model MAC)."""
    for line in domiflist.splitlines():
        cols = line.split()
        if len(cols) >= 3 and cols[2] == network:
            return cols[0]
    raise LabError("capture: find interface", f"the server has no interface on network {network}:\n{domiflist}")


class Capture:
    """dumpcap on one interface inside the lab namespace, started and stopped by this process (by PID)."""

    def __init__(self, netns_prefix: list[str], interface: str, pcap: Path, log: Path):
        self.argv = [*netns_prefix, "dumpcap", "-q", "-i", interface, "-f", "tcp port 2049", "-w", str(pcap)]
        self.pcap, self.log = pcap, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> "Capture":
        self.pcap.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            # its own session: a Ctrl-C meant for the lab must not end the capture before the lab stops it
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_until(self._writing, timeout=timeout, interval=0.1, step="capture: start",
                   what=f"dumpcap to write {self.pcap.name}", log=str(self.log))
        return self

    def _writing(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise LabError("capture: start", f"dumpcap exited {self.proc.returncode}", str(self.log))
        return self.pcap.exists() and self.pcap.stat().st_size > 0

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM makes dumpcap flush and close the file; our own PID only."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def decode(pcap: Path, log: Path | None = None) -> str:
    """tshark's view of the NFS calls and replies, one tab-separated line per frame (FIELDS)."""
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", "rpc", "-T", "fields", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        argv += ["-e", f]
    return run(argv, step="capture: decode", timeout=120, log=log).stdout


def _numbers(field: str) -> list[int]:
    return [int(x) for x in field.split(",") if x.strip().isdigit()]


def summarise(fields_text: str, clients: dict[str, str], t0: float) -> dict:
    """Per client and phase (before/after the rename at host time t0): call and operation counts, the claim type of
    every OPEN, and how many replies carried NFS4ERR_STALE. `clients` maps NFS address → machine name."""
    empty = lambda: {"calls": 0, "ops": Counter(), "open_claims": Counter(), "stale_replies": 0,  # noqa: E731
                     "delay_replies": 0, "first_s": {}, "attrs": {op: Counter() for op in ATTR_REPLIES}}
    out = {name: {"before": empty(), "after": empty()} for name in clients.values()}
    for line in fields_text.splitlines():
        cols = (line.split("\t") + [""] * len(FIELDS))[:len(FIELDS)]
        try:
            stamp = float(cols[0])
        except ValueError:
            continue
        src, dst, kinds = cols[1], cols[2], _numbers(cols[3])
        phase = "after" if stamp >= t0 else "before"
        if 0 in kinds and src in clients:
            counts = out[clients[src]][phase]
            counts["calls"] += kinds.count(0)
            ops = [OPS.get(n, str(n)) for n in _numbers(cols[4])]
            counts["ops"].update(ops)
            for op in ops:   # when each operation first went out after the change: e.g. the LOOKUP that ends ESTALE
                counts["first_s"].setdefault(op, round(stamp - t0, 3))
            counts["open_claims"].update(CLAIMS.get(n, str(n)) for n in _numbers(cols[5]))
        if 1 in kinds and dst in clients:
            statuses = _numbers(cols[6])
            out[clients[dst]][phase]["stale_replies"] += NFS4ERR_STALE in statuses
            out[clients[dst]][phase]["delay_replies"] += NFS4ERR_DELAY in statuses
            _count_attrs(out[clients[dst]][phase]["attrs"], _numbers(cols[4]), _numbers(cols[7]),
                         _numbers(cols[8]))
    return {name: {phase: _plain(c) for phase, c in phases.items()} for name, phases in out.items()}


def _count_attrs(attrs: dict, ops: list[int], numlinks: list[int], fileids: list[int]) -> None:
    """One reply: an OPEN reply (else a LOOKUP one, else a GETATTR one) counts its first numlinks with its first
    fileid — the file's own attributes come first in these compounds (a directory's, if any, after)."""
    names = {OPS.get(n) for n in ops}
    kind = next((op for op in ATTR_REPLIES if op in names), None)
    if kind is None or not numlinks:
        return
    attrs[kind][(numlinks[0], fileids[0] if fileids else None)] += 1


def _plain(counts: dict) -> dict:
    return {"calls": counts["calls"], "ops": dict(sorted(counts["ops"].items())),
            # {"OPEN": {"0": {"1234": 34}}}: numlinks → fileid → replies (JSON keys are text; "?" = no fileid)
            "reply_attrs": {op: _nested(c) for op, c in counts["attrs"].items() if c},
            "open_claims": dict(sorted(counts["open_claims"].items())), "stale_replies": counts["stale_replies"],
            "delay_replies": counts["delay_replies"],
            "first_s": {op: t for op, t in counts["first_s"].items() if op in KEY_OPS},
            "open_by_name": counts["open_claims"].get("NULL", 0)}


def _nested(counter: Counter) -> dict:
    out: dict = {}
    for (links, fileid), n in sorted(counter.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        out.setdefault(str(links), {})["?" if fileid is None else str(fileid)] = n
    return out


def describe_attrs(phase: dict) -> str:
    """`OPEN replies: numlinks 0 ×34 (fileid 1234) · GETATTR replies: numlinks 1 ×2 (fileid 1240)`."""
    parts = []
    for op, by_links in (phase.get("reply_attrs") or {}).items():
        counts = []
        for links, fileids in by_links.items():
            ids = ", ".join(f for f in fileids if f != "?")
            counts.append(f"numlinks {links} ×{sum(fileids.values())}" + (f" (fileid {ids})" if ids else ""))
        parts.append(f"{op} replies: " + ", ".join(counts))
    return " · ".join(parts)


def describe(phase: dict) -> str:
    """One line for a table cell: `OPEN 3 (by name 3) · GETATTR 5 · READ 2 · CLOSE 3 · NFS4ERR_STALE replies 0`."""
    ops = phase.get("ops", {})
    parts = []
    for op in KEY_OPS:
        if ops.get(op):
            text = f"{op} {ops[op]}"
            if op == "LOOKUP" and op in phase.get("first_s", {}):
                text += f" (first at {phase['first_s'][op]:+g}s)"
            if op == "OPEN":
                claims = phase.get("open_claims", {})
                text += " (" + ", ".join(f"{'by name' if k == 'NULL' else 'CLAIM_' + k} {v}"
                                         for k, v in claims.items()) + ")" if claims else ""
            parts.append(text)
    # the server's word, as opposed to the ESTALE alice's read reported: a client can make up its own
    parts.append(f"NFS4ERR_STALE replies {phase.get('stale_replies', 0)}")
    if phase.get("delay_replies"):
        parts.append(f"NFS4ERR_DELAY replies {phase['delay_replies']}")
    if describe_attrs(phase):
        parts.append(describe_attrs(phase))
    return " · ".join(parts)


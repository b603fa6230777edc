"""Decoding a capture into per-client operation counts (pure, on tshark's field output)."""
import pytest

from lab import capture

CLIENTS = {"192.168.200.11": "alice", "192.168.200.12": "bob"}
SERVER = "192.168.200.10"
# time, src, dst, rpc.msgtyp, nfs.opcode, nfs.open.claim_type, nfs.nfsstat4 (tshark -T fields, aggregator ",")
FIELDS = "\n".join("\t".join(row) for row in [
    ("99.0", "192.168.200.11", SERVER, "0", "22,18,9", "4", ""),            # before: OPEN by handle
    ("99.1", SERVER, "192.168.200.11", "1", "22,18,9", "", "0,0,0,0"),
    ("100.5", "192.168.200.11", SERVER, "0", "22,18,10,9", "0", ""),        # after: OPEN by name
    ("100.6", SERVER, "192.168.200.11", "1", "22,18", "", "70,0,70"),        # … answered NFS4ERR_STALE
    ("101.0", "192.168.200.11", SERVER, "0,0", "22,25,22,4", "", ""),      # two calls in one frame: READ, CLOSE
    ("101.2", "192.168.200.12", SERVER, "0", "22,15,9", "", ""),            # bob: LOOKUP 1.2 s after
    ("101.25", SERVER, "192.168.200.12", "1", "22,15,9", "", "10008,0,10008"),
    ("101.3", "10.0.0.9", SERVER, "0", "22,9", "", ""),                     # not a lab client: ignored
    ("garbage",),
])


def test_counts_per_client_and_phase():
    s = capture.summarise(FIELDS, CLIENTS, t0=100.0)
    before, after = s["alice"]["before"], s["alice"]["after"]
    assert before["ops"] == {"GETATTR": 1, "OPEN": 1, "PUTFH": 1} and before["open_claims"] == {"FH": 1}
    assert before["open_by_name"] == 0 and before["calls"] == 1
    assert after["calls"] == 3
    assert after["ops"] == {"CLOSE": 1, "GETATTR": 1, "GETFH": 1, "OPEN": 1, "PUTFH": 3, "READ": 1}
    assert after["open_by_name"] == 1 and after["stale_replies"] == 1
    assert s["bob"]["after"]["ops"] == {"GETATTR": 1, "LOOKUP": 1, "PUTFH": 1}
    assert s["bob"]["after"]["delay_replies"] == 1 and s["bob"]["after"]["first_s"]["LOOKUP"] == pytest.approx(1.2)
    assert capture.describe(s["bob"]["after"]) == \
        "LOOKUP 1 (first at +1.2s) · GETATTR 1 · NFS4ERR_STALE replies 0 · NFS4ERR_DELAY replies 1"
    assert set(s) == {"alice", "bob"}


def test_describe_names_open_claims_and_stale_replies():
    s = capture.summarise(FIELDS, CLIENTS, t0=100.0)
    assert capture.describe(s["alice"]["after"]) == \
        "OPEN 1 (by name 1) · GETATTR 1 · READ 1 · CLOSE 1 · NFS4ERR_STALE replies 1"
    assert capture.describe(s["alice"]["before"]) == "OPEN 1 (CLAIM_FH 1) · GETATTR 1 · NFS4ERR_STALE replies 0"


def test_server_interface_is_found_by_network():
    domiflist = (" vnet3   network   nfslab-ab12-mgmt   virtio   52:54:00:00:00:01\n"
                 " vnet4   network   nfslab-ab12-nfs    virtio   52:54:00:00:00:02\n")
    assert capture.server_interface(domiflist, "nfslab-ab12-nfs") == "vnet4"
    with pytest.raises(Exception, match="no interface on network nfslab-zz-nfs"):
        capture.server_interface(domiflist, "nfslab-zz-nfs")

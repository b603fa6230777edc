"""One topology per kernel: server + alice + bob.

Lifecycle (molecule-style): plan (pure `Topology` value, plan.py) → reserve a slot and state file
(resources.py) → create (networks, `vagrant up`) → snapshot "booted" → revert between cells → destroy (live.py).
Every libvirt object is named `nfslab-<lab id>-…` and recorded in the topology's state file before it is created,
so `lab clean` removes it after a crash (resources.py `destroy_recorded`); statefile.py lists the state file's
keys. lab/kernellab.py boots one on a kernel.
"""
from .live import LiveTopology, NetnsVagrant, SshTarget, parse_ssh_config
from .plan import (ALICE, BASE_CMDLINE, BOB, HOST_OCTET, MAX_SLOTS, SERVER, SNAPSHOT, KernelFiles, Machine, Network,
                   Topology, network_xml, networks_for_slot, new_lab_id, plan, render_vagrantfile)
from .resources import (Reservation, allocate_slot, box_upload_guard, destroy_recorded, pool_volumes, remove_domain,
                        reserve)
from .statefile import TopologyState, TopologyStateFile, read_state, recorded_dirs, state_file

__all__ = ["ALICE", "BASE_CMDLINE", "BOB", "HOST_OCTET", "MAX_SLOTS", "SERVER", "SNAPSHOT", "KernelFiles",
           "LiveTopology", "Machine", "Network", "NetnsVagrant", "Reservation", "SshTarget", "Topology",
           "TopologyState", "TopologyStateFile", "allocate_slot", "box_upload_guard", "destroy_recorded", "network_xml", "networks_for_slot", "new_lab_id",
           "parse_ssh_config", "plan", "pool_volumes", "read_state", "recorded_dirs", "remove_domain", "render_vagrantfile", "reserve",
           "state_file"]

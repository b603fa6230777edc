#!/bin/sh
# nfslab: make a CentOS/RHEL box a lab client running 3.10.0-862.11.6.el7.x86_64 (rendered by lab/distro.py).
# The lab's VMs have no network: the host fetched kernel-3.10.0-862.11.6.el7 and Vagrant uploaded it to /tmp/nfslab-packages/.
set -eu
if ! command -v mount.nfs >/dev/null 2>&1 && [ ! -x /sbin/mount.nfs ]; then
  echo "nfslab: the box has no NFS client (nfs-utils), and the VMs have no network to install it" >&2
  exit 1
fi
# from the uploaded file only: no repository is reachable
yum install -y -q --disablerepo='*' /tmp/nfslab-packages/*.rpm
grubby --set-default /boot/vmlinuz-3.10.0-862.11.6.el7.x86_64
grubby --default-kernel | grep -q '3.10.0-862.11.6.el7.x86_64' || { echo "nfslab: 3.10.0-862.11.6.el7.x86_64 is not the default kernel" >&2; exit 1; }
install -d -m 700 /root/.ssh
grep -qF 'ssh-ed25519 AAAAtest nfslab' /root/.ssh/authorized_keys 2>/dev/null || echo 'ssh-ed25519 AAAAtest nfslab' >> /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/' /etc/ssh/sshd_config
echo "nfslab: 3.10.0-862.11.6.el7.x86_64 installed; reload the VM to boot it"

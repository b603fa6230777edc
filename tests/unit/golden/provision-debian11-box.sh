#!/bin/sh
# nfslab: make a Debian/Ubuntu box a lab client running 5.10.0-30-amd64 (rendered by lab/distro.py).
# The lab's VMs have no network: the host fetched linux-image-5.10.0-30-amd64 and Vagrant uploaded it to /tmp/nfslab-packages/.
set -eu
export DEBIAN_FRONTEND=noninteractive
if ! command -v mount.nfs >/dev/null 2>&1 && [ ! -x /sbin/mount.nfs ]; then
  echo "nfslab: the box has no NFS client (nfs-common), and the VMs have no network to install it" >&2
  exit 1
fi
# from the uploaded file only; a box's own apt timers may hold the dpkg lock for a while after boot
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 /tmp/nfslab-packages/*.deb
if [ ! -e /boot/vmlinuz-5.10.0-30-amd64 ]; then
  echo "nfslab: installing linux-image-5.10.0-30-amd64 gave no /boot/vmlinuz-5.10.0-30-amd64" >&2
  exit 1
fi
# boot exactly this kernel: the submenu entry GRUB generates for it, in a file read after every other setting
uuid=$(grub-probe --target=fs_uuid /)
entry="gnulinux-advanced-$uuid>gnulinux-5.10.0-30-amd64-advanced-$uuid"
mkdir -p /etc/default/grub.d
echo "GRUB_DEFAULT=\"$entry\"" > /etc/default/grub.d/99-nfslab-kernel.cfg
update-grub
if ! grep -qF "'gnulinux-5.10.0-30-amd64-advanced-$uuid'" /boot/grub/grub.cfg \
   || ! grep -qF "set default=\"$entry\"" /boot/grub/grub.cfg; then
  echo "nfslab: /boot/grub/grub.cfg does not boot 5.10.0-30-amd64 by default" >&2
  exit 1
fi
install -d -m 700 /root/.ssh
grep -qF 'ssh-ed25519 AAAAtest nfslab' /root/.ssh/authorized_keys 2>/dev/null || echo 'ssh-ed25519 AAAAtest nfslab' >> /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/' /etc/ssh/sshd_config
echo "nfslab: 5.10.0-30-amd64 installed and GRUB's default; reload the VM to boot it"

#!/bin/sh
# nfslab: make a Debian/Ubuntu box a lab client running 4.4.0-130-generic (rendered by lab/distro.py).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q nfs-common linux-image-4.4.0-130-generic
# boot exactly this kernel: the submenu entry GRUB generates for it
entry="gnulinux-advanced-$(grub-probe --target=fs_uuid /)>gnulinux-4.4.0-130-generic-advanced-$(grub-probe --target=fs_uuid /)"
sed -i "s/^GRUB_DEFAULT=.*/GRUB_DEFAULT=\"$entry\"/" /etc/default/grub
update-grub
install -d -m 700 /root/.ssh
grep -qF 'ssh-ed25519 AAAAtest nfslab' /root/.ssh/authorized_keys 2>/dev/null || echo 'ssh-ed25519 AAAAtest nfslab' >> /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/' /etc/ssh/sshd_config
echo "nfslab: 4.4.0-130-generic installed; reload the VM to boot it"

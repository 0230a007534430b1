#!/usr/bin/env bash
# Installs the Debian tools the interop tests use (tshark; for the kernel-ESP tests in a QEMU VM:
# qemu, busybox, cpio, Debian's stock kernel; for the NAT lab: iproute2, nftables, conntrack, tcpdump;
# curl for the metrics tests; postgresql for the PostgreSQL store tests; Kamailio 5.6 with its IMS modules as a foreign P-CSCF in the VM), as root and only when
# missing. Without root or apt-get it only says what is missing: those tests then skip with a message.
set -u
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have_cmd tshark || need+=(tshark)
have_cmd tcpdump || need+=(tcpdump)
have_cmd ip || need+=(iproute2)
have_cmd nft || need+=(nftables)
have_cmd conntrack || need+=(conntrack)
have_cmd sysctl || need+=(procps)
# The metrics tests scrape /metrics with a real curl; the PostgreSQL tests start a throw-away server.
have_cmd curl || need+=(curl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
have_cmd qemu-system-x86_64 || need+=(qemu-system-x86)
have_cmd cpio || need+=(cpio)
# The VM's initramfs needs a *static* busybox (the dynamic one cannot run before the host root is mounted).
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
# The guest kernel: any Debian amd64 image with its modules (the VM tests boot the newest one).
kernel_ok=no
for k in /boot/vmlinuz-*-amd64; do
  [ -e "$k" ] && [ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && kernel_ok=yes
done
[ "$kernel_ok" = yes ] || need+=(linux-image-amd64)
# Kamailio's P-CSCF (ims_ipsec_pcscf) for test/kernel/kamailio.test.ts; the guest runs the host's copy.
have_cmd kamailio || need+=(kamailio)
ls /usr/lib/*/kamailio/modules/ims_ipsec_pcscf.so >/dev/null 2>&1 || need+=(kamailio-ims-modules)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-sysdeps: missing ${need[*]} (not root or no apt-get): the tests that need them will skip" >&2
  exit 0
fi
echo "install-sysdeps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# INITRD=No: Debian's kernel postinst would otherwise build an initrd (~1 min) that the VM never uses.
export INITRD=No
apt-get update -qq >/dev/null 2>&1
# One package at a time, so one that fails (e.g. not in this release) does not stop the others.
for p in "${need[@]}"; do
  apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 \
    || echo "install-sysdeps: apt-get install $p failed; the tests that need it will skip" >&2
done
exit 0

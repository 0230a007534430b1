#!/usr/bin/env bash
# Installs the Debian tools the interop tests use (tshark), when we are root and they are missing.
# Without root or apt-get it only says what is missing: those tests then skip with a message.
set -u
need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-sysdeps: missing ${need[*]} (not root or no apt-get): the tests that need them will skip" >&2
  exit 0
fi
echo "install-sysdeps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || echo "install-sysdeps: apt-get failed; the tests that need ${need[*]} will skip" >&2
exit 0

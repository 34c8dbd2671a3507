#!/usr/bin/env bash
# Install the .deb into a minimal Debian root (debootstrap, no Python) and run its self-test there.
# Usage (as root): packaging/linux/check_in_minimal_root.sh dist/hearth_*.deb MODEL.gguf [ROOT]
set -euo pipefail
deb="$(realpath "$1")"; model="$(realpath "$2")"; root="${3:-/tmp/hearth-minroot}"
if [ ! -x "$root/bin/sh" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi
cp "$deb" "$root/tmp/hearth.deb"
cp "$model" "$root/tmp/model.gguf"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc"' EXIT
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -qq && apt-get install -y -qq /tmp/hearth.deb >/dev/null'
if chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin sh -c 'command -v python3 || command -v python'; then
  echo "this root has a Python; the check wants none" >&2; exit 1
fi
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root hearth --self-test --model /tmp/model.gguf

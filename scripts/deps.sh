#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install what building and testing vhost-blk needs on Debian 12, skipping
# the install when everything is present already (repeated runs are quick).
set -eu

PKGS="
linux-image-amd64 linux-headers-amd64 linux-source-6.1
linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12
build-essential pkg-config bc flex bison libelf-dev libssl-dev dwarves
kmod cpio xz-utils busybox-static qemu-system-x86 qemu-utils
sparse libnl-3-dev libnl-genl-3-dev python3-yaml python3-jsonschema fio util-linux e2fsprogs
dmsetup libvirt-clients xfsprogs
"

missing=
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

[ "$(id -u)" = 0 ] || { echo "deps: need root to install:$missing" >&2; exit 1; }
echo "deps: installing:$missing"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/tmp/vhost-blk-deps.log 2>&1 ||
	{ tail -20 /tmp/vhost-blk-deps.log >&2; echo "deps: apt-get install failed (log: /tmp/vhost-blk-deps.log)" >&2; exit 1; }
echo "deps: installed in $(($(date +%s) - start))s"

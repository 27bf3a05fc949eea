#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Build the end-to-end tests' level-2 guest initramfs for KVER at build time (on the host, where
# it takes a second; inside the TCG test VM the same work takes half a minute per test):
# busybox, virtio_blk/virtio_pci/ext4 modules, vblk_pattern, mkfs.ext4 and fsck.ext4 with their
# libraries, and guest.sh as the body. Rebuilt only when an input changed.
#
# usage: selftests/e2e/build-initrd.sh KVER OUT.gz PATTERN_BINARY
set -eu
kver=$1 out=$2 pattern=$3
dir=$(cd "$(dirname "$0")" && pwd -P)
L2_LIB_DIR=$(cd "$dir/../vm" && pwd -P)
# shellcheck source=../vm/l2-lib.sh
. "$L2_LIB_DIR/l2-lib.sh"
MODS="virtio_blk virtio_pci crc32c_generic ext4"
BINS="$pattern /usr/sbin/mkfs.ext4 /usr/sbin/fsck.ext4"

# shellcheck disable=SC2086,SC2046 # lists
want=$(
	echo "e2e-initrd 1 $kver $MODS $BINS"
	sha256sum /bin/busybox "$dir/guest.sh" "$L2_LIB_DIR/l2-lib.sh" "$L2_LIB_DIR/initramfs-lib.sh" \
		$BINS $(initramfs_module_list "$kver" $MODS)
)
if [ -s "$out" ] && [ -f "$out.inputs" ] && [ "$(cat "$out.inputs")" = "$want" ]; then
	exit 0
fi
mkdir -p "$(dirname "$out")"
body=$(mktemp)
trap 'rm -f "$body"' EXIT
{
	echo "PATTERN=$pattern"
	cat "$dir/guest.sh"
} >"$body"
# shellcheck disable=SC2086
L2_KVER=$kver L2_BINS=$BINS l2_build_initramfs "$out" "$body" $MODS
printf '%s\n' "$want" >"$out.inputs"

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Build the guest-level benchmark's level-2 initramfs for KVER on the host (make bench): busybox,
# virtio_blk, virtio_pci and virtio_rng, fio with its libraries (l2-lib.sh's L2_BINS copies a host binary
# and what ldd names for it), and l2-body.sh as the body. Rebuilt only when an input changed.
#
# usage: selftests/bench/build-l2-initrd.sh KVER OUT.gz
set -eu
kver=$1 out=$2
dir=$(cd "$(dirname "$0")" && pwd -P)
L2_LIB_DIR=$(cd "$dir/../vm" && pwd -P)
# shellcheck source=../vm/l2-lib.sh
. "$L2_LIB_DIR/l2-lib.sh"
# virtio_rng: fio blocks in getrandom() until the guest's RNG is seeded, ~20 s into a
# nested boot without one; the guest gets a virtio-rng-pci device.
MODS="virtio_blk virtio_pci virtio_rng"
FIO=$(command -v fio) || { echo "build-l2-initrd: no fio: run scripts/deps.sh" >&2; exit 1; }

# shellcheck disable=SC2086,SC2046 # lists
want=$(
	echo "bench-l2-initrd 2 $kver $MODS $FIO"
	sha256sum /bin/busybox "$dir/l2-body.sh" "$L2_LIB_DIR/l2-lib.sh" "$L2_LIB_DIR/initramfs-lib.sh" \
		"$FIO" $(initramfs_module_list "$kver" $MODS)
)
if [ -s "$out" ] && [ -f "$out.inputs" ] && [ "$(cat "$out.inputs")" = "$want" ]; then
	exit 0
fi
mkdir -p "$(dirname "$out")"
echo "  L2-INITRD $out"
# shellcheck disable=SC2086
L2_KVER=$kver L2_BINS=$FIO l2_build_initramfs "$out" "$dir/l2-body.sh" $MODS
printf '%s\n' "$want" >"$out.inputs"

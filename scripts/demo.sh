#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job (`make run`): boot a target kernel in a VM, load vhost_blk,
# start vhostblkctl serve on a ram disk and boot a real QEMU guest on it
# (scripts/demo-guest.sh); print what the guest did and the module's stats.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
kver=${1:?usage: demo.sh KVER}
out=$top/build/$kver/demo
rm -rf "$out"
"$top/selftests/vm/vmrun.sh" --kver "$kver" --out "$out" --timeout 1800 \
	--module "$top/build/$kver/kernel/vhost_blk.ko" -- "$top/scripts/demo-guest.sh" || rc=$?
echo "---- what happened in the VM (consoles and logs: $out/demo-guest.logs/) ----"
sed -n 's/^# //p; /^not ok/p' "$out/demo-guest.sh.tap"
exit "${rc:-0}"

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job (`make run`): boot a target kernel in a VM, load vhost_blk and
# show it serving a guest's requests.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
kver=${1:?usage: demo.sh KVER}
out=$top/build/$kver/demo
rm -rf "$out"
"$top/selftests/vm/vmrun.sh" --kver "$kver" --out "$out" \
	--module "$top/build/$kver/kernel/vhost_blk.ko" -- "$top/scripts/demo-guest.sh" || rc=$?
echo "---- guest output ----"
cat "$out/demo-guest.sh.tap"
exit "${rc:-0}"

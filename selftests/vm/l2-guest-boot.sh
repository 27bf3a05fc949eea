#!/bin/sh
# TAP test, run inside the vmrun VM: a level-2 guest boots with KVM (nested svm under TCG).
set -u
. "$(dirname "$0")/l2-lib.sh"

echo "TAP version 13"
echo "1..1"
reason=$(l2_kvm_ready 2>&1)
case $? in
0) ;;
2)
	echo "not ok 1 level-2 guest boots # $reason"
	exit 1
	;;
*)
	echo "ok 1 level-2 guest boots # SKIP $reason"
	exit 4
	;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The marker is computed in the guest, so only a guest that really ran can print it.
echo 'echo "l2-marker: $((6 * 7)) $(uname -r)"' >"$work/body.sh"
if ! l2_build_initramfs "$work/initrd.gz" "$work/body.sh"; then
	echo "not ok 1 level-2 guest boots # cannot build the initramfs"
	exit 1
fi
start=$(date +%s)
rc=0
L2_TIMEOUT=${L2_TIMEOUT:-900} l2_boot "$work/initrd.gz" "$work/console.log" || rc=$?
secs=$(($(date +%s) - start))
if grep -q "l2-marker: 42" "$work/console.log"; then
	echo "# level-2 boot took ${secs}s"
	echo "ok 1 level-2 guest boots"
	exit 0
fi
echo "# qemu exited $rc after ${secs}s; last console lines:"
tail -n 20 "$work/console.log" | sed 's/^/# /'
echo "not ok 1 level-2 guest boots"
exit 1

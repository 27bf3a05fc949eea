#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The debug-kernel lane (`make check-debug`, not part of `make check`): the
# kselftests, among them the fail-nth sweep (fail_nth_test), and a level-2
# guest boot, in a VM booted with the KASAN/KFENCE/lockdep/DEBUG_OBJECTS/
# kmemleak/fault-injection kernel of scripts/debug-kernel.sh. vmrun.sh
# fails the run on any report of those checkers in the kernel log and on
# anything a kmemleak scan finds after the module is unloaded.
# Expects the module and selftests built against that kernel (the Makefile
# target does it).
#
# usage: scripts/check-debug.sh DEBUG_KERNEL_DIR
set -u
top=$(cd "$(dirname "$0")/.." && pwd -P)
dir=${1:?usage: scripts/check-debug.sh DEBUG_KERNEL_DIR}
rel=$(cat "$dir/kernel.release") || exit 2
b=$top/build/$rel
out=$b/results
rm -rf "$out"
# Each test's timeout (kselftest settings beside the binaries): the stock
# lane's 600 s is too short for a KASAN kernel under TCG.
echo "timeout=${VBLK_DEBUG_TEST_TIMEOUT:-3000}" >"$b/selftests/vhost_blk/settings"
# The level-2 guest boots this same kernel: KASAN under nested KVM under
# TCG took 904 s in one run and did not finish in the stock 900 s in the
# next. A wrapper gives it more (vmrun passes no environment to the guest).
l2=$b/debug-lane
l2_timeout=${VBLK_DEBUG_L2_TIMEOUT:-2400}
mkdir -p "$l2"
cat >"$l2/l2-guest-boot.sh" <<EOS
#!/bin/sh
export L2_TIMEOUT=$l2_timeout
exec "$top/selftests/vm/l2-guest-boot.sh"
EOS
chmod +x "$l2/l2-guest-boot.sh"
echo "timeout=$((l2_timeout + 600))" >"$l2/settings"
t0=$(date +%s)
# KASAN under TCG: several times slower than the stock kernels' run.
"$top/selftests/vm/vmrun.sh" --kdir "$dir" --out "$out" --timeout "${VBLK_DEBUG_TIMEOUT:-7200}" \
	--module "$b/kernel/vhost_blk.ko" -- \
	"$b"/selftests/vhost_blk/*_test \
	"$l2/l2-guest-boot.sh"
rc=$?
echo "[$rel] debug VM run took $(($(date +%s) - t0))s"
# The sweep's counts, for the record.
grep -h '^# fail' "$out/fail_nth_test.tap" 2>/dev/null | sed 's/^/    /'
exit $rc

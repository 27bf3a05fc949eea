#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The project's test run (what `make check` and .ci/run execute): once on
# the host, the vhost-user protocol fuzzer (build/tools/vu_test); then for
# each target kernel:
#   - static checks of the kernel code: checkpatch --strict, sparse, W=1
#   - the kselftests in a VM booted with that kernel (module loaded, dmesg
#     checked for warnings, module unload checked at the end)
#   - a level-2 guest boot inside that VM and the libvirt XML check
#   - the end-to-end tests (selftests/e2e: real QEMU guests on vhostblkctl
#     serve), each in its own VM boot, rerun once after an emulation fault
# and ends with one line: "N passed, N failed, N skipped". Exits non-zero on
# any failure. Expects `make all` to have run.
#
# usage: scripts/run-tests.sh KVER...
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
[ $# -gt 0 ] || { echo "usage: $0 KVER..." >&2; exit 2; }

passed=0 failed=0 skipped=0
failures=

now() { date +%s; }

# One static check as one test result.
static_check() {
	local kver=$1 what=$2 log=build/$1/$2.out

	if make -s --no-print-directory KVER="$kver" "$what" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "[$kver] $what: ok"
	else
		failed=$((failed + 1))
		failures="$failures $kver:$what"
		echo "[$kver] $what: FAILED"
		sed 's/^/    /' "$log" | tail -20
	fi
}

# Host-side: the vhost-user protocol fuzzer and the serve handler against a
# mock device (seeded by the date; the seed is printed for a rerun).
host_test() {
	local what=$1 log=build/$1.out
	shift

	if "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "[host] $what: ok ($(grep -c '^ok' "$log") parts, $(sed -n 's/^# \([0-9]* checks\).*/\1/p' "$log"))"
	else
		failed=$((failed + 1))
		failures="$failures host:$what"
		echo "[host] $what: FAILED"
		sed 's/^/    /' "$log" | grep -v '^    ok' | tail -20
	fi
}
host_test vu_test build/tools/vu_test "$(date +%Y%m%d)"
# The emulation-fault classifier that may rerun an end-to-end test (below).
host_test emu-fault selftests/e2e/emu-fault-test.sh

# The end-to-end tests with real QEMU guests (level 2, KVM inside the TCG VM) run after the
# kselftests, each in its own level-1 boot: a nested-emulation crash then costs one test, and a
# test that fails for a reason selftests/e2e/emu-fault.sh recognises as the emulator's (a
# level-1 oops in KVM or entry code from TCG's text patching, a silent reset of the level-1 VM
# while a nested guest was booting, a nested guest that died before it was served a request)
# gets up to two reruns, each in a fresh boot, announced by a "RETRY" line with
# the evidence. Everything else, and a third emulation fault in a row, fails the run.
# Inside a test, a level-2 guest that the emulation ends before its /init is booted again (lib.sh's
# guest_boot, "# E2E-GUEST-REBOOT" lines, listed at the end); nothing of the test had run in it.
# E2E=none leaves them out (make check-quick). The libvirt XML check and l2-guest-boot run in the
# main boot either way.
. "$top/selftests/e2e/emu-fault.sh"
e2e_tests=()
[ "${E2E:-all}" != all ] || e2e_tests=("$top"/selftests/e2e/e2e-data.sh "$top"/selftests/e2e/e2e-restart.sh \
	"$top"/selftests/e2e/e2e-multi.sh "$top"/selftests/e2e/e2e-hotplug.sh \
	"$top"/selftests/e2e/e2e-powercut.sh)
retries=
reboots=

# vm_count KVER OUT RC WHAT: add a vmrun.sh boot's summary to the totals.
vm_count() {
	local kver=$1 out=$2 rc=$3 what=$4 vm_passed=0 vm_failed=0 vm_skipped=0
	if [ -f "$out/summary" ]; then
		vm_passed=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' "$out/summary")
		vm_failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$out/summary")
		vm_skipped=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' "$out/summary")
		passed=$((passed + vm_passed))
		failed=$((failed + vm_failed))
		skipped=$((skipped + vm_skipped))
		[ "$vm_failed" = 0 ] || failures="$failures $kver:$what"
	fi
	if [ "$rc" -ne 0 ] && { [ ! -f "$out/summary" ] || [ "$vm_failed" = 0 ]; }; then
		# The VM itself failed (boot, timeout): count it.
		failed=$((failed + 1))
		failures="$failures $kver:$what-run"
	fi
}

# e2e_run KVER TEST: TEST alone in a fresh boot; up to twice more while the emulator broke it.
e2e_run() {
	local kver=$1 t=$2 name=${2##*/} b=$top/build/$1 out rc reason
	out=$b/results-${name%.sh}
	rm -rf "$out" "$out".retry*
	t0=$(now)
	selftests/vm/vmrun.sh --kver "$kver" --out "$out" --timeout 1800 \
		--module "$b/kernel/vhost_blk.ko" -- "$t"
	rc=$?
	# Up to two reruns: the nested emulation's faults come in runs on a quiet host.
	for n in 1 2; do
		[ $rc -ne 0 ] || break
		reason=$(e2e_emulation_fault "$out" "$name") || break
		echo "RETRY $name [$kver]: $reason (results of the failed boot: $out)"
		retries="$retries $kver:$name"
		out=$b/results-${name%.sh}.retry$n
		rm -rf "$out"
		selftests/vm/vmrun.sh --kver "$kver" --out "$out" --timeout 1800 \
			--module "$b/kernel/vhost_blk.ko" -- "$t"
		rc=$?
	done
	echo "[$kver] $name boot took $(($(now) - t0))s"
	for f in "$b/results-${name%.sh}"/*.tap "$b/results-${name%.sh}".retry*/*.tap; do
		[ -f "$f" ] || continue
		while read -r line; do
			echo "[$kver] $name: ${line#\# }"
			reboots="$reboots $kver:$name"
		done < <(grep '^# E2E-GUEST-REBOOT ' "$f")
	done
	vm_count "$kver" "$out" $rc "${name%.sh}"
}

for kver in "$@"; do
	t0=$(now)
	static_check "$kver" checkpatch
	static_check "$kver" sparse
	static_check "$kver" w1
	echo "[$kver] static checks took $(($(now) - t0))s"

	b=$top/build/$kver
	out=$b/results
	rm -rf "$out"
	t0=$(now)
	# Every test selftests/vhost_blk/Makefile built, a short level-2 boot
	# and the libvirt XML check; on a busy 2-core host this takes longer
	# than vmrun's default 1200 s.
	selftests/vm/vmrun.sh --kver "$kver" --out "$out" --timeout 3600 \
		--module "$b/kernel/vhost_blk.ko" -- \
		"$b"/selftests/vhost_blk/*_test \
		"$top"/selftests/vm/l2-guest-boot.sh \
		"$top"/selftests/e2e/e2e-libvirt.sh
	rc=$?
	echo "[$kver] VM run took $(($(now) - t0))s"
	vm_count "$kver" "$out" $rc vm
	for t in "${e2e_tests[@]}"; do
		e2e_run "$kver" "$t"
	done
done

[ -z "$retries" ] || echo "rerun after an emulation fault:$retries"
[ -z "$reboots" ] || echo "level-2 guests booted again after the emulation ended them before /init:$reboots"
[ -z "$failures" ] || echo "failed:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: for each target kernel, boot the VM once and run both levels
# of the benchmark (selftests/bench/guest-bench.sh). Data plane: the same
# virtio-blk requests through /dev/vhost-blk, vhostblkctl serve and
# qemu-storage-daemon (as shipped and with poll-max-ns=0), and fio on the raw
# device, on brd, null_blk and scsi_debug. Guest level: fio in a level-2
# guest on vhostblkctl serve, qemu-storage-daemon and QEMU's own virtio-blk
# (aio=native and io_uring). Prints the tables per kernel and leaves
# results.json and results.md in build/bench/<time>/.
#
# Settings (environment, passed into the VM): BENCH_TIME (seconds per cell,
# default 2), BENCH_REPS (3), BENCH_DEVS, BENCH_JOBS, BENCH_BACKENDS,
# BENCH_POLL_US (the vhost-blk-poll back-end's busyloop timeout, 50),
# BENCH_L2_BACKENDS, BENCH_L2_DEVS, BENCH_L2_JOBS, BENCH_L2_SMP,
# BENCH_L2_MEM, BENCH_L2_TRIES (boots per guest-level cell, 2), BENCH_ACCEL
# (tcg or kvm), BENCH_SMP (vCPUs, 2), BENCH_MEM (MiB, 2048), BENCH_TIMEOUT
# (seconds per kernel, 3600).
#
# usage: scripts/bench.sh KVER...
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
[ $# -gt 0 ] || { echo "usage: $0 KVER..." >&2; exit 2; }

dir=$top/build/bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"
start=$(date +%s)
rc=0
for kver in "$@"; do
	out=$dir/$kver
	mkdir -p "$out"
	{
		echo "BENCH_TIME=${BENCH_TIME:-2}"
		echo "BENCH_REPS=${BENCH_REPS:-3}"
		for v in BENCH_DEVS BENCH_JOBS BENCH_BACKENDS BENCH_RANGE_MB BENCH_POLL_US \
			BENCH_ONLY_brd BENCH_ONLY_null_blk BENCH_ONLY_scsi_debug \
			BENCH_L2_BACKENDS BENCH_L2_DEVS BENCH_L2_JOBS BENCH_L2_SMP BENCH_L2_MEM BENCH_L2_TRIES; do
			[ -z "${!v+set}" ] || printf '%s=%q\n' "$v" "${!v}"
		done
	} >"$out/bench.conf"
	t0=$(date +%s)
	# The level-2 guest's initramfs (fio and its libraries): packed here in seconds, where
	# the TCG VM would take minutes.
	selftests/bench/build-l2-initrd.sh "$kver" "build/$kver/bench/l2-initrd.gz" ||
		echo "bench: [$kver] no level-2 initramfs: the guest level is skipped"
	selftests/vm/vmrun.sh --kver "$kver" --out "$out" --timeout "${BENCH_TIMEOUT:-3600}" \
		--accel "${BENCH_ACCEL:-tcg}" --smp "${BENCH_SMP:-2}" --mem "${BENCH_MEM:-2048}" \
		--module "build/$kver/kernel/vhost_blk.ko" -- selftests/bench/guest-bench.sh ||
		{ rc=1; echo "bench: [$kver] the VM run failed; see $out"; }
	grep -h '^bench: ' "$out/guest-bench.sh.tap" 2>/dev/null | grep -E 'FAILED|skipped|died' | sed "s/^/[$kver] /"
	echo "bench: [$kver] took $(($(date +%s) - t0))s"
done
/usr/bin/python3 scripts/bench-report.py "$dir" || rc=1
echo "bench: total $(($(date +%s) - start))s for $# kernel(s)"
exit $rc

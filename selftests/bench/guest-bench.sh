#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the vmrun VM (see scripts/bench.sh): the data-plane benchmark
# matrix on this kernel. For each backing device and workload, every
# repetition runs each back-end once in turn (vhost-blk, qemu-storage-daemon,
# vhostblkctl serve if built, fio on the raw device), so drift hits all alike.
# Results: one JSON object per cell in $VMRUN_OUT/bench/cells.jsonl, fio's
# own JSON beside it. Settings come from $VMRUN_OUT/bench.conf (shell
# assignments, optional): BENCH_TIME BENCH_REPS BENCH_DEVS BENCH_JOBS ...
set -u

SELF=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$SELF/../.." && pwd -P)
KVER=$(uname -r)
OUT=${VMRUN_OUT:?run me through selftests/vm/vmrun.sh}/bench
TOOL=$REPO/build/$KVER/bench/vblk_bench
SERVE=$REPO/build/tools/vhostblkctl
NCPU=$(nproc)

BENCH_TIME=3		# seconds per cell
BENCH_REPS=3
BENCH_RANGE_MB=128	# the part of each device the jobs touch
BENCH_DEVS="brd null_blk scsi_debug"
# name:rw:bs:qd:queues (queues 0 = one per vCPU)
BENCH_JOBS="randread-qd1:randread:4096:1:1 randwrite-qd1:randwrite:4096:1:1
randread-qd32:randread:4096:32:1 randwrite-qd32:randwrite:4096:32:1
randread-mq:randread:4096:32:0 read-128k:read:131072:8:1 write-128k:write:131072:8:1"
# Per device, the jobs to run (empty: all). null_blk without memory has no
# data to stream; scsi_debug is slow under TCG; both levels and both kernels
# must fit in ~30 minutes: short lists (BENCH_ONLY_<dev>= runs them all).
# shellcheck disable=SC2034 # read through ${!only}
BENCH_ONLY_brd="randread-qd1 randwrite-qd1 randread-qd32 randwrite-qd32 randread-mq read-128k" \
	BENCH_ONLY_null_blk="randread-qd1 randwrite-qd32" \
	BENCH_ONLY_scsi_debug="randread-qd1 randwrite-qd32"
# qsd: qemu-storage-daemon as shipped (its iothread polls adaptively, up to poll-max-ns);
# qsd-poll0: the same with poll-max-ns=0, so its polling cannot steal the tool's vCPU.
# vhost-blk-poll: vhost-blk with every ring's busyloop timeout at BENCH_POLL_US
# (VHOST_SET_VRING_BUSYLOOP_TIMEOUT, vhostblkctl serve --poll-us).
BENCH_BACKENDS="vhost-blk vhost-blk-poll qsd qsd-poll0 serve fio"
BENCH_POLL_US=50
# The guest level (level-2 guests; its own settings BENCH_L2_*).
# shellcheck source=l2-bench.sh
. "$SELF/l2-bench.sh"
# shellcheck disable=SC1091 # written by scripts/bench.sh
[ -r "$VMRUN_OUT/bench.conf" ] && . "$VMRUN_OUT/bench.conf"

mkdir -p "$OUT"
CELLS=$OUT/cells.jsonl
: >"$CELLS"
RANGE=$((BENCH_RANGE_MB << 20))
failures=0

say() { echo "bench: $*"; }

[ -x "$TOOL" ] || { say "no $TOOL: run make first"; exit 1; }
if ! command -v qemu-storage-daemon >/dev/null; then
	say "no qemu-storage-daemon: the qsd column is skipped (scripts/deps.sh installs it)"
	BENCH_BACKENDS=${BENCH_BACKENDS//qsd-poll0/}
	BENCH_BACKENDS=${BENCH_BACKENDS//qsd/}
fi
if ! [ -x "$SERVE" ] || ! "$SERVE" serve --help >/dev/null 2>&1; then
	say "no 'vhostblkctl serve' in $SERVE: the serve column is skipped"
	BENCH_BACKENDS=${BENCH_BACKENDS/serve/}
fi
command -v fio >/dev/null || { say "no fio: the raw column is skipped"; BENCH_BACKENDS=${BENCH_BACKENDS/fio/}; }

# ---- backing devices: set up, print the path ----
dev_brd() {
	modprobe brd rd_nr=1 rd_size=$((BENCH_RANGE_MB * 1024)) || return 1
	# brd allocates pages on first write: reads of holes would be free.
	dd if=/dev/zero of=/dev/ram0 bs=1M count="$BENCH_RANGE_MB" oflag=direct status=none || return 1
	echo /dev/ram0
}

dev_null_blk() {
	# Module-parameter devices are not memory backed: pure overhead.
	modprobe null_blk nr_devices=1 gb=1 submit_queues="$NCPU" || return 1
	echo /dev/nullb0
}

dev_scsi_debug() {
	local b
	# delay=0: answer at once; the queue still has blk-mq, a scheduler and wbt.
	# Without udev nothing loads the disk driver for us.
	modprobe sd_mod && modprobe scsi_debug dev_size_mb="$BENCH_RANGE_MB" delay=0 || return 1
	for _ in $(seq 50); do
		for b in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/*; do
			[ -e "$b" ] && [ -b "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
		done
		sleep 0.1
	done
	return 1
}

dev_remove() {
	case $1 in
	brd) rmmod brd ;;
	null_blk) rmmod null_blk ;;
	scsi_debug) rmmod scsi_debug ;;
	esac
}

# Queue settings, for the record.
dev_info() {
	local q=/sys/block/${1##*/}/queue s w
	s=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$q/scheduler" 2>/dev/null)
	w=$(cat "$q/wbt_lat_usec" 2>/dev/null || echo n/a)
	echo "{\"dev\": \"$2\", \"path\": \"$1\", \"scheduler\": \"${s:-none}\", \"wbt_lat_usec\": \"$w\", \"nr_requests\": \"$(cat "$q/nr_requests" 2>/dev/null)\", \"rotational\": \"$(cat "$q/rotational" 2>/dev/null)\"}" >>"$OUT/devices.jsonl"
}

# ---- vhost-user back-ends: one of each per device, reconnected for every cell ----
declare -A VU_PID=()
vu_sock() { echo "/run/bench-$1.sock"; }

# vu_start NAME DEV: start the daemon NAME (qsd, serve) on DEV unless it runs.
vu_start() {
	local sock pid
	sock=$(vu_sock "$1")
	pid=${VU_PID[$1]:-}
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		return 0
	fi
	[ -z "$pid" ] || say "$1 (pid $pid) died; restarting it"
	rm -f "$sock"
	case $1 in
	qsd | qsd-poll0)
		local poll=
		[ "$1" = qsd-poll0 ] && poll=,poll-max-ns=0
		qemu-storage-daemon \
			--object "iothread,id=iot0$poll" \
			--blockdev "driver=host_device,node-name=d0,filename=$2,cache.direct=on,aio=native" \
			--export "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$NCPU,logical-block-size=512,iothread=iot0" \
			>>"$OUT/$1.log" 2>&1 &
		;;
	serve)
		"$SERVE" serve --socket-path "$sock" --disk "$2" --num-queues "$NCPU" >>"$OUT/serve.log" 2>&1 &
		;;
	esac
	pid=$!
	VU_PID[$1]=$pid
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

vu_stop_all() {
	local n
	for n in "${!VU_PID[@]}"; do
		kill "${VU_PID[$n]}" 2>/dev/null
		wait "${VU_PID[$n]}" 2>/dev/null
		rm -f "$(vu_sock "$n")"
	done
	VU_PID=()
}

# ---- one cell ----
# cell DEV PATH JOB RW BS QD QUEUES REP BACKEND
cell() {
	local dev=$1 path=$2 job=$3 rw=$4 bs=$5 qd=$6 nq=$7 rep=$8 be=$9 res rc=0
	local tag="\"dev\": \"$dev\", \"job\": \"$job\", \"rep\": $rep, \"kver\": \"$KVER\""
	case $be in
	vhost-blk | vhost-blk-poll)
		local poll=0
		[ "$be" = vhost-blk-poll ] && poll=$BENCH_POLL_US
		res=$("$TOOL" --backend vhost-blk --disk "$path" --rw "$rw" --bs "$bs" --qd "$qd" \
			--queues "$nq" --time "$BENCH_TIME" --range "$RANGE" --poll-us "$poll" \
			2>>"$OUT/errors.log") || rc=$?
		;;
	qsd | qsd-poll0 | serve)
		if ! vu_start "$be" "$path"; then
			say "FAILED: $be does not start on $path (see $be.log)"
			failures=$((failures + 1))
			return
		fi
		res=$("$TOOL" --backend vhost-user --socket "$(vu_sock "$be")" --cpu-pid "${VU_PID[$be]}" --rw "$rw" \
			--bs "$bs" --qd "$qd" --queues "$nq" --time "$BENCH_TIME" --range "$RANGE" \
			2>>"$OUT/errors.log") || rc=$?
		;;
	fio)
		local f=$OUT/fio-$dev-$job-$rep.json
		fio --name="$job" --filename="$path" --ioengine=libaio --direct=1 --rw="$rw" --bs="$bs" \
			--iodepth="$qd" --numjobs="$nq" --size="$RANGE" --offset_increment=$((RANGE / nq)) \
			--time_based --runtime="$BENCH_TIME" --group_reporting --randrepeat=0 --eta=never \
			--output-format=json --output="$f" >/dev/null 2>>"$OUT/errors.log" || rc=$?
		res="{\"backend\": \"fio\", \"fio_json\": \"${f##*/}\", \"rw\": \"$rw\", \"bs\": $bs, \"qd\": $qd, \"queues\": $nq}"
		;;
	esac
	if [ "$rc" -ne 0 ] || [ -z "$res" ]; then
		say "FAILED: $dev $job rep $rep $be (exit $rc; see errors.log)"
		failures=$((failures + 1))
		echo "{$tag, \"backend\": \"$be\", \"failed\": true}" >>"$CELLS"
		return
	fi
	# The back-end's own label (qsd, serve) instead of the transport's.
	echo "{$tag, \"label\": \"$be\", ${res#\{}" >>"$CELLS"
}

start=$(date +%s)
say "kernel $KVER, $NCPU vCPUs, ${BENCH_TIME}s cells x $BENCH_REPS, backends: $BENCH_BACKENDS"
for dev in $BENCH_DEVS; do
	path=$("dev_$dev") || { say "FAILED: cannot set up $dev"; failures=$((failures + 1)); continue; }
	dev_info "$path" "$dev"
	jobs=$BENCH_JOBS
	only=BENCH_ONLY_$dev
	if [ -n "${!only:-}" ]; then
		jobs=$(for j in $BENCH_JOBS; do
			case " ${!only} " in *" ${j%%:*} "*) echo "$j" ;; esac
		done)
	fi
	for j in $jobs; do
		IFS=: read -r job rw bs qd nq <<<"$j"
		[ "$nq" = 0 ] && nq=$NCPU
		say "$dev $job ($(($(date +%s) - start))s)"
		for rep in $(seq "$BENCH_REPS"); do
			for be in $BENCH_BACKENDS; do
				cell "$dev" "$path" "$job" "$rw" "$bs" "$qd" "$nq" "$rep" "$be"
			done
		done
	done
	l2_run "$dev" "$path"
	vu_stop_all
	dev_remove "$dev"
done
say "done in $(($(date +%s) - start))s, $failures failed cells"
echo "$(($(date +%s) - start))" >"$OUT/seconds"
[ "$failures" -eq 0 ]

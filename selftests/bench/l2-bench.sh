# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
# The guest level of make bench, sourced by guest-bench.sh (inside the vmrun VM): fio in a
# level-2 guest under KVM, the same guest (initramfs, vCPUs, memory: a shared memfd for all)
# on the same device through each back-end:
#   serve        vhost-user-blk-pci, vhostblkctl serve (the in-kernel data path)
#   qsd          vhost-user-blk-pci, qemu-storage-daemon's export (defaults, with an iothread)
#   qemu-native  QEMU's own virtio-blk-pci, iothread, cache=none, aio=native
#   qemu-uring   the same with aio=io_uring
# One boot per back-end runs every job BENCH_REPS times, the jobs taking turns inside each
# repetition (l2-body.sh: one fio run, one process per job); results come back on the
# console as BENCHL2 lines and become "level": "guest" cells in cells.jsonl. A boot that dies
# (nested KVM under TCG does now and then) is tried once more, then recorded as failed with
# the reason, and the run goes on.
# Uses from guest-bench.sh: say, vu_start, vu_sock, VU_PID, OUT, CELLS, KVER, RANGE, BENCH_*.

L2_LIB_DIR=$REPO/selftests/vm
# shellcheck source=../vm/l2-lib.sh
. "$L2_LIB_DIR/l2-lib.sh"
L2_INITRD=$REPO/build/$KVER/bench/l2-initrd.gz

BENCH_L2_BACKENDS="serve qsd qemu-native qemu-uring"
BENCH_L2_DEVS="brd"
# name:rw:bs:qd:numjobs, run by one fio process each in the guest
BENCH_L2_JOBS="randread-qd1:randread:4096:1:1 randwrite-qd1:randwrite:4096:1:1
randread-qd32:randread:4096:32:1 randwrite-qd32:randwrite:4096:32:1"
BENCH_L2_SMP=1
BENCH_L2_MEM=512
BENCH_L2_TRIES=2

# l2_ready: why the guest level cannot run (and 1), or nothing (and 0).
l2_ready() {
	local why
	why=$(l2_kvm_ready) || { echo "$why"; return 1; }
	[ -s "$L2_INITRD" ] || { echo "no $L2_INITRD: make bench builds it"; return 1; }
}

# l2_device_args BACKEND PATH: qemu's arguments for the guest's disk (daemons started here).
l2_device_args() {
	local q=$BENCH_L2_SMP
	case $1 in
	serve | qsd)
		vu_start "$1" "$2" || return 1
		L2_ARGS=(-chardev "socket,id=vub,path=$(vu_sock "$1")"
			-device "vhost-user-blk-pci,chardev=vub,num-queues=$q")
		;;
	qemu-native | qemu-uring)
		# QEMU locks its image: no daemon may keep the device open (and none competes).
		vu_stop_all
		local aio=native
		[ "$1" = qemu-uring ] && aio=io_uring
		L2_ARGS=(-object "iothread,id=iot0"
			-drive "file=$2,if=none,id=d0,format=raw,cache=none,aio=$aio"
			-device "virtio-blk-pci,drive=d0,iothread=iot0,num-queues=$q")
		;;
	*) return 1 ;;
	esac
}

# l2_cells_from LOG DEV BACKEND: the console's BENCHL2 lines as cells; prints how many.
l2_cells_from() {
	tr -d '\r' <"$1" | sed -n 's/^.*\(BENCHL2 job=.*\)$/\1/p' |
		awk -v dev="$2" -v be="$3" -v kver="$KVER" -v cells="$CELLS" '
		{
			for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			sub(/%$/, "", v["usr"]); sub(/%$/, "", v["sys"])
			ios = v["iops"] * v["ms"] / 1000
			cpu = (v["usr"] + v["sys"]) / 100 * v["ms"] * 1000 * v["nj"]
			printf "{\"level\": \"guest\", \"dev\": \"%s\", \"job\": \"%s\", \"rep\": %d, " \
				"\"kver\": \"%s\", \"label\": \"%s\", \"rw\": \"%s\", \"bs\": %d, \"qd\": %d, " \
				"\"queues\": %d, \"iops\": %s, \"ios\": %d, \"p50_us\": %s, \"p99_us\": %s, " \
				"\"guest_cpu_us_per_io\": %s}\n", dev, v["job"], v["rep"], kver, be, v["rw"],
				v["bs"], v["qd"], v["nj"], v["iops"], ios, v["p50"], v["p99"],
				(ios > 0 ? cpu / ios : "null") >>cells
			n++
		}
		END { print n + 0 }'
}

# l2_why LOG QEMU_STATUS TIMEOUT: a one-line reason for a boot that brought back no results.
l2_why() {
	local last
	last=$(tr -d '\r' <"$1" | grep -E 'Kernel panic|BENCHL2-FAIL|KVM|rror|qemu-system' | tail -n 1)
	[ -n "$last" ] || last=$(tr -d '\r' <"$1" | grep -v '^[[:space:]]*$' | tail -n 1)
	if [ "$2" = 124 ]; then
		echo "timed out after ${3}s${last:+; last: $last}"
	else
		echo "qemu exited $2${last:+; last: $last}"
	fi
}

# l2_cell DEV PATH BACKEND: boot the guest on BACKEND, record its cells (or the failure).
l2_cell() {
	local dev=$1 path=$2 be=$3 log try rc n why jobs njobs tmo
	jobs=$(echo "$BENCH_L2_JOBS" | tr -s '[:space:]' ,)
	jobs=${jobs%,}
	njobs=$(echo "$BENCH_L2_JOBS" | wc -w)
	# Boot 30-200 s under TCG (a loaded host stalls nested guests for tens of seconds), fio's
	# start-up, then each job and repetition.
	tmo=$((600 + BENCH_REPS * njobs * (BENCH_TIME + 10)))
	for try in $(seq "$BENCH_L2_TRIES"); do
		log=$OUT/l2-$dev-$be-$try.console
		if ! l2_device_args "$be" "$path"; then
			why="$be does not start on $path"
			break
		fi
		rc=0
		L2_SHARED_MEM=1 L2_MEM_MB=$BENCH_L2_MEM L2_TIMEOUT=$tmo \
			L2_APPEND="loglevel=4 printk.devkmsg=on bench.jobs=$jobs bench.time=$BENCH_TIME bench.reps=$BENCH_REPS bench.range=$RANGE" \
			l2_boot "$L2_INITRD" "$log" -smp "$BENCH_L2_SMP" -device virtio-rng-pci \
			"${L2_ARGS[@]}" || rc=$?
		n=$(l2_cells_from "$log" "$dev" "$be")
		grep -q 'BENCHL2-DONE' "$log" && [ "$n" -gt 0 ] && return 0
		why=$(l2_why "$log" "$rc" "$tmo")
		# Partial results are kept; a boot that gave none is tried again.
		[ "$n" -eq 0 ] || break
		say "guest level: $dev $be boot $try failed: $why"
	done
	say "FAILED: guest level $dev $be: $why (console: ${log##*/})"
	failures=$((failures + 1))
	why=${why//\"/}
	why=${why//\\/}
	echo "{\"level\": \"guest\", \"dev\": \"$dev\", \"kver\": \"$KVER\", \"label\": \"$be\", \"failed\": true, \"reason\": \"$why\"}" >>"$CELLS"
}

# l2_have BACKEND: is its program here?
l2_have() {
	case $1 in
	serve) [ -x "$SERVE" ] && "$SERVE" serve --help >/dev/null 2>&1 ;;
	qsd) command -v qemu-storage-daemon >/dev/null ;;
	*) command -v qemu-system-x86_64 >/dev/null ;;
	esac
}

# l2_run DEV PATH: the guest level on one device, if it is in BENCH_L2_DEVS.
l2_run() {
	local be why t0
	case " $BENCH_L2_DEVS " in *" $1 "*) ;; *) return 0 ;; esac
	if ! why=$(l2_ready); then
		say "guest level skipped: $why"
		return 0
	fi
	for be in $BENCH_L2_BACKENDS; do
		l2_have "$be" || { say "guest level: no program for $be; skipped"; continue; }
		t0=$(date +%s)
		l2_cell "$1" "$2" "$be"
		say "guest level: $1 $be ($(($(date +%s) - t0))s)"
	done
}

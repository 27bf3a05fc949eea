# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0
# Body of the guest-level benchmark's level-2 guest (busybox sh, run by l2-lib's /init, which
# powers off when this returns; built into the initramfs by build-l2-initrd.sh with fio). The
# kernel command line says what to run:
#   bench.jobs=NAME:RW:BS:QD:NUMJOBS,...  bench.time=SECONDS  bench.reps=N  bench.range=BYTES
# One fio run does it all: every repetition runs every job once, the jobs taking turns
# (stonewall). fio forks one process per job, and its own start-up (exec, loading some 60
# libraries under nested emulation: 10-20 s) is paid once and measured by no job. /dev/vda,
# libaio, direct=1. fio prints its results when it ends; then each result
# goes out as one line through /dev/kmsg (the kernel prints it on the console; a busy serial
# tty stalls a writer, printk does not):
#   BENCHL2 job=NAME rep=N rw=RW bs=BS qd=QD nj=NUMJOBS iops=X p50=US p99=US usr=% sys=% ms=MS
#   BENCHL2-FAIL why
# and the last line is BENCHL2-DONE.

DISK=/dev/vda
JOBS=''
TIME=2
REPS=3
RANGE=$((128 << 20))
read -r cmdline </proc/cmdline
for w in $cmdline; do
	case $w in
	bench.jobs=*) JOBS=$(echo "${w#bench.jobs=}" | tr , ' ') ;;
	bench.time=*) TIME=${w#bench.time=} ;;
	bench.reps=*) REPS=${w#bench.reps=} ;;
	bench.range=*) RANGE=${w#bench.range=} ;;
	esac
done

# Booted with loglevel=4 so the boot is quiet; the results must reach the console.
echo 7 >/proc/sys/kernel/printk
msg() { echo "$*" >/dev/kmsg; }
up() { cut -d' ' -f1 /proc/uptime; }

# fio's terse format, version 3, one line per job (each is its own group): field 3 the name
# (NAME.REP),
# 8 read IOPS, 9 read runtime (ms), 24 and 30 read clat p50 and p99 (us); 49, 50, 65, 71 the
# same for writes; 88 and 89 user and system CPU.
report() {
	awk -F';' -v jobs="$JOBS" '
		BEGIN {
			n = split(jobs, j, " ")
			for (i = 1; i <= n; i++) {
				split(j[i], f, ":")
				def[f[1]] = f[2] " " f[3] " " f[4] " " f[5]
			}
		}
		$1 == 3 {
			rep = $3
			sub(/.*\./, "", rep)
			name = substr($3, 1, length($3) - length(rep) - 1)
			if (!(name in def))
				next
			split(def[name], d, " ")
			o = d[1] ~ /write/ ? 41 : 0
			split($(24 + o), p50, "=")
			split($(30 + o), p99, "=")
			printf "BENCHL2 job=%s rep=%s rw=%s bs=%s qd=%s nj=%s iops=%s p50=%s p99=%s usr=%s sys=%s ms=%s err=%s\n",
				name, rep, d[1], d[2], d[3], d[4], $(8 + o), p50[2], p99[2], $88, $89, $(9 + o), $5
		}'
}

# jobfile: every job of bench.jobs, one after the other, REPS times (named NAME.REP).
jobfile() {
	printf '[global]\nfilename=%s\nioengine=libaio\ndirect=1\nsize=%s\n' $DISK "$RANGE"
	printf 'time_based=1\nruntime=%s\ngroup_reporting=1\nrandrepeat=0\nstonewall=1\n' "$TIME"
	_r=1
	while [ "$_r" -le "$REPS" ]; do
		for _j in $JOBS; do
			echo "$_j" | awk -F: -v range="$RANGE" -v rep="$_r" '{
				printf "[%s.%s]\nrw=%s\nbs=%s\niodepth=%s\nnumjobs=%s\noffset_increment=%d\n",
					$1, rep, $2, $3, $4, $5, range / $5 }'
		done
		_r=$((_r + 1))
	done
}

# run_all: the fio run, one line per job and repetition to the console.
run_all() {
	_rc=0
	_t0=$(up)
	fio --eta=never --output-format=terse --terse-version=3 --output=/tmp/fio.out \
		/tmp/jobs.fio >/tmp/fio.err 2>&1 || _rc=$?
	report </tmp/fio.out >/tmp/lines
	while read -r _line; do msg "$_line"; done </tmp/lines
	msg "BENCHL2-FIO exited $_rc after $(awk -v a="$_t0" -v b="$(up)" 'BEGIN { print b - a }') s"
	[ $_rc -eq 0 ] || msg "BENCHL2-FAIL fio exited $_rc: $(tail -n 1 /tmp/fio.err)"
}

_i=0
while [ ! -b $DISK ] && [ $_i -lt 100 ]; do
	sleep 0.1
	_i=$((_i + 1))
done
if [ ! -b $DISK ]; then
	msg "BENCHL2-FAIL no $DISK after 10 s"
else
	set -- /sys/block/vda/mq/*
	msg "BENCHL2-DISK $(cat /sys/block/vda/size) sectors, $# queues, $(nproc) vCPUs, at $(up) s"
	jobfile >/tmp/jobs.fio
	run_all
fi
msg "BENCHL2-DONE"

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# End-to-end power cut, issue 12: does what a real guest's ext4 was told is durable survive?
#
# The disk is a loop device over dm-log-writes over a brd ram disk (the log on another), served by
# vhostblkctl serve to a level-2 guest whose case (guest.sh case_powercut) makes ext4 on it, then
# runs a seeded workload of file creates, appends and renames with fsync and sync at points. Each
# time an fsync or sync returned, the guest lists the files whose contents are durable by then
# with their md5 and waits; the host sets a dm-log-writes mark there (dmsetup message) and keeps
# the list. dm-log-writes logs a write only once a flush sent after its completion completed (a
# FUA write at its completion) and a mark when it is set, so the log replayed up to any flush or
# mark is what a disk with a volatile write cache would hold had the power gone there.
#
# After the guest powers off, lw-replay (build/e2e, over selftests/vhost_blk/lw_replay.c) replays
# the log onto a scratch ram disk and stops at every flush and every mark. At each flush after
# the file system was made, a copy of the scratch disk must mount (ext4 recovers its journal),
# unmount and pass fsck.ext4 -fn; at each mark, the files the guest declared durable must have
# exactly the declared contents too (and names it removed must be gone).
#
# The test must be able to fail; two controls show it does:
# - once in the workload the guest declares a file it wrote but did not fsync yet (E2E-NOTYET):
#   at that mark the check must find it missing;
# - a second guest runs on `serve --cache unsafe`, where guest flushes complete without reaching
#   the device: the host fsyncs the disk once after mkfs (the log's only flush), so the file
#   system mounts at every mark, and the check must find files the guest fsynced and declared
#   durable missing or stale at some mark (the test passes when it does).
# PC_MODES (default "none unsafe") lists the cache modes to run; writethrough or directsync
# can be added (the guest then sees no write cache: every write is stable at its completion).
# PC_STEPS (8; 4 at most in unsafe mode) sets the workload's length, PC_SEED its seed.
PC_MB=8 # the logged device: the guest's whole disk
DM=e2epcut
DATA=/dev/ram0 LOG=/dev/ram1 REPLAY=/dev/ram2 COPY=/dev/ram3

# ---- the check lw-replay runs at every stop (this script with --check) ----
# lw-replay has copied the replayed disk to $COPY. Environment: LW_KIND, LW_MARK, LW_INDEX,
# LW_WRITES from lw-replay; PC_MNT; PC_RUN, the run's dir: marks/mK (the guest's list for mark
# mK: NAME MD5, "control NAME MD5" for the file declared before its fsync) and results (one line
# a stop: KIND INDEX MARK OUTCOME). Prints why a stop fails; exits 1 then. Kept lean: it runs
# some fifty times under TCG.
pc_check() {
	_res=$PC_RUN/results
	case $LW_KIND in
	flush)
		# Flushes before mark m0 are mkfs.ext4's own: no file system yet.
		[ -e "$PC_RUN/m0.seen" ] || { echo "flush $LW_INDEX - mkfs" >>"$_res"; return 0; }
		# Nothing written since the last stop: the state checked there.
		[ "$LW_WRITES" != 0 ] || { echo "flush $LW_INDEX - ok same-as-previous" >>"$_res"; return 0; }
		_list=/dev/null
		;;
	mark)
		_list=$PC_RUN/marks/$LW_MARK
		[ -f "$_list" ] || { echo "mark $LW_INDEX $LW_MARK FAIL the host set no such mark" | tee -a "$_res"; return 1; }
		: >"$PC_RUN/m0.seen"
		;;
	*) _list=$PC_RUN/marks/end ;;
	esac
	_why=$(pc_check_fs "$_list")
	_r=$?
	# "mark 12 m3 ok files=4 control-caught=1"
	echo "$LW_KIND $LW_INDEX ${LW_MARK:--} $_why" >>"$_res"
	[ $_r = 0 ] || echo "$LW_KIND at entry $LW_INDEX ${LW_MARK:-}: $_why"
	return $_r
}

# pc_check_fs LIST: mount the copy, check LIST's files, unmount, fsck; print the outcome.
pc_check_fs() {
	_m=$PC_MNT
	if ! _out=$(mount -t ext4 "$COPY" "$_m" 2>&1); then
		echo "FAIL does not mount: $_out"
		return 1
	fi
	# One md5sum for every name that exists: "MD5  NAME" lines.
	_names=$(while read -r _a _b _c; do
		if [ "$_a" = control ]; then echo "$_b"; else echo "$_a"; fi
	done <"$1")
	# shellcheck disable=SC2086 # names f0 .. f3, tmp, notyet: no blanks
	_sums="
$(cd "$_m" && md5sum $_names 2>/dev/null)
"
	_files=0 _caught=0 _bad=
	while read -r _a _b _c; do
		if [ "$_a" = control ]; then
			# The control: declared before its fsync, so it must not be there yet.
			case $_sums in
			*"
$_c  $_b
"*) _bad="$_bad; control $_b is there before its fsync" ;;
			*) _caught=$((_caught + 1)) ;;
			esac
			continue
		fi
		_files=$((_files + 1))
		if [ "$_b" = - ]; then
			[ ! -e "$_m/$_a" ] || _bad="$_bad; $_a exists, removed before the mark"
			continue
		fi
		case $_sums in
		*"
$_b  $_a
"*) ;;
		*)
			if [ -f "$_m/$_a" ]; then _bad="$_bad; $_a has other contents ($(wc -c <"$_m/$_a") bytes)"
			else _bad="$_bad; $_a missing"; fi
			;;
		esac
	done <"$1"
	umount "$_m" || { echo "FAIL umount failed"; return 1; }
	if ! _out=$(fsck.ext4 -fn "$COPY" 2>&1); then
		echo "FAIL fsck.ext4 -fn: $(printf '%s' "$_out" | grep -v '^Pass\|^e2fsck' | head -n 3 | tr '\n' ' ')"
		return 1
	fi
	if [ -n "$_bad" ]; then
		echo "FAIL files=$_files control-caught=$_caught${_bad}"
		return 1
	fi
	echo "ok files=$_files control-caught=$_caught"
}

if [ "${1:-}" = --check ]; then
	set -u
	pc_check
	exit
fi

# ---- the host side ----
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

LWR=$E2E_REPO/build/e2e/lw-replay
PC_MODES=${PC_MODES:-none unsafe}
PC_STEPS=${PC_STEPS:-8}
PC_SEED=${PC_SEED:-1201}

# pc_marks G RUN MODE: serve guest G's durability points until it powers off: for each
# "E2E-STATE durable-K", keep its E2E-DURABLE/E2E-NOTYET lines as RUN/marks/mK (NAME MD5,
# "control NAME MD5"), set mark mK, let the guest go on. 0 when the guest reported its
# workload done, 1 when not.
pc_marks() {
	_g=$1 _run=$2 _pm=$3 _k=0
	mkdir -p "$_run/marks"
	while :; do
		poll "$E2E_WAIT" pc_next "$_g" "$_k"
		case $? in
		0) ;;
		*)
			guest_console "$_g" | grep -q '^E2E-\(OK\|FAIL\) pc-workload' && return 0
			echo "guest $_g never reached durability point $_k" | diag
			note_gone "$_g"
			guest_diag "$_g"
			daemon_log "$E2E_DAEMON_OF"
			kernel_diag
			return 1
			;;
		esac
		guest_console "$_g" | sed -n "s/^E2E-DURABLE $_k //p; s/^E2E-NOTYET $_k /control /p" \
			>"$_run/marks/m$_k"
		# Unsafe: guest flushes never reach the disk, so the host flushes it once, here (fsync
		# of the block device sends the page cache's writes, then a flush): the new file
		# system is durable, and what the guest fsyncs from now on is what the marks check.
		if [ "$_pm" = unsafe ] && [ "$_k" = 0 ] &&
			! dd if=/dev/null of="$PC_DEV" conv=notrunc,fsync status=none; then
			echo "fsync of $PC_DEV after mkfs failed" | diag
			return 1
		fi
		if ! _out=$(dmsetup message $DM 0 mark "m$_k" 2>&1); then
			echo "dmsetup message $DM 0 mark m$_k failed: $_out" | diag
			return 1
		fi
		guest_go "$_g" || { echo "guest $_g did not take its go after mark m$_k" | diag; return 1; }
		_k=$((_k + 1))
	done
}

# The guest's next point, or (2) it finished its workload or is gone.
pc_next() {
	_c=$(guest_console "$1")
	printf '%s\n' "$_c" | grep -q "^E2E-STATE durable-$2 " && return 0
	printf '%s\n' "$_c" | grep -q '^E2E-\(OK\|FAIL\) pc-workload\|^E2E-DONE' && return 2
	guest_running "$1" || return 2
	return 1
}

# pc_dm_up: zeroed data and log, the log-writes target over them.
pc_dm_up() {
	dd if=/dev/zero of=$DATA bs=1M count=$PC_MB oflag=direct status=none &&
		dd if=/dev/zero of=$LOG bs=1M count=1 oflag=direct status=none || return 1
	echo "0 $((PC_MB * 2048)) log-writes $DATA $LOG" | dmsetup create $DM || return 1
	E2E_DM=$DM
	# The kernel's own node (devtmpfs): without udev there is no /dev/mapper/NAME.
	PC_DM_DEV=/dev/$(dmsetup info -c --noheadings -o blkdevname $DM) && [ -b "$PC_DM_DEV" ] || return 1
	# The daemon gets a loop device over it: dm-log-writes logs a flush's writes when that
	# flush completes, so two flushes in flight at once (the guest's queues each send theirs)
	# can log older data after newer, a state no disk can be in. Loop is blk-mq, whose flush
	# machinery keeps one flush in flight below it, as a disk's queue does (powercut_test
	# does the same; Documentation/vhost-blk.rst).
	modprobe loop 2>/dev/null
	if ! PC_DEV=$(losetup --show -f --direct-io=on --sector-size 512 "$PC_DM_DEV"); then
		echo "no loop device over $PC_DM_DEV (losetup, loop module)" | diag
		pc_dm_down
		return 1
	fi
	E2E_LOOPS=$PC_DEV
}

# pc_dm_down: the loop device, then the target (which logs what was never flushed, then its
# end mark).
pc_dm_down() {
	if [ -n "${E2E_LOOPS:-}" ]; then
		losetup -d "$E2E_LOOPS" || return 1
		E2E_LOOPS=
	fi
	dmsetup remove --retry $DM || return 1
	E2E_DM=
}

# pc_run MODE: one guest on serve --cache MODE, its marks, then the replay with the checks.
# Leaves RUN/results (one line a stop), RUN/replay.out and RUN/daemon (the daemon's status).
pc_run() {
	_mode=$1 _run=$E2E_LOG/$1 _g=g-$1
	mkdir -p "$E2E_WORK/mnt" "$_run/marks"
	: >"$_run/results"
	echo "never started" >"$_run/daemon"
	if ! pc_dm_up; then
		echo "the dm-log-writes device over $DATA (log $LOG) could not be set up" >"$_run/setup"
		return 1
	fi
	E2E_DAEMON_OF=d-$_mode
	if ! E2E_CACHE=$_mode daemon_start "d-$_mode" "$PC_DEV"; then
		echo "the daemon (serve --cache $_mode on $PC_DEV) did not start" >"$_run/setup"
		pc_dm_down
		return 1
	fi
	# Unsafe only has to show a loss: a short workload does (the replay of its marks is quick).
	_steps=$PC_STEPS
	[ "$_mode" != unsafe ] || [ "$_steps" -le 4 ] || _steps=4
	E2E_APPEND="e2e.steps=$_steps" guest_boot "$_g" "d-$_mode" powercut "$PC_SEED"
	if ! pc_marks "$_g" "$_run" "$_mode" && guest_running "$_g"; then
		guest_kill "$_g"
	fi
	guest_wait "$_g" "$E2E_WAIT"
	# At the end: the guest's last list (it synced everything and unmounted).
	_last=$(find "$_run/marks" -type f -name 'm*' | wc -l)
	[ "$_last" = 0 ] || cp "$_run/marks/m$((_last - 1))" "$_run/marks/end"
	daemon_stop "d-$_mode"
	echo "$E2E_DAEMON_RC" >"$_run/daemon"
	if ! pc_dm_down; then
		echo "losetup -d $PC_DEV or dmsetup remove $DM failed after the guest: the log has no end" >"$_run/setup"
		return 1
	fi
	dd if=/dev/zero of=$REPLAY bs=1M count=$PC_MB oflag=direct status=none
	_t=$(now)
	PC_RUN=$_run PC_MNT=$E2E_WORK/mnt "$LWR" $LOG $REPLAY --copy $COPY \
		--exec "sh '$E2E_DIR/e2e-powercut.sh' --check" >"$_run/replay.out" 2>&1
	echo "# $_mode: replay and checks took $(elapsed "$_t")s; $(tail -n 1 "$_run/replay.out")"
}

# pc_count RUN KIND WHAT: stops of KIND (flush, mark, end) whose outcome starts with WHAT.
pc_count() {
	awk -v k="$2" -v w="$3" '$1 == k && index($4, w) == 1' "$1/results" | wc -l
}

# pc_files RUN: files verified at marks and the end, summed.
pc_files() {
	sed -n 's/^\(mark\|end\) .* ok files=\([0-9]*\).*/\2/p' "$1/results" | awk '{ n += $1 } END { print n + 0 }'
}

# The guest's verdict on its workload and the daemon's exit: every mode.
pc_verdict_run() {
	_m=$1
	guest_check "g-$_m" pc-workload "$_m: guest: mkfs.ext4, seeded creates, appends, renames with fsync and sync"
	_rc=$(cat "$E2E_LOG/$_m/daemon")
	if [ "$_rc" = 0 ]; then tap_ok "$_m: daemon (serve --cache $_m) exits 0 on SIGTERM"
	else tap_fail "$_m: daemon (serve --cache $_m) exits 0 on SIGTERM: $_rc"; daemon_log "d-$_m"; fi
}

# A mode whose flushes reach the disk: no violation anywhere, and the control caught.
pc_verdict_good() {
	_m=$1 _run=$E2E_LOG/$1
	if guest_kernel_clean "g-$_m"; then tap_ok "$_m: guest kernel log has no I/O errors or warnings"
	else tap_fail "$_m: guest kernel log has no I/O errors or warnings"; fi
	_fl=$(($(pc_count "$_run" flush ok) + $(pc_count "$_run" flush FAIL)))
	_fb=$(pc_count "$_run" flush FAIL)
	_mk=$(($(pc_count "$_run" mark ok) + $(pc_count "$_run" mark FAIL) + $(pc_count "$_run" end ok) + $(pc_count "$_run" end FAIL)))
	_mb=$(($(pc_count "$_run" mark FAIL) + $(pc_count "$_run" end FAIL)))
	_mkfs=$(pc_count "$_run" flush mkfs)
	_caught=$(grep -c 'control-caught=[1-9]' "$_run/results")
	_want=$(find "$_run/marks" -type f | wc -l)
	if [ "$_fb" = 0 ] && [ "$_fl" = 0 ] && { [ "$_m" = writethrough ] || [ "$_m" = directsync ]; }; then
		tap_ok "$_m: no flush after mkfs to replay ($_mkfs during it): the guest sees no write cache, each write is stable when it completes"
	elif [ "$_fb" = 0 ] && [ "$_fl" -gt 0 ]; then
		tap_ok "$_m: replayed to each of $_fl flush points after mkfs ($_mkfs during it): the file system mounts (journal recovery), unmounts, fsck.ext4 -fn clean"
	else
		tap_fail "$_m: the file system mounts and passes fsck at every flush point: $_fb of $_fl failed"
		grep '^flush .* FAIL' "$_run/results" | head -n 5 | diag
	fi
	if [ "$_mb" = 0 ] && [ "$_mk" -gt 1 ] && [ "$_mk" = "$_want" ]; then
		tap_ok "$_m: at each of $_mk marks every file declared durable has its declared contents ($(pc_files "$_run") files verified)"
	else
		tap_fail "$_m: files declared durable at marks: $_mb of $_mk marks failed, $_want expected (the guest's and the end)"
		grep '^\(mark\|end\) .* FAIL' "$_run/results" | head -n 5 | diag
		tail -n 5 "$_run/replay.out" | diag
	fi
	if [ "$_caught" = 1 ]; then
		tap_ok "$_m: control: a file declared before its fsync is not there at its mark (the check catches a missing flush)"
	else
		tap_fail "$_m: control: a file declared before its fsync must be missing at exactly one mark: caught at $_caught"
	fi
}

# unsafe: guest flushes complete without reaching the disk. The log must hold the host's one
# flush (after mkfs) and no other, the file system must mount at every mark, and the check must
# find files the guest declared durable lost at some mark: it passes when it does.
pc_verdict_unsafe() {
	_run=$E2E_LOG/unsafe
	_fl=$(($(pc_count "$_run" flush ok) + $(pc_count "$_run" flush FAIL) + $(pc_count "$_run" flush mkfs)))
	_mb=$(pc_count "$_run" mark FAIL)
	_mk=$(($(pc_count "$_run" mark ok) + _mb))
	_nm=$(grep -c '^mark .* FAIL does not mount' "$_run/results")
	if [ "$_fl" = 1 ] && [ "$_mb" -gt 0 ] && [ "$_nm" = 0 ]; then
		tap_ok "unsafe: control: guest flushes dropped, the file system mounts at all $_mk marks, files declared durable are lost at $_mb"
		grep '^mark .* FAIL' "$_run/results" | sed -n '1p;$p' | diag
		echo "# unsafe: at the end, once the target logged what was never flushed: $(sed -n 's/^end [0-9]* [^ ]* //p' "$_run/results")"
	else
		tap_fail "unsafe: control: the check finds lost files: $_fl flushes in the log (1 expected), $_mb of $_mk marks failed, $_nm do not mount (0 expected)"
		diag <"$_run/results"
	fi
}

# Per mode: the guest, the daemon; with flushes also the guest's kernel log, flush points,
# marks and the in-guest control; unsafe: its control.
plan=0
for m in $PC_MODES; do
	case $m in
	unsafe) plan=$((plan + 3)) ;;
	*) plan=$((plan + 6)) ;;
	esac
done
e2e_setup $plan
t0=$(now)
[ -x "$LWR" ] || skip_all "$LWR is missing: run make"
modprobe dm-log-writes 2>/dev/null || skip_all "no dm-log-writes module (CONFIG_DM_LOG_WRITES)"
# The replay mounts ext4 here; mount did not load the module by itself in the test VM.
modprobe ext4 2>/dev/null || skip_all "no ext4 module for the replayed file system"
for d in $DATA $LOG $REPLAY $COPY; do
	[ "$(blockdev --getsize64 "$d" 2>/dev/null || echo 0)" -ge $((PC_MB << 20)) ] ||
		skip_all "$d is missing or smaller than $PC_MB MiB (lib.sh loads brd rd_nr=4 rd_size=16384)"
done
for m in $PC_MODES; do
	if ! pc_run "$m"; then
		n=6
		[ "$m" != unsafe ] || n=3
		while [ "$n" -gt 0 ]; do
			tap_fail "$m: not run: $(cat "$E2E_LOG/$m/setup" 2>/dev/null || echo "set-up failed")"
			n=$((n - 1))
		done
		continue
	fi
	pc_verdict_run "$m"
	if [ "$m" = unsafe ]; then pc_verdict_unsafe; else pc_verdict_good "$m"; fi
done
echo "# e2e-powercut took $(elapsed "$t0")s"
e2e_finish

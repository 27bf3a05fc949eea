# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0
# Body of the end-to-end tests' level-2 guest (busybox sh, run by l2-lib's /init, which powers
# off when this returns). build-initrd.sh prepends PATTERN=<path of vblk_pattern in the initramfs>.
# The kernel command line says what to do: e2e.case=NAME e2e.seed=N. Each check prints one line
#   E2E-OK <check> [detail]   or   E2E-FAIL <check> <why>
# and the host side (lib.sh) waits for and judges these lines; E2E-STATE lines tell the host
# where the guest is when the host has to act (kill qemu, restart the daemon, grow the disk).
# The disk is /dev/vda (vhost-user-blk-pci); /dev/ttyS1, when the host gives one, carries the
# host's "go" lines back to the guest.

DISK=/dev/vda
CASE=
SEED=1
read -r cmdline </proc/cmdline
for w in $cmdline; do
	case $w in
	e2e.case=*) CASE=${w#e2e.case=} ;;
	e2e.seed=*) SEED=${w#e2e.seed=} ;;
	esac
done

up() { cut -d' ' -f1 /proc/uptime; }
ok() { echo "E2E-OK $* [$(up)s]"; }
fail() { echo "E2E-FAIL $* [$(up)s]"; }

# check NAME CMD...: run CMD (its output goes to the console) and report it as NAME.
check() {
	_name=$1
	shift
	if "$@"; then ok "$_name"; else fail "$_name" "($* exited $?)"; return 1; fi
}

# Wait for the host's next line on ttyS1 (the host writes "go").
wait_host() {
	echo "E2E-STATE $1 [$(up)s]"
	read -r _line </dev/ttyS1
	echo "e2e-guest: host said: $_line"
}

pattern() {
	"$PATTERN" "$@"
}

# Let the driver bind; the disk appears asynchronously after the module loads.
wait_disk() {
	_i=0
	while [ ! -b $DISK ] && [ $_i -lt 600 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ -b $DISK ] || { fail disk "no $DISK after 60 s"; ls /sys/block; return 1; }
	set -- /sys/block/vda/mq/*
	ok disk "$(cat /sys/block/vda/size) sectors, $# queues," \
		"ro=$(cat /sys/block/vda/ro) cache=$(cat /sys/block/vda/queue/write_cache)" \
		"cache_type=$(cat /sys/block/vda/cache_type 2>/dev/null)" \
		"features=$(cat /sys/block/vda/device/features)"
}

# The first 4 KiB carry SEED's pattern only after the first pass wrote the disk: the host clears
# them before the boot, so this tells the pass after a reboot from the first one.
second_pass() {
	pattern verify $DISK --seed "$SEED" --length 4096 --plan 4k:1 >/dev/null 2>&1
}

fs_check() {
	mkfs.ext4 -q -F -b 1024 $DISK 8M || return 1
	mkdir -p /mnt/fs && mount -t ext4 $DISK /mnt/fs || return 1
	_i=0
	while [ $_i -lt 8 ]; do
		dd if=/dev/urandom of=/mnt/fs/f$_i bs=64k count=$((_i + 1)) 2>/dev/null || return 1
		_i=$((_i + 1))
	done
	(cd /mnt/fs && md5sum f* >/mnt/fs/sums) && sync && umount /mnt/fs || return 1
	mount -t ext4 -o ro $DISK /mnt/fs && (cd /mnt/fs && md5sum -c -s sums) || return 1
	umount /mnt/fs && fsck.ext4 -fn $DISK
}

# Unbind the driver and bind it again: the device is reset (QEMU stops the back-end: ENABLE 0,
# GET_VRING_BASE) and started again (SET_VRING_BASE with the index it got back).
rebind() {
	_dev=$(basename "$(readlink /sys/block/vda/device)")
	echo "$_dev" >/sys/bus/virtio/drivers/virtio_blk/unbind || return 1
	_i=0
	while [ -b $DISK ] && [ $_i -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ ! -b $DISK ] || { echo "$DISK still there after unbind"; return 1; }
	echo "$_dev" >/sys/bus/virtio/drivers/virtio_blk/bind || return 1
	wait_disk
}

# The guest turns its write cache off (VIRTIO_BLK_F_CONFIG_WCE: a config write of the wce byte,
# which QEMU passes to the back end as SET_CONFIG and keeps in its copy of the config) and reads
# it back: from here on every write must be stable before it completes.
wce_off() {
	_attr=/sys/block/vda/cache_type
	[ -w $_attr ] || { echo "no $_attr"; return 1; }
	echo "write through" >$_attr || return 1
	_now=$(cat $_attr)
	echo "e2e-guest: cache_type now: $_now"
	[ "$_now" = "write through" ]
}

# Cases 1+2: pattern at several sizes and depths, FLUSH, reboot, pattern again, then ext4.
case_data() {
	if ! second_pass; then
		check pattern-write pattern write $DISK --seed "$SEED" --flush || return
		check pattern-verify pattern verify $DISK --seed "$SEED" --plan 2k:2,8k:4,256k:1,4m:2 || return
		wait_host counted
		echo "E2E-STATE rebooting"
		sync
		reboot -f
		sleep 30
		fail reboot "reboot -f returned"
		return
	fi
	ok reboot "second pass"
	check pattern-after-reboot pattern verify $DISK --seed "$SEED" --plan 1m:2 || return
	check rebind rebind || return
	check pattern-after-rebind pattern verify $DISK --seed "$SEED" --plan 64k:4 || return
	check wce-off wce_off || return
	check ext4 fs_check
}

# Case 3, first qemu: write and flush, then idle until the host kills qemu.
case_persist() {
	check pattern-write pattern write $DISK --seed "$SEED" --flush || return
	echo "E2E-STATE written"
	while :; do sleep 10; done
}

# Case 3, second qemu, then case 4: data intact, then the daemon restarted twice under us.
case_restart() {
	check data-after-qemu-kill pattern verify $DISK --seed "$SEED" --plan 64k:4 || return
	check pattern-write-2 pattern write $DISK --seed $((SEED + 1)) --flush --plan 16k:2 || return
	wait_host idle-1
	check data-after-daemon-restart pattern verify $DISK --seed $((SEED + 1)) --plan 128k:2 || return
	check pattern-write-3 pattern write $DISK --seed $((SEED + 2)) --flush --plan 4k:4 || return
	wait_host idle-2
	check data-after-daemon-kill pattern verify $DISK --seed $((SEED + 2)) --plan 1m:1 || return
}

# Case 6: a read-only disk reads fine and refuses writes.
case_ro() {
	if [ "$(cat /sys/block/vda/ro)" = 1 ]; then ok ro-flag; else fail ro-flag "/sys/block/vda/ro is not 1"; fi
	check ro-read pattern verify $DISK --seed "$SEED" --plan 64k:2
	# Linux refuses writes to a read-only block device with EPERM (blkdev_write_iter).
	_out=$(pattern write-fails $DISK)
	echo "$_out"
	case $_out in
	*"write refused: EPERM"*) ok ro-write-refused "with EPERM" ;;
	*) fail ro-write-refused "expected the write to fail with EPERM" ;;
	esac
	if dd if=/dev/zero of=$DISK bs=4k count=1 conv=fsync 2>/dev/null; then
		fail ro-buffered-write "a buffered write to $DISK succeeded"
	else
		ok ro-buffered-write
	fi
	# The host reads the device's counters while it still exists.
	[ -e /dev/ttyS1 ] && wait_host ro-done
}

# Case 7: the host grows the disk under us; the new size shows without a restart.
case_grow() {
	_old=$(cat /sys/block/vda/size)
	check grow-write pattern write $DISK --seed "$SEED" --flush --plan 64k:2 || return
	echo "E2E-STATE size $_old"
	_i=0
	while [ "$(cat /sys/block/vda/size)" = "$_old" ] && [ $_i -lt 600 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	_new=$(cat /sys/block/vda/size)
	if [ "$_new" = "$_old" ]; then
		fail grow-size "still $_old sectors after 60 s"
		return
	fi
	ok grow-size "$_old -> $_new sectors"
	check grow-old-data pattern verify $DISK --seed "$SEED" --length $((_old * 512)) --plan 1m:1
	check grow-new-area pattern write $DISK --seed $((SEED + 1)) --offset $((_old * 512)) --flush
	check grow-new-verify pattern verify $DISK --seed $((SEED + 1)) --offset $((_old * 512))
}

# Memory blocks (sysfs names), one a line.
mem_blocks() {
	for _b in /sys/devices/system/memory/memory[0-9]*; do
		[ -e "$_b" ] && echo "${_b##*/}"
	done
}

# Memory hotplug: the host plugs a DIMM (QEMU sends the back end a new memory table) while a
# verify loop runs, the guest onlines it (movable), does O_DIRECT I/O with every buffer in the
# DIMM, then the host unplugs it (another table) and the data reads back.
case_hotplug() {
	check pattern-write pattern write $DISK --seed "$SEED" --flush --plan 64k:2 || return
	mem_blocks >/tmp/blocks.before
	rm -f /tmp/bg.stop /tmp/bg.fail /tmp/bg.n
	(
		_n=0
		while [ ! -e /tmp/bg.stop ]; do
			pattern verify $DISK --seed "$SEED" --plan 16k:2,256k:1 >/tmp/bg.log 2>&1 ||
				{ cat /tmp/bg.log; : >/tmp/bg.fail; break; }
			_n=$((_n + 1))
		done
		echo $_n >/tmp/bg.n
	) &
	_bg=$!
	wait_host plug
	# memhp_default_state=online_movable onlines it as it arrives; online what it did not.
	_i=0 _new=
	while [ $_i -lt 1500 ]; do
		_new=$(mem_blocks | grep -vxF -f /tmp/blocks.before)
		if [ -n "$_new" ]; then
			_off=0
			for _b in $_new; do
				_st=/sys/devices/system/memory/$_b/state
				[ "$(cat "$_st")" = online ] && continue
				echo online_movable >"$_st" 2>/dev/null
				_off=1
			done
			[ $_off = 0 ] && break
		fi
		sleep 0.2
		_i=$((_i + 1))
	done
	: >/tmp/bg.stop
	wait $_bg
	if [ -e /tmp/bg.fail ] || [ ! -s /tmp/bg.n ]; then
		fail hotplug-live-io "a verify pass failed while the DIMM was plugged"
	else
		ok hotplug-live-io "$(cat /tmp/bg.n) verify passes during the plug"
	fi
	if [ -z "$_new" ] || [ $_i -ge 1500 ]; then
		fail hotplug-online "no new memory block online within 300 s (new: ${_new:-none})"
		return
	fi
	_bs=$((0x$(cat /sys/devices/system/memory/block_size_bytes)))
	_lo=
	for _b in $_new; do
		_a=$((${_b#memory} * _bs))
		[ -n "$_lo" ] && [ "$_a" -ge "$_lo" ] || _lo=$_a
	done
	_lo=$(printf '0x%x' "$_lo")
	ok hotplug-online "$(echo "$_new" | wc -w) blocks from $_lo, $(grep -m1 MemTotal /proc/meminfo)"
	check hotplug-write pattern write $DISK --seed $((SEED + 1)) --flush --buf-above "$_lo" || return
	check hotplug-verify pattern verify $DISK --seed $((SEED + 1)) --buf-above "$_lo" --plan 4k:2,256k:2 || return
	echo "$_new" >/tmp/blocks.new
	wait_host unplug
	_i=0
	while mem_blocks | grep -qxF -f /tmp/blocks.new && [ $_i -lt 1500 ]; do
		sleep 0.2
		_i=$((_i + 1))
	done
	if mem_blocks | grep -qxF -f /tmp/blocks.new; then
		fail hotplug-removed "the DIMM's memory blocks are still there 300 s after the unplug request"
	else
		ok hotplug-removed
	fi
	check pattern-after-unplug pattern verify $DISK --seed $((SEED + 1)) --plan 1m:2
}

# Case 5's guests and the demo: write, flush, read back.
case_rw() {
	check pattern-write pattern write $DISK --seed "$SEED" --flush || return
	check pattern-verify pattern verify $DISK --seed "$SEED" --plan 32k:2,1m:1
}

# make run: visible I/O on the vhost-blk disk.
case_demo() {
	set -- /sys/block/vda/mq/*
	echo "demo: /dev/vda is $(($(cat /sys/block/vda/size) / 2048)) MiB, $# queues"
	check pattern-write pattern write $DISK --seed "$SEED" --flush || return
	check pattern-verify pattern verify $DISK --seed "$SEED" --plan 8k:4,1m:2 || return
	echo "demo: mkfs.ext4 /dev/vda; mount; write 8 files; umount; fsck"
	mkfs.ext4 -q -F $DISK && mkdir -p /mnt/fs && mount -t ext4 $DISK /mnt/fs || return
	_i=0
	while [ $_i -lt 8 ]; do
		dd if=/dev/urandom of=/mnt/fs/file$_i bs=64k count=8 2>/dev/null
		_i=$((_i + 1))
	done
	sync
	df -h /mnt/fs | sed 's/^/demo: /'
	md5sum /mnt/fs/file0 | sed 's/^/demo: /'
	umount /mnt/fs
	wait_host demo-stats
	check fsck fsck.ext4 -fn $DISK
}

# ---- Power cut (e2e-powercut.sh) ----
# ext4 on the whole disk, then a seeded workload of file creates, appends and renames with fsync
# and sync at points. Each time an fsync or sync returned, the guest lists every file whose
# contents are durable by then (E2E-DURABLE K NAME MD5, MD5 "-" for a name that must not exist),
# says "E2E-STATE durable-K" and waits while the host sets dm-log-writes mark mK. A file written
# since its last fsync is not listed: after a power cut it may hold either version. Once, the
# guest also lists a file it wrote but did not fsync yet (E2E-NOTYET): the host's check must
# find it missing at that mark, or the check could not catch a lost flush.
PC_MNT=/mnt/pc
PC_STATE=/tmp/pc.state # NAME MD5 durable|dirty, one file a line
PC_R=1
PC_K=0

# pc_rand N: RND in 0..N-1 from the seeded generator.
pc_rand() {
	PC_R=$(((PC_R * 1103515245 + 12345) % 2147483648))
	RND=$(((PC_R >> 8) % $1))
}

# pc_set NAME MD5 durable|dirty
pc_set() {
	grep -v "^$1 " $PC_STATE >$PC_STATE.new
	echo "$1 $2 $3" >>$PC_STATE.new
	mv $PC_STATE.new $PC_STATE
}

pc_md5() { md5sum <"$PC_MNT/$1" | cut -d' ' -f1; }

# pc_durable NAME...: these files' contents as they are now are durable.
pc_durable() {
	for _f in "$@"; do
		if [ -e "$PC_MNT/$_f" ]; then pc_set "$_f" "$(pc_md5 "$_f")" durable
		else pc_set "$_f" - durable; fi
	done
}

# pc_point [NOTYET_NAME]: declare what is durable, wait for the host's mark.
pc_point() {
	while read -r _f _m _s; do
		[ "$_s" = durable ] && echo "E2E-DURABLE $PC_K $_f $_m"
	done <$PC_STATE
	[ -z "${1:-}" ] || echo "E2E-NOTYET $PC_K $1 $(pc_md5 "$1")"
	wait_host "durable-$PC_K"
	PC_K=$((PC_K + 1))
}

# pc_write NAME new|append: 1 to 16 KiB of random data.
pc_write() {
	pc_rand 16
	if [ "$2" = new ]; then head -c $(((RND + 1) * 1024)) /dev/urandom >"$PC_MNT/$1"
	else head -c $(((RND + 1) * 1024)) /dev/urandom >>"$PC_MNT/$1"; fi || return 1
	pc_set "$1" x dirty
}

# One step of the workload on file f0..f3: 0 create or overwrite, 1 append, then fsync or not;
# 2 write a temporary file, fsync it, rename it over the file, fsync the directory; 3 sync.
pc_step() {
	pc_rand 4
	_f=f$RND
	pc_rand 4
	_op=$RND
	[ $_op = 1 ] && [ ! -e "$PC_MNT/$_f" ] && _op=0
	case $_op in
	0 | 1)
		_new=0
		[ -e "$PC_MNT/$_f" ] || _new=1
		if [ $_op = 0 ]; then pc_write "$_f" new; else pc_write "$_f" append; fi || return 1
		echo "e2e-guest: step $1: $_f: $(echo "write append" | cut -d' ' -f$((_op + 1)))"
		pc_rand 2
		[ $RND = 0 ] && return 0
		# A new name needs its directory synced too (POSIX; ext4 would not).
		if [ $_new = 1 ]; then sync "$PC_MNT/$_f" $PC_MNT; else sync "$PC_MNT/$_f"; fi || return 1
		pc_durable "$_f"
		;;
	2)
		echo "e2e-guest: step $1: replace $_f by rename"
		head -c $(((RND + 1) * 3072)) /dev/urandom >$PC_MNT/tmp &&
			sync $PC_MNT/tmp && mv $PC_MNT/tmp "$PC_MNT/$_f" && sync $PC_MNT || return 1
		pc_durable "$_f" tmp
		;;
	3)
		echo "e2e-guest: step $1: sync"
		sync || return 1
		while read -r _n _m _s; do pc_durable "$_n"; done <$PC_STATE
		;;
	esac
	pc_point
}

# The workload, STEPS steps; at step NOTYET a file written and not fsynced is declared.
pc_workload() {
	_steps=$1 _notyet=$2
	PC_R=$SEED
	: >$PC_STATE
	# Only fsync and sync make data durable: no periodic writeback, no timed journal commits.
	echo 0 >/proc/sys/vm/dirty_writeback_centisecs
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	mkfs.ext4 -q -F -b 1024 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 $DISK || return 1
	# mkfs.ext4 fsyncs the disk before it exits: the empty file system is durable.
	pc_point
	mkdir -p $PC_MNT && mount -t ext4 -o commit=3600 $DISK $PC_MNT || return 1
	_i=0
	while [ $_i -lt "$_steps" ]; do
		if [ $_i = "$_notyet" ]; then
			head -c 8192 /dev/urandom >$PC_MNT/notyet || return 1
			echo "e2e-guest: step $_i: notyet written, not synced"
			pc_point notyet
			sync $PC_MNT/notyet $PC_MNT || return 1
			pc_durable notyet
			pc_point
		fi
		pc_step $_i || return 1
		_i=$((_i + 1))
	done
	sync || return 1
	while read -r _n _m _s; do pc_durable "$_n"; done <$PC_STATE
	pc_point
	umount $PC_MNT
}

case_powercut() {
	_steps=12
	for w in $cmdline; do
		case $w in e2e.steps=*) _steps=${w#e2e.steps=} ;; esac
	done
	if pc_workload "$_steps" 2; then
		ok pc-workload "$_steps steps, $PC_K durability points"
	else
		fail pc-workload "a file system command failed after durability point $PC_K (console above)"
	fi
}

echo "e2e-guest: case=$CASE seed=$SEED kernel $(uname -r)"
if wait_disk; then
	case $CASE in
	data | persist | restart | ro | grow | rw | demo | hotplug | powercut) "case_$CASE" ;;
	*) fail case "unknown case '$CASE'" ;;
	esac
fi
echo "E2E-DONE $CASE"

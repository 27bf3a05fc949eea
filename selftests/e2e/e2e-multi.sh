#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# End-to-end, issue 15 cases 5, 6 and 7, as two guests running at once on two daemons:
#  - a read-only disk: reads return the pattern the host wrote, writes fail in the guest, and the
#    backing disk's checksum is unchanged afterwards, and the device counted reads and no writes;
#  - a grown disk: a dm-linear device over a brd, reloaded twice as large while the guest runs;
#    the guest sees the new size in sysfs without a restart and can use the new sectors.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

RO_DISK=/dev/ram2
BASE=/dev/ram3
DM=e2e-grow-$$
SEED=1701
e2e_setup 15
t0=$(now)

"$PATTERN" write $RO_DISK --seed $SEED --plan 1m:2 >/dev/null || skip_all "cannot write $RO_DISK"
sum_before=$(sha256sum <$RO_DISK)
half=$(($(blockdev --getsz $BASE) / 2))
modprobe dm-mod 2>/dev/null
dmsetup create $DM --table "0 $half linear $BASE 0" || skip_all "dmsetup create failed"
E2E_DM=$DM
# No udev in the test VM: /dev/mapper/NAME is not made, devtmpfs's /dev/dm-N is.
GROW=/dev/$(dmsetup info -c --noheadings -o blkdevname $DM)
[ -b "$GROW" ] || fail_all "no block device for dm table $DM ($GROW)"
daemon_start dro $RO_DISK ro || fail_all "the daemon did not start (log above)"
daemon_start dgr "$GROW" || fail_all "the daemon did not start (log above)"

# qemu-storage-daemon does not watch its disk: tell it over QMP, as an operator would.
qsd_resize() {
	python3 - "$1" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ({"execute": "qmp_capabilities"},
            {"execute": "block_resize", "arguments": {"node-name": "d0", "size": int(sys.argv[2])}}):
    f.write(json.dumps(cmd) + "\n")
    f.flush()
    r = json.loads(f.readline())
    while "event" in r:
        r = json.loads(f.readline())
    if "error" in r:
        sys.exit("QMP: %s" % r["error"])
PY
}

# The read-only device's counters (vhostblkctl -j stats), read while its guest waits at the end:
# the guest's reads, and no write request at all (the guest's block layer refuses writes to a
# read-only disk with EPERM before they reach the device).
ro_stats_check() {
	if [ "$E2E_BACKEND" != serve ]; then
		tap_skip "read-only disk: vhostblkctl -j stats counts reads and no writes" "the $E2E_BACKEND back end does not use /dev/vhost-blk"
		return
	fi
	read=$(guest_console gro | sed -n 's/^vblk_pattern: verify .* bytes=\([0-9]*\) .* OK$/\1/p' | head -n 1)
	if ! devs=$("$VBC" -j dev show 2>&1) || ! stats=$("$VBC" -j stats 2>&1); then
		tap_fail "read-only disk: vhostblkctl -j stats counts reads and no writes: vhostblkctl failed"
		printf '%s\n%s\n' "$devs" "$stats" | diag
		return
	fi
	echo "# vhostblkctl -j dev show: $devs"
	echo "# vhostblkctl -j stats: $stats"
	if why=$(python3 -c '
import json, sys
read, ro_name = int(sys.argv[1]), sys.argv[2]
devs = json.loads(sys.argv[3])["dev"]
stats = {d["id"]: d["queues"] for d in json.loads(sys.argv[4])["stats"]}
ro = [d for d in devs if d.get("backing", {}).get("name") == ro_name]
if len(ro) != 1:
    sys.exit("%d devices backed by %s, expected 1" % (len(ro), ro_name))
if not ro[0]["backing"].get("read_only"):
    sys.exit("the device on %s is not read-only" % ro_name)
t = {}
for q in stats[ro[0]["id"]]:
    for k, v in q.items():
        if isinstance(v, int):
            t[k] = t.get(k, 0) + v
bad = ["%s %d" % (k, t[k]) for k in ("req_out", "bytes_written", "req_flush", "req_discard",
       "req_write_zeroes", "status_ioerr", "req_invalid", "in_flight") if t.get(k)]
if t["bytes_read"] < read or not read:
    bad.append("bytes_read %d < the guest'"'"'s %d" % (t["bytes_read"], read))
print("; ".join(bad) if bad else "reads %d B in %d requests, no writes" % (t["bytes_read"], t["req_in"]))
sys.exit(1 if bad else 0)
' "${read:-0}" "${RO_DISK#/dev/}" "$devs" "$stats" 2>&1); then
		tap_ok "read-only disk: vhostblkctl -j stats counts reads and no writes: $why"
	else
		tap_fail "read-only disk: vhostblkctl -j stats counts reads and no writes: $why"
	fi
}

# The second guest is created once the first has reached its /init (guest_boot): two nested
# guests created and booting at the same moment is when the emulation reset one of them before
# or right after SeaBIOS (6.1). Both still run their disks at once.
guest_boot gro dro ro $SEED
guest_boot ggr dgr grow $((SEED + 10))
if wait_state ggr size "$E2E_WAIT"; then
	tg=$(now)
	if dmsetup suspend $DM && dmsetup reload $DM --table "0 $((half * 2)) linear $BASE 0" &&
		dmsetup resume $DM; then
		[ "$E2E_BACKEND" != qsd ] || qsd_resize "$E2E_WORK/dgr.qmp" $((half * 2 * 512)) 2>&1 | diag
	else
		echo "dmsetup could not grow $DM" | diag
	fi
fi
if wait_state gro ro-done "$E2E_WAIT"; then
	ro_stats_check
	guest_go gro
else
	tap_fail "read-only disk: vhostblkctl -j stats counts reads and no writes: the guest never got that far"
fi
guest_wait gro "$E2E_WAIT"
guest_wait ggr "$E2E_WAIT"
[ -z "${tg:-}" ] || echo "# the grown guest was done $(elapsed "$tg")s after the reload"
guest_check gro disk "two guests at once: read-only guest sees its disk"
guest_check ggr disk "two guests at once: growing guest sees its disk"
guest_check gro ro-flag "read-only disk: /sys/block/vda/ro is 1"
guest_check gro ro-read "read-only disk: reads return the host's pattern"
E2E_DAEMON_OF=dro guest_check gro ro-write-refused "read-only disk: an O_DIRECT write fails" &&
	guest_console gro | grep 'write-fails' | diag
guest_check gro ro-buffered-write "read-only disk: a buffered write + fsync fails"
if [ "$(sha256sum <$RO_DISK)" = "$sum_before" ]; then tap_ok "read-only disk: backing disk unchanged"
else tap_fail "read-only disk: backing disk unchanged"; daemon_log dro; fi
E2E_DAEMON_OF=dgr
guest_check ggr grow-write "grown disk: pattern written before the resize"
guest_check ggr grow-size "grown disk: new size in sysfs without a restart"
guest_check ggr grow-old-data "grown disk: old data intact"
guest_check ggr grow-new-area "grown disk: new sectors written"
guest_check ggr grow-new-verify "grown disk: new sectors read back"
if host_verify "$GROW" $((SEED + 11)) --offset $((half * 512)); then
	tap_ok "host: the new area holds the guest's pattern"
else
	tap_fail "host: the new area holds the guest's pattern"
fi
if guest_kernel_clean gro && guest_kernel_clean ggr; then tap_ok "guest kernel logs have no I/O errors or warnings"
else tap_fail "guest kernel logs have no I/O errors or warnings"; fi
daemon_stop dro
daemon_stop dgr
echo "# e2e-multi took $(elapsed "$t0")s"
e2e_finish

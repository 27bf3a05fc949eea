#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# End-to-end, issue 15 cases 1, 2 and 8: a level-2 guest on vhost-user-blk-pci (2 queues) backed
# by a brd disk writes a seeded pattern over the whole disk at several block sizes and queue
# depths with O_DIRECT, FLUSHes, reads it back, reboots inside the same qemu (the daemon sees the
# device stop and start), finds the pattern again, then makes, fills, checks an ext4 file system.
# After the guest powers off, the host checks the backing disk itself: the pattern beyond the
# file system and fsck of the file system. Meanwhile `vhostblkctl -j stats` must count the I/O.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DISK=/dev/ram0
SEED=1501
# Case 8: after the guest's pattern write and read, before anything else writes, the module's
# counters (vhostblkctl -j stats, summed over the queues of the one device) must show exactly
# the bytes the guest wrote, at least the bytes it read, no errors, nothing in flight.
stats_check() {
	if [ "$E2E_BACKEND" != serve ]; then
		tap_skip "vhostblkctl -j stats counts the guest's I/O" "the $E2E_BACKEND back end does not use /dev/vhost-blk"
		return
	fi
	wrote=$(guest_console g0 | sed -n 's/^vblk_pattern: write .* bytes=\([0-9]*\) .* OK$/\1/p' | head -n 1)
	read=$(guest_console g0 | sed -n 's/^vblk_pattern: verify .* bytes=\([0-9]*\) .* OK$/\1/p' | head -n 1)
	flushes=0
	guest_console g0 | grep -q '^E2E-OK disk .*cache=write back' && flushes=1
	if ! json=$("$VBC" -j stats 2>&1); then
		tap_fail "vhostblkctl -j stats counts the guest's I/O: vhostblkctl failed"
		printf '%s\n' "$json" | diag
		return
	fi
	echo "# vhostblkctl -j stats: $json"
	if why=$(printf '%s' "$json" | python3 -c '
import json, sys
wrote, read, flushes = (int(a) for a in sys.argv[1:4])
devs = json.load(sys.stdin)["stats"]
if len(devs) != 1:
    sys.exit("%d devices, expected 1" % len(devs))
t = {}
for q in devs[0]["queues"]:
    for k, v in q.items():
        if isinstance(v, int):
            t[k] = t.get(k, 0) + v
bad = []
if t["bytes_written"] != wrote: bad.append("bytes_written %d != %d" % (t["bytes_written"], wrote))
if t["bytes_read"] < read: bad.append("bytes_read %d < %d" % (t["bytes_read"], read))
if t["req_out"] < 1 or t["req_in"] < 1: bad.append("no read or write requests counted")
if flushes and t["req_flush"] < 1: bad.append("no FLUSH counted")
for k in ("status_ioerr", "req_invalid", "req_unsupported", "in_flight"):
    if t[k]: bad.append("%s %d" % (k, t[k]))
print("; ".join(bad) if bad else "writes %d B in %d requests, reads %d B in %d, flushes %d"
      % (t["bytes_written"], t["req_out"], t["bytes_read"], t["req_in"], t["req_flush"]))
sys.exit(1 if bad else 0)
' "${wrote:-0}" "${read:-0}" "$flushes" 2>&1); then
		tap_ok "vhostblkctl -j stats counts the guest's I/O: $why"
	else
		tap_fail "vhostblkctl -j stats counts the guest's I/O: $why"
	fi
}

e2e_setup 15
E2E_DAEMON_OF=d0
t0=$(now)
disk_clear_head $DISK
daemon_start d0 $DISK || fail_all "the daemon did not start (log above)"
E2E_REBOOT=1 guest_boot g0 d0 data $SEED
if wait_state g0 counted "$E2E_WAIT"; then
	stats_check
	guest_go g0
	guest_wait g0 "$E2E_WAIT"
else
	tap_fail "vhostblkctl -j stats counts the guest's I/O: the guest never got that far"
	guest_kill g0
fi
guest_check g0 disk "guest sees the vhost-user-blk disk" &&
	guest_check g0 pattern-write "pattern written at 4k/QD1, 16k/QD8, 64k/QD2, 1m/QD4 + FLUSH" &&
	guest_check g0 pattern-verify "pattern read back at other sizes and depths"
guest_check g0 reboot "guest reboots inside the same qemu"
guest_check g0 pattern-after-reboot "pattern intact after the reboot"
guest_check g0 rebind "driver unbound and bound again (device reset, vhost-user stop and start)"
guest_check g0 pattern-after-rebind "pattern intact after the rebind"
guest_check g0 wce-off "guest turns its write cache off (cache_type \"write through\")"
# vhost-user carries the guest's config write as SET_CONFIG; serve hands it to the module.
if [ "$E2E_BACKEND" != serve ]; then
	tap_skip "daemon got SET_CONFIG with the write cache off and passed it to the module" \
		"the $E2E_BACKEND back end does not use /dev/vhost-blk"
elif grep -q 'msg [0-9]*: SET_CONFIG' "$E2E_LOG/d0.dlog" &&
	grep -q 'guest set the write cache to writethrough' "$E2E_LOG/d0.dlog"; then
	tap_ok "daemon got SET_CONFIG with the write cache off and passed it to the module"
else
	tap_fail "daemon got SET_CONFIG with the write cache off and passed it to the module"
	daemon_log d0
fi
guest_check g0 ext4 "mkfs.ext4, files written, sync, umount, md5sums, fsck -fn clean (write cache off)"
if guest_kernel_clean g0; then tap_ok "guest kernel log has no I/O errors or warnings"
else tap_fail "guest kernel log has no I/O errors or warnings"; fi
if kill -0 "$(daemon_pid d0)" 2>/dev/null; then
	daemon_stop d0 TERM
	if [ "$E2E_DAEMON_RC" -eq 0 ]; then tap_ok "daemon exits 0 on SIGTERM"
	else tap_fail "daemon exits 0 on SIGTERM (status $E2E_DAEMON_RC)"; daemon_log d0; fi
else
	tap_fail "daemon still running after the guest"
	daemon_log d0
fi
# Host side: the file system occupies the first 8 MiB, the pattern the rest.
if host_verify $DISK $SEED --offset 8M; then tap_ok "host: pattern beyond the file system intact"
else tap_fail "host: pattern beyond the file system intact"; fi
if out=$(e2fsck -fn $DISK 2>&1); then tap_ok "host: e2fsck -fn of the guest's file system clean"
else tap_fail "host: e2fsck -fn of the guest's file system clean"; printf '%s\n' "$out" | diag; fi
echo "# e2e-data took $(elapsed "$t0")s"
e2e_finish

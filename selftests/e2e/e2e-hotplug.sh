#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# End-to-end, issue 15's memory hotplug: vhostblkctl serve offers no CONFIGURE_MEM_SLOTS, so when
# a DIMM is plugged into a running guest QEMU sends it a whole new SET_MEM_TABLE (the old regions
# plus the DIMM's memfd), and another without the DIMM when it is unplugged. The guest (2 queues,
# 512 MiB + room for 512 MiB more) writes a pattern and keeps verifying it while the host plugs a
# 128 MiB shared memfd DIMM over QMP; it onlines the memory as movable, writes and verifies a new
# pattern with every O_DIRECT buffer inside the DIMM (checked in /proc/self/pagemap), then the
# host unplugs the DIMM and the guest reads the data back. The host checks both tables in the
# daemon's log and the pattern on the backing disk.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DISK=/dev/ram0
SEED=1801
DIMM=128M
# pc machine, 512 MiB below 4 GiB: hotplugged memory starts at 4 GiB.
DIMM_GPA=0x100000000
DIMM_SIZE=0x8000000

# qmp SOCKET COMMAND-JSON... [--event NAME]: run each command, fail on an error reply; with
# --event, then wait up to 300 s for that event (the guest has to offline the memory first).
qmp() {
	python3 - "$@" <<'PY'
import json, socket, sys, time
args = sys.argv[1:]
event = None
if "--event" in args:
    i = args.index("--event")
    event, args = args[i + 1], args[:i]
s = socket.socket(socket.AF_UNIX)
s.settimeout(300)
s.connect(args[0])
f = s.makefile("rw")
f.readline()
def run(cmd):
    f.write(json.dumps(cmd) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" in r:
            events.append(r)
            continue
        if "error" in r:
            sys.exit("QMP %s: %s" % (cmd["execute"], r["error"]["desc"]))
        return r
events = []
run({"execute": "qmp_capabilities"})
for a in args[1:]:
    run(json.loads(a))
    print("QMP %s: ok" % a)
if event:
    end = time.time() + 300
    while not any(e["event"] == event for e in events):
        if time.time() > end:
            sys.exit("QMP: no %s event within 300 s" % event)
        events.append(json.loads(f.readline()))
    print("QMP event %s" % event)
PY
}

# tables_since LINE: the SET_MEM_TABLE lines (and their regions) in the daemon log after LINE.
tables_since() {
	tail -n +"$(($1 + 1))" "$E2E_LOG/d0.dlog" | grep -E 'SET_MEM_TABLE|  region [0-9]+:'
}

# dimm_in_last_table LINE: the last table after LINE maps the DIMM.
dimm_in_last_table() {
	tables_since "$1" | awk -v g="gpa $DIMM_GPA size $DIMM_SIZE " '
		/SET_MEM_TABLE/ { found = 0; seen = 1; next }
		index($0 " ", g) { found = 1 }
		END { exit !(seen && found) }'
}

# dimm_gone_since LINE: a table came after LINE, and the last one does not map the DIMM.
dimm_gone_since() {
	[ -n "$(tables_since "$1")" ] && ! dimm_in_last_table "$1"
}

e2e_setup 14
E2E_DAEMON_OF=d0
t0=$(now)
disk_clear_head $DISK
daemon_start d0 $DISK || fail_all "the daemon did not start (log above)"
qsock=$E2E_WORK/g0.qmp
E2E_MEM_SLOTS=slots=2,maxmem=1G E2E_APPEND=memhp_default_state=online_movable \
	guest_boot g0 d0 hotplug $SEED -qmp "unix:$qsock,server=on,wait=off"

plugged=0
if wait_state g0 plug "$E2E_WAIT"; then
	mark=$(wc -l <"$E2E_LOG/d0.dlog")
	if out=$(qmp "$qsock" \
		"{\"execute\": \"object-add\", \"arguments\": {\"qom-type\": \"memory-backend-memfd\", \"id\": \"m1\", \"size\": $((128 << 20)), \"share\": true}}" \
		'{"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "d1", "memdev": "m1"}}' 2>&1); then
		tap_ok "QMP: $DIMM shared memfd DIMM plugged into the running guest"
		plugged=1
	else
		tap_fail "QMP: $DIMM shared memfd DIMM plugged into the running guest"
	fi
	printf '%s\n' "$out" | diag
	# QEMU sends the table before device_add returns (the vhost memory listener's commit).
	if [ $plugged = 1 ] && poll 30 dimm_in_last_table "$mark"; then
		tap_ok "daemon got a new SET_MEM_TABLE with the DIMM (gpa $DIMM_GPA size $DIMM_SIZE)"
	else
		tap_fail "daemon got a new SET_MEM_TABLE with the DIMM (gpa $DIMM_GPA size $DIMM_SIZE)"
		daemon_log d0
	fi
	tables_since "$mark" | diag
	guest_go g0
else
	tap_fail "QMP: $DIMM shared memfd DIMM plugged into the running guest: the guest never got that far"
	tap_fail "daemon got a new SET_MEM_TABLE with the DIMM: no plug"
fi

unplugged=0
if [ $plugged = 1 ] && wait_state g0 unplug "$E2E_WAIT"; then
	mark=$(wc -l <"$E2E_LOG/d0.dlog")
	if out=$(qmp "$qsock" '{"execute": "device_del", "arguments": {"id": "d1"}}' --event DEVICE_DELETED 2>&1) &&
		out="$out
$(qmp "$qsock" '{"execute": "object-del", "arguments": {"id": "m1"}}' 2>&1)"; then
		tap_ok "QMP: DIMM unplugged (the guest released it: DEVICE_DELETED) and its memory object deleted"
		unplugged=1
	else
		tap_fail "QMP: DIMM unplugged (the guest released it: DEVICE_DELETED) and its memory object deleted"
	fi
	printf '%s\n' "$out" | diag
	if [ $unplugged = 1 ] && poll 30 dimm_gone_since "$mark"; then
		tap_ok "daemon got a new SET_MEM_TABLE without the DIMM"
	else
		tap_fail "daemon got a new SET_MEM_TABLE without the DIMM"
		daemon_log d0
	fi
	tables_since "$mark" | diag
	guest_go g0
else
	tap_fail "QMP: DIMM unplugged: the guest never got that far"
	tap_fail "daemon got a new SET_MEM_TABLE without the DIMM: no unplug"
fi
guest_wait g0 "$E2E_WAIT"

guest_check g0 disk "guest sees the vhost-user-blk disk"
guest_check g0 pattern-write "pattern written before the plug"
guest_check g0 hotplug-live-io "O_DIRECT verify loop kept passing while the DIMM was plugged"
guest_check g0 hotplug-online "guest onlined the DIMM's memory (movable)"
guest_check g0 hotplug-write "pattern written with every buffer in the DIMM" &&
	guest_console g0 | grep 'buffer pages, all above' | head -n 1 | diag
guest_check g0 hotplug-verify "pattern read back into buffers in the DIMM"
guest_check g0 hotplug-removed "guest released the DIMM's memory blocks"
guest_check g0 pattern-after-unplug "pattern intact after the unplug"
if guest_kernel_clean g0; then tap_ok "guest kernel log has no I/O errors or warnings"
else tap_fail "guest kernel log has no I/O errors or warnings"; fi
daemon_stop d0 TERM
if host_verify $DISK $((SEED + 1)); then tap_ok "host: the pattern written from the DIMM is on the backing disk"
else tap_fail "host: the pattern written from the DIMM is on the backing disk"; fi
echo "# e2e-hotplug took $(elapsed "$t0")s"
e2e_finish

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# End-to-end, issue 15 cases 3 and 4. A guest writes a pattern and FLUSHes, then its qemu is
# SIGKILLed; a new qemu against the same, still running daemon finds the data. That guest then
# goes idle and the daemon is restarted under it, once with SIGTERM and once with SIGKILL; the
# chardev's reconnect=1 brings the disk back and the data written before each restart reads back.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DISK=/dev/ram1
SEED=1601
# One vCPU: this test is about restarts, not queues (e2e-data and e2e-multi run two), and it
# boots three guests. A two-vCPU level-2 guest under TCG once panicked in its own early boot
# (sched_clock_cpu, before any disk I/O), which would fail every case after it.
E2E_SMP=${E2E_SMP:-1}
e2e_setup 9
E2E_DAEMON_OF=d0
E2E_RECONNECT=1
t0=$(now)
daemon_start d0 $DISK || fail_all "the daemon did not start (log above)"

# Case 3: qemu killed.
guest_boot g1 d0 persist $SEED
wait_state g1 written "$E2E_WAIT"
guest_check g1 pattern-write "first qemu: pattern written + FLUSH"
guest_kill g1
if kill -0 "$(daemon_pid d0)" 2>/dev/null; then tap_ok "daemon survives qemu's SIGKILL"
else tap_fail "daemon survives qemu's SIGKILL"; daemon_log d0; daemon_start d0 $DISK; fi
echo "# case 3 (qemu killed) first part took $(elapsed "$t0")s"

# Case 3 continued, then case 4: daemon restarted under the idle guest.
# A few seconds between the killed qemu and the next: a nested guest created right after
# another was torn down was reset by the emulation right after its kernel started (6.1).
sleep 5
t1=$(now)
guest_boot g2 d0 restart $SEED
wait_state g2 idle-1 "$E2E_WAIT"
guest_check g2 data-after-qemu-kill "restarted qemu on the same daemon: data intact"
echo "# case 3 second qemu took $(elapsed "$t1")s"
t1=$(now)
daemon_stop d0 TERM
if [ "$E2E_DAEMON_RC" -eq 0 ]; then tap_ok "daemon exits 0 on SIGTERM with a guest connected"
else tap_fail "daemon exits 0 on SIGTERM with a guest connected (status $E2E_DAEMON_RC)"; daemon_log d0; fi
daemon_start d0 $DISK
guest_go g2
wait_state g2 idle-2 "$E2E_WAIT"
guest_check g2 data-after-daemon-restart "daemon restarted (SIGTERM) under an idle guest: disk back, data intact"
guest_check g2 pattern-write-3 "guest writes again after the restart"
daemon_stop d0 KILL
daemon_start d0 $DISK
guest_go g2
guest_wait g2 "$E2E_WAIT"
guest_check g2 data-after-daemon-kill "daemon killed (SIGKILL) and restarted under an idle guest: data intact"
echo "# case 4 (daemon restarts) took $(elapsed "$t1")s"
if guest_kernel_clean g1 && guest_kernel_clean g2; then tap_ok "guest kernel logs have no I/O errors or warnings"
else tap_fail "guest kernel logs have no I/O errors or warnings"; fi
daemon_stop d0 TERM
if host_verify $DISK $((SEED + 2)); then tap_ok "host: the last pattern is on the backing disk"
else tap_fail "host: the last pattern is on the backing disk"; fi
echo "# e2e-restart took $(elapsed "$t0")s"
e2e_finish

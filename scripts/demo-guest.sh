#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs inside the test VM for `make run`: vhostblkctl serve on a ram disk, and a real QEMU/KVM
# guest whose disk is vhost-user-blk-pci on it; the guest writes and checks a pattern, makes an
# ext4 file system and fills it. Prints what the guest printed, then the module's view
# (vhostblkctl dev show / stats). Uses the end-to-end tests' machinery (selftests/e2e).
E2E_DIR=$(cd "$(dirname "$0")/../selftests/e2e" && pwd -P)
# One vCPU (so one queue): the shortest nested boot, for a demo that should take a minute.
E2E_SMP=${E2E_SMP:-1}
# shellcheck source=../selftests/e2e/lib.sh
. "$E2E_DIR/lib.sh"

e2e_setup 2 >/dev/null
echo "# kernel $(uname -r); module: $(grep -E '^vhost_blk ' /proc/modules | cut -d' ' -f1-2)"
echo "# \$ vhostblkctl serve --socket-path $E2E_WORK/d0.sock --disk /dev/ram0 --num-queues 2 &"
daemon_start d0 /dev/ram0 || fail_all "the daemon did not start (log above)"
echo "# \$ qemu-system-x86_64 -enable-kvm ... \\"
"$VBC" qemu-args --socket-path "$E2E_WORK/d0.sock" --num-queues 2 | sed 's/^/#     /'
t0=$(now)
guest_boot g0 d0 demo 4242
if wait_state g0 demo-stats "$E2E_WAIT"; then
	echo "# ---- what the guest printed ----"
	guest_console g0 | grep -E '^(demo:|vblk_pattern:|E2E-)' | sed 's/^/# /'
	echo "# ---- \$ vhostblkctl dev show ----"
	"$VBC" dev show 2>&1 | sed 's/^/# /'
	echo "# ---- \$ vhostblkctl stats ----"
	"$VBC" stats 2>&1 | sed 's/^/# /'
	guest_go g0
fi
guest_wait g0 "$E2E_WAIT"
guest_check g0 fsck "a real guest did I/O on /dev/vhost-blk and its ext4 checks clean (${t0:+$(elapsed "$t0")s})"
daemon_stop d0
if [ "$E2E_DAEMON_RC" -eq 0 ]; then tap_ok "the daemon exits cleanly"
else tap_fail "the daemon exits cleanly (status $E2E_DAEMON_RC)"; fi
e2e_finish

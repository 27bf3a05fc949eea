# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
# Is a failed end-to-end run the emulator's fault? Sourced by scripts/run-tests.sh, which reruns
# the test once in a fresh level-1 boot when it is (and fails the run when the rerun fails too).
#
#   reason=$(e2e_emulation_fault OUT TEST) && echo "RETRY TEST: $reason"
#
# OUT is the vmrun.sh out dir of the boot that ran TEST (e2e-data.sh, ...): console.log is the
# level-1 console, TEST.tap the test's output, TEST-without-.sh.logs/*.console the level-2
# consoles. Prints the reason with the log line that proves it and returns 0 only for these:
#
#  L1-INT3   the level-1 kernel took an int3 trap it cannot explain ("Oops: int3" on 6.12,
#            "int3: 0000 [#1]" on 6.1). The kernel has no int3 in its text except for the few
#            instructions text_poke_bp is rewriting at that moment, and its int3 handler knows
#            those; an unknown one is a vCPU running stale translated code after the rewrite:
#            TCG's, not ours (seen in kvm_arch_vcpu_ioctl_run's static branches).
#  L1-GUARD  "BUG: TASK stack guard page was hit" with RIP in error_entry: the emulated CPU
#            faults again on every exception entry until the stack runs out, with no kernel
#            function in between that could have recursed (seen on the nested qemu's vCPU thread).
#  L1-POKE   an RCU stall whose dump shows text_poke_bp waiting in smp_call_function_many_cond
#            (or a CPU parked in asm_exc_int3): the patcher's IPI was never answered by a vCPU
#            that TCG did not schedule - the emulator trap COMMON.md describes.
#  L2-PANIC  a level-2 guest's kernel panicked before guest.sh printed anything (so before it
#            used the disk) and the panic's last 40 lines name nothing of virtio/vhost/blk: an
#            early-boot panic of the nested guest (sched_clock_cpu, timer checks...).
#  L2-NOINIT a level-2 guest's kernel never reached its /init (no "l2-init: up" line) in
#            lib.sh's E2E_BOOT_WAIT ("E2E-GUEST-NO-INIT NAME requests=0"), after SeaBIOS was done
#            with the disk: the nested guest's own boot hung before any driver of our device
#            was loaded, with no request served.
#  L2-NOBIOS a level-2 guest's qemu ended ("E2E-GUEST-GONE NAME") with an empty console: not even
#            SeaBIOS's banner, which it prints before it initialises a single device, and no
#            qemu error. With -no-reboot that is a reset of the nested guest before its firmware
#            ran: the back end had seen only QEMU's realize (features, config), nothing of the
#            guest's.
#  L2-GONE   a level-2 guest's qemu ended on its own before guest.sh printed anything, while no
#            request had been counted on any vhost-blk queue (lib.sh's "E2E-GUEST-GONE NAME
#            requests=0") and qemu printed no error: the nested guest died before our device
#            served it a single request, so nothing of ours could have killed it.
#  L1-RESET the level-1 VM itself ended in the middle of the test (vmrun: "guest powered off before
#            finishing"; qemu exited 0 with nothing in its log, under -no-reboot: a reset of the
#            emulated machine) with not a line of a panic, oops, BUG or warning on its console,
#            while a level-2 guest was between SeaBIOS and its /init: the nested boot's reset
#            (L2-NOBIOS, L2-NOINIT) took the whole level-1 machine with it (6.12, once).
# Never for: a level-1 oops or warning whose text names vhost (our module or the vhost core), a
# guest that printed an E2E-FAIL line (data mismatch, wrong errno, ...), a failed check about a
# daemon, a level-2 guest that stalled (was killed by the test's timeout) rather than died, or
# any failure in a run where none of the above is found.
e2e_emulation_fault() {
	local con=$1/console.log tap=$1/$2.tap logs=$1/${2%.sh}.logs
	local line f g

	# Ours whatever else happened.
	if grep -qE '^not ok .*guest says:' "$tap" 2>/dev/null; then
		return 1
	fi
	if grep -E '^not ok ' "$tap" 2>/dev/null | grep -qi 'daemon'; then
		return 1
	fi
	if [ -f "$con" ] && _emu_l1_blocks "$con" | grep -q vhost; then
		return 1
	fi

	if [ -f "$con" ]; then
		line=$(grep -m1 -E 'Oops: int3|int3: 0000 \[#' "$con") &&
			{ echo "L1-INT3: level-1 kernel: $(_emu_strip "$line") at $(_emu_rip_after "$con" "$line")"; return 0; }
		line=$(grep -m1 'BUG: TASK stack guard page was hit' "$con") &&
			[ "$(_emu_rip_after "$con" "$line")" = error_entry ] &&
			{ echo "L1-GUARD: level-1 kernel: $(_emu_strip "$line") at error_entry"; return 0; }
		line=$(grep -m1 -E 'rcu: INFO: rcu_(preempt|sched) (self-)?detected stall' "$con") &&
			grep -qE 'text_poke_bp|asm_exc_int3' "$con" &&
			{ echo "L1-POKE: level-1 kernel: $(_emu_strip "$line"), $(grep -m1 -oE 'text_poke_bp[a-z_]*|asm_exc_int3' "$con") in the stall dump"; return 0; }
	fi

	if [ "$(cat "$1/vm-end" 2>/dev/null)" = early-poweroff ] && [ ! -s "$1/qemu.log" ] &&
		! grep -qE 'Kernel panic|Oops|BUG:|WARNING:|int3: 0000|general protection fault|detected stall' "$con"; then
		for f in "$logs"/*.console; do
			[ -f "$f" ] || continue
			tr -d '\r' <"$f" | grep -q 'Booting from ROM' || continue
			tr -d '\r' <"$f" | grep -q '^l2-init: up' && continue
			echo "L1-RESET: the level-1 VM ended silently while level-2 guest $(basename "$f" .console) was booting past SeaBIOS ($(cat "$1/stage" 2>/dev/null))"
			return 0
		done
	fi

	for f in "$logs"/*.console; do
		[ -f "$f" ] || continue
		g=$(basename "$f" .console)
		tr -d '\r' <"$f" | grep -q '^E2E-' && continue
		line=$(tr -d '\r' <"$f" | grep -m1 'Kernel panic - not syncing')
		if [ -n "$line" ]; then
			tr -d '\r' <"$f" | grep -B40 -m1 'Kernel panic - not syncing' | grep -qiE 'virtio|vhost|blk' && return 1
			echo "L2-PANIC: level-2 guest $g panicked before its first test step: $(_emu_strip "$line")"
			return 0
		fi
		line=$(grep -m1 -E "^# E2E-GUEST-GONE $g " "$tap" 2>/dev/null) &&
			! tr -d '\r' <"$f" | grep -q '[^[:space:]]' &&
			{ echo "L2-NOBIOS: level-2 guest $g ended before its firmware printed a line (${line#\# })"; return 0; }
		line=$(grep -m1 -E "^# E2E-GUEST-NO-INIT $g requests=0 " "$tap" 2>/dev/null) &&
			! tr -d '\r' <"$f" | grep -q '^l2-init: up' &&
			tr -d '\r' <"$f" | grep -q 'Booting from ROM' &&
			{ echo "L2-NOINIT: level-2 guest $g never reached its /init (${line#\# })"; return 0; }
		line=$(grep -m1 -E "^# E2E-GUEST-GONE $g requests=0\$" "$tap" 2>/dev/null) || continue
		tr -d '\r' <"$f" | grep -q '^qemu-system-x86_64:' && return 1
		echo "L2-GONE: level-2 guest $g ended before its first test step with no request served (${line#\# })"
		return 0
	done
	return 1
}

# The level-1 console's warning/oops/stall reports (80 lines from each report line), without the
# "Modules linked in:" lines, which name vhost_blk in every report.
_emu_l1_blocks() {
	awk '/BUG:|WARNING:|Oops|int3: 0000|general protection fault|stack guard page|detected stall/ { n = 80 }
		n > 0 && !/Modules linked in:/ { print } n > 0 { n-- }' "$1"
}

# The function in the first "RIP: 0010:" line after LINE in FILE.
_emu_rip_after() {
	awk -v l="$2" 'found && /RIP: 0010:/ { sub(/.*RIP: 0010:/, ""); sub(/\+.*/, ""); print; exit }
		index($0, l) { found = 1 }' "$1"
}

# A console line without its timestamp.
_emu_strip() { printf '%s' "$1" | sed 's/^\[ *[0-9.]*\] //'; }

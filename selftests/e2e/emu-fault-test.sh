#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Host-side TAP test of selftests/e2e/emu-fault.sh: which failed end-to-end boots get a rerun.
# Each case builds a vmrun out dir with just the log lines that matter (the level-1 ones are
# taken from the three crashes that moved the e2e tests out of make check) and checks the
# verdict: a retry only for the emulator's fingerprints, never when anything of ours failed.
# Then lib.sh's guest_boot: which level-2 guests that died before their /init it boots again.
set -u
. "$(dirname "$0")/emu-fault.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0 failed=0

# case NAME WANT(emu|ours) PATTERN: the verdict on $work/NAME, and the reason must match PATTERN.
case_() {
	local name=$1 want=$2 pat=$3 got reason
	n=$((n + 1))
	if reason=$(e2e_emulation_fault "$work/$name" e2e-data.sh); then got=emu; else got=ours; fi
	if [ "$got" = "$want" ] && { [ "$want" = ours ] || [[ $reason =~ $pat ]]; }; then
		echo "ok $n $name: $got${reason:+ ($reason)}"
	else
		echo "not ok $n $name: got $got${reason:+ ($reason)}, want $want${pat:+ matching \"$pat\"}"
		failed=$((failed + 1))
	fi
}

# mk NAME TAP L1-CONSOLE [GUEST-CONSOLE]
mk() {
	mkdir -p "$work/$1/e2e-data.logs"
	printf '%b' "$2" >"$work/$1/e2e-data.sh.tap"
	printf '%b' "$3" >"$work/$1/console.log"
	[ $# -lt 4 ] || printf '%b' "$4" >"$work/$1/e2e-data.logs/g0.console"
}

MODS='[  118.851582] Modules linked in: kvm_amd ccp kvm irqbypass brd vhost_blk(OE) vhost vhost_iotlb\n'
echo "TAP version 13"
echo "1..33"

mk int3 'not ok 1 x\n' "[  118.845141] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[  118.846575] CPU: 0 UID: 0 PID: 1309 Comm: qemu-system-x86\n[  118.846971] RIP: 0010:kvm_arch_vcpu_ioctl_run+0x6de/0x1760 [kvm]\n$MODS"
case_ int3 emu '^L1-INT3: .*kvm_arch_vcpu_ioctl_run'

mk int3-61 'not ok 1 x\n' "[   50.1] int3: 0000 [#1] PREEMPT SMP NOPTI\n[   50.1] RIP: 0010:__schedule+0x1bd/0xa00\n$MODS"
case_ int3-61 emu '^L1-INT3: .*__schedule'

mk guard 'not ok 1 x\n' "[  230.002112] BUG: TASK stack guard page was hit at 00000000aed71dec\n[  230.002112] stack guard page: 0000 [#1] PREEMPT SMP NOPTI\n[  230.002112] CPU: 0 PID: 1265 Comm: qemu-system-x86\n[  230.002112] RIP: 0010:error_entry+0x1a/0x130\n$MODS"
case_ guard emu '^L1-GUARD: '

mk guard-elsewhere 'not ok 1 x\n' "[  230.0] BUG: TASK stack guard page was hit at 00000000aed71dec\n[  230.0] RIP: 0010:blk_mq_submit_bio+0x1a/0x130\n$MODS"
case_ guard-elsewhere ours ''

mk poke 'not ok 1 x\n' "[   96.4] rcu: INFO: rcu_preempt self-detected stall on CPU\n[   96.4] RIP: 0010:smp_call_function_many_cond+0xf1/0x330\n[   96.4]  on_each_cpu_cond_mask+0x20/0x40\n[   96.4]  text_poke_bp_batch+0xb7/0x300\n"
case_ poke emu '^L1-POKE: .*text_poke_bp_batch'

mk int3-in-vhost 'not ok 1 x\n' "[  118.8] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[  118.8] RIP: 0010:vhost_blk_handle_kick+0x6de/0x1760 [vhost_blk]\n$MODS"
case_ int3-in-vhost ours ''

mk data-mismatch 'not ok 3 pattern read back: guest says: (pattern verify exited 1)\n' "[  118.8] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[  118.8] RIP: 0010:kvm_arch_vcpu_ioctl_run+0x6de/0x1760 [kvm]\n" \
	'E2E-OK disk 32768 sectors\nE2E-FAIL pattern-verify (pattern verify exited 1)\n'
case_ data-mismatch ours ''

mk daemon 'not ok 12 daemon exits 0 on SIGTERM (status 139)\n# E2E-GUEST-GONE g0 requests=0\n' '' 'SeaBIOS\n'
case_ daemon ours ''

mk l2-panic 'not ok 1 x\n' '' 'SeaBIOS (version 1.16.2)\n[    0.41] RIP: 0010:sched_clock_cpu+0x10/0x1b0\n[    0.42] Kernel panic - not syncing: Fatal exception in interrupt\n'
case_ l2-panic emu '^L2-PANIC: .*g0'

mk l2-panic-virtio 'not ok 1 x\n' '' 'SeaBIOS\n[    3.1]  virtblk_probe+0x10/0x1b0\n[    3.2] Kernel panic - not syncing: Fatal exception\n'
case_ l2-panic-virtio ours ''

mk l2-gone 'not ok 1 x\n# E2E-GUEST-GONE g0 requests=0\n' '' 'SeaBIOS\nBooting from ROM...\n'
case_ l2-gone emu '^L2-GONE: .*requests=0'

mk l2-gone-after-io 'not ok 1 x\n# E2E-GUEST-GONE g0 requests=37\n' '' 'SeaBIOS\nBooting from ROM...\n'
case_ l2-gone-after-io ours ''

mk l2-noinit 'not ok 1 x\n# E2E-GUEST-NO-INIT g0 requests=0 after 600s\n# E2E-GUEST-GONE g0 requests=0\n' '' 'SeaBIOS\nBooting from ROM...\n'
case_ l2-noinit emu '^L2-NOINIT: .*g0'

# SeaBIOS never finished with the disk: its reads through our device may be what hung.
mk l2-noinit-in-seabios 'not ok 1 x\n# E2E-GUEST-NO-INIT g0 requests=0 after 600s\n' '' 'SeaBIOS (version 1.16.2)\n'
case_ l2-noinit-in-seabios ours ''

mk l2-noinit-but-up 'not ok 1 x\n# E2E-GUEST-NO-INIT g0 requests=0 after 600s\n' '' 'SeaBIOS\nBooting from ROM...\nl2-init: up, CPUs 0-1 online\n'
case_ l2-noinit-but-up ours ''

# e2e-multi on 6.1: the read-only guest's qemu exited 0 after 69 s with an empty console (the
# other guest's requests were counted).
mk l2-nobios 'not ok 1 x\n# E2E-GUEST-GONE g0 requests=570\n' ''
: >"$work/l2-nobios/e2e-data.logs/g0.console"
case_ l2-nobios emu '^L2-NOBIOS: .*g0'

mk l2-nobios-qemu-error 'not ok 1 x\n# E2E-GUEST-GONE g0 requests=0\n' '' 'qemu-system-x86_64: -chardev socket,id=vub: Failed to connect\n'
case_ l2-nobios-qemu-error ours ''

# 6.12 clean-clone run: the level-1 VM powered off 41 s into e2e-restart, nothing on its console
# after the nested guest's vCPU started, the guest just past SeaBIOS.
L1RESET_CON='[   36.438021] kvm: kvm [244]: vcpu0, guest rIP: 0xffffffffbb09e458 Unhandled WRMSR(0xc0010007) = 0xffff\n'
L2_PAST_BIOS='SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from ROM...\nProbing EDD (edd=off to disable)... ok\n'
mk l1-reset 'TAP version 13\n1..9\n' "$L1RESET_CON" "$L2_PAST_BIOS"
echo early-poweroff >"$work/l1-reset/vm-end"
: >"$work/l1-reset/qemu.log"
case_ l1-reset emu '^L1-RESET: .*g0'
mk l1-reset-panic 'TAP version 13\n1..9\n' "${L1RESET_CON}[   40.1] Kernel panic - not syncing: Fatal exception\n" "$L2_PAST_BIOS"
echo early-poweroff >"$work/l1-reset-panic/vm-end"
case_ l1-reset-panic ours ''
mk l1-reset-guest-up 'TAP version 13\n1..9\n' "$L1RESET_CON" "${L2_PAST_BIOS}l2-init: up, CPUs 0-1 online\n"
echo early-poweroff >"$work/l1-reset-guest-up/vm-end"
case_ l1-reset-guest-up ours ''
mk l1-timeout 'TAP version 13\n1..9\n' "$L1RESET_CON" "$L2_PAST_BIOS"
echo timeout >"$work/l1-timeout/vm-end"
case_ l1-timeout ours ''

# lib.sh's guest_boot_fault: which level-2 guests that never reached /init are booted again
# inside the test. boot_case NAME WANT(emu|ours) PATTERN STATE(dead|running|noinit) CONSOLE
. "$(dirname "$0")/lib.sh"
E2E_WORK=$work/boot E2E_LOG=$work/boot
mkdir -p "$E2E_WORK"
sleep 300 &
alive=$!
(exit 0) &
dead=$!
wait $dead
boot_case() {
	local name=$1 want=$2 pat=$3 state=$4 got reason
	n=$((n + 1))
	printf '%b' "$5" >"$E2E_LOG/$name.console"
	rm -f "$E2E_WORK/$name.noinit"
	case $state in
	dead) echo $dead >"$E2E_WORK/$name.job" ;;
	running) echo $alive >"$E2E_WORK/$name.job" ;;
	noinit) echo $alive >"$E2E_WORK/$name.job"; : >"$E2E_WORK/$name.noinit" ;;
	esac
	if reason=$(guest_boot_fault "$name"); then got=emu; else got=ours; fi
	if [ "$got" = "$want" ] && { [ "$want" = ours ] || [[ $reason =~ $pat ]]; }; then
		echo "ok $n boot-$name: $got${reason:+ ($reason)}"
	else
		echo "not ok $n boot-$name: got $got${reason:+ ($reason)}, want $want${pat:+ matching \"$pat\"}"
		failed=$((failed + 1))
	fi
}
SEABIOS='SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\nBooting from ROM...\r\nProbing EDD (edd=off to disable)... ok\r\n'
boot_case empty emu 'before the firmware' dead ''
boot_case after-seabios emu 'after SeaBIOS.*Probing EDD' dead "$SEABIOS"
boot_case in-seabios ours '' dead 'SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n'
boot_case up ours '' dead "${SEABIOS}l2-init: up, CPUs 0-1 online\n"
boot_case qemu-error ours '' dead 'qemu-system-x86_64: Failed to read msg header. Read 0 instead of 12. Original request 1.\n'
boot_case still-booting ours '' running "$SEABIOS"
boot_case noinit emu 'no /init within' noinit "$SEABIOS"
boot_case noinit-silent emu 'not a line' noinit ''
boot_case panic emu 'panicked before /init: Kernel panic - not syncing: IO-APIC' dead "${SEABIOS}[    0.5] Kernel panic - not syncing: IO-APIC + timer doesn't work!\n"
boot_case panic-virtio ours '' dead "${SEABIOS}[    1.2]  virtblk_probe+0x1a/0x30\n[    1.3] Kernel panic - not syncing: Fatal exception\n"
kill $alive

# guest_boot itself, with qemu replaced by a stub that plays back consoles: the first boot
# ends before the firmware, the second comes up (booted again once, with the evidence), and a
# guest whose every boot dies inside SeaBIOS is not booted again.
STUB_BOOTS=$work/boot/stub
VBC=/nonexistent # kernel_diag: no module to ask here
l2_boot() {
	local k
	k=$(($(cat "$STUB_BOOTS.n" 2>/dev/null || echo 0) + 1))
	echo $k >"$STUB_BOOTS.n"
	sed -n "${k}p" "$STUB_BOOTS" | tr '|' '\n' >"$2"
	# A guest that came up keeps running, as qemu would.
	! grep -q '^l2-init: up' "$2" || sleep 3
}
# shellcheck disable=SC2034 # read by lib.sh
E2E_WAIT=5
boot_run() {
	local name=$1 want_rc=$2 want_boots=$3 out rc
	n=$((n + 1))
	printf '%s\n' "$4" "$5" "$6" >"$STUB_BOOTS"
	rm -f "$STUB_BOOTS.n"
	out=$(guest_boot "$name" d0 data 1 2>&1)
	rc=$?
	pkill -f "^cat $E2E_WORK/" # the fifo drainers guest_start left: no qemu ever opened them
	if [ "$rc" = "$want_rc" ] && [ "$(cat "$STUB_BOOTS.n")" = "$want_boots" ]; then
		echo "ok $n guest_boot-$name: status $rc after $want_boots boots"
	else
		echo "not ok $n guest_boot-$name: status $rc after $(cat "$STUB_BOOTS.n") boots, want $want_rc after $want_boots"
		failed=$((failed + 1))
	fi
	printf '%s\n' "$out" | sed 's/^/# /'
}
boot_run reset-then-up 0 2 '' "SeaBIOS|Booting from ROM...|l2-init: up, CPUs 0-1 online" ''
boot_run dies-in-seabios 1 1 'SeaBIOS (version 1.16.2)' 'SeaBIOS (version 1.16.2)' ''


echo "# $n checks, $failed failed"
[ "$failed" -eq 0 ]

# shellcheck shell=sh
# Boot a level-2 guest (KVM inside the vmrun VM). Source from a test running in the VM (sh/bash):
#
#   . "$VM_DIR/l2-lib.sh"
#   reason=$(l2_kvm_ready) || skip "$reason"
#   l2_build_initramfs "$work/initrd.gz" "$work/body.sh" virtio_blk   # modules insmod'ed first
#   L2_SHARED_MEM=1 l2_boot "$work/initrd.gz" "$work/console.log" -chardev ... -device ...
#   grep -q 'my marker' "$work/console.log"
#
# The guest runs the same kernel as the VM (/boot/vmlinuz-$(uname -r)); its /init mounts
# proc/sys/devtmpfs, insmods the requested modules, runs the body script with busybox sh and
# powers off whatever the body does. Results come back through the serial console log.
# Knobs (environment): L2_MEM_MB (512), L2_TIMEOUT (180 s), L2_APPEND (extra kernel args),
# L2_SHARED_MEM=1 (guest RAM in a shared memfd, which vhost-user back ends need),
# L2_MEM_SLOTS="slots=2,maxmem=1G" (room for hotplugged DIMMs), L2_REBOOT=1 (a guest reboot resets the guest instead of ending qemu: -no-reboot is left out),
# L2_BINS="/usr/sbin/mke2fs ..." (host binaries copied into the initramfs with their libraries),
# L2_KVER (whose modules l2_build_initramfs packs; default the running kernel: set it to build
# an initramfs ahead of time outside the VM).

# dash cannot tell a sourced file its own path: callers outside selftests/vm set L2_LIB_DIR.
# shellcheck disable=SC3028 # BASH_SOURCE is used when there is one
L2_LIB_DIR=${L2_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE:-$0}")" && pwd -P)}
. "$L2_LIB_DIR/initramfs-lib.sh"

# Load KVM and check /dev/kvm. Prints the reason and fails when a level-2 guest cannot use KVM:
# 1 when this machine cannot (a skip), 2 when the static-key pin below failed (a failure).
l2_kvm_ready() {
	if grep -qw svm /proc/cpuinfo; then
		modprobe kvm_amd >/dev/null 2>&1 || { echo "modprobe kvm_amd failed"; return 1; }
	elif grep -qw vmx /proc/cpuinfo; then
		modprobe kvm_intel >/dev/null 2>&1 || { echo "modprobe kvm_intel failed"; return 1; }
	else
		echo "the CPU has neither svm nor vmx"
		return 1
	fi
	[ -c /dev/kvm ] || { echo "/dev/kvm is missing"; return 1; }
	l2_kvm_pin || { echo "cannot start the KVM static-key pin (l2_kvm_pin)"; return 2; }
}

# The level-1 kernel rewrites its own code whenever certain static keys go from 0 to 1 or back,
# and KVM flips several of them for every VM: preempt_notifier_key (every VM's creation and
# destruction; the branch sits in __schedule and finish_task_switch, run by every CPU all the
# time), apic_sw_disabled and apic_hw_disabled (every vCPU's creation, its guest enabling the
# local APIC, a reset, the vCPU's destruction). Under multi-threaded TCG that live text patching
# (text_poke_bp: int3, IPI, rewrite) is what crashes the VM: a vCPU that runs stale translated
# code hits the transient int3 after the patcher is done ("Oops: int3" in
# kvm_arch_vcpu_ioctl_run, an rcu_preempt stall in __schedule's int3), or the patcher's IPI never
# gets answered. Holding each key at 1 for the whole run turns every later flip into a counter
# update without patching: one idle VM with an in-kernel irqchip and one vCPU whose local APIC
# is disabled (so both APIC keys stay up; the vCPU never runs). It is started once per level-1
# boot, right after the KVM modules load, before any level-2 guest, and lives until poweroff.
L2_KVM_PIN_PID=/run/l2-kvm-pin.pid
# L2_KVM_PIN=0 leaves it out (to measure what it buys).
l2_kvm_pin() {
	[ "${L2_KVM_PIN:-1}" != 0 ] || return 0
	if [ -s "$L2_KVM_PIN_PID" ] && kill -0 "$(cat "$L2_KVM_PIN_PID")" 2>/dev/null; then
		return 0
	fi
	rm -f "$L2_KVM_PIN_PID"
	# setsid: out of the test's process group, which guest-run.sh's timeout kills.
	setsid python3 -c '
import fcntl, os, signal, struct, sys
KVM_CREATE_VM, KVM_CREATE_IRQCHIP, KVM_CREATE_VCPU = 0xAE01, 0xAE60, 0xAE41
KVM_SET_MSRS = 0x4008AE89  # _IOW(KVMIO, 0x89, struct kvm_msrs), 8-byte header
MSR_IA32_APICBASE, APIC_BASE_BSP_NO_ENABLE = 0x1B, 0xFEE00000 | 0x100
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
msrs = bytearray(struct.pack("=IIIIQ", 1, 0, MSR_IA32_APICBASE, 0, APIC_BASE_BSP_NO_ENABLE))
if fcntl.ioctl(vcpu, KVM_SET_MSRS, msrs, True) != 1:
    sys.exit("KVM_SET_MSRS(APIC_BASE) was refused")
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    signal.pause()
' "$L2_KVM_PIN_PID" </dev/null >/dev/null 2>"$L2_KVM_PIN_PID.err" &
	_i=0
	while [ ! -s "$L2_KVM_PIN_PID" ] && [ $_i -lt 150 ]; do
		kill -0 $! 2>/dev/null || break
		sleep 0.2
		_i=$((_i + 1))
	done
	[ -s "$L2_KVM_PIN_PID" ] && return 0
	cat "$L2_KVM_PIN_PID.err" >&2
	return 1
}

# l2_add_bins ROOT BIN...: copy each host binary into ROOT at its own path, with the shared
# libraries and loader ldd names for it, so a dynamically linked tool runs in the guest.
l2_add_bins() {
	_r=$1
	shift
	for _b in "$@"; do
		_real=$(readlink -f "$_b") || return 1
		for _f in "$_real" $(ldd "$_real" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
			mkdir -p "$_r$(dirname "$_f")" && cp -L "$_f" "$_r$_f" || return 1
		done
		# Also under the name it was asked by (mkfs.ext4 is a link to mke2fs).
		if [ "$_b" != "$_real" ]; then
			mkdir -p "$_r$(dirname "$_b")" && cp -L "$_real" "$_r$_b" || return 1
		fi
	done
}

# l2_build_initramfs OUT.gz BODY.sh [MODULE...]: initramfs whose /init runs BODY.sh.
# shellcheck disable=SC2086 # L2_BINS is a list of paths
l2_build_initramfs() {
	_out=$1
	_body=$2
	shift 2
	_root=$(mktemp -d "${TMPDIR:-/tmp}/l2-root.XXXXXX")
	initramfs_add_busybox "$_root" &&
		mkdir -p "$_root/modules" &&
		{ [ $# -eq 0 ] || initramfs_stage_modules "${L2_KVER:-$(uname -r)}" "$_root/modules" "$@"; } &&
		cp "$_body" "$_root/body.sh" &&
		l2_add_bins "$_root" ${L2_BINS:-} &&
		cat >"$_root/init" <<'INIT' &&
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin:/usr/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel booted on one CPU (l2_boot's maxcpus=1): bring the others up now.
for c in /sys/devices/system/cpu/cpu[0-9]*/online; do
	[ -e "$c" ] && [ "$(cat "$c")" != 1 ] || continue
	echo 1 >"$c" || echo "l2-init: cannot online ${c%/online}"
done
echo "l2-init: up, CPUs $(cat /sys/devices/system/cpu/online) online"
for m in /modules/*.ko; do
	[ -e "$m" ] && { insmod "$m" || echo "l2-init: insmod $m failed"; }
done
sh /body.sh
echo "l2-init: body exited $?"
sync
poweroff -f
INIT
		chmod 0755 "$_root/init" &&
		initramfs_pack "$_root" "$_out"
	_rc=$?
	rm -rf "$_root"
	return $_rc
}

# l2_boot INITRD LOG [QEMU_ARG...]: boot the guest, console and qemu messages to LOG.
# Returns qemu's status (124: killed after L2_TIMEOUT seconds).
# The guest kernel boots on one CPU (maxcpus=1; /init onlines the others before it loads
# modules, so a multi-vCPU guest still has every CPU and every virtio queue for its body): its
# initcalls flip static keys (sched_clock's stability at late_initcall, ...) and rewrite their
# branches live, and under nested KVM in TCG a second vCPU can run the stale translated code
# after that rewrite ("Oops: int3" in sched_clock_cpu, seen on CPU 1 during a level-2 boot).
# On one CPU the patcher runs its own patched code. L2_APPEND may override it (maxcpus=N).
l2_boot() {
	_initrd=$1
	_log=$2
	shift 2
	_mem=${L2_MEM_MB:-512}
	if [ "${L2_SHARED_MEM:-0}" = 1 ]; then
		set -- -object "memory-backend-memfd,id=l2mem,size=${_mem}M,share=on" \
			-machine memory-backend=l2mem "$@"
	fi
	[ "${L2_REBOOT:-0}" = 1 ] || set -- -no-reboot "$@"
	timeout -k 5 "${L2_TIMEOUT:-180}" qemu-system-x86_64 -enable-kvm -cpu qemu64 \
		-m "$_mem${L2_MEM_SLOTS:+,$L2_MEM_SLOTS}" \
		-nographic -nic none \
		-kernel "/boot/vmlinuz-$(uname -r)" -initrd "$_initrd" \
		-append "console=ttyS0 panic=-1 maxcpus=1 ${L2_APPEND:-}" \
		"$@" </dev/null >"$_log" 2>&1
}

# shellcheck shell=sh
# SPDX-License-Identifier: GPL-2.0
# Shared part of the end-to-end tests (selftests/e2e/e2e-*.sh), run inside the vmrun VM with the
# module loaded: a vhost-user-blk daemon per disk, level-2 QEMU/KVM guests on vhost-user-blk-pci
# whose /init runs guest.sh, TAP output, and enough of every log on failure to diagnose it.
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_setup 3                      # plan; skips everything when no KVM or no daemon
#   daemon_start d0 /dev/ram0        # [ro]; socket $E2E_WORK/d0.sock
#   guest_start g0 d0 data 42        # guest g0 on d0's socket, e2e.case=data, seed 42
#   wait_state g0 rebooting 120      # poll its console for "E2E-STATE rebooting"
#   guest_wait g0 200; guest_check g0 pattern-write "pattern written"
#
# The guest's initramfs (build/KVER/e2e/initrd.gz, guest.sh as its body) is built by make.
# E2E_BACKEND=serve (default: build/tools/vhostblkctl serve) or qsd (qemu-storage-daemon's
# vhost-user-blk export, QEMU's own back end: the same device for the guest, so the tests'
# machinery can be checked against it). E2E_KEEP=1 keeps the work dir. Guest consoles and
# daemon logs go to $VMRUN_OUT/TEST.logs/ when run by vmrun (the host sees them live).
set -u

# Callers outside selftests/e2e (scripts/demo-guest.sh) set E2E_DIR.
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd -P)}
E2E_REPO=$(cd "$E2E_DIR/../.." && pwd -P)
L2_LIB_DIR=$E2E_REPO/selftests/vm
# shellcheck source=../vm/l2-lib.sh
. "$L2_LIB_DIR/l2-lib.sh"
VBC=${E2E_VBC:-$E2E_REPO/build/tools/vhostblkctl}
PATTERN=$E2E_REPO/build/e2e/vblk_pattern
E2E_INITRD=$E2E_REPO/build/$(uname -r)/e2e/initrd.gz
E2E_BACKEND=${E2E_BACKEND:-serve}
E2E_QUEUES=${E2E_QUEUES:-2}
# Seconds a test waits for a guest to reach its next step, and a guest's qemu may live. A step
# takes seconds to a minute or two in the TCG VM on a quiet host, but the whole VM crawls when
# the host's cores are shared with other work (a level-2 boot took 190 s at load 22 on 2 cores):
# these only bound how long a real hang takes to be reported.
E2E_WAIT=${E2E_WAIT:-1200}
E2E_N=0
E2E_FAILED=0
E2E_PLAN=0
E2E_WORK=
E2E_LOG=
E2E_DAEMON_RC=0
E2E_QEMU_RC=0

now() { date +%s; }

# ---- TAP ----
diag() { sed 's/^/# /'; }

tap_ok() {
	E2E_N=$((E2E_N + 1))
	echo "ok $E2E_N $*"
}

tap_fail() {
	E2E_N=$((E2E_N + 1))
	E2E_FAILED=$((E2E_FAILED + 1))
	echo "not ok $E2E_N $*"
}

tap_skip() {
	E2E_N=$((E2E_N + 1))
	echo "ok $E2E_N $1 # SKIP $2"
}

# Skip every planned test (no KVM, no daemon) and exit 4.
skip_all() {
	while [ "$E2E_N" -lt "$E2E_PLAN" ]; do
		tap_skip "e2e" "$1"
	done
	exit 4
}

# Fail every planned test not run yet (a daemon that will not start): a broken set-up is a failure.
fail_all() {
	while [ "$E2E_N" -lt "$E2E_PLAN" ]; do
		tap_fail "e2e: $1"
	done
	exit 1
}

e2e_finish() {
	[ "$E2E_N" -eq "$E2E_PLAN" ] || echo "# ran $E2E_N of $E2E_PLAN planned tests"
	[ "$E2E_FAILED" -eq 0 ] && [ "$E2E_N" -eq "$E2E_PLAN" ]
}

# ---- setup and cleanup ----
e2e_cleanup() {
	for _f in "$E2E_WORK"/*.qpid "$E2E_WORK"/*.dpid; do
		[ -s "$_f" ] || continue
		_p=$(cat "$_f")
		kill -9 "$_p" 2>/dev/null || true
	done
	for _l in $E2E_LOOPS; do
		losetup -d "$_l" 2>/dev/null || true
	done
	for _d in $E2E_DM; do
		dmsetup remove --retry "$_d" 2>/dev/null || true
	done
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "# kept $E2E_WORK"
	else
		rm -rf "$E2E_WORK"
	fi
}
E2E_DM=
E2E_LOOPS=

# e2e_setup PLAN: print the plan, check KVM and the daemon, build the guest's initramfs.
e2e_setup() {
	E2E_PLAN=$1
	echo "TAP version 13"
	echo "1..$E2E_PLAN"
	E2E_WORK=$(mktemp -d /tmp/e2e.XXXXXX)
	# Consoles and daemon logs where vmrun brings them back (and they can be watched live).
	E2E_LOG=$E2E_WORK
	if [ -n "${VMRUN_OUT:-}" ]; then
		E2E_LOG=$VMRUN_OUT/$(basename "$0" .sh).logs
		rm -rf "$E2E_LOG"
		mkdir -p "$E2E_LOG" || E2E_LOG=$E2E_WORK
	fi
	trap e2e_cleanup EXIT
	trap 'exit 1' INT TERM
	_why=$(l2_kvm_ready 2>&1)
	case $? in
	0) [ ! -s "$L2_KVM_PIN_PID" ] || echo "# KVM static keys held by pid $(cat "$L2_KVM_PIN_PID") (l2_kvm_pin)" ;;
	2) fail_all "$_why" ;;
	*) skip_all "$_why" ;;
	esac
	[ -x "$PATTERN" ] || skip_all "$PATTERN is missing: run make"
	case $E2E_BACKEND in
	serve)
		[ -x "$VBC" ] || skip_all "$VBC is missing: run make"
		"$VBC" serve --help >/dev/null 2>&1 ||
			skip_all "this vhostblkctl has no serve command (E2E_BACKEND=qsd tests with qemu-storage-daemon)"
		;;
	qsd)
		command -v qemu-storage-daemon >/dev/null || skip_all "qemu-storage-daemon is missing"
		;;
	*) skip_all "E2E_BACKEND must be serve or qsd, not '$E2E_BACKEND'" ;;
	esac
	echo "# backend: $E2E_BACKEND; kernel $(uname -r)"
	[ -e /dev/ram0 ] || modprobe brd rd_nr=4 rd_size=16384 ||
		skip_all "no brd ram disks (modprobe brd failed)"
	# Built by `make` (selftests/e2e/build-initrd.sh): packing it in the TCG VM takes ~30 s.
	[ -s "$E2E_INITRD" ] || skip_all "$E2E_INITRD is missing: run make"
}

# ---- daemons ----
daemon_pid() { cat "$E2E_WORK/$1.dpid"; }

# daemon_start NAME DISK [ro]: start a back end for DISK on $E2E_WORK/NAME.sock, wait for it.
# E2E_CACHE=MODE: serve's --cache MODE (QEMU's cache modes; the daemon's default when unset).
daemon_start() {
	_name=$1 _disk=$2 _ro=${3:-}
	_sock=$E2E_WORK/$_name.sock
	echo "$_disk" >"$E2E_WORK/$_name.disk"
	echo "$_ro" >"$E2E_WORK/$_name.ro"
	echo "---- start $(date +%T) ----" >>"$E2E_LOG/$_name.dlog"
	case $E2E_BACKEND in
	serve)
		"$VBC" serve --socket-path "$_sock" --disk "$_disk" --num-queues "$E2E_QUEUES" \
			${E2E_CACHE:+--cache "$E2E_CACHE"} ${_ro:+--read-only} -v >>"$E2E_LOG/$_name.dlog" 2>&1 &
		;;
	qsd)
		_w=on
		[ -z "$_ro" ] || _w=off
		# QEMU's spelling of the cache modes (its -drive cache= table).
		case ${E2E_CACHE:-none} in
		none) _c=cache.direct=on,aio=native _wt=off ;;
		writeback) _c=cache.direct=off _wt=off ;;
		writethrough) _c=cache.direct=off _wt=on ;;
		directsync) _c=cache.direct=on,aio=native _wt=on ;;
		unsafe) _c=cache.direct=off,cache.no-flush=on _wt=off ;;
		esac
		qemu-storage-daemon \
			--blockdev "driver=host_device,node-name=d0,filename=$_disk,$_c" \
			--export "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$_sock,writable=$_w,writethrough=$_wt,num-queues=$E2E_QUEUES" \
			--chardev "socket,id=qmp,path=$E2E_WORK/$_name.qmp,server=on,wait=off" --monitor chardev=qmp \
			>>"$E2E_LOG/$_name.dlog" 2>&1 &
		;;
	esac
	echo $! >"$E2E_WORK/$_name.dpid"
	poll 30 daemon_listening "$_name" && return 0
	echo "daemon $_name did not listen on $_sock within 30 s" | diag
	daemon_log "$_name"
	return 1
}

# The socket accepts connections (not only exists: a stale file from a dead daemon would).
daemon_listening() {
	kill -0 "$(daemon_pid "$1")" 2>/dev/null || return 2
	[ -S "$E2E_WORK/$1.sock" ] || return 1
	grep -q "$E2E_WORK/$1.sock" /proc/net/unix
}

# shellcheck disable=SC2034 # E2E_DAEMON_RC is for the callers
# daemon_stop NAME [SIGNAL]: signal it (TERM) and wait up to 10 s; status in E2E_DAEMON_RC.
daemon_stop() {
	_p=$(daemon_pid "$1")
	kill "-${2:-TERM}" "$_p" 2>/dev/null
	E2E_DAEMON_RC=0
	poll 10 proc_gone "$_p" || { echo "daemon $1 (pid $_p) ignored SIG${2:-TERM} for 10 s" | diag; kill -9 "$_p"; }
	wait "$_p" || E2E_DAEMON_RC=$?
	: >"$E2E_WORK/$1.dpid"
}

proc_gone() { ! kill -0 "$1" 2>/dev/null; }

daemon_log() {
	echo "---- last lines of daemon $1's log ----" | diag
	tail -n "${2:-25}" "$E2E_LOG/$1.dlog" 2>/dev/null | diag
}

# ---- guests ----
# guest_start NAME DAEMON CASE SEED [QEMU_ARG...]: boot a guest in the background whose disk is
# DAEMON's socket; ttyS0 is the console (NAME.console), ttyS1 the fifo pair NAME.ctl.{in,out}
# (-device isa-serial would drop -nographic's console). E2E_RECONNECT=1 adds reconnect=1 to the chardev; E2E_REBOOT=1 lets the guest
# reboot inside one qemu, E2E_APPEND adds to the guest's kernel command line, E2E_MEM_SLOTS to -m.
guest_start() {
	_name=$1 _sock=$E2E_WORK/$2.sock _case=$3 _seed=$4
	shift 4
	_rc=
	[ "${E2E_RECONNECT:-0}" = 0 ] || _rc=,reconnect=1
	rm -f "$E2E_WORK/$_name.ctl.in" "$E2E_WORK/$_name.ctl.out" "$E2E_WORK/$_name.qpid"
	mkfifo "$E2E_WORK/$_name.ctl.in" "$E2E_WORK/$_name.ctl.out"
	now >"$E2E_WORK/$_name.start"
	L2_SHARED_MEM=1 L2_MEM_MB=${E2E_MEM_MB:-512} L2_MEM_SLOTS=${E2E_MEM_SLOTS:-} L2_TIMEOUT=${E2E_GUEST_TIMEOUT:-2400} \
		L2_REBOOT=${E2E_REBOOT:-0} L2_APPEND="loglevel=4 e2e.case=$_case e2e.seed=$_seed ${E2E_APPEND:-}" \
		l2_boot "$E2E_INITRD" "$E2E_LOG/$_name.console" -smp "${E2E_SMP:-2}" \
		-pidfile "$E2E_WORK/$_name.qpid" \
		-chardev "socket,id=vub,path=$_sock$_rc" \
		-device "vhost-user-blk-pci,chardev=vub,num-queues=$E2E_QUEUES" \
		-serial mon:stdio -serial "pipe:$E2E_WORK/$_name.ctl" \
		"$@" &
	echo $! >"$E2E_WORK/$_name.job"
	# Drain what the guest echoes on ttyS1, so its writes never fill the fifo.
	cat "$E2E_WORK/$_name.ctl.out" >/dev/null 2>&1 &
}

guest_console() { tr -d '\r' 2>/dev/null <"$E2E_LOG/$1.console"; }

# guest_boot NAME DAEMON CASE SEED [QEMU_ARG...]: guest_start, then wait for the guest's /init
# ("l2-init: up"). A nested guest that the emulation kills before that point is booted again, up
# to E2E_BOOT_TRIES times in all, each time with a "# E2E-GUEST-REBOOT" line giving the evidence
# (run-tests.sh lists them): seen on 6.1 on a quiet host, a level-2 guest reset (qemu ends,
# -no-reboot) before SeaBIOS printed a line or right after its kernel started, most often when
# another nested guest was being created or torn down at that moment. Until its /init the guest's
# kernel has not touched the disk (virtio_pci and virtio_blk are modules /init loads), so no test
# step is repeated; what happens after it is judged as it is. Fails (1) when the guest did not
# come up for any other reason, or not in E2E_BOOT_TRIES boots.
E2E_BOOT_TRIES=${E2E_BOOT_TRIES:-3}
guest_boot() {
	_gb=$1 _gb_try=1
	guest_start "$@"
	while :; do
		poll "$E2E_WAIT" console_has "$_gb" "l2-init: up" && return 0
		_gb_why=$(guest_boot_fault "$_gb") || break
		[ "$_gb_try" -lt "$E2E_BOOT_TRIES" ] || break
		guest_reap "$_gb"
		mv "$E2E_LOG/$_gb.console" "$E2E_LOG/$_gb.console.$_gb_try"
		rm -f "$E2E_WORK/$_gb.noinit" "$E2E_WORK/$_gb.gone" "$E2E_WORK/$_gb.diag"
		_gb_try=$((_gb_try + 1))
		echo "# E2E-GUEST-REBOOT $_gb boot $_gb_try of $E2E_BOOT_TRIES: $_gb_why (console: $_gb.console.$((_gb_try - 1)))"
		guest_start "$@"
	done
	echo "guest $_gb did not reach its /init (boot $_gb_try of $E2E_BOOT_TRIES)" | diag
	note_gone "$_gb"
	guest_diag "$_gb"
	[ -z "${E2E_DAEMON_OF:-}" ] || daemon_log "$E2E_DAEMON_OF"
	kernel_diag
	return 1
}

# guest_boot_fault NAME: did the nested emulation end this guest before its /init? Prints the
# evidence and succeeds only when its console has no "l2-init: up" and qemu printed no error of
# its own (a vhost-user failure is ours), and one of: its kernel panicked with nothing of virtio,
# vhost or blk in the 40 lines before; its qemu ended before the firmware printed a line (SeaBIOS
# prints its banner before it initialises a device); or SeaBIOS was done with the disk ("Booting
# from ROM", after its reads through our device) and then qemu ended, or guest_never_booted gave
# up on it. A guest that died or hung inside SeaBIOS may have met our device: not retried.
guest_boot_fault() {
	guest_console "$1" | grep -q '^l2-init: up' && return 1
	guest_console "$1" | grep -q '^qemu-system-x86_64:' && return 1
	if guest_console "$1" | grep -q 'Kernel panic'; then
		guest_console "$1" | grep -B40 -m1 'Kernel panic' | grep -qiE 'virtio|vhost|blk' && return 1
		echo "its kernel panicked before /init: $(guest_console "$1" | grep -m1 'Kernel panic' | sed 's/^\[ *[0-9.]*\] //')"
		return 0
	fi
	[ -e "$E2E_WORK/$1.noinit" ] || ! guest_running "$1" || return 1
	if ! guest_console "$1" | grep -q '[^[:space:]]'; then
		if [ -e "$E2E_WORK/$1.noinit" ]; then echo "not a line on its console in ${E2E_BOOT_WAIT}s"
		else echo "qemu ended before the firmware printed a line"; fi
		return 0
	fi
	guest_console "$1" | grep -q 'Booting from ROM' || return 1
	if [ -e "$E2E_WORK/$1.noinit" ]; then
		echo "no /init within ${E2E_BOOT_WAIT}s after SeaBIOS; last console line: $(guest_console "$1" | grep -v '^[[:space:]]*$' | tail -n 1)"
	else
		echo "qemu ended after SeaBIOS, before /init; last console line: $(guest_console "$1" | grep -v '^[[:space:]]*$' | tail -n 1)"
	fi
}

# guest_reap NAME: make sure a guest's qemu is gone and collected.
guest_reap() {
	kill -9 "$(cat "$E2E_WORK/$1.qpid" 2>/dev/null)" 2>/dev/null
	_j=$(cat "$E2E_WORK/$1.job")
	poll 10 proc_gone "$_j"
	wait "$_j" 2>/dev/null
}

guest_running() { kill -0 "$(cat "$E2E_WORK/$1.job")" 2>/dev/null; }

# Is LINE (fixed string) in the console? 2 when the guest is gone or panicked without it.
console_has() {
	guest_console "$1" | grep -qF -- "$2" && return 0
	guest_running "$1" || return 2
	guest_console "$1" | grep -q 'Kernel panic' && return 2
	guest_never_booted "$1" && return 2
	return 1
}

# guest_never_booted NAME: has the guest's kernel failed to reach its /init ("l2-init: up", which
# l2-lib's /init prints before it loads a module) within E2E_BOOT_WAIT seconds? Then say so once
# (for selftests/e2e/emu-fault.sh, with the requests served so far) and kill its qemu, rather
# than wait E2E_WAIT for a guest that is not coming. Until /init the guest's kernel has not
# touched the disk (virtio_pci and virtio_blk are modules /init loads) and SeaBIOS's reads are
# over (it printed "Booting from ROM" after them): nothing of ours is in that window.
E2E_BOOT_WAIT=${E2E_BOOT_WAIT:-600}
guest_never_booted() {
	[ -e "$E2E_WORK/$1.noinit" ] && return 0
	guest_console "$1" | grep -q '^l2-init: up' && return 1
	[ "$(elapsed "$(cat "$E2E_WORK/$1.start")")" -ge "$E2E_BOOT_WAIT" ] || return 1
	: >"$E2E_WORK/$1.noinit"
	echo "# E2E-GUEST-NO-INIT $1 requests=$(requests_counted) after ${E2E_BOOT_WAIT}s"
	kill -9 "$(cat "$E2E_WORK/$1.qpid" 2>/dev/null)" 2>/dev/null
	return 0
}

# poll SECONDS CMD...: run CMD every 0.2 s until it succeeds (0), returns 2 (gives up) or time
# runs out (1).
poll() {
	_end=$(($(now) + $1))
	shift
	while :; do
		"$@"
		_r=$?
		[ "$_r" -eq 0 ] && return 0
		[ "$_r" -eq 2 ] && return 1
		[ "$(now)" -lt "$_end" ] || return 1
		sleep 0.2
	done
}

# wait_state NAME STATE SECONDS: wait for the guest's "E2E-STATE STATE" line.
wait_state() {
	poll "$3" console_has "$1" "E2E-STATE $2" && return 0
	echo "guest $1 never reached state '$2' within $3 s" | diag
	# For run-tests.sh's emulation-fault check (selftests/e2e/emu-fault.sh): did this guest die
	# (rather than stall), and had any request reached a vhost-blk device by then?
	note_gone "$1"
	guest_diag "$1"
	[ -z "${E2E_DAEMON_OF:-}" ] || daemon_log "$E2E_DAEMON_OF"
	kernel_diag
	return 1
}

# kernel_diag: what the module saw (devices, per-queue kicks and requests) and its log, so a
# stuck guest tells whether its kicks reached the kernel.
kernel_diag() {
	[ -x "$VBC" ] || return 0
	{
		echo "---- vhostblkctl dev show; vhostblkctl stats ----"
		timeout 10 "$VBC" dev show 2>&1
		timeout 10 "$VBC" stats 2>&1
		echo "---- last kernel messages ----"
		dmesg 2>/dev/null | tail -n 15
	} | diag
}

# note_gone NAME: once per guest, when its qemu has ended, a line saying so with the requests
# counted by then, for run-tests.sh's emulation-fault check (selftests/e2e/emu-fault.sh).
note_gone() {
	[ -e "$E2E_WORK/$1.gone" ] && return 0
	guest_running "$1" && return 0
	: >"$E2E_WORK/$1.gone"
	echo "# E2E-GUEST-GONE $1 requests=$(requests_counted)"
}

# requests_counted: requests of every kind summed over every vhost-blk device's queues
# (vhostblkctl -j stats), or "unknown" when that cannot be read.
requests_counted() {
	if [ "$E2E_BACKEND" != serve ] || [ ! -x "$VBC" ]; then echo unknown; return; fi
	timeout 10 "$VBC" -j stats 2>/dev/null | python3 -c '
import json, sys
try:
    devs = json.load(sys.stdin)["stats"]
except Exception:
    print("unknown")
    sys.exit()
print(sum(v for d in devs for q in d["queues"] for k, v in q.items()
          if k.startswith("req_") and isinstance(v, int)))
' 2>/dev/null || echo unknown
}

# guest_go NAME: tell a guest waiting in wait_host to go on.
guest_go() {
	timeout 10 sh -c "echo go >'$E2E_WORK/$1.ctl.in'"
}

# guest_wait NAME SECONDS: wait for qemu to end (the guest powers off); its status in E2E_QEMU_RC.
guest_wait() {
	_j=$(cat "$E2E_WORK/$1.job")
	E2E_QEMU_RC=0
	if ! poll "$2" proc_gone "$_j"; then
		echo "guest $1 still running after $2 s: killing qemu" | diag
		kill -9 "$(cat "$E2E_WORK/$1.qpid")" 2>/dev/null
	fi
	wait "$_j" || E2E_QEMU_RC=$?
	echo "# guest $1 ran $(($(now) - $(cat "$E2E_WORK/$1.start")))s, qemu exited $E2E_QEMU_RC"
}

# guest_kill NAME: SIGKILL qemu, as a crash would.
guest_kill() {
	_q=$(cat "$E2E_WORK/$1.qpid")
	kill -9 "$_q"
	_j=$(cat "$E2E_WORK/$1.job")
	poll 10 proc_gone "$_j"
	wait "$_j" 2>/dev/null
	: >"$E2E_WORK/$1.qpid"
}

# The console's tail, once per guest (every failing check of a guest would repeat it).
guest_diag() {
	[ -e "$E2E_WORK/$1.diag" ] && return 0
	: >"$E2E_WORK/$1.diag"
	echo "---- last lines of guest $1's console ----" | diag
	guest_console "$1" | grep -v '^$' | tail -n "${2:-30}" | diag
}

# guest_check NAME CHECK DESCRIPTION: one TAP line from the guest's E2E-OK/E2E-FAIL CHECK line.
guest_check() {
	_line=$(guest_console "$1" | grep -E "^E2E-(OK|FAIL) $2( |\$)" | tail -n 1)
	case $_line in
	"E2E-OK $2"*)
		tap_ok "$3${_line#"E2E-OK $2"}"
		return 0
		;;
	"E2E-FAIL $2"*) tap_fail "$3: guest says:${_line#"E2E-FAIL $2"}" ;;
	*)
		tap_fail "$3: the guest never reported '$2'"
		note_gone "$1"
		;;
	esac
	if [ ! -e "$E2E_WORK/$1.diag" ]; then
		guest_diag "$1"
		[ -z "${E2E_DAEMON_OF:-}" ] || daemon_log "$E2E_DAEMON_OF"
	fi
	return 1
}

# The guest kernel complained (I/O errors, warnings, hung tasks): print them, fail.
guest_kernel_clean() {
	_bad=$(guest_console "$1" | grep -E 'I/O error|BUG:|WARNING:|Call Trace|blocked for more than|Buffer I/O|EXT4-fs error' | head -n 20)
	[ -z "$_bad" ] && return 0
	echo "guest $1's kernel complained:" | diag
	printf '%s\n' "$_bad" | diag
	return 1
}

# ---- host-side checks ----
# host_verify DISK SEED [vblk_pattern options]: the pattern is on the backing disk.
host_verify() {
	_d=$1 _s=$2
	shift 2
	_out=$("$PATTERN" verify "$_d" --seed "$_s" --plan 1m:2 "$@" 2>&1)
	_r=$?
	printf '%s\n' "$_out" | diag
	return $_r
}

# Fill DISK's first MiB with zeros (guest.sh's second-pass flag lives there).
disk_clear_head() {
	dd if=/dev/zero of="$1" bs=1M count=1 oflag=direct status=none
}

# elapsed START: seconds since START (from now).
elapsed() { echo $(($(now) - $1)); }

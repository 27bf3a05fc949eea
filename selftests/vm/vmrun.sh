#!/bin/bash
# Run tests inside a qemu VM booted with a distribution kernel: the host root is shared read-only
# over virtio-9p, so the tests run host binaries against the guest kernel and the modules it loads.
# Results (TAP, exit codes, dmesg) come back through DIR, a second, writable 9p export.
set -eu

usage() {
	cat >&2 <<'EOF'
usage: selftests/vm/vmrun.sh --kver KVER --out DIR [--module PATH.ko] [--load "brd null_blk ..."]
                             [--timeout SEC] [--mem MB] [--smp N] [--accel tcg|kvm] -- TEST...
       selftests/vm/vmrun.sh --kdir DIR ...   instead of --kver: boot a kernel of one's own,
                             DIR as scripts/debug-kernel.sh leaves it (bzImage, kernel.release,
                             modules/lib/modules/RELEASE, which the guest sees as /lib/modules)
EOF
	exit 2
}

die() {
	echo "vmrun: $*" >&2
	exit 2
}

SELF_DIR=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$SELF_DIR/../.." && pwd -P)
. "$SELF_DIR/initramfs-lib.sh"

KVER='' KDIR='' OUT='' MODULE='' LOAD='' TIMEOUT=1200 MEM=2048 SMP=2 ACCEL=tcg
while [ $# -gt 0 ]; do
	case $1 in
	--kver | --kdir | --out | --module | --load | --timeout | --mem | --smp | --accel)
		[ $# -ge 2 ] || usage
		case $1 in
		--kver) KVER=$2 ;;
		--kdir) KDIR=$2 ;;
		--out) OUT=$2 ;;
		--module) MODULE=$2 ;;
		--load) LOAD=$2 ;;
		--timeout) TIMEOUT=$2 ;;
		--mem) MEM=$2 ;;
		--smp) SMP=$2 ;;
		--accel) ACCEL=$2 ;;
		esac
		shift 2
		;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) echo "vmrun: unknown argument: $1" >&2; usage ;;
	esac
done
if [ -n "$KDIR" ]; then
	[ -z "$KVER" ] || die "--kver and --kdir exclude each other"
	KDIR=$(cd "$KDIR" 2>/dev/null && pwd -P) || die "no kernel dir $KDIR"
	KVER=$(cat "$KDIR/kernel.release" 2>/dev/null) || die "no $KDIR/kernel.release: not a scripts/debug-kernel.sh dir"
fi
[ -n "$KVER" ] && [ -n "$OUT" ] || usage
[ $# -gt 0 ] || die "no tests given"
for n in "$TIMEOUT" "$MEM" "$SMP"; do
	case $n in '' | *[!0-9]*) die "not a number: $n" ;; esac
done
case $ACCEL in
tcg) CPU=max ;; # TCG's "max" exposes svm, so a level-2 guest can use KVM inside the VM
kvm) CPU=host ;;
*) die "--accel must be tcg or kvm" ;;
esac

KERNEL=/boot/vmlinuz-$KVER
MODROOT=/lib/modules
if [ -n "$KDIR" ]; then
	KERNEL=$KDIR/bzImage
	MODROOT=$KDIR/modules/lib/modules
	case $MODROOT in *[[:space:]]*) die "the kernel dir path must not contain whitespace: $KDIR" ;; esac
	# initramfs_module_list resolves the boot modules there, not in the host's /lib/modules.
	export INITRAMFS_MODPROBE_DIR=$KDIR/modules
fi
[ -r "$KERNEL" ] || die "no kernel $KERNEL"
[ -d "$MODROOT/$KVER" ] || die "no modules in $MODROOT/$KVER"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
# The guest gets DIR on the kernel command line, which is split at whitespace.
case $OUT in *[[:space:]]*) die "the out dir path must not contain whitespace: $OUT" ;; esac
[ "$OUT" != / ] || die "the out dir cannot be /"

if [ -n "$MODULE" ]; then
	[ -f "$MODULE" ] || die "no module file $MODULE"
	MODULE=$(realpath "$MODULE")
fi

# Tests: absolute paths (resolved here), executable, with distinct names because NAME.tap is
# keyed by the basename.
TESTS=()
NAMES=" setup module-unload kmemleak dmesg summary stage console qemu job "
for t in "$@"; do
	[ -f "$t" ] && [ -x "$t" ] || die "not an executable file: $t"
	t=$(realpath "$t")
	name=${t##*/}
	case $NAMES in *" $name "*) die "test name $name is taken (duplicate or reserved)" ;; esac
	NAMES="$NAMES$name "
	TESTS+=("$t")
done

# ---- initramfs, cached per kernel under build/vm/KVER, rebuilt when an input changes ----
BUILD=$REPO/build/vm/$KVER
INITRD=$BUILD/initramfs.cpio.gz
BOOT_MODULES="9p 9pnet_virtio virtio_pci overlay"

build_initramfs() {
	local stamp=$BUILD/inputs want mods staging
	# shellcheck disable=SC2086 # the module names are meant to split
	mods=$(initramfs_module_list "$KVER" $BOOT_MODULES) || die "modprobe cannot resolve $BOOT_MODULES for $KVER"
	# Everything that ends up in the image, by content: rebuilding only costs a few seconds,
	# but a stale image would silently test the wrong thing.
	want=$(
		echo "layout 1 $KVER $BOOT_MODULES $KDIR"
		# shellcheck disable=SC2086
		sha256sum /bin/busybox "$SELF_DIR/init" "$SELF_DIR/initramfs-lib.sh" $mods
	)
	if [ -s "$INITRD" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		return 0
	fi
	echo "vmrun: building $INITRD"
	staging=$BUILD/root
	rm -rf "$staging"
	mkdir -p "$staging"
	initramfs_add_busybox "$staging" || die "cannot copy busybox"
	# shellcheck disable=SC2086
	initramfs_stage_modules "$KVER" "$staging/modules" $BOOT_MODULES || die "cannot stage modules"
	install -m 0755 "$SELF_DIR/init" "$staging/init"
	initramfs_pack "$staging" "$INITRD" || die "cannot pack $INITRD"
	rm -rf "$staging"
	printf '%s\n' "$want" >"$stamp"
}

mkdir -p "$BUILD"
# Two runs for the same kernel must not build into the same staging dir at once.
exec 9>"$BUILD/.lock"
flock 9
build_initramfs
flock -u 9
exec 9>&-

# ---- job: what the guest should do, shell-quoted, read by init from DIR/job.env ----
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

rm -f "$OUT"/*.tap "$OUT"/*.rc "$OUT"/*.time "$OUT"/dmesg.log "$OUT"/console.log "$OUT"/qemu.log \
	"$OUT"/stage "$OUT"/stages.log "$OUT"/summary "$OUT"/job.env
{
	echo "VM_REPO=$(q "$REPO")"
	echo "VM_OUT=$(q "$OUT")"
	echo "VM_MODULE=$(q "$MODULE")"
	echo "VM_LOAD=$(q "$LOAD")"
	echo "VM_NTESTS=${#TESTS[@]}"
	i=1
	for t in "${TESTS[@]}"; do
		echo "VM_TEST_$i=$(q "$t")"
		i=$((i + 1))
	done
} >"$OUT/job.env"

# ---- boot ----
# printk.devkmsg=on: tests may log to /dev/kmsg and must not be rate limited.
# log_buf_len: a long run must not push early warnings out of the buffer before dmesg is saved.
# trace_event: tests read block_bio_queue (what reaches a device). Enabling a tracepoint patches
# kernel text; at runtime that needs every vCPU to answer an IPI, which multi-threaded TCG sometimes
# never does. From the command line it is enabled in trace_init() and again by an early_initcall,
# both before smp_init(), so no cross-CPU patching happens; tests only set a filter and read.
APPEND="console=ttyS0 panic=-1 no_timer_check log_buf_len=16M printk.devkmsg=on vmrun.out=$OUT"
APPEND+=" trace_event=block:block_bio_queue"
[ -z "$KDIR" ] || APPEND="$APPEND vmrun.modules=$MODROOT vmrun.kernel=$KERNEL"
esc() { printf '%s' "${1//,/,,}"; } # qemu option values escape "," by doubling it

# shellcheck disable=SC2054 # the commas are inside qemu option values
QEMU=(qemu-system-x86_64 -nodefaults -no-user-config
	-accel "$ACCEL" -cpu "$CPU" -smp "$SMP" -m "$MEM"
	-kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
	-display none -serial "file:$(esc "$OUT/console.log")" -monitor none -no-reboot
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
	-virtfs "local,path=$(esc "$OUT"),mount_tag=vmout,security_model=none,multidevs=remap")

echo "vmrun: [$KVER] booting ($ACCEL, ${SMP} cpus, ${MEM} MiB, timeout ${TIMEOUT}s); console: $OUT/console.log"
start=$(date +%s)
qrc=0
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$OUT/qemu.log" 2>&1 &
qpid=$!
# timeout(1) runs qemu in its own process group, so ^C here would not reach it: forward it.
interrupted=0
trap 'interrupted=1; kill -TERM $qpid 2>/dev/null || true' INT TERM HUP
wait $qpid || qrc=$?
while kill -0 $qpid 2>/dev/null; do wait $qpid || qrc=$?; done
trap - INT TERM HUP
[ "$interrupted" -eq 0 ] || die "interrupted"
wall=$(($(date +%s) - start))

# ---- judge ----
PASSED=0 FAILED=0 SKIPPED=0
STAGE=$(cat "$OUT/stage" 2>/dev/null || echo none)
BOOT_OK=1

console_tail() {
	echo "---- last lines of $OUT/console.log ----" >&2
	tail -n 25 "$OUT/console.log" >&2 2>/dev/null || true
	echo "----" >&2
}

reached_tests() {
	case $STAGE in tests | test:* | cleanup | done) return 0 ;; esac
	return 1
}

# How the VM ended, for selftests/e2e/emu-fault.sh: timeout, qemu-error, early-poweroff, done.
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	echo timeout >"$OUT/vm-end"
	BOOT_OK=0
	if reached_tests; then
		where="it reached the test stage; last stage: $STAGE"
	elif [ "$STAGE" = none ]; then
		where="it never mounted $OUT (stuck in boot or the initramfs)"
	else
		where="it never reached the test stage; last stage: $STAGE"
	fi
	echo "vmrun: [$KVER] FAIL: guest did not finish within ${TIMEOUT}s, qemu killed; $where" >&2
	console_tail
elif [ "$qrc" -ne 0 ]; then
	echo qemu-error >"$OUT/vm-end"
	BOOT_OK=0
	echo "vmrun: [$KVER] FAIL: qemu exited with $qrc:" >&2
	cat "$OUT/qemu.log" >&2
elif [ "$STAGE" != "done" ]; then
	echo early-poweroff >"$OUT/vm-end"
	BOOT_OK=0
	echo "vmrun: [$KVER] FAIL: guest powered off before finishing; last stage: $STAGE" >&2
	console_tail
else
	echo "done" >"$OUT/vm-end"
fi

if [ -f "$OUT/stages.log" ]; then
	t_tests=$(awk '$2 == "tests" { print $1 "s" }' "$OUT/stages.log")
	echo "vmrun: [$KVER] tests started at guest uptime ${t_tests:-(never)}; VM wall time: ${wall}s"
fi

# count NAME: print "passed failed skipped note" from NAME.tap and NAME.rc.
count() {
	local rc=missing
	if [ ! -f "$OUT/$1.tap" ]; then
		echo "0 1 0 (did not run)"
		return
	fi
	[ -f "$OUT/$1.rc" ] && rc=$(cat "$OUT/$1.rc")
	awk -v rc="$rc" '
		/^(not )?ok([ \t]|$)/ {
			if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) s++
			else if ($0 ~ /^not /) f++
			else p++
			next
		}
		/^1\.\.[0-9]+/ && plan == "" { plan = substr($1, 4) + 0 }
		/^Bail out!/ { bail = 1 }
		END {
			n = p + f + s
			note = ""
			if (plan != "" && plan > n) { f += plan - n; note = note " (plan 1.." plan ", " n " results)" }
			if (bail && f == 0) { f = 1; note = note " (bailed out)" }
			if (rc == "missing") {
				if (f == 0) f = 1
				note = note " (did not run or finish)"
			} else if (rc == 4 && n == 0) {
				if (f == 0) s = 1
			} else if (rc != 0 && rc != 4 && f == 0) {
				f = 1
			} else if (rc == 0 && n == 0 && f == 0) {
				p = 1 # not TAP: its exit status is the result
			}
			if (rc == 124 || rc == 137) note = note " (timed out)"
			else if (rc != "missing" && rc != 0) note = note " (exit " rc ")"
			printf "%d %d %d%s\n", p, f, s, note
		}' "$OUT/$1.tap"
}

report() {
	local name=$1 p f s note time=""
	read -r p f s note < <(count "$name")
	[ -f "$OUT/$name.time" ] && time=" [$(cat "$OUT/$name.time")s]"
	echo "[$KVER] $name: $p passed, $f failed, $s skipped${note:+ $note}$time"
	PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
	if [ "$f" -ne 0 ] && [ -s "$OUT/$name.tap" ]; then
		grep -E '^(not ok|Bail out!|# vmrun:)' "$OUT/$name.tap" | head -n 20 | sed 's/^/    /'
	fi
}

report setup
for t in "${TESTS[@]}"; do
	report "${t##*/}"
done
[ -z "$MODULE" ] || report module-unload
[ ! -f "$OUT/kmemleak.tap" ] || report kmemleak

# The kernel log check counts as one test. Out-of-tree/unsigned module taints are expected.
# The debug kernel's checkers: KFENCE, ODEBUG (DEBUG_OBJECTS), atomic sleeps, kmemleak.
BAD='BUG:|WARNING:|Oops|KASAN|UBSAN|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|blocked for more than|refcount_t:|general protection fault|kernel BUG|Call Trace:|KFENCE|ODEBUG:|sleeping function called|suspected memory leak'
# Between a test's "vmrun: fault injection begin/end" lines in /dev/kmsg, the allocation
# failures it injects are expected to print warn_alloc's stack dump: drop just those dumps.
injected() {
	awk '/vmrun: fault injection begin/ { inj = 1 }
		/vmrun: fault injection end/ { inj = 0 }
		inj && /page allocation failure: order|vmalloc error: size/ { skip = 1 }
		skip { if (/<\/TASK>/) skip = 0; next }
		{ print }' "$1"
}
klog=$OUT/dmesg.log
[ -s "$klog" ] || klog=$OUT/console.log
if [ ! -s "$klog" ]; then
	echo "[$KVER] dmesg: 0 passed, 1 failed, 0 skipped (no kernel log)"
	FAILED=$((FAILED + 1))
elif bad=$(injected "$klog" | grep -E "$BAD" | grep -vE 'taints kernel|tainting kernel'); then
	echo "[$KVER] dmesg: 0 passed, 1 failed, 0 skipped ($(printf '%s\n' "$bad" | wc -l) suspicious lines in ${klog##*/}):"
	printf '%s\n' "$bad" | head -n 40 | sed 's/^/    /'
	FAILED=$((FAILED + 1))
else
	echo "[$KVER] dmesg: 1 passed, 0 failed, 0 skipped"
	PASSED=$((PASSED + 1))
fi

[ "$BOOT_OK" -eq 1 ] || FAILED=$((FAILED + 1))
echo "passed=$PASSED failed=$FAILED skipped=$SKIPPED" >"$OUT/summary"
echo "[$KVER] total: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]

#!/bin/sh
# Runs inside the vmrun VM, chrooted into the host root (host binaries, guest kernel).
# Loads the modules, runs each test with a timeout and leaves for vmrun.sh in DIR:
#   setup.tap/.rc          one TAP line per module load
#   NAME.tap/.rc/.time     each test's stdout+stderr, exit code, seconds taken
#   module-unload.tap/.rc  whether the project module unloads after the tests (leaks pin it)
#   kmemleak.tap/.rc/.log  on a kernel with kmemleak: what a scan after the unload reports
#   dmesg.log              the kernel log
#   stage, stages.log      how far the guest got (read by vmrun.sh on timeout)
set -eu

usage() {
	echo "usage: guest-run.sh --out DIR [--module PATH.ko] [--load \"MOD ...\"] -- TEST..." >&2
	exit 2
}

OUT=
MODULE=
LOAD=
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift 2 ;;
	--module) MODULE=$2; shift 2 ;;
	--load) LOAD=$2; shift 2 ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
{ [ -n "$OUT" ] && [ -d "$OUT" ]; } || usage

say() { echo "guest-run: $*"; }

stage() {
	echo "$1" >"$OUT/stage"
	echo "$(cut -d' ' -f1 /proc/uptime) $1" >>"$OUT/stages.log"
}

# Default per-test timeout, or kselftest's "timeout=" from a settings file beside the test.
test_timeout() {
	_t=300
	_settings=$(dirname "$1")/settings
	if [ -r "$_settings" ]; then
		_v=$(sed -n 's/^timeout=\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$_settings" | tail -n 1)
		[ -z "$_v" ] || _t=$_v
	fi
	echo "$_t"
}

SETUP_N=0
SETUP_FAILED=0
# setup_step DESCRIPTION CMD...: run CMD, record one TAP line in setup.tap with its output.
setup_step() {
	_desc=$1
	shift
	SETUP_N=$((SETUP_N + 1))
	if _msg=$("$@" 2>&1); then
		echo "ok $SETUP_N $_desc" >>"$OUT/setup.tap"
	else
		echo "not ok $SETUP_N $_desc" >>"$OUT/setup.tap"
		printf '%s\n' "$_msg" | sed 's/^/# /' >>"$OUT/setup.tap"
		say "FAILED: $_desc: $_msg"
		SETUP_FAILED=1
	fi
}

finish() {
	dmesg >"$OUT/dmesg.log" 2>&1 || true
	stage "$1"
}

stage setup
# What a systemd host would have mounted; tests of configfs-driven drivers (null_blk, nvmet) and
# tracing expect them. Best effort: a missing one only matters to the test that needs it.
modprobe configfs 2>/dev/null || true
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config 2>/dev/null || true
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
: >"$OUT/setup.tap"
# kmemleak (the debug kernel): forget what boot left, so the scan at the end reports the run's.
KMEMLEAK=/sys/kernel/debug/kmemleak
if [ -w "$KMEMLEAK" ]; then
	echo scan >"$KMEMLEAK" && echo clear >"$KMEMLEAK" || KMEMLEAK=
else
	KMEMLEAK=
fi
# vhost pulls in vhost_iotlb; the host's kmod reads /lib/modules/$(uname -r) and handles .ko.xz.
setup_step "modprobe vhost" modprobe vhost
MODNAME=
if [ -n "$MODULE" ]; then
	MODNAME=$(basename "$MODULE" .ko | tr - _)
	setup_step "insmod $MODULE" insmod "$MODULE"
fi
for m in $LOAD; do
	setup_step "modprobe $m" modprobe "$m"
done
echo "1..$SETUP_N" >>"$OUT/setup.tap"
echo "$SETUP_FAILED" >"$OUT/setup.rc"
if [ "$SETUP_FAILED" -ne 0 ]; then
	say "module setup failed; not running the tests"
	finish setup-failed
	exit 1
fi

export VMRUN_OUT="$OUT" VMRUN_MODULE="$MODULE"
stage tests
for t in "$@"; do
	name=$(basename "$t")
	to=$(test_timeout "$t")
	stage "test:$name"
	say "running $name ($([ "$to" -eq 0 ] && echo "no timeout" || echo "timeout ${to}s"))"
	start=$(date +%s)
	rc=0
	# kselftest runs tests from their own directory; timeout kills the whole process group.
	(cd "$(dirname "$t")" && exec timeout -k 10 "$to" "$t") </dev/null >"$OUT/$name.tap" 2>&1 || rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "# vmrun: TIMEOUT: $name killed after ${to}s" >>"$OUT/$name.tap"
	fi
	echo "$rc" >"$OUT/$name.rc"
	echo $(($(date +%s) - start)) >"$OUT/$name.time"
	say "$name exited $rc after $(($(date +%s) - start))s"
done

if [ -n "$MODNAME" ]; then
	stage cleanup
	if _msg=$(timeout 60 rmmod "$MODNAME" 2>&1); then
		printf '1..1\nok 1 module unloads\n' >"$OUT/module-unload.tap"
		echo 0 >"$OUT/module-unload.rc"
	else
		{
			printf '1..1\nnot ok 1 module unloads (rmmod %s)\n' "$MODNAME"
			printf '%s\n' "$_msg" | sed 's/^/# /'
			grep "^$MODNAME " /proc/modules | sed 's/^/# \/proc\/modules: /' || true
		} >"$OUT/module-unload.tap"
		echo 1 >"$OUT/module-unload.rc"
	fi
fi
if [ -n "$KMEMLEAK" ]; then
	stage kmemleak
	# Objects younger than 5 s are not reported: wait, then scan twice as the docs advise.
	sleep 6
	rc=0
	{ echo scan >"$KMEMLEAK" && echo scan >"$KMEMLEAK" && cat "$KMEMLEAK"; } >"$OUT/kmemleak.log" 2>&1 ||
		rc=$?
	echo "$rc" >"$OUT/kmemleak.rc"
	n=$(grep -c '^unreferenced object' "$OUT/kmemleak.log") || n=0
	if [ "$rc" -ne 0 ]; then
		{
			printf '1..1\nnot ok 1 kmemleak scan failed\n'
			sed 's/^/# /' "$OUT/kmemleak.log"
		} >"$OUT/kmemleak.tap"
	elif [ "$n" -eq 0 ]; then
		printf '1..1\nok 1 kmemleak reports nothing after the run\n' >"$OUT/kmemleak.tap"
	else
		{
			printf '1..1\nnot ok 1 kmemleak: %s unreferenced objects (kmemleak.log)\n' "$n"
			head -n 40 "$OUT/kmemleak.log" | sed 's/^/# /'
		} >"$OUT/kmemleak.tap"
	fi
fi
finish "done"

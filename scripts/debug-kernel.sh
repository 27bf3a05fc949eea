#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) the debug kernel `make check-debug` runs on: Debian's
# linux-source-6.12 with KASAN, KFENCE, lockdep, DEBUG_OBJECTS, kmemleak and
# fault injection, configured from `make allnoconfig` plus the fragments in
# selftests/vm/debug-kernel/*.config (not the distribution config: a small
# kernel builds in a fraction of the time).
#
# The result is cached in build/debug-kernel/<key>/, the key being a hash of
# the fragments, the compiler, the source package version and RECIPE (bump it
# when a change here changes what gets built); a second run with the same
# inputs runs no make at all. The directory then holds
#   bzImage          the kernel
#   kernel.release   its release string (uname -r)
#   obj              a link to the build tree (KDIR for out-of-tree modules)
#   modules/         modules_install output: lib/modules/<release>/
#   build.log        the compiler output, build.time the wall time in seconds
#                    (build.kind: "fresh" for an empty tree, else "incremental")
# The source and the build tree depend on the source version only:
# build/debug-kernel/src-<version>/ and obj-<version>/. A changed fragment
# (a new key) configures that same tree anew and kbuild recompiles only what
# the change touches (the tree's absolute paths, which kbuild and objtool
# record, stay the same). The tree holds one configuration at a time, so
# such a build first drops the results of the other keys of that source: a
# result always matches the tree its obj link points to. An interrupted
# build resumes where it stopped.
#
# usage: scripts/debug-kernel.sh [--print-dir] [SOURCE_TARBALL]
#   --print-dir   print the cache directory and exit 0 when it is built,
#                 exit 1 when not (builds nothing)
# Environment: JOBS (default 2), NICE (default 19).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd -P)
print_dir=0
if [ "${1:-}" = --print-dir ]; then
	print_dir=1
	shift
fi
tarball=${1:-/usr/src/linux-source-6.12.tar.xz}
frags=$top/selftests/vm/debug-kernel
jobs=${JOBS:-2}
nice=${NICE:-19}

die() { echo "debug-kernel: $*" >&2; exit 1; }

[ -f "$tarball" ] || die "no kernel source at $tarball: install it (apt-get install linux-source-6.12)"
pkg=$(dpkg-query -S "$tarball" 2>/dev/null | head -1 | cut -d: -f1) || true
if [ -n "$pkg" ]; then
	srcver=$pkg-$(dpkg-query -W -f='${Version}' "$pkg")
else
	srcver=custom-$(stat -c %s-%Y "$tarball")
fi
srcver=${srcver//\~/_} # kbuild paths: keep them plain

RECIPE=1 # allnoconfig + fragments; bzImage + modules
key=$(
	{
		echo "recipe $RECIPE $srcver"
		cat "$frags"/*.config
		gcc --version | head -1
	} | sha256sum | cut -c1-16
)
base=$top/build/debug-kernel
dir=$base/$key

if [ -f "$dir/.done" ]; then
	[ "$print_dir" -eq 1 ] && echo "$dir" && exit 0
	echo "debug-kernel: cached: $dir ($(cat "$dir/kernel.release"), built in $(cat "$dir/build.time")s)"
	exit 0
fi
[ "$print_dir" -eq 0 ] || exit 1

mkdir -p "$base"
exec 9>"$base/.lock"
flock -n 9 || die "another debug kernel build is running (lock $base/.lock)"

src=$base/src-$srcver
if [ ! -f "$src/.extracted" ]; then
	echo "debug-kernel: extracting $tarball"
	rm -rf "$src"
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1
	touch "$src/.extracted"
fi

obj=$base/obj-$srcver
# The tree is about to take this key's configuration: the results built
# from it for other keys would no longer match it.
for old in "$base"/*/source; do
	if [ -f "$old" ] && [ "${old%/source}" != "$dir" ] &&
		[ "$(cat "$old")" = "$srcver" ]; then
		echo "debug-kernel: dropping ${old%/source} (another configuration of the same tree)"
		rm -rf "${old%/source}"
	fi
done
if [ -f "$obj/.vblk-built" ]; then
	kind=incremental
	echo "debug-kernel: reconfiguring the tree in $obj (incremental build)"
else
	kind=fresh
fi
rm -rf "$dir"
mkdir -p "$dir" "$obj"
ln -s "../obj-$srcver" "$dir/obj"
echo "$srcver" >"$dir/source"
kmake() { nice -n "$nice" make -C "$src" O="$obj" "$@"; }

cat "$frags"/*.config >"$dir/fragments.config"
KCONFIG_ALLCONFIG=$dir/fragments.config kmake -s allnoconfig >/dev/null
# Every symbol the fragments set must survive the dependency resolution: a
# silently dropped CONFIG_KASAN would make the whole lane meaningless.
missing=$(
	sed -nE 's/^(CONFIG_[A-Z0-9_]+)=(.*)$/\1=\2/p; s/^# (CONFIG_[A-Z0-9_]+) is not set$/\1=n/p' \
		"$dir/fragments.config" | while IFS='=' read -r sym val; do
		case $val in
		n) grep -qx "$sym=.*" "$obj/.config" && echo "$sym=n (is $(grep "^$sym=" "$obj/.config"))" ;;
		*) grep -qxF "$sym=$val" "$obj/.config" ||
			echo "$sym=$val (is $(grep "^$sym=" "$obj/.config" || echo unset))" ;;
		esac
	done
) || true
[ -z "$missing" ] || die "the config dropped or changed these fragment settings (check their dependencies):
$missing"

echo "debug-kernel: building $srcver in $dir (make -j$jobs, nice $nice); log: $dir/build.log"
t0=$(date +%s)
kmake -j"$jobs" bzImage modules >"$dir/build.log" 2>&1 ||
	{ tail -30 "$dir/build.log" >&2; die "the kernel build failed; log: $dir/build.log"; }
kmake -s INSTALL_MOD_PATH="$dir/modules" modules_install >>"$dir/build.log" 2>&1 ||
	die "modules_install failed; log: $dir/build.log"
echo $(($(date +%s) - t0)) >"$dir/build.time"
echo "$kind" >"$dir/build.kind"
touch "$obj/.vblk-built"
cp "$obj/arch/x86/boot/bzImage" "$dir/bzImage"
kmake -s kernelrelease >"$dir/kernel.release"
# For scripts/kernel-prep.sh: the Debian version of the source (vhost.h's origin).
if [ -n "$pkg" ]; then
	dpkg-query -W -f='${Version}' "$pkg" >"$obj/vblk-source-version"
else
	echo "$srcver" >"$obj/vblk-source-version"
fi
touch "$dir/.done"
echo "debug-kernel: built $(cat "$dir/kernel.release") in $(cat "$dir/build.time")s ($kind): $dir"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepare everything the build needs from one Debian kernel, without copying
# kernel code into git:
#   1. check that linux-source-X has the same Debian version as the target's
#      headers (vhost.h is private and its struct layouts change between
#      point releases),
#   2. extract drivers/vhost, the kselftest headers and checkpatch.pl from the
#      source tarball into a cache directory,
#   3. prove the match: build the extracted vhost.c against the target kbuild
#      and compare the CRC of every vhost export with the kernel's own
#      Module.symvers,
#   4. probe the target's APIs (conftest) and write compat_features.h.
#
# usage: scripts/kernel-prep.sh KVER BUILD_DIR [LINUX_SOURCE_TARBALL]
# Prints nothing but errors and one progress line per step; idempotent.
# KDIR in the environment names the kernel build tree (default
# /lib/modules/KVER/build); a tree scripts/debug-kernel.sh built records the
# source package version it came from in KDIR/vblk-source-version.
set -eu

kver=$1
out=$2
tarball=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "kernel-prep: $kver: $*" >&2; exit 1; }

# `make -j` prepares the same kernel for the module and the selftests at
# once: one preparation at a time per kernel, the second finds it done.
mkdir -p "$top/build"
exec 8>"$top/build/.prep-$kver.lock"
flock 8

kbuild=${KDIR:-/lib/modules/$kver/build}
[ -d "$kbuild" ] || die "no kbuild at $kbuild: install linux-headers-$kver (apt-get install linux-headers-$kver)"
# A self-built tree (the debug kernel) has its source at hand.
own_tree=
[ ! -f "$kbuild/vblk-source-version" ] || own_tree=$kbuild

series=$(echo "$kver" | grep -oE '^[0-9]+\.[0-9]+')
srcpkg=linux-source-$series
[ -n "$tarball" ] || tarball=/usr/src/$srcpkg.tar.xz
[ -f "$tarball" ] || die "no kernel source at $tarball: install $srcpkg (apt-get install $srcpkg)"

# The Debian version of the package that owns a file, e.g. 6.1.192-2.
pkg_version() {
	local pkg
	pkg=$(dpkg-query -S "$1" 2>/dev/null | head -1 | cut -d: -f1) || true
	[ -n "$pkg" ] || return 0
	dpkg-query -W -f='${Version}' "$pkg"
}

if [ -n "$own_tree" ]; then
	want=$(cat "$own_tree/vblk-source-version")
else
	want=$(pkg_version "/usr/src/linux-headers-$kver/Module.symvers")
fi
have=$(pkg_version "$tarball")
[ -n "$want" ] || die "cannot tell the Debian version of linux-headers-$kver"
if [ -z "$have" ]; then
	# A tarball of one's own (not from a package): only the CRC proof
	# below can vouch for it.
	echo "  NOTE    $tarball is not from a Debian package: relying on the CRC check"
	cache=$top/build/src/$(basename "$tarball" .tar.xz)-custom-$(stat -c %s-%Y "$tarball")
elif [ "$want" != "$have" ]; then
	die "$tarball is version '$have' but kernel $kver is $want;
  vhost.h must come from the same source. Install matching packages:
    apt-get install linux-source-$series=$want linux-headers-$kver=$want linux-image-$kver=$want"
else
	cache=$top/build/src/$srcpkg-$want
fi

if [ ! -f "$cache/.extracted" ]; then
	echo "  EXTRACT $(basename "$tarball") ${have:-custom}"
	rm -rf "$cache"
	mkdir -p "$cache"
	tar -xJf "$tarball" -C "$cache" --strip-components=1 --wildcards \
		'*/drivers/vhost/*' \
		'*/tools/testing/selftests/kselftest.h' \
		'*/tools/testing/selftests/kselftest_harness.h' \
		'*/scripts/checkpatch.pl' \
		'*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
	touch "$cache/.extracted"
fi

mkdir -p "$out"

# Step 3: the CRC proof. Done once per (kernel, source) pair.
stamp=$out/.symvers-ok
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want $cache$own_tree" ]; then
	echo "  SYMVERS vhost.c vs $kver"
	sym=$out/symvers-check
	rm -rf "$sym"
	mkdir -p "$sym"
	cp "$cache/drivers/vhost/vhost.c" "$cache/drivers/vhost/vhost.h" "$sym/"
	echo 'obj-m := vhost.o' > "$sym/Kbuild"
	make -s -C "$kbuild" M="$sym" modules >"$sym/build.log" 2>&1 ||
		die "the vhost.c in $tarball does not even build against $kver:
  the source does not match this kernel (log: $sym/build.log).
  Install the linux-source package of the same version as the kernel."
	ours=$(awk '{ print $2, $1 }' "$sym/Module.symvers" | sort)
	theirs=$(awk '$3 == "drivers/vhost/vhost" { print $2, $1 }' \
		"$kbuild/Module.symvers" | sort)
	[ -n "$ours" ] || die "no exports found in the extracted vhost.c build"
	bad=$(join <(echo "$ours") <(echo "$theirs") | awk '$2 != $3 { print $1 }')
	missing=$(join -v1 <(echo "$ours") <(echo "$theirs") | awk '{ print $1 }')
	total=$(echo "$ours" | wc -l)
	if [ -n "$bad$missing" ]; then
		die "vhost.h from $tarball does not match the running vhost.ko:
  CRC mismatch: $(echo "$bad" | tr '\n' ' ')
  not exported by $kver: $(echo "$missing" | tr '\n' ' ')
  ($total exports compared). Install the linux-source package of the same version as the kernel."
	fi
	echo "$want $cache$own_tree" > "$stamp"
	echo "  SYMVERS $total vhost exports match"
fi

# Proven: from now on the build uses this source.
ln -sfn "$cache" "$out/src"

# Step 4: conftest. Each probe is a tiny object; the ones that compile
# define a feature macro. One kbuild run for all of them.
conf=$out/conftest
if [ ! -f "$conf/compat_features.h" ] || [ "$(cat "$conf/.source" 2>/dev/null)" != "$cache" ] ||
   [ -n "$(find "$top/kernel/conftest" -newer "$conf/compat_features.h")" ]; then
	echo "  CONFTEST $kver"
	rm -rf "$conf"
	mkdir -p "$conf"
	objs=()
	for probe in "$top"/kernel/conftest/*.c; do
		name=$(basename "$probe" .c)
		cp "$probe" "$conf/"
		objs+=("$name.o")
	done
	{
		echo "obj-m := ${objs[*]}"
		echo "ccflags-y := -I$cache/drivers/vhost -Werror -Wno-missing-prototypes -Wno-missing-declarations"
	} > "$conf/Kbuild"
	make -k -s -C "$kbuild" M="$conf" "${objs[@]}" >"$conf/build.log" 2>&1 || true
	[ -f "$conf/baseline.o" ] || die "the conftest baseline probe does not compile (see $conf/build.log)"
	{
		echo "/* Generated by scripts/kernel-prep.sh for $kver: do not edit. */"
		for probe in "$top"/kernel/conftest/*.c; do
			name=$(basename "$probe" .c)
			macro=VHOST_BLK_HAVE_$(echo "$name" | tr 'a-z-' 'A-Z_')
			if [ -f "$conf/$name.o" ]; then
				echo "#define $macro 1"
			else
				echo "/* #undef $macro */"
			fi
		done
	} > "$conf/compat_features.h.tmp"
	mv "$conf/compat_features.h.tmp" "$conf/compat_features.h"
	echo "$cache" > "$conf/.source"
fi

# The target's vhost uapi for the selftests (the distribution's
# linux-libc-dev may be older than the kernel), sanitized the way
# headers_install does.
uapi=$out/uapi/linux
mkdir -p "$uapi"
for h in vhost.h vhost_types.h; do
	# Debian keeps the arch-independent headers in linux-headers-*-common.
	src=/usr/src/linux-headers-${kver%-amd64}-common/include/uapi/linux/$h
	[ -z "$own_tree" ] || src=$own_tree/source/include/uapi/linux/$h
	[ -f "$src" ] || die "no $src: install linux-headers-$kver"
	sed -E -e '/#include <linux\/compiler.h>/d' \
		-e 's/([[:space:](])(__user|__force|__iomem)[[:space:]]/\1/g' \
		"$src" > "$uapi/$h"
done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Generate the netlink headers from Documentation/netlink/specs/vhost-blk.yaml
# with the kernel's own YNL generator (tools/net/ynl/ynl-gen-c.py), taken at
# build time from the linux-source-6.12 tarball, never copied into git:
#
#   OUT/uapi/linux/vhost_blk_nl.h   uapi: family name, attributes, commands
#   OUT/vhost-blk-nl.h              kernel: handler prototypes, mcgrp enum
#
# The generator runs outside a kernel tree with two catches: it walks up from
# the spec looking for a MAINTAINERS file, and validates the spec against
# ../genetlink.yaml beside specs/. So it runs in a scratch tree, OUT/tree.
#
# usage: scripts/ynl-gen.sh OUT [LINUX_SOURCE_TARBALL]
set -eu

out=$1
tarball=${2:-/usr/src/linux-source-6.12.tar.xz}
top=$(cd "$(dirname "$0")/.." && pwd)
spec=$top/Documentation/netlink/specs/vhost-blk.yaml

die() { echo "ynl-gen: $*" >&2; exit 1; }

[ -f "$tarball" ] || die "no $tarball: the generator comes from the kernel source (apt-get install linux-source-6.12)"
python3 -c 'import yaml, jsonschema' 2>/dev/null ||
	die "the YNL generator needs PyYAML and jsonschema (apt-get install python3-yaml python3-jsonschema)"

# The generator and the schema, once per tarball.
ynl=$top/build/src/ynl-$(basename "$tarball" .tar.xz)-$(stat -c %s-%Y "$tarball")
if [ ! -f "$ynl/.extracted" ]; then
	echo "  EXTRACT tools/net/ynl from $(basename "$tarball")"
	rm -rf "$ynl"
	mkdir -p "$ynl"
	tar -xJf "$tarball" -C "$ynl" --strip-components=1 --wildcards \
		'*/tools/net/ynl/ynl-gen-c.py' '*/tools/net/ynl/lib/*' \
		'*/Documentation/netlink/genetlink.yaml'
	touch "$ynl/.extracted"
fi

hdr=$out/uapi/linux/vhost_blk_nl.h
khdr=$out/vhost-blk-nl.h
if [ -f "$hdr" ] && [ -f "$khdr" ] && [ "$hdr" -nt "$spec" ] && [ "$hdr" -nt "$0" ]; then
	exit 0
fi

echo "  YNL-GEN vhost-blk.yaml"
tree=$out/tree
rm -rf "$tree"
mkdir -p "$tree/Documentation/netlink/specs" "$out/uapi/linux"
touch "$tree/MAINTAINERS"
cp "$ynl/Documentation/netlink/genetlink.yaml" "$tree/Documentation/netlink/"
cp "$spec" "$tree/Documentation/netlink/specs/"
gen() {
	python3 "$ynl/tools/net/ynl/ynl-gen-c.py" \
		--spec "$tree/Documentation/netlink/specs/vhost-blk.yaml" "$@" ||
		die "ynl-gen-c.py failed on $spec ($*)"
}
gen --mode uapi --header -o "$hdr.tmp"
gen --mode kernel --header -o "$khdr.tmp"
mv "$hdr.tmp" "$hdr"
mv "$khdr.tmp" "$khdr"

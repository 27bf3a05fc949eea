#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The libvirt domain XML that Documentation/vhostblkctl.rst gives for a vhostblkctl disk
# (<disk type='vhostuser'> plus shared memfd memory) is valid for Debian's libvirt: the block is
# taken from the document itself, completed into a minimal domain and checked with
# virt-xml-validate against libvirt's domain schema.
#
# Not `virsh create`: the test VM's root is the host's read-only 9p root under a busybox /init,
# with no systemd or D-Bus; virtqemud/libvirtd would need writable /var/lib/libvirt,
# /var/cache/libvirt and /run/libvirt and a QEMU capabilities probe that costs minutes under TCG.
# The guest-side behaviour libvirt would produce (the same QEMU options) is what e2e-data.sh and
# the other e2e tests boot.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd -P)
doc=$top/Documentation/vhostblkctl.rst
echo "TAP version 13"
echo "1..1"
name="libvirt <disk type='vhostuser'> XML from Documentation/vhostblkctl.rst validates"
if ! command -v virt-xml-validate >/dev/null; then
	echo "ok 1 $name # SKIP virt-xml-validate is missing (package libvirt-clients)"
	exit 4
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The indented block from "<domain" to "</domain>", its "..." replaced by what a domain needs.
sed -n "/^    <domain type='kvm'>/,/^    <\/domain>/p" "$doc" | sed 's/^    //' >"$work/doc.xml"
if ! grep -q "<disk type='vhostuser'" "$work/doc.xml"; then
	echo "not ok 1 $name: no <domain> block with a vhostuser disk in $doc"
	exit 1
fi
sed "s|^  \.\.\.\$|  <name>e2e</name><memory unit='MiB'>256</memory><vcpu>2</vcpu><os><type arch='x86_64' machine='q35'>hvm</type><kernel>/boot/vmlinuz</kernel></os>|" \
	"$work/doc.xml" >"$work/domain.xml"
if out=$(virt-xml-validate "$work/domain.xml" domain 2>&1); then
	echo "# $out"
	echo "ok 1 $name"
	exit 0
fi
echo "not ok 1 $name"
{ echo "$out"; cat "$work/domain.xml"; } | sed 's/^/# /'
exit 1

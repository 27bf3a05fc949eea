#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Print the target kernels: the ones Debian's metapackages for the two
# series (linux-image-amd64 = 6.1, linux-image-6.12-amd64) point at, when
# their image and headers are installed. Other kernels on the machine are
# left alone; build them with make KVER=<release>.
for meta in linux-image-amd64 linux-image-6.12-amd64; do
	dep=$(dpkg-query -W -f='${Depends}' "$meta" 2>/dev/null) || continue
	k=$(echo "$dep" | tr ',' '\n' | sed -n 's/^ *linux-image-\([^ ]*\).*/\1/p' | head -1)
	[ -n "$k" ] && [ -e "/lib/modules/$k/build/Makefile" ] &&
		[ -f "/boot/vmlinuz-$k" ] && echo "$k"
done

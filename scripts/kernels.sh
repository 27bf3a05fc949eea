#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Print the target kernels: every installed Debian kernel that has both an
# image and headers, newest series last.
for d in /lib/modules/*; do
	k=$(basename "$d")
	[ -e "$d/build/Makefile" ] && [ -f "/boot/vmlinuz-$k" ] && echo "$k"
done | sort -V

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs inside the test VM for `make run`: shows the module loaded and a
# guest's I/O going through /dev/vhost-blk to a ram disk.
b=$(dirname "$0")/../build/$(uname -r)
echo "# kernel $(uname -r)"
echo "# $(grep -E '^(vhost_blk|vhost|vhost_iotlb) ' /proc/modules | cut -d' ' -f1-3 | tr '\n' ';')"
echo "# $(ls -l /dev/vhost-blk)"
echo "# running the data-path selftests (a userspace guest on brd)"
"$b/selftests/vhost_blk/io_test"

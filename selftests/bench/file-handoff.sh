#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What the file back end's work-item hand-off costs (Documentation/vhost-blk.rst, raw image
# files). Run inside the VM:
#   selftests/vm/vmrun.sh --kver K --out DIR --module build/K/kernel/vhost_blk.ko -- \
#       selftests/bench/file-handoff.sh
# One raw image on ext4 on a brd disk, reached four ways, cells interleaved rep by rep:
#   file    vhost-blk on the image (cache none: a work item per request, IOCB_DIRECT kiocb)
#   loop    vhost-blk's bio path on a direct-I/O loop device over the same image (loop.c
#           hands every request to its own worker too: the design the file path follows)
#   fio     fio O_DIRECT (libaio) on the image, submitted inline: the file's limit
#   brd     vhost-blk's bio path on a second brd disk, no file system: no hand-off at all
# Prints one line per cell (median of HANDOFF_REPS, default 3, of HANDOFF_TIME s, default 3)
# and the ratios file/loop and file/fio. Figures, not a test: it fails only when a cell fails.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd -P)
TOOL=$REPO/build/$(uname -r)/bench/vblk_bench
TIME=${HANDOFF_TIME:-3}
REPS=${HANDOFF_REPS:-3}
RANGE=$((64 << 20))
MNT=/tmp/handoff
say() { echo "# handoff: $*"; }

[ -x "$TOOL" ] || { say "no $TOOL: run make"; exit 1; }
modprobe -a ext4 loop || { say "modprobe ext4 loop failed"; exit 1; }
modprobe brd rd_nr=2 rd_size=$((256 * 1024)) || { say "modprobe brd failed"; exit 1; }
mkdir -p $MNT
if ! mkfs.ext4 -q -F /dev/ram0 || ! mount /dev/ram0 $MNT; then
	say "cannot make ext4 on /dev/ram0"
	exit 1
fi
dd if=/dev/zero of=$MNT/img bs=1M count=128 oflag=direct status=none || exit 1
loop=$(losetup --direct-io=on -f --show $MNT/img) || { say "losetup failed"; exit 1; }
trap 'losetup -d "$loop"; umount $MNT' EXIT

# cell WAY RW QD: one run, prints "iops p50_us cpu_us_per_io"
cell() {
	local way=$1 rw=$2 qd=$3 disk
	case $way in
	file) disk=$MNT/img ;;
	loop) disk=$loop ;;
	brd) disk=/dev/ram1 ;;
	fio)
		fio --name=h --filename=$MNT/img --ioengine=libaio --direct=1 --rw="$rw" --bs=4096 \
			--iodepth="$qd" --size=$RANGE --time_based --runtime="$TIME" --randrepeat=0 \
			--eta=never --output-format=json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
s = j["read"] if j["read"]["io_bytes"] else j["write"]
print("%.0f %.1f -" % (s["iops"], s["clat_ns"]["percentile"]["50.000000"] / 1e3))'
		return
		;;
	esac
	"$TOOL" --backend vhost-blk --disk "$disk" --rw "$rw" --bs 4096 --qd "$qd" --time "$TIME" \
		--range $RANGE | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
if j["errors"]:
    sys.exit("%d errors" % j["errors"])
print("%.0f %.1f %.1f" % (j["iops"], j["p50_us"], j["backend_cpu_us_per_io"]))'
}

declare -A res
failed=0
for _ in $(seq "$REPS"); do
	for job in randread:1 randwrite:1 randread:32 randwrite:32; do
		for way in file loop fio brd; do
			r=$(cell "$way" "${job%:*}" "${job#*:}") || { say "FAILED: $way $job"; failed=1; continue; }
			res[$way,$job]+="$r;"
		done
	done
done

# median WAY,JOB FIELD(1-3)
median() {
	tr ';' '\n' <<<"${res[$1]:-}" | awk -v f="$2" 'NF { print $f }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

say "kernel $(uname -r); 4 KiB, ${TIME}s x $REPS reps; medians: IOPS, p50 us, worker CPU us/IO"
printf '# %-14s %-22s %-22s %-22s %-22s %-10s %-10s\n' job file loop fio brd file/loop file/fio
for job in randread:1 randwrite:1 randread:32 randwrite:32; do
	line=$(printf '%-14s' "${job%:*}-qd${job#*:}")
	for way in file loop fio brd; do
		line+=$(printf ' %-22s' "$(median "$way,$job" 1)/$(median "$way,$job" 2)/$(median "$way,$job" 3)")
	done
	f=$(median "file,$job" 1) l=$(median "loop,$job" 1) o=$(median "fio,$job" 1)
	line+=$(awk -v f="$f" -v l="$l" -v o="$o" 'BEGIN { printf " %-10s %-10s", (l > 0 ? sprintf("%.2f", f / l) : "-"), (o > 0 ? sprintf("%.2f", f / o) : "-") }')
	echo "# $line"
done
exit $failed

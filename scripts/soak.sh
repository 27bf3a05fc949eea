#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The long lane (`make soak`): the randomized soak and the random-chain
# fuzzer at many times their default size, with a fresh seed unless
# VBLK_SEED is given, on every target kernel.
#   VBLK_SOAK_OPS (default 300000)  VBLK_FUZZ_ITERS (default 100000)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
seed=${VBLK_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
rc=0
for kver in "$@"; do
	b=$top/build/$kver
	out=$b/soak
	rm -rf "$out"
	mkdir -p "$out"
	# The guest runs host binaries but not with our environment: bake it.
	cat >"$out/soak-run.sh" <<EOS
#!/bin/sh
export VBLK_SEED=$seed VBLK_SOAK_OPS=${VBLK_SOAK_OPS:-300000} VBLK_FUZZ_ITERS=${VBLK_FUZZ_ITERS:-100000}
echo "# seed \$VBLK_SEED"
"$b/selftests/vhost_blk/stress_test" -f soak || exit 1
exec "$b/selftests/vhost_blk/hostile_test" -t random_chains
EOS
	chmod +x "$out/soak-run.sh"
	echo "timeout=0" >"$out/settings"
	"$top/selftests/vm/vmrun.sh" --kver "$kver" --out "$out/results" --timeout 14400 \
		--module "$b/kernel/vhost_blk.ko" -- "$out/soak-run.sh" || rc=1
	grep -h "seed\|checked\|completed" "$out/results/soak-run.sh.tap" || true
done
echo "soak seed: $seed (VBLK_SEED=$seed reproduces it)"
exit $rc

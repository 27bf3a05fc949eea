# shellcheck shell=sh
# Helpers to build small busybox initramfs images; sourced (POSIX sh) by vmrun.sh on the host
# and by l2-lib.sh inside the test VM, so both levels pack modules the same way.

# Print the .ko files needed for MODULE... of kernel KVER, dependencies first, each once.
# Built-in modules print nothing (modprobe reports them as "builtin").
# INITRAMFS_MODPROBE_DIR: a root holding lib/modules/KVER other than /.
initramfs_module_list() {
	_kver=$1
	shift
	modprobe -a --show-depends ${INITRAMFS_MODPROBE_DIR:+-d "$INITRAMFS_MODPROBE_DIR"} -S "$_kver" "$@" |
		awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

# Copy the modules for MODULE... (with dependencies) into DESTDIR as NN-name.ko, decompressed,
# because busybox insmod cannot read .ko.xz/.ko.zst; the number prefix keeps the load order.
initramfs_stage_modules() {
	_kver=$1
	_dest=$2
	shift 2
	mkdir -p "$_dest"
	_list=$(initramfs_module_list "$_kver" "$@") || return 1
	_n=10
	for _ko in $_list; do
		_base=${_ko##*/}
		_base=${_base%.xz}
		_base=${_base%.zst}
		_base=${_base%.gz}
		case $_ko in
		*.ko.xz) xz -dc "$_ko" >"$_dest/$_n-$_base" ;;
		*.ko.zst) zstd -q -dc "$_ko" >"$_dest/$_n-$_base" ;;
		*.ko.gz) gzip -dc "$_ko" >"$_dest/$_n-$_base" ;;
		*) cp "$_ko" "$_dest/$_n-$_base" ;;
		esac || return 1
		_n=$((_n + 1))
	done
}

# Put busybox (static, so it needs no libraries) into ROOT/bin with an sh link for #!/bin/sh.
initramfs_add_busybox() {
	mkdir -p "$1/bin" "$1/dev" "$1/proc" "$1/sys" "$1/tmp" "$1/mnt" &&
		cp /bin/busybox "$1/bin/busybox" &&
		ln -sf busybox "$1/bin/sh"
}

# Pack directory ROOT into a gzip'd newc cpio OUT, owned by root whoever builds it.
initramfs_pack() {
	(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$2.tmp" &&
		mv "$2.tmp" "$2"
}

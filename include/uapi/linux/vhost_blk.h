/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vhost-blk: in-kernel virtio-blk data plane on the vhost core.
 *
 * /dev/vhost-blk accepts the generic vhost ioctls of <linux/vhost.h>
 * (VHOST_SET_OWNER, VHOST_GET/SET_FEATURES, VHOST_SET_MEM_TABLE, the vring
 * ioctls and, on kernels whose vhost core has them, the worker ioctls) plus
 * the device-specific ioctls below.
 */
#ifndef _UAPI_LINUX_VHOST_BLK_H
#define _UAPI_LINUX_VHOST_BLK_H

#include <linux/types.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

/**
 * DOC: General errors
 *
 * Every vhost-blk ioctl may fail with:
 *
 * - EFAULT: the argument pointer could not be read or written.
 * - EPERM: the caller is not the owner set with VHOST_SET_OWNER (owner
 *   checks apply to every ioctl except VHOST_GET_FEATURES, VHOST_BLK_GET_CONFIG
 *   and VHOST_BLK_GET_PARAMS).
 * - EINVAL: ``size`` is smaller than the first version of the structure,
 *   ``flags`` has unknown bits, or a ``__reserved`` field is not zero.
 * - E2BIG: ``size`` is larger than the structure this module knows and the
 *   extra bytes are not zero, or ``size`` is larger than a page.
 *
 * A command the device does not implement fails with ENOTTY whatever its
 * argument, so a VMM can probe for one.
 */

/**
 * DOC: Generic vhost ioctls
 *
 * Where vhost-blk differs from the vhost core:
 *
 * - VHOST_SET_MEM_TABLE holds every queue still and completes every request
 *   in flight before the new table takes effect, then lets the queues run
 *   again: requests keep guest buffers as addresses translated through the
 *   table they were fetched under. It returns once the old table is no
 *   longer used, so the VMM may then unmap a removed region. On a slow
 *   device this takes as long as the requests in flight do.
 * - VHOST_SET_FEATURES fails with EPERM for a caller that is not the owner,
 *   EBUSY while a backend is attached (features cannot change under running
 *   rings: set them before VHOST_BLK_SET_BACKEND, or detach first) and
 *   EOPNOTSUPP for bits outside VHOST_BLK_FEATURES.
 * - VHOST_SET_MEM_TABLE fails with EFAULT for a region that is empty, wraps
 *   around or names addresses outside userspace, and with EINVAL for regions
 *   that overlap in guest-physical or in userspace addresses.
 * - VHOST_SET_VRING_BUSYLOOP_TIMEOUT (microseconds, 0 = off) makes the
 *   worker busy-poll the ring's empty avail ring before it waits for a kick.
 *   Any value is stored and read back, but one kick polls at most 1000 us
 *   in all. ENOBUFS for a ring index of VHOST_BLK_MAX_QUEUES or more.
 */

/* Feature bits offered by VHOST_GET_FEATURES; all of them are implemented. */
#define VHOST_BLK_FEATURES                        \
	((1ULL << VIRTIO_F_VERSION_1) |           \
	 (1ULL << VIRTIO_F_ANY_LAYOUT) |          \
	 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |  \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX) |      \
	 (1ULL << VIRTIO_BLK_F_SIZE_MAX) |        \
	 (1ULL << VIRTIO_BLK_F_SEG_MAX) |         \
	 (1ULL << VIRTIO_BLK_F_BLK_SIZE) |        \
	 (1ULL << VIRTIO_BLK_F_TOPOLOGY) |        \
	 (1ULL << VIRTIO_BLK_F_FLUSH) |           \
	 (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |      \
	 (1ULL << VIRTIO_BLK_F_RO) |              \
	 (1ULL << VIRTIO_BLK_F_MQ) |              \
	 (1ULL << VIRTIO_BLK_F_DISCARD) |         \
	 (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))

/*
 * Upper bound on virtqueues per device. Each queue costs the vhost core about
 * 60 KiB (iovec arrays in the virtqueue and allocated at VHOST_SET_OWNER),
 * so the bound keeps an idle device small; 16 covers the vCPU counts
 * virtio-blk guests are given in practice.
 */
#define VHOST_BLK_MAX_QUEUES	16

/* Limits presented in the virtio-blk config space. */
#define VHOST_BLK_SEG_MAX	254		/* data segments per request */
#define VHOST_BLK_SIZE_MAX	(1U << 20)	/* bytes per data segment */

/* Bytes of struct virtio_blk_config returned by VHOST_BLK_GET_CONFIG. */
#define VHOST_BLK_CONFIG_SPACE	256

/**
 * DOC: Cache modes
 *
 * The five cache modes of QEMU, with QEMU's meanings. "Write cache" is what
 * the guest is shown (the config space's ``writeback`` byte, which the guest
 * may change with VIRTIO_BLK_F_CONFIG_WCE); "host page cache" says whether
 * data goes through the host's page cache (buffered I/O on the file or block
 * device) or bypasses it (bios, or O_DIRECT on a regular file).
 *
 * ============================  =====  ==========  ========================
 * mode                          write  host page   guest FLUSH / each write
 *                               cache  cache
 * ============================  =====  ==========  ========================
 * VHOST_BLK_CACHE_NONE          yes    bypassed    flush sent / as is
 * VHOST_BLK_CACHE_WRITEBACK     yes    used        fsync / as is
 * VHOST_BLK_CACHE_WRITETHROUGH  no     used        nothing / O_DSYNC
 * VHOST_BLK_CACHE_DIRECTSYNC    no     bypassed    nothing / FUA (O_DSYNC)
 * VHOST_BLK_CACHE_UNSAFE        yes    used        nothing / as is
 * ============================  =====  ==========  ========================
 *
 * When the guest turns its write cache off (VHOST_BLK_PARAM_WCE, 0), every
 * write becomes stable before it completes (FUA, O_DSYNC), within the mode's
 * host-cache choice; flushes are still sent, except in unsafe mode, since
 * writes from before the change may still be cached. When a guest of
 * writethrough or directsync turns it on, flushes are sent and writes go as
 * they are, as in none or writeback.
 */
#define VHOST_BLK_CACHE_NONE		0
#define VHOST_BLK_CACHE_WRITEBACK	1
#define VHOST_BLK_CACHE_WRITETHROUGH	2
#define VHOST_BLK_CACHE_DIRECTSYNC	3
#define VHOST_BLK_CACHE_UNSAFE		4
#define VHOST_BLK_CACHE_MAX		VHOST_BLK_CACHE_UNSAFE

/**
 * struct vhost_blk_backend - argument of VHOST_BLK_SET_BACKEND
 * @size: sizeof(struct vhost_blk_backend); the first version (16 bytes,
 *	up to @__reserved) attaches with VHOST_BLK_CACHE_NONE
 * @fd: an open block device or regular file, or -1 to detach the current
 *	backend
 * @flags: must be zero
 * @__reserved: must be zero
 * @cache_mode: VHOST_BLK_CACHE_* (default VHOST_BLK_CACHE_NONE)
 * @__reserved2: must be zero
 */
struct vhost_blk_backend {
	__u32 size;
	__s32 fd;
	__u32 flags;
	__u32 __reserved;
	__u32 cache_mode;
	__u32 __reserved2;
};

/* Size of the first version of struct vhost_blk_backend. */
#define VHOST_BLK_BACKEND_SIZE_VER0	16

/**
 * VHOST_BLK_SET_BACKEND - attach, swap or detach the backing device or image
 *
 * @fd is either a block device or a regular file holding a raw image (on
 * ext4, xfs, tmpfs or any filesystem with read_iter/write_iter).
 *
 * For a block device the module takes its own exclusive claim on the device
 * behind @fd, so the caller may close @fd afterwards. A regular file is
 * reopened by the module (same path, same access mode), so it too may be
 * closed; the module takes no lock on it: vhostblkctl takes QEMU's OFD
 * locks before attaching (see Documentation/vhost-blk.rst). The access
 * mode follows how @fd was opened: a read-only fd presents a read-only disk
 * (VIRTIO_BLK_F_RO in VHOST_BLK_GET_CONFIG's features) and every write,
 * discard or write-zeroes request completes with VIRTIO_BLK_S_IOERR.
 *
 * A regular file's capacity is its size at attach time rounded down to the
 * logical block size: 512 bytes in cached modes, the filesystem's direct
 * I/O alignment (statx STATX_DIOALIGN) in direct modes. Reads and writes
 * beyond it fail; a file that is resized later is not followed. Discard
 * (FALLOC_FL_PUNCH_HOLE) and write zeroes (FALLOC_FL_ZERO_RANGE, or
 * PUNCH_HOLE with the UNMAP flag) are offered only when the filesystem
 * punches holes.
 *
 * @cache_mode selects the cache mode (see "Cache modes"); it is changed by
 * attaching again (a swap), for instance while the device is stopped. An
 * attach in a mode other than the previous one sets the write cache shown
 * to the guest to the new mode's default; one in the same mode (also after
 * a detach) keeps what the guest chose.
 *
 * Rings that are set up (VHOST_SET_VRING_ADDR) and below num_queues start
 * processing; a ring set up later starts at the next VHOST_BLK_SET_BACKEND.
 * Attaching while a backend is attached drains in-flight requests, swaps the
 * device and resumes. Detaching (@fd == -1) drains and stops every ring.
 *
 * Errors:
 * - EBADF: @fd is not an open file descriptor (an O_PATH fd is not).
 * - ENOTBLK: @fd is neither a block device nor a regular file.
 * - EINVAL: @cache_mode is not a VHOST_BLK_CACHE_* value; or a direct mode
 *   (none, directsync) on a regular file whose filesystem has no direct I/O
 *   (tmpfs before Linux 6.6) or reports no direct I/O alignment; or the
 *   image is smaller than one logical block; or @fd is open for writing
 *   with O_APPEND (guest writes land at offsets, not at the end).
 * - EPERM: @fd is open for writing and its file is append-only
 *   (chattr +a), which only appending writes may change.
 * - EBUSY: the device is claimed by someone else (mounted, another
 *   vhost-blk device, another exclusive opener).
 * - EACCES: @fd is not open for reading (O_WRONLY).
 * - EOPNOTSUPP: the device is zoned (host-managed or host-aware); presenting
 *   one needs VIRTIO_BLK_F_ZONED, which is not implemented.
 * - ENOMEM: the request tables could not be allocated.
 * - EFAULT: a ring that is set up is not accessible, or no memory table
 *   was set (VHOST_SET_MEM_TABLE must come first).
 * - Any error of reopening a regular file (open(2)'s errors, e.g. ETXTBSY).
 */
#define VHOST_BLK_SET_BACKEND	_IOW(VHOST_VIRTIO, 0x50, struct vhost_blk_backend)

/**
 * struct vhost_blk_config - argument of VHOST_BLK_GET_CONFIG
 * @size: sizeof(struct vhost_blk_config)
 * @len: returns the number of valid bytes in @config
 * @features: returns the feature bits to offer a guest of this device:
 *	VHOST_BLK_FEATURES without VIRTIO_BLK_F_RO unless the backend is
 *	read-only, and without VIRTIO_BLK_F_DISCARD unless it can discard
 * @config: returns the virtio-blk config space the device presents
 *	(struct virtio_blk_config, little endian) as a vhost-user
 *	GET_CONFIG answer needs it; the rest of the array is zero
 */
struct vhost_blk_config {
	__u32 size;
	__u32 len;
	__aligned_u64 features;
	__u8 config[VHOST_BLK_CONFIG_SPACE];
};

/**
 * VHOST_BLK_GET_CONFIG - read the virtio-blk config space
 *
 * Capacity, block size, topology and discard/write-zeroes limits come from
 * the attached backend's queue limits; without a backend the capacity is 0.
 * num_queues is the value set with VHOST_BLK_SET_PARAMS.
 */
#define VHOST_BLK_GET_CONFIG	_IOWR(VHOST_VIRTIO, 0x51, struct vhost_blk_config)

/* Fields of struct vhost_blk_params selected by @mask */
#define VHOST_BLK_PARAM_NUM_QUEUES	(1U << 0)
#define VHOST_BLK_PARAM_SERIAL		(1U << 1)
#define VHOST_BLK_PARAM_WCE		(1U << 2)
#define VHOST_BLK_PARAM_ALL		(VHOST_BLK_PARAM_NUM_QUEUES | \
					 VHOST_BLK_PARAM_SERIAL |     \
					 VHOST_BLK_PARAM_WCE)

/**
 * struct vhost_blk_params - argument of VHOST_BLK_SET/GET_PARAMS
 * @size: sizeof(struct vhost_blk_params)
 * @mask: VHOST_BLK_PARAM_* bits: fields SET_PARAMS changes; GET_PARAMS
 *	returns VHOST_BLK_PARAM_ALL
 * @num_queues: queues presented to the guest, 1..VHOST_BLK_MAX_QUEUES
 *	(default 1)
 * @__pad: must be zero
 * @serial: answer to VIRTIO_BLK_T_GET_ID, zero padded, not necessarily
 *	NUL-terminated (default all zero)
 * @__reserved: must be zero
 * @wce: the guest's write cache, the config space's ``writeback`` byte:
 *	1 (writeback) or 0 (writethrough). A VMM passes on what the guest
 *	writes there (vhost-user SET_CONFIG). VHOST_BLK_SET_BACKEND in a new
 *	cache mode resets it to that mode's default (1 for none, writeback
 *	and unsafe, 0 for writethrough and directsync); in the same mode it
 *	is kept
 * @__reserved2: must be zero
 */
struct vhost_blk_params {
	__u32 size;
	__u32 mask;
	__u16 num_queues;
	__u16 __pad;
	__u8 serial[VIRTIO_BLK_ID_BYTES];
	__u32 __reserved[4];
	__u32 wce;
	__u32 __reserved2;
};

/* Size of the first version of struct vhost_blk_params (up to @__reserved). */
#define VHOST_BLK_PARAMS_SIZE_VER0	48

/**
 * VHOST_BLK_SET_PARAMS - set device parameters
 *
 * Errors:
 * - EINVAL: unknown @mask bits, @num_queues out of range, or @wce other
 *   than 0 or 1.
 * - EBUSY: @num_queues changed while a backend is attached.
 *
 * @wce may change at any time, also while requests are in flight: requests
 * fetched afterwards follow it. Nothing is flushed when it is turned off;
 * a guest flushes first (Linux does).
 */
#define VHOST_BLK_SET_PARAMS	_IOW(VHOST_VIRTIO, 0x52, struct vhost_blk_params)

/* VHOST_BLK_GET_PARAMS - read device parameters */
#define VHOST_BLK_GET_PARAMS	_IOWR(VHOST_VIRTIO, 0x53, struct vhost_blk_params)

#endif /* _UAPI_LINUX_VHOST_BLK_H */

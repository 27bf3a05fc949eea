// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: the cache modes, with QEMU's meanings. A mode chooses whether
 * the host page cache is used, what the guest is first shown as its write
 * cache, and whether guest flushes are passed on; the guest's write cache
 * setting (VIRTIO_BLK_F_CONFIG_WCE) then decides whether each write must be
 * stable before it completes.
 */
#include "vhost_blk.h"

/**
 * vhost_blk_cache_direct - does @mode bypass the host page cache?
 * @mode: VHOST_BLK_CACHE_*
 *
 * Return: true for none and directsync (bios, or O_DIRECT on an image).
 */
bool vhost_blk_cache_direct(u32 mode)
{
	return mode == VHOST_BLK_CACHE_NONE || mode == VHOST_BLK_CACHE_DIRECTSYNC;
}

/**
 * vhost_blk_cache_default_wce - the write cache a guest is first shown
 * @mode: VHOST_BLK_CACHE_*
 *
 * Return: 0 for writethrough and directsync, 1 otherwise.
 */
u8 vhost_blk_cache_default_wce(u32 mode)
{
	return mode != VHOST_BLK_CACHE_WRITETHROUGH &&
	       mode != VHOST_BLK_CACHE_DIRECTSYNC;
}

/**
 * vhost_blk_cache_flush_needed - must a guest FLUSH reach the backend?
 * @disk: the attached backend
 * @wce: the guest's write cache setting
 *
 * Unsafe mode never flushes. Writethrough and directsync with the write
 * cache off made every write stable already: nothing is left to flush. A
 * guest that turned the write cache off in another mode may still have
 * writes from before in a cache, so its flushes are passed on.
 *
 * Return: true to send the flush.
 */
bool vhost_blk_cache_flush_needed(const struct vhost_blk_disk *disk, u8 wce)
{
	switch (disk->cache_mode) {
	case VHOST_BLK_CACHE_UNSAFE:
		return false;
	case VHOST_BLK_CACHE_WRITETHROUGH:
	case VHOST_BLK_CACHE_DIRECTSYNC:
		return wce;
	default:
		return true;
	}
}

/**
 * vhost_blk_cache_write_stable - must a write be stable before completing?
 * @disk: the attached backend
 * @wce: the guest's write cache setting
 *
 * A guest without a write cache expects each completed write to survive a
 * power cut (FUA on a block device, O_DSYNC on a file), except in unsafe
 * mode, which promises nothing.
 *
 * Return: true to write with FUA or O_DSYNC.
 */
bool vhost_blk_cache_write_stable(const struct vhost_blk_disk *disk, u8 wce)
{
	return !wce && disk->cache_mode != VHOST_BLK_CACHE_UNSAFE;
}

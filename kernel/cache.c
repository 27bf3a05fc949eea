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

/* Modes that make every write stable while the guest's write cache is off. */
static bool vhost_blk_cache_sync_mode(u32 mode)
{
	return mode == VHOST_BLK_CACHE_WRITETHROUGH ||
	       mode == VHOST_BLK_CACHE_DIRECTSYNC;
}

/**
 * vhost_blk_cache_flush_needed - must a guest FLUSH reach the backend?
 * @blk: the device
 * @disk: the attached backend
 *
 * Unsafe mode never flushes (QEMU's cache.no-flush). None and writeback
 * pass every flush on. Writethrough and directsync pass it on only when a
 * write was sent without FUA since the last flush completed: while the
 * guest's write cache is off each write was stable already, and there is
 * nothing left to flush; writes from while it was on are. This is what
 * QEMU 7.2 does: a write-through BlockBackend adds FUA to every write,
 * file-posix has no FUA so block/io.c follows each write with a flush, and
 * bdrv_co_flush() skips the device when flushed_gen equals write_gen.
 *
 * Return: true to send the flush.
 */
bool vhost_blk_cache_flush_needed(struct vhost_blk *blk,
				  const struct vhost_blk_disk *disk)
{
	if (disk->cache_mode == VHOST_BLK_CACHE_UNSAFE)
		return false;
	if (!vhost_blk_cache_sync_mode(disk->cache_mode))
		return true;
	return atomic64_read(&blk->flushed_gen) !=
	       atomic64_read(&blk->write_gen);
}

/**
 * vhost_blk_cache_write_sent - a guest write goes to the backend
 * @blk: the device
 * @disk: the attached backend
 * @stable: written with FUA or O_DSYNC
 *
 * Counts, in writethrough and directsync, the writes a later flush must
 * cover. A request that is retried counts twice: that only sends a flush.
 */
void vhost_blk_cache_write_sent(struct vhost_blk *blk,
				const struct vhost_blk_disk *disk, bool stable)
{
	if (!stable && vhost_blk_cache_sync_mode(disk->cache_mode))
		atomic64_inc(&blk->write_gen);
}

/**
 * vhost_blk_cache_flush_done - a request completes
 * @blk: the device
 * @req: the request; a FLUSH that was sent covers req->flush_gen writes
 *
 * Only a flush that completed OK covers anything; a flush that completes
 * before an older one leaves the count where it is.
 */
void vhost_blk_cache_flush_done(struct vhost_blk *blk,
				const struct vhost_blk_req *req)
{
	s64 old = atomic64_read(&blk->flushed_gen);

	if (!(req->stat.cache & VHOST_BLK_STAT_FLUSH_SENT) ||
	    req->status != VIRTIO_BLK_S_OK)
		return;
	while (old < (s64)req->flush_gen &&
	       !atomic64_try_cmpxchg(&blk->flushed_gen, &old, req->flush_gen))
		;
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

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where vhost-blk adapts to kernel API differences between
 * the kernels it builds for (Debian 6.1 and 6.12). Each difference is chosen
 * by a feature macro that scripts/kernel-prep.sh sets after compiling a probe
 * from kernel/conftest/ against the target headers, never by version number.
 */
#ifndef VHOST_BLK_COMPAT_H
#define VHOST_BLK_COMPAT_H

#include <linux/blkdev.h>
#include <linux/fs.h>
#include "compat_features.h"
#include "vhost.h"

/*
 * Queue @work on the worker that serves @vq. Returns false when that worker
 * is gone (6.12: the owner was killed), in which case the caller's drain
 * path must finish what the work would have done.
 */
static inline bool vhost_blk_queue_work(struct vhost_virtqueue *vq,
					struct vhost_work *work)
{
#ifdef VHOST_BLK_HAVE_VQ_WORK_QUEUE
	return vhost_vq_work_queue(vq, work);
#else
	if (!vq->dev->worker)
		return false;
	vhost_work_queue(vq->dev, work);
	return true;
#endif
}

/*
 * Whether the worker that serves @vq has work queued: a lockless hint that
 * tells a busy-poll to give the worker back. 6.1 has one worker per device.
 */
static inline bool vhost_blk_has_work(struct vhost_virtqueue *vq)
{
#ifdef VHOST_BLK_HAVE_VQ_HAS_WORK
	return vhost_vq_has_work(vq);
#else
	return vhost_has_work(vq->dev);
#endif
}

/*
 * An exclusive claim on a block device. 6.9+ hands out a struct file,
 * older kernels a block_device reference plus the mode it was opened with.
 */
struct vhost_blk_bdev_handle {
	struct block_device *bdev;
#ifdef VHOST_BLK_HAVE_BDEV_FILE_OPEN
	struct file *file;
#else
	fmode_t mode;
#endif
};

static inline int vhost_blk_bdev_open(struct vhost_blk_bdev_handle *h,
				      dev_t dev, bool write, void *holder)
{
#ifdef VHOST_BLK_HAVE_BDEV_FILE_OPEN
	struct file *file;

	file = bdev_file_open_by_dev(dev, BLK_OPEN_READ |
				     (write ? BLK_OPEN_WRITE : 0), holder, NULL);
	if (IS_ERR(file))
		return PTR_ERR(file);
	h->file = file;
	h->bdev = file_bdev(file);
#else
	struct block_device *bdev;

	h->mode = FMODE_READ | FMODE_EXCL | (write ? FMODE_WRITE : 0);
	bdev = blkdev_get_by_dev(dev, h->mode, holder);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	h->bdev = bdev;
#endif
	return 0;
}

static inline void vhost_blk_bdev_close(struct vhost_blk_bdev_handle *h)
{
#ifdef VHOST_BLK_HAVE_BDEV_FILE_OPEN
	bdev_fput(h->file);
#else
	blkdev_put(h->bdev, h->mode);
#endif
	h->bdev = NULL;
}

#ifdef VHOST_BLK_HAVE_WORKER_IOCTL
#define VHOST_BLK_WORKER_IOCTLS 1
#endif

#endif /* VHOST_BLK_COMPAT_H */

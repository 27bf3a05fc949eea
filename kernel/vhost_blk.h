/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk: shared definitions of the module's files.
 *
 *   main.c     misc device, open/release, ioctl dispatch, features, params
 *   backend.c  claiming the block device, config space, start/stop/drain
 *   vq.c       kick handler, request table, completion batching
 *   request.c  parsing one virtio-blk request and turning it into bios
 *   netlink.c  the "vhost-blk" generic netlink family: device registry,
 *              introspection, per-queue statistics (stats.h), events
 */
#ifndef VHOST_BLK_PRIV_H
#define VHOST_BLK_PRIV_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/llist.h>
#include <linux/uio.h>
#include <linux/vhost_blk.h>

#include "vhost.h"
#include "compat.h"
#include "stats.h"

/*
 * Work one kick may do before yielding the worker to other queues, as in
 * vhost-net/vsock: a request count and a byte count.
 */
#define VHOST_BLK_WEIGHT_REQS	256
#define VHOST_BLK_WEIGHT_BYTES	(8U << 20)

/*
 * Guest buffers the device cannot DMA (unaligned, or segments that are not
 * whole logical blocks, as virtio allows) go through host pages. Host memory
 * is not the guest's to spend: each queue may hold this many bounce pages
 * (charged, as the request tables, to the owner's memory cgroup);
 * a request waits while they are in use, and a larger one moves in windows
 * of this many pages.
 */
#define VHOST_BLK_BOUNCE_PAGES	1024

/*
 * Data a queue may have in flight. A guest can point every segment of every
 * request at the same buffer, so its memory does not bound the pins, bios and
 * bvecs it makes the host hold; this does (a request alone always runs).
 */
#define VHOST_BLK_INFLIGHT_BYTES	(64U << 20)

/* The core's default max_mem_regions; larger tables are its to refuse. */
#define VHOST_BLK_MEM_REGIONS_MAX	64

/* An attached backing block device. Immutable while attached. */
struct vhost_blk_disk {
	struct vhost_blk_bdev_handle handle;
	struct block_device *bdev;
	bool read_only;
};

struct vhost_blk_vq;

/*
 * Host pages standing in for an unaligned guest buffer. A buffer larger than
 * the pages moves in windows of at most VHOST_BLK_BOUNCE_PAGES, one at a
 * time: the completion path copies a window out and starts the next.
 */
struct vhost_blk_bounce {
	struct iovec *iov;			/* the guest's chain */
	unsigned int nr_iov;
	size_t skip;				/* bytes of @iov before the data */
	size_t len;				/* data bytes in all */
	size_t done;				/* bytes before this window */
	size_t window;				/* bytes in this window */
	struct block_device *bdev;
	sector_t sector;			/* of the whole buffer */
	bool write;
	unsigned int nr_pages;
	struct page *pages[];
};

/*
 * One request fetched from the avail ring and not yet published to the used
 * ring. Lives in the per-queue table; owned by the submitting kick handler,
 * then by its bios until the last one ends, then by the completion work.
 *
 * Its stages, one name each: fetched (the kick handler takes it from the
 * avail ring), submitted (vhost_blk_req_submit() built and sent its bios),
 * ended (its last bio ended: vhost_blk_req_ended() puts it on the queue's
 * @ended list), completed (vhost_blk_vq_complete_ended() releases what it
 * holds with vhost_blk_req_release() and publishes it to the used ring). A
 * write-zeroes retry or the next bounce window submits it again from the
 * completion path; it then ends again.
 */
struct vhost_blk_req {
	struct vhost_blk_vq *bvq;
	struct vhost_blk_req *next_free;	/* table free list */
	struct llist_node ended_node;		/* on bvq->ended */
	struct vhost_blk_bounce *bounce;	/* or NULL: zero-copy */
	atomic_t pending;			/* bios in flight + 1 while submitting */
	u8 __user *status_ptr;			/* the guest's status byte */
	u32 used_len;				/* bytes written into the guest */
	u32 charged;				/* bytes of bvq->inflight_bytes */
	/* An offloaded write-zeroes, for the zero-page retry, or NULL. */
	struct block_device *zeroes_bdev;
	sector_t zeroes_sector;
	u32 zeroes_nr;
	u16 head;
	u16 ioprio;				/* of its bios, from the header */
	u8 status;				/* VIRTIO_BLK_S_* */
	bool to_guest;				/* data moved into guest pages */
	struct vhost_blk_req_stat stat;		/* for the counters */
};

/*
 * A bio carrying guest pages, from vhost_blk_bio_set; bi_private is the
 * request. Bios from the block layer's helpers (discard, write zeroes)
 * come from other sets and have no such wrapper.
 */
struct vhost_blk_bio {
	struct llist_node node;			/* on the dirtying list */
	struct bio bio;				/* must be last */
};

/*
 * A virtqueue and the requests it has in flight.
 *
 * Locking: vq.mutex protects the request table and free list, the
 * starved and paused flags, the two budgets (@bounce_pages,
 * @inflight_bytes) and vq.private_data (the struct vhost_blk_disk, set and
 * cleared only with vq.mutex held, as in vsock.c). @ended is lock-free:
 * bios add to it from any context, only vq.mutex holders take from it.
 * @inflight counts requests whose bios have not all ended (a read bio ends
 * once @dirty_work released its pages); it reaches zero only after the
 * request is on @ended. @dirty is lock-free like @ended. @stats changes
 * under vq.mutex and is read locklessly (stats.h).
 */
struct vhost_blk_vq {
	struct vhost_virtqueue vq;
	struct vhost_blk_req *reqs;		/* table of @nr_reqs */
	struct vring_used_elem *used;		/* batch for vhost_add_used_n */
	unsigned int nr_reqs;
	struct vhost_blk_req *free_reqs;
	bool starved;				/* waiting for completions */
	bool paused;				/* held still: memory table changing */
	unsigned int bounce_pages;		/* in use by requests */
	size_t inflight_bytes;			/* data of requests in flight */
	struct llist_head ended;
	atomic_t inflight;
	struct vhost_work complete_work;
	struct llist_head dirty;		/* read bios to release */
	struct work_struct dirty_work;		/* on vhost_blk_wq */
	struct vhost_blk_vq_stats stats;
};

/*
 * Lock order: vhost_blk_nl_lock -> dev.mutex -> vq->mutex -> serial_lock.
 * vhost_blk_nl_lock (netlink.c) guards the registry of devices and is held
 * while netlink reads a device, which then only trylocks dev.mutex (a drain
 * may hold it long); nothing holding dev.mutex may take it. dev.mutex serializes ioctls and
 * protects @disk, @num_queues, @owner and @capacity.reported; kick and
 * completion work take only vq->mutex and see the disk through
 * vq->private_data. @serial_lock guards @serial, which GET_ID copies from
 * the workers. @id and @euid are set at open and never change.
 */
struct vhost_blk {
	struct vhost_dev dev;
	struct vhost_blk_vq vqs[VHOST_BLK_MAX_QUEUES];
	struct vhost_blk_disk *disk;
	unsigned int num_queues;
	spinlock_t serial_lock;		/* guards @serial */
	u8 serial[VIRTIO_BLK_ID_BYTES];
	u32 id;				/* in the netlink registry */
	kuid_t euid;			/* of the opener: who may see it */
	struct pid *owner;		/* VHOST_SET_OWNER caller's tgid */
	struct vhost_blk_capacity capacity;
};

/* main.c */
int vhost_blk_check_mem_table(const struct vhost_memory __user *m);

/* backend.c */
long vhost_blk_set_backend(struct vhost_blk *blk, int fd);
void vhost_blk_stop(struct vhost_blk *blk);
void vhost_blk_stop_vq(struct vhost_blk *blk, struct vhost_blk_vq *bvq);
void vhost_blk_detach(struct vhost_blk *blk);
void vhost_blk_pause(struct vhost_blk *blk);
void vhost_blk_resume(struct vhost_blk *blk);
size_t vhost_blk_fill_config(struct vhost_blk *blk, u8 *buf, size_t len,
			     u64 *features);
unsigned int vhost_blk_write_zeroes_max(struct block_device *bdev);

/* vq.c */
void vhost_blk_vq_init(struct vhost_blk_vq *bvq);
int vhost_blk_vq_alloc_reqs(struct vhost_blk_vq *bvq);
void vhost_blk_vq_free_reqs(struct vhost_blk_vq *bvq);
void vhost_blk_vq_drain(struct vhost_blk *blk, struct vhost_blk_vq *bvq);
void vhost_blk_handle_kick(struct vhost_work *work);

/* request.c */
extern struct bio_set vhost_blk_bio_set;
int vhost_blk_request_init(void);
void vhost_blk_request_exit(void);
void vhost_blk_vq_init_dirtying(struct vhost_blk_vq *bvq);
void vhost_blk_flush_dirtying(struct vhost_blk_vq *bvq);
ssize_t vhost_blk_req_submit(struct vhost_blk *blk,
			     struct vhost_blk_disk *disk,
			     struct vhost_blk_req *req, unsigned int out,
			     unsigned int in);
void vhost_blk_req_ended(struct vhost_blk_req *req);
void vhost_blk_req_release(struct vhost_blk_req *req, bool guest_mm);
bool vhost_blk_req_retry_zeroes(struct vhost_blk_req *req);
bool vhost_blk_req_next_window(struct vhost_blk_req *req, bool guest_mm);

/* netlink.c */
int vhost_blk_nl_init(void);
void vhost_blk_nl_exit(void);
int vhost_blk_nl_register(struct vhost_blk *blk, struct file *f);
void vhost_blk_nl_unregister(struct vhost_blk *blk);
void vhost_blk_nl_observe(struct vhost_blk *blk, bool attach);
void vhost_blk_nl_ioctl_done(struct vhost_blk *blk, unsigned int ioctl,
			     long ret);

#endif /* VHOST_BLK_PRIV_H */

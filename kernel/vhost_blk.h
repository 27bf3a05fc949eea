/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk: shared definitions of the module's files.
 *
 *   main.c     misc device, open/release, ioctl dispatch, features, params
 *   backend.c  claiming the block device or opening the image, config
 *              space, start/stop/drain
 *   cache.c    what each cache mode does with writes and flushes
 *   vq.c       kick handler, request table, completion batching
 *   request.c  what faces the guest: chain layout, header, validation,
 *              status; hands each request to the backend's ops
 *   bio_io.c   backend ops for the block device in direct modes: bios
 *              straight from guest pages (or bounce pages)
 *   bounce.c   bounce pages for guest buffers a backend cannot use in
 *              place: budget, copies, windows
 *   file_io.c  backend ops for a file (an image, or a block device in
 *              cached modes): kiocbs from a work item
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
 * Guest buffers the device cannot DMA, or an image's O_DIRECT cannot take
 * (unaligned, or segments that are not whole logical blocks, as virtio
 * allows), go through host pages (bounce.c). Host memory
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

struct vhost_blk_vq;
struct vhost_blk_req;
struct vhost_blk_disk;
struct vhost_blk_bounce;

/* Where a request's pieces are in the chain the vhost core translated. */
struct vhost_blk_layout {
	struct iovec *out_iov;		/* header, then write/discard payload */
	unsigned int out_nr;
	size_t out_len;
	struct iovec *in_iov;		/* read data or ID, then the status byte */
	unsigned int in_nr;
	size_t in_len;			/* without the status byte */
};

/* Flags of vhost_blk_backend_ops.rw */
#define VHOST_BLK_IO_WRITE	BIT(0)
#define VHOST_BLK_IO_STABLE	BIT(1)	/* on stable media before completion */
#define VHOST_BLK_IO_UNMAP	BIT(2)	/* write zeroes may unmap */

/*
 * What faces the device, chosen at attach time. request.c has checked the
 * request (range inside the disk, block aligned, not read-only, charged to
 * the queue's budgets) before calling one of these. Each either starts the
 * I/O, holding req->pending until it ends, and returns VIRTIO_BLK_S_OK, or
 * returns a VIRTIO_BLK_S_* error. @rw charges the queue's in-flight budget
 * (vhost_blk_charge()) and sets *@retry instead, having done nothing, when
 * the request does not fit it or the bounce budget now.
 *
 * @rw: read or write iov_iter_count(@iter) bytes at @sector; @l is the
 *	chain, for a path that must keep the guest's buffers.
 * @flush: make every completed write stable.
 * @discard: @nr sectors at @sector may be dropped.
 * @write_zeroes: @nr sectors at @sector read back as zeroes; @flags:
 *	VHOST_BLK_IO_UNMAP (unmapped if the backend can), VHOST_BLK_IO_STABLE
 *	(the zeroes on stable media before completion, as a write).
 * @rw_window: read or write the current window of @b (req->bounce, which
 *	@rw started with vhost_blk_bounce_start()) through its pages,
 *	holding req->pending until it ends; also called from the completion
 *	path for each next window. Errors end in req->status.
 *
 * Context: the queue's worker, vq->mutex held.
 */
struct vhost_blk_backend_ops {
	u8 (*rw)(struct vhost_blk_req *req, struct vhost_blk_disk *disk,
		 struct iov_iter *iter, u64 sector, unsigned int flags,
		 const struct vhost_blk_layout *l, bool *retry);
	u8 (*flush)(struct vhost_blk_req *req, struct vhost_blk_disk *disk);
	u8 (*discard)(struct vhost_blk_req *req, struct vhost_blk_disk *disk,
		      u64 sector, u32 nr);
	u8 (*write_zeroes)(struct vhost_blk_req *req,
			   struct vhost_blk_disk *disk, u64 sector, u32 nr,
			   unsigned int flags);
	void (*rw_window)(struct vhost_blk_req *req,
			  struct vhost_blk_bounce *b);
};

extern const struct vhost_blk_backend_ops vhost_blk_bio_ops;
extern const struct vhost_blk_backend_ops vhost_blk_file_ops;

/*
 * An attached backend: a block device (@bdev, claimed exclusively) used
 * with bios or, in cached modes, through @file (the caller's file of it);
 * or a regular file holding a raw image (@file, @bdev NULL). Immutable
 * while attached.
 */
struct vhost_blk_disk {
	struct vhost_blk_bdev_handle handle;
	struct block_device *bdev;
	struct file *file;
	const struct vhost_blk_backend_ops *ops;
	u64 nr_sectors;			/* capacity, in 512-byte sectors */
	unsigned int lbs;		/* logical block size shown to the guest */
	u32 discard_max;		/* sectors per request; 0: not offered */
	u32 write_zeroes_max;		/* sectors per request; 0: not offered */
	u32 discard_granularity;	/* bytes */
	/* Direct I/O to an image: guest buffers aligned to this go in place */
	unsigned int dio_addr_align;
	u32 cache_mode;			/* VHOST_BLK_CACHE_* */
	bool direct;			/* host page cache bypassed */
	bool read_only;
	/* File backends (file_io.c): the work items, acting for the attacher */
	struct workqueue_struct *wq;	/* the device's own */
	const struct cred *cred;	/* the attacher's */
	struct cgroup_subsys_state *blkcg_css;	/* its io cgroup, or NULL */
	struct cgroup_subsys_state *memcg_css;	/* its memory cgroup, or NULL */
	struct llist_head flushes;	/* guest flushes waiting for an fsync */
	struct work_struct flush_work;	/* one fsync for all of them */
};

/*
 * The capacity the guest sees now, in 512-byte sectors: a block device's
 * current size (dm tables are reloaded, loop devices resized under a running
 * guest: requests past a new end fail, a grown one is announced), an
 * image's size at attach.
 */
static inline u64 vhost_blk_disk_sectors(const struct vhost_blk_disk *disk)
{
	return disk->bdev ? bdev_nr_sectors(disk->bdev) : disk->nr_sectors;
}

/*
 * A read, write, flush, discard or write zeroes on a file, run by a work
 * item (file_io.c). The guest's buffers are copied as iovecs, used in the
 * owner's address space.
 */
struct vhost_blk_file_cmd {
	struct work_struct work;
	struct kiocb iocb;
	struct vhost_blk_disk *disk;
	struct iovec *iov;			/* the guest's data buffers */
	unsigned int nr_iov;
	size_t len;
	loff_t pos;
	long ret;				/* of the read or write */
	atomic_t ref;				/* submission + completion */
	struct llist_node flush_node;		/* on disk->flushes */
	u8 op;					/* VHOST_BLK_FILE_* */
	unsigned int flags;			/* VHOST_BLK_IO_* */
};

/*
 * Host pages standing in for an unaligned guest buffer (bounce.c). A buffer
 * larger than the pages moves in windows of at most VHOST_BLK_BOUNCE_PAGES,
 * one at a time: the completion path copies a window out and starts the
 * next with the disk's @rw_window.
 */
struct vhost_blk_bounce {
	struct iovec *iov;			/* the guest's chain */
	unsigned int nr_iov;
	size_t skip;				/* bytes of @iov before the data */
	size_t len;				/* data bytes in all */
	size_t done;				/* bytes before this window */
	size_t window;				/* bytes in this window */
	struct vhost_blk_disk *disk;
	u64 sector;				/* of the whole buffer */
	unsigned int flags;			/* VHOST_BLK_IO_* */
	unsigned int nr_pages;
	struct bio_vec bvecs[];			/* whole pages */
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
	/* A stable write zeroes: flush this device after it, or NULL. */
	struct block_device *zeroes_flush;
	u16 head;
	u16 ioprio;				/* of its bios, from the header */
	u8 status;				/* VIRTIO_BLK_S_* */
	bool to_guest;				/* data moved into guest pages */
	struct vhost_blk_req_stat stat;		/* for the counters */
	u64 flush_gen;				/* a FLUSH: write_gen it covers */
	struct vhost_blk_file_cmd fcmd;		/* file backends only */
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
 * once its pages are released: as it ends, or by @dirty_work if one was
 * cleaned in flight); it reaches zero only after the request is on @ended.
 * @submitter is set and cleared by the kick handler under vq.mutex and read
 * locklessly by vhost_blk_req_ended(), which only compares it with current.
 * @dirty is lock-free like @ended. @stats changes under vq.mutex and is
 * read locklessly (stats.h).
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
	/* The kick handler's thread while it submits, else NULL. */
	struct task_struct *submitter;
	atomic_t inflight;
	struct vhost_work complete_work;
	struct llist_head dirty;		/* read bios to release */
	struct work_struct dirty_work;		/* on vhost_blk_wq */
	struct vhost_blk_vq_stats stats;
};

/*
 * Lock order: vhost_blk_nl_lock -> dev.mutex -> vq->mutex -> serial_lock.
 * vhost_blk_nl_lock (netlink.c) guards the registry of devices and is held
 * while netlink reads a device, which then only trylocks dev.mutex (a
 * drain may hold it long); nothing holding dev.mutex may take it.
 * dev.mutex serializes ioctls and protects @disk, @num_queues, @owner,
 * @wce_mode and @capacity.reported, and its holders write @wce, which
 * requests read without a lock; kick and completion work take only
 * vq->mutex and see the disk through vq->private_data. @serial_lock guards @serial, which
 * GET_ID copies from the workers. @id and @euid are set at open and never
 * change.
 */
struct vhost_blk {
	struct vhost_dev dev;
	struct vhost_blk_vq vqs[VHOST_BLK_MAX_QUEUES];
	struct vhost_blk_disk *disk;
	unsigned int num_queues;
	spinlock_t serial_lock;		/* guards @serial */
	u8 serial[VIRTIO_BLK_ID_BYTES];
	u8 wce;				/* guest's write cache; READ_ONCE */
	u32 wce_mode;			/* cache mode @wce belongs to */
	/*
	 * Writes sent without FUA, and how many of them the last completed
	 * flush covers (cache.c); reset at attach.
	 */
	atomic64_t write_gen;
	atomic64_t flushed_gen;
	u32 id;				/* in the netlink registry */
	kuid_t euid;			/* of the opener: who may see it */
	struct pid *owner;		/* VHOST_SET_OWNER caller's tgid */
	struct vhost_blk_capacity capacity;
};

/* main.c */
int vhost_blk_check_mem_table(const struct vhost_memory __user *m);

/* backend.c */
long vhost_blk_set_backend(struct vhost_blk *blk, int fd, u32 cache_mode);
void vhost_blk_stop(struct vhost_blk *blk);
void vhost_blk_stop_vq(struct vhost_blk *blk, struct vhost_blk_vq *bvq);
void vhost_blk_detach(struct vhost_blk *blk);
void vhost_blk_pause(struct vhost_blk *blk);
void vhost_blk_resume(struct vhost_blk *blk);
size_t vhost_blk_fill_config(struct vhost_blk *blk, u8 *buf, size_t len,
			     u64 *features);
unsigned int vhost_blk_write_zeroes_max(struct block_device *bdev);

/* cache.c */
bool vhost_blk_cache_direct(u32 mode);
u8 vhost_blk_cache_default_wce(u32 mode);
bool vhost_blk_cache_flush_needed(struct vhost_blk *blk,
				  const struct vhost_blk_disk *disk);
void vhost_blk_cache_write_sent(struct vhost_blk *blk,
				const struct vhost_blk_disk *disk, bool stable);
void vhost_blk_cache_flush_done(struct vhost_blk *blk,
				const struct vhost_blk_req *req);
bool vhost_blk_cache_write_stable(const struct vhost_blk_disk *disk, u8 wce);

/* vq.c */
void vhost_blk_vq_init(struct vhost_blk_vq *bvq);
int vhost_blk_vq_alloc_reqs(struct vhost_blk_vq *bvq);
void vhost_blk_vq_free_reqs(struct vhost_blk_vq *bvq);
void vhost_blk_vq_drain(struct vhost_blk *blk, struct vhost_blk_vq *bvq);
void vhost_blk_handle_kick(struct vhost_work *work);

/* request.c */
int vhost_blk_request_init(void);
void vhost_blk_request_exit(void);
ssize_t vhost_blk_req_submit(struct vhost_blk *blk,
			     struct vhost_blk_disk *disk,
			     struct vhost_blk_req *req, unsigned int out,
			     unsigned int in);
void vhost_blk_req_ended(struct vhost_blk_req *req);
void vhost_blk_req_release(struct vhost_blk_req *req, bool guest_mm);
void vhost_blk_req_error(struct vhost_blk_req *req, u8 status);
u8 vhost_blk_errno_status(int err);
unsigned int vhost_blk_iov_window(const struct iovec *iov, unsigned int nr,
				  size_t skip, size_t len, struct iovec *window,
				  size_t *longest);
bool vhost_blk_charge(struct vhost_blk_req *req, size_t len);

/* bio_io.c */
int vhost_blk_bio_init(void);
void vhost_blk_bio_exit(void);
void vhost_blk_vq_init_dirtying(struct vhost_blk_vq *bvq);
void vhost_blk_flush_dirtying(struct vhost_blk_vq *bvq);
bool vhost_blk_req_retry_zeroes(struct vhost_blk_req *req);

/* bounce.c */
bool vhost_blk_rw_charge(struct vhost_blk_req *req, size_t len, bool bounce,
			 unsigned int *nr_pages);
u8 vhost_blk_bounce_start(struct vhost_blk_req *req,
			  struct vhost_blk_disk *disk, size_t len,
			  unsigned int nr, u64 sector, unsigned int flags,
			  const struct vhost_blk_layout *l);
void vhost_blk_bounce_release(struct vhost_blk_req *req, bool guest_mm);
bool vhost_blk_req_next_window(struct vhost_blk_req *req, bool guest_mm);

/* netlink.c */
int vhost_blk_nl_init(void);
void vhost_blk_nl_exit(void);
int vhost_blk_nl_register(struct vhost_blk *blk, struct file *f);
void vhost_blk_nl_unregister(struct vhost_blk *blk);
void vhost_blk_nl_observe(struct vhost_blk *blk, bool attach);
void vhost_blk_nl_ioctl_done(struct vhost_blk *blk, unsigned int ioctl,
			     long ret);

/* file_io.c */
void vhost_blk_file_probe(struct vhost_blk_disk *disk);
int vhost_blk_file_attach(struct vhost_blk_disk *disk);
void vhost_blk_file_detach(struct vhost_blk_disk *disk);
void vhost_blk_file_req_init(struct vhost_blk_req *req);

#endif /* VHOST_BLK_PRIV_H */

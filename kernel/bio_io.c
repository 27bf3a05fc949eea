// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: backend ops for a block device in the direct cache modes (none,
 * directsync). Data moves zero-copy: bios are built straight from the
 * guest's pages (the worker runs in the owner's mm) and submitted without
 * waiting; buffers the device cannot take go through bounce pages.
 */
#include "vhost_blk.h"

static struct bio_set vhost_blk_bio_set;

/*
 * Pages the device wrote must be marked dirty, which may sleep, so read bios
 * end on a list that a work item releases. Not the vhost worker: freeing
 * bios must not wait for the worker that may be waiting for a free bio.
 */
static struct workqueue_struct *vhost_blk_wq;
static LLIST_HEAD(vhost_blk_dirty_bios);

static void vhost_blk_dirty_fn(struct work_struct *work)
{
	struct llist_node *list = llist_del_all(&vhost_blk_dirty_bios);
	struct vhost_blk_bio *vbio, *tmp;

	llist_for_each_entry_safe(vbio, tmp, list, node) {
		bio_release_pages(&vbio->bio, true);
		bio_put(&vbio->bio);
	}
}

static DECLARE_WORK(vhost_blk_dirty_work, vhost_blk_dirty_fn);

/* Every read bio that has ended so far has released its pages on return. */
void vhost_blk_flush_dirtying(void)
{
	flush_work(&vhost_blk_dirty_work);
}

int vhost_blk_bio_init(void)
{
	int ret;

	vhost_blk_wq = alloc_workqueue("vhost_blk", WQ_MEM_RECLAIM, 0);
	if (!vhost_blk_wq)
		return -ENOMEM;
	ret = bioset_init(&vhost_blk_bio_set, BIO_POOL_SIZE,
			  offsetof(struct vhost_blk_bio, bio),
			  BIOSET_NEED_BVECS);
	if (ret)
		destroy_workqueue(vhost_blk_wq);
	return ret;
}

void vhost_blk_bio_exit(void)
{
	/* No device is open: every bio has ended and been queued. */
	flush_work(&vhost_blk_dirty_work);
	destroy_workqueue(vhost_blk_wq);
	bioset_exit(&vhost_blk_bio_set);
}

/* Bios of one request may end at once on several CPUs: any error wins. */
static void vhost_blk_bio_status(struct vhost_blk_req *req, struct bio *bio)
{
	if (bio->bi_status)
		WRITE_ONCE(req->status, bio->bi_status == BLK_STS_NOTSUPP ?
			   VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR);
}

/* End of a bio carrying guest pages (from vhost_blk_bio_set). */
static void vhost_blk_bio_end_io(struct bio *bio)
{
	struct vhost_blk_bio *vbio = container_of(bio, struct vhost_blk_bio,
						  bio);
	struct vhost_blk_req *req = bio->bi_private;

	vhost_blk_bio_status(req, bio);
	if (req->to_guest) {
		llist_add(&vbio->node, &vhost_blk_dirty_bios);
		queue_work(vhost_blk_wq, &vhost_blk_dirty_work);
	} else {
		/* As the block layer's own direct I/O: fine in any context. */
		bio_release_pages(bio, false);
		bio_put(bio);
	}
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_end(req);
}

/* End of a bio without guest pages: flush, discard, write zeroes. */
static void vhost_blk_bio_end_io_nodata(struct bio *bio)
{
	struct vhost_blk_req *req = bio->bi_private;

	vhost_blk_bio_status(req, bio);
	bio_put(bio);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_end(req);
}

static void vhost_blk_bounce_free(struct vhost_blk_bounce *b)
{
	unsigned int i;

	for (i = 0; i < b->nr_pages; i++)
		__free_page(b->pages[i]);
	kfree(b->iov);
	kvfree(b);
}

/* Copy a bounced read into the guest's buffer. Context: owner's mm. */
static void vhost_blk_bounce_to_guest(struct vhost_blk_req *req)
{
	struct vhost_blk_bounce *b = req->bounce;
	struct iov_iter iter;
	size_t done = 0;
	unsigned int i;

	iov_iter_init(&iter, ITER_DEST, b->iov, b->nr_iov, b->len);
	for (i = 0; i < b->nr_pages && done < b->len; i++) {
		size_t n = min_t(size_t, PAGE_SIZE, b->len - done);

		if (copy_page_to_iter(b->pages[i], 0, n, &iter) != n) {
			req->status = VIRTIO_BLK_S_IOERR;
			return;
		}
		done += n;
	}
}

/*
 * Release a request's bounce pages and, when @guest_mm says the guest's
 * memory is reachable, copy a bounced read that succeeded into the guest.
 *
 * Context: process context, vq->mutex held.
 */
void vhost_blk_bounce_finish(struct vhost_blk_req *req, bool guest_mm)
{
	struct vhost_blk_vq *bvq = req->bvq;

	if (!req->bounce)
		return;
	bvq->bounce_pages -= req->bounce->nr_pages;
	if (req->to_guest && guest_mm && req->status == VIRTIO_BLK_S_OK)
		vhost_blk_bounce_to_guest(req);
	vhost_blk_bounce_free(req->bounce);
	req->bounce = NULL;
}

static void vhost_blk_submit(struct vhost_blk_req *req, struct bio *bio,
			     bio_end_io_t *end_io)
{
	bio->bi_private = req;
	bio->bi_end_io = end_io;
	atomic_inc(&req->pending);
	submit_bio(bio);
}

/*
 * Guest writes are what O_DIRECT writes are to the block layer, REQ_SYNC |
 * REQ_IDLE, never background writeback: writeback throttling (wbt, on by
 * default for SCSI and NVMe disks) would otherwise hold the kick handler in
 * wbt_wait() with vq->mutex held, and with it close, detach and the owner's
 * exit. The guest's flush is waited for too: the same flags.
 */
#define VHOST_BLK_WRITE_OPF	(REQ_OP_WRITE | REQ_SYNC | REQ_IDLE)

static struct bio *vhost_blk_bio_alloc(struct vhost_blk_req *req,
				       struct block_device *bdev,
				       unsigned short nr_vecs, blk_opf_t opf)
{
	struct bio *bio;

	bio = bio_alloc_bioset(bdev, nr_vecs, opf, GFP_KERNEL,
			       &vhost_blk_bio_set);
	bio->bi_ioprio = req->ioprio;
	return bio;
}

/*
 * Read or write @iter at @sector, split into as many bios as the pages need.
 * Returns 0 once every page is in a submitted bio, or a VIRTIO_BLK_S_* error
 * if pinning failed part way (bios already submitted still end normally).
 */
static u8 vhost_blk_rw(struct vhost_blk_req *req, struct block_device *bdev,
		       struct iov_iter *iter, sector_t sector, blk_opf_t opf)
{
	while (iov_iter_count(iter)) {
		struct bio *bio;
		int ret;

		bio = vhost_blk_bio_alloc(req, bdev,
					  bio_iov_vecs_to_alloc(iter, BIO_MAX_VECS),
					  opf);
		bio->bi_iter.bi_sector = sector;
		ret = bio_iov_iter_get_pages(bio, iter);
		if (unlikely(ret || !bio->bi_iter.bi_size)) {
			bio_put(bio);
			return VIRTIO_BLK_S_IOERR;
		}
		sector += bio->bi_iter.bi_size >> SECTOR_SHIFT;
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io);
	}
	return VIRTIO_BLK_S_OK;
}

/*
 * Read or write through host pages, taken from the queue's bounce budget
 * (checked by the caller).
 */
static int vhost_blk_bounce_rw(struct vhost_blk_req *req,
			       struct block_device *bdev,
			       struct iov_iter *iter, sector_t sector,
			       blk_opf_t opf, const struct vhost_blk_layout *l)
{
	struct vhost_blk_vq *bvq = req->bvq;
	size_t len = iov_iter_count(iter);
	unsigned int nr = DIV_ROUND_UP(len, PAGE_SIZE), i;
	struct vhost_blk_bounce *b;
	bool write = op_is_write(opf);
	struct bio *bio = NULL;

	b = kvzalloc(struct_size(b, pages, nr), GFP_KERNEL_ACCOUNT);
	if (!b)
		return VIRTIO_BLK_S_IOERR;
	req->bounce = b;
	b->len = len;
	for (i = 0; i < nr; i++) {
		/* Zeroed for reads: no stale host data, whatever the device does. */
		b->pages[i] = alloc_page(write ? GFP_KERNEL_ACCOUNT :
					 GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!b->pages[i])
			return VIRTIO_BLK_S_IOERR;
		b->nr_pages++;
		bvq->bounce_pages++;
	}

	if (write) {
		for (i = 0; i < nr; i++) {
			size_t n = min_t(size_t, PAGE_SIZE, len - i * PAGE_SIZE);

			if (copy_page_from_iter(b->pages[i], 0, n, iter) != n)
				return VIRTIO_BLK_S_IOERR;
		}
	} else {
		/* Keep the guest's buffer for the copy at completion. */
		b->iov = kmemdup(l->in_iov, l->in_nr * sizeof(*l->in_iov),
				 GFP_KERNEL_ACCOUNT);
		if (!b->iov)
			return VIRTIO_BLK_S_IOERR;
		b->nr_iov = l->in_nr;
	}

	for (i = 0; i < nr; i++) {
		size_t n = min_t(size_t, PAGE_SIZE, len - i * PAGE_SIZE);

		if (!bio) {
			bio = vhost_blk_bio_alloc(req, bdev,
						  min_t(unsigned int, nr - i,
							BIO_MAX_VECS), opf);
			bio->bi_iter.bi_sector = sector;
		}
		__bio_add_page(bio, b->pages[i], n, 0);
		sector += n >> SECTOR_SHIFT;
		if (bio->bi_vcnt == bio->bi_max_vecs || i + 1 == nr) {
			vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
			bio = NULL;
		}
	}
	return VIRTIO_BLK_S_OK;
}

/*
 * Zero-copy needs what O_DIRECT needs (the device's DMA alignment, segments
 * of whole logical blocks) and one thing more than bdev_iter_is_aligned()
 * checks: every piece of a page must be whole logical blocks. A 4 KiB block
 * starting 512 bytes into a page is split across two pages, which drivers
 * may mishandle (null_blk with 4 KiB blocks returned wrong data, and on 6.12
 * oopsed); a segment that starts on a block boundary never is. Linux guests
 * always comply; other layouts, which virtio allows, are bounced.
 */
static bool vhost_blk_zero_copy_ok(struct block_device *bdev,
				   struct iov_iter *iter)
{
	unsigned int lbs = bdev_logical_block_size(bdev);

	return bdev_iter_is_aligned(bdev, iter) &&
	       iov_iter_is_aligned(iter, lbs - 1, lbs - 1);
}

/*
 * Pick zero-copy or bounce pages for a read or write. The bounce budget is
 * checked before anything is allocated: -EAGAIN leaves nothing behind.
 */
static int vhost_blk_bio_rw(struct vhost_blk_req *req,
			    struct vhost_blk_disk *disk, struct iov_iter *iter,
			    u64 sector, unsigned int flags,
			    const struct vhost_blk_layout *l)
{
	struct block_device *bdev = disk->bdev;
	struct vhost_blk_vq *bvq = req->bvq;
	bool write = flags & VHOST_BLK_IO_WRITE;
	size_t len = iov_iter_count(iter);
	blk_opf_t opf = REQ_OP_READ;
	unsigned int pages;
	bool aligned;

	if (write) {
		opf = VHOST_BLK_WRITE_OPF;
		/*
		 * Without FUA support in the device the block layer writes,
		 * then flushes; without a volatile cache it drops the flag.
		 */
		if (flags & VHOST_BLK_IO_STABLE)
			opf |= REQ_FUA;
	}

	/*
	 * A device that needs stable pages (data digests, dm-integrity,
	 * RAID parity) must not see a guest rewrite a buffer in flight.
	 */
	aligned = vhost_blk_zero_copy_ok(bdev, iter) &&
		  !(write && bdev_stable_writes(bdev));
	if (!aligned) {
		pages = DIV_ROUND_UP(len, PAGE_SIZE);
		if (pages > VHOST_BLK_BOUNCE_PAGES)
			return VIRTIO_BLK_S_IOERR;
		if (bvq->bounce_pages + pages > VHOST_BLK_BOUNCE_PAGES)
			return -EAGAIN;
		return vhost_blk_bounce_rw(req, bdev, iter, sector, opf, l);
	}
	return vhost_blk_rw(req, bdev, iter, sector, opf);
}

static u8 vhost_blk_bio_flush(struct vhost_blk_req *req,
			      struct vhost_blk_disk *disk)
{
	struct bio *bio;

	/*
	 * An empty write with PREFLUSH: kernels with upstream 1c042f8d4bc3
	 * (6.6.y and later) refuse REQ_OP_FLUSH bios from submit_bio().
	 */
	bio = vhost_blk_bio_alloc(req, disk->bdev, 0,
				  VHOST_BLK_WRITE_OPF | REQ_PREFLUSH);
	vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
	return VIRTIO_BLK_S_OK;
}

/* Discard: the block layer's helper splits and chains the bios. */
static u8 vhost_blk_bio_discard(struct vhost_blk_req *req,
				struct vhost_blk_disk *disk, u64 sector, u32 nr)
{
	struct bio *bio = NULL;
	int ret;

	ret = __blkdev_issue_discard(disk->bdev, sector, nr, GFP_KERNEL, &bio);
	/* The helpers chain their bios; the last one ends the chain. */
	if (bio)
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
	if (ret)
		return ret == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP :
					    VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/* Write zeroes: hardware offload, else zero pages (unmapping if asked). */
static u8 vhost_blk_bio_write_zeroes(struct vhost_blk_req *req,
				     struct vhost_blk_disk *disk, u64 sector,
				     u32 nr, bool unmap)
{
	struct bio *bio = NULL;
	int ret;

	ret = __blkdev_issue_zeroout(disk->bdev, sector, nr, GFP_KERNEL, &bio,
				     unmap ? 0 : BLKDEV_ZERO_NOUNMAP);
	if (bio)
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
	if (ret)
		return ret == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP :
					    VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

const struct vhost_blk_backend_ops vhost_blk_bio_ops = {
	.rw		= vhost_blk_bio_rw,
	.flush		= vhost_blk_bio_flush,
	.discard	= vhost_blk_bio_discard,
	.write_zeroes	= vhost_blk_bio_write_zeroes,
};

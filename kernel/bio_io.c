// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: backend ops for a block device in the direct cache modes (none,
 * directsync). Data moves zero-copy: bios are built straight from the
 * guest's pages (the worker runs in the owner's mm) and submitted without
 * waiting; buffers the device cannot take go through bounce pages.
 */
#include "vhost_blk.h"

#include <linux/pagemap.h>

static struct bio_set vhost_blk_bio_set;

/*
 * Pages the device writes must be dirty when their pins are released, or
 * reclaim may drop what the device wrote. Marking a folio dirty may sleep,
 * so, as the block layer's own direct reads do, a read bio's folios are
 * marked dirty in the kick handler before it is submitted, and the bio's
 * end only checks that they still are. For guest RAM (anonymous or shmem
 * folios, which reclaim leaves dirty while the bio holds them) they are: the
 * pages are released and the request ends there and then. Only a bio with
 * a folio cleaned meanwhile (writeback of file-backed guest memory, a hole
 * punched in a memfd) goes on its queue's list, and the queue's work item
 * marks its folios dirty again and releases them. Not the vhost worker:
 * freeing bios must not wait for the worker that may be waiting for a free
 * bio. Either way a read bio counts as pending in its request until its
 * pages are released, so the request (and its share of the in-flight
 * budget) ends only then: the budget bounds the pins, not just the bios.
 */
static struct workqueue_struct *vhost_blk_wq;

static void vhost_blk_dirty_fn(struct work_struct *work)
{
	struct vhost_blk_vq *bvq = container_of(work, struct vhost_blk_vq,
						dirty_work);
	struct llist_node *list = llist_del_all(&bvq->dirty);
	struct vhost_blk_bio *vbio, *tmp;

	llist_for_each_entry_safe(vbio, tmp, list, node) {
		struct vhost_blk_req *req = vbio->bio.bi_private;

		bio_release_pages(&vbio->bio, true);
		bio_put(&vbio->bio);
		if (atomic_dec_and_test(&req->pending))
			vhost_blk_req_ended(req);
	}
}

void vhost_blk_vq_init_dirtying(struct vhost_blk_vq *bvq)
{
	init_llist_head(&bvq->dirty);
	INIT_WORK(&bvq->dirty_work, vhost_blk_dirty_fn);
}

/* The queue's dirtying work has returned, if it was running. */
void vhost_blk_flush_dirtying(struct vhost_blk_vq *bvq)
{
	flush_work(&bvq->dirty_work);
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
	/* No device is open: every queue's dirtying work has been flushed. */
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

/*
 * Mark the folios a read bio will write dirty. bio_set_pages_dirty() does
 * the same but is not exported by every kernel this module builds for.
 *
 * Context: process context.
 */
static void vhost_blk_bio_set_dirty(struct bio *bio)
{
	struct folio_iter fi;

	bio_for_each_folio_all(fi, bio) {
		folio_lock(fi.folio);
		folio_mark_dirty(fi.folio);
		folio_unlock(fi.folio);
	}
}

/* Are all the folios of a read bio still dirty? Any context. */
static bool vhost_blk_bio_still_dirty(struct bio *bio)
{
	struct folio_iter fi;

	bio_for_each_folio_all(fi, bio) {
		if (!folio_test_dirty(fi.folio))
			return false;
	}
	return true;
}

/*
 * End of a bio carrying the guest's own pinned or referenced pages (from
 * vhost_blk_bio_set, built by vhost_blk_rw()). Bounce and zero-page bios end
 * in vhost_blk_bio_end_io_nodata(): bio_release_pages() here would drop page
 * references they never took (6.1) or dirty pages that are not the guest's.
 */
static void vhost_blk_bio_end_io(struct bio *bio)
{
	struct vhost_blk_bio *vbio = container_of(bio, struct vhost_blk_bio,
						  bio);
	struct vhost_blk_req *req = bio->bi_private;
	struct vhost_blk_vq *bvq = req->bvq;

	vhost_blk_bio_status(req, bio);
	if (req->to_guest && !vhost_blk_bio_still_dirty(bio)) {
		/*
		 * Still pending until the work has released the pages. Once
		 * the bio is on the list a running work item may end the
		 * request and the queue's last one with it: hold the queue
		 * until queue_work() is done, so the drain (which waits for
		 * @inflight, then flushes the work) cannot free it under us.
		 */
		atomic_inc(&bvq->inflight);
		llist_add(&vbio->node, &bvq->dirty);
		queue_work(vhost_blk_wq, &bvq->dirty_work);
		if (atomic_dec_and_test(&bvq->inflight))
			wake_up_var(&bvq->inflight);
		return;
	}
	/* As the block layer's own direct I/O: fine in any context. */
	bio_release_pages(bio, false);
	bio_put(bio);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
}

/* End of a bio without guest pages: flush, discard, write zeroes. */
static void vhost_blk_bio_end_io_nodata(struct bio *bio)
{
	struct vhost_blk_req *req = bio->bi_private;

	vhost_blk_bio_status(req, bio);
	bio_put(bio);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
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

/*
 * Not charged to the owner's memcg, as the block layer's own direct I/O
 * does not charge its bios: they live only while in flight, which the
 * in-flight budget bounds, and a failed charge would send them to the
 * bio_set's small reserve that every device shares.
 */
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
		if (req->to_guest)
			vhost_blk_bio_set_dirty(bio);
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io);
	}
	return VIRTIO_BLK_S_OK;
}

/* The bios' operation and flags for VHOST_BLK_IO_* @flags. */
static blk_opf_t vhost_blk_bio_opf(unsigned int flags)
{
	if (!(flags & VHOST_BLK_IO_WRITE))
		return REQ_OP_READ;
	return VHOST_BLK_WRITE_OPF |
	       (flags & VHOST_BLK_IO_STABLE ? REQ_FUA : 0);
}

/* Submit the current window's bios. */
static void vhost_blk_bio_rw_window(struct vhost_blk_req *req,
				    struct vhost_blk_bounce *b)
{
	unsigned int nr = DIV_ROUND_UP(b->window, PAGE_SIZE), i;
	sector_t sector = b->sector + (b->done >> SECTOR_SHIFT);
	blk_opf_t opf = vhost_blk_bio_opf(b->flags);
	struct bio *bio = NULL;

	for (i = 0; i < nr; i++) {
		size_t n = min_t(size_t, PAGE_SIZE, b->window - i * PAGE_SIZE);

		if (!bio) {
			bio = vhost_blk_bio_alloc(req, b->disk->bdev,
						  min_t(unsigned int, nr - i,
							BIO_MAX_VECS),
						  opf);
			bio->bi_iter.bi_sector = sector;
		}
		__bio_add_page(bio, b->bvecs[i].bv_page, n, 0);
		sector += n >> SECTOR_SHIFT;
		if (bio->bi_vcnt == bio->bi_max_vecs || i + 1 == nr) {
			vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
			bio = NULL;
		}
	}
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
 * Zero-copy, or bounce pages in windows of the whole bounce budget. Sets
 * *@retry, having done nothing, when the budgets are in use now.
 */
static u8 vhost_blk_bio_rw(struct vhost_blk_req *req,
			   struct vhost_blk_disk *disk, struct iov_iter *iter,
			   u64 sector, unsigned int flags,
			   const struct vhost_blk_layout *l, bool *retry)
{
	struct block_device *bdev = disk->bdev;
	bool write = flags & VHOST_BLK_IO_WRITE;
	size_t len = iov_iter_count(iter);
	unsigned int pages = 0;
	bool bounce;

	/*
	 * Without FUA support in the device the block layer writes, then
	 * flushes; without a volatile cache it drops the flag.
	 */
	if (write && (flags & VHOST_BLK_IO_STABLE) && bdev_write_cache(bdev) &&
	    !bdev_fua(bdev))
		req->stat.cache |= VHOST_BLK_STAT_FUA_EMULATED;

	/*
	 * A device that needs stable pages (data digests, dm-integrity,
	 * RAID parity) must not see a guest rewrite a buffer in flight.
	 */
	bounce = !vhost_blk_zero_copy_ok(bdev, iter) ||
		 (write && bdev_stable_writes(bdev));
	if (!vhost_blk_rw_charge(req, len, bounce, &pages)) {
		*retry = true;
		return VIRTIO_BLK_S_OK;
	}
	/* Nothing asks for a retry from here on. */

	if (bounce)
		return vhost_blk_bounce_start(req, disk, len, pages, sector,
					      flags, l);
	return vhost_blk_rw(req, bdev, iter, sector, vhost_blk_bio_opf(flags));
}

/*
 * An empty write with PREFLUSH: kernels with upstream 1c042f8d4bc3
 * (6.6.y and later) refuse REQ_OP_FLUSH bios from submit_bio().
 */
static void vhost_blk_submit_flush(struct vhost_blk_req *req,
				   struct block_device *bdev)
{
	struct bio *bio;

	bio = vhost_blk_bio_alloc(req, bdev, 0,
				  VHOST_BLK_WRITE_OPF | REQ_PREFLUSH);
	vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
}

static u8 vhost_blk_bio_flush(struct vhost_blk_req *req,
			      struct vhost_blk_disk *disk)
{
	vhost_blk_submit_flush(req, disk->bdev);
	return VIRTIO_BLK_S_OK;
}

/* Write @nr sectors of zeroes at @sector as bios of the zero page. */
static void vhost_blk_write_zero_pages(struct vhost_blk_req *req,
				       struct block_device *bdev,
				       sector_t sector, u32 nr)
{
	while (nr) {
		struct bio *bio;

		bio = vhost_blk_bio_alloc(req, bdev, BIO_MAX_VECS,
					  VHOST_BLK_WRITE_OPF);
		bio->bi_iter.bi_sector = sector;
		while (nr && bio->bi_vcnt < bio->bi_max_vecs) {
			unsigned int len = min_t(u64, (u64)nr << SECTOR_SHIFT,
						 PAGE_SIZE);

			__bio_add_page(bio, ZERO_PAGE(0), len, 0);
			nr -= len >> SECTOR_SHIFT;
			sector += len >> SECTOR_SHIFT;
		}
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
	}
}

/*
 * A device may offer write zeroes and still refuse it: a loop device over a
 * file system without FALLOC_FL_ZERO_RANGE (tmpfs) answers NOTSUPP when the
 * guest forbids unmapping. blkdev_issue_zeroout() then writes zero pages;
 * so does this, from the completion path: the request is submitted again
 * and ends again. Bounded as every write-zeroes request
 * (vhost_blk_write_zeroes_max()) and still charged to the budget. Zeroes
 * that must be stable (the write cache is off) are then flushed the same
 * way, as QEMU makes them FUA. Returns true when the request was submitted
 * again.
 *
 * Context: process context, vq->mutex held.
 */
bool vhost_blk_req_retry_zeroes(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->zeroes_bdev;
	struct vhost_blk_vq *bvq = req->bvq;
	bool flush = false;

	lockdep_assert_held(&bvq->vq.mutex);

	if (!bdev || req->status != VIRTIO_BLK_S_UNSUPP) {
		bdev = req->zeroes_flush;
		if (!bdev || req->status != VIRTIO_BLK_S_OK)
			return false;
		flush = true;
	}
	/* Each at most once; the flush follows the zero pages. */
	if (flush)
		req->zeroes_flush = NULL;
	else
		req->zeroes_bdev = NULL;
	req->status = VIRTIO_BLK_S_OK;
	atomic_inc(&bvq->inflight);
	atomic_set(&req->pending, 1);
	if (flush)
		vhost_blk_submit_flush(req, bdev);
	else
		vhost_blk_write_zero_pages(req, bdev, req->zeroes_sector,
					   req->zeroes_nr);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
	return true;
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
	return vhost_blk_errno_status(ret);
}

/*
 * Write zeroes: offloaded when the device has it (if it then refuses, zero
 * pages: vhost_blk_req_retry_zeroes()), else the block layer's zero pages.
 */
static u8 vhost_blk_bio_write_zeroes(struct vhost_blk_req *req,
				     struct vhost_blk_disk *disk, u64 sector,
				     u32 nr, unsigned int flags)
{
	struct block_device *bdev = disk->bdev;
	bool unmap = flags & VHOST_BLK_IO_UNMAP;
	struct bio *bio = NULL;
	int ret;

	if (flags & VHOST_BLK_IO_STABLE)
		req->zeroes_flush = bdev;

	if (bdev_write_zeroes_sectors(bdev)) {
		req->zeroes_bdev = bdev;
		req->zeroes_sector = sector;
		req->zeroes_nr = nr;
	}
	ret = __blkdev_issue_zeroout(bdev, sector, nr, GFP_KERNEL, &bio,
				     unmap ? 0 : BLKDEV_ZERO_NOUNMAP);
	if (bio)
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
	return vhost_blk_errno_status(ret);
}

const struct vhost_blk_backend_ops vhost_blk_bio_ops = {
	.rw		= vhost_blk_bio_rw,
	.flush		= vhost_blk_bio_flush,
	.discard	= vhost_blk_bio_discard,
	.write_zeroes	= vhost_blk_bio_write_zeroes,
	.rw_window	= vhost_blk_bio_rw_window,
};

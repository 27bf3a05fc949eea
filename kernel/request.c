// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: one virtio-blk request. Everything here is guest-controlled:
 * the header, the layout of the descriptor chain, sectors, lengths and
 * flags are checked before any bio is built, and every failure ends as a
 * status byte (IOERR or UNSUPP) rather than a lost request.
 *
 * Data moves zero-copy: bios are built straight from the guest's pages
 * (the worker runs in the owner's mm) and submitted without waiting.
 */
#include "vhost_blk.h"

#include <linux/ioprio.h>

struct bio_set vhost_blk_bio_set;

/*
 * Pages the device wrote must be marked dirty, which may sleep, so read bios
 * end on their queue's list that the queue's work item releases. Not the
 * vhost worker: freeing bios must not wait for the worker that may be
 * waiting for a free bio. A read bio counts as pending in its request until
 * its pages are released, so the request (and its share of the in-flight
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

int vhost_blk_request_init(void)
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

void vhost_blk_request_exit(void)
{
	/* No device is open: every queue's dirtying work has been flushed. */
	destroy_workqueue(vhost_blk_wq);
	bioset_exit(&vhost_blk_bio_set);
}

/* Where a request's pieces are in the chain the vhost core translated. */
struct vhost_blk_layout {
	struct iovec *out_iov;		/* header, then write/discard payload */
	unsigned int out_nr;
	size_t out_len;
	struct iovec *in_iov;		/* read data or ID, then the status byte */
	unsigned int in_nr;
	size_t in_len;			/* without the status byte */
};

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
		/* Still pending until the work has released the pages. */
		llist_add(&vbio->node, &req->bvq->dirty);
		queue_work(vhost_blk_wq, &req->bvq->dirty_work);
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

static void vhost_blk_bounce_free(struct vhost_blk_bounce *b)
{
	unsigned int i;

	for (i = 0; i < b->nr_pages; i++)
		__free_page(b->pages[i]);
	kfree(b->iov);
	kvfree(b);
}

/*
 * Copy the current window between the bounce pages and the guest's buffer:
 * into the guest after a read, out of it before a write. Returns false on a
 * fault. Context: owner's mm.
 */
static bool vhost_blk_bounce_copy(struct vhost_blk_bounce *b, bool to_guest)
{
	struct iov_iter iter;
	size_t done = 0;
	unsigned int i;

	iov_iter_init(&iter, to_guest ? ITER_DEST : ITER_SOURCE, b->iov,
		      b->nr_iov, b->skip + b->len);
	iov_iter_advance(&iter, b->skip + b->done);
	for (i = 0; i < b->nr_pages && done < b->window; i++) {
		size_t n = min_t(size_t, PAGE_SIZE, b->window - done);

		if ((to_guest ? copy_page_to_iter(b->pages[i], 0, n, &iter) :
				copy_page_from_iter(b->pages[i], 0, n, &iter)) != n)
			return false;
		done += n;
	}
	return true;
}

/*
 * Release what the request holds once its bios have ended: its share of the
 * queue's budgets, a bounced read finished when @guest_mm says the guest's
 * memory is reachable, bounce pages. (Guest pages were released as their
 * bios ended.) The budgets are charged in vhost_blk_read_write().
 *
 * Context: process context, vq->mutex held.
 */
void vhost_blk_req_release(struct vhost_blk_req *req, bool guest_mm)
{
	struct vhost_blk_vq *bvq = req->bvq;

	lockdep_assert_held(&bvq->vq.mutex);

	bvq->inflight_bytes -= req->charged;
	if (req->bounce) {
		bvq->bounce_pages -= req->bounce->nr_pages;
		if (req->to_guest && guest_mm &&
		    req->status == VIRTIO_BLK_S_OK &&
		    !vhost_blk_bounce_copy(req->bounce, true))
			req->status = VIRTIO_BLK_S_IOERR;
		vhost_blk_bounce_free(req->bounce);
		req->bounce = NULL;
	}
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

/* Submit the current window's bios. */
static void vhost_blk_bounce_submit(struct vhost_blk_req *req,
				    struct vhost_blk_bounce *b)
{
	unsigned int nr = DIV_ROUND_UP(b->window, PAGE_SIZE), i;
	sector_t sector = b->sector + (b->done >> SECTOR_SHIFT);
	struct bio *bio = NULL;

	for (i = 0; i < nr; i++) {
		size_t n = min_t(size_t, PAGE_SIZE, b->window - i * PAGE_SIZE);

		if (!bio) {
			bio = vhost_blk_bio_alloc(req, b->bdev,
						  min_t(unsigned int, nr - i,
							BIO_MAX_VECS),
						  b->write ? VHOST_BLK_WRITE_OPF :
							     REQ_OP_READ);
			bio->bi_iter.bi_sector = sector;
		}
		__bio_add_page(bio, b->pages[i], n, 0);
		sector += n >> SECTOR_SHIFT;
		if (bio->bi_vcnt == bio->bi_max_vecs || i + 1 == nr) {
			vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
			bio = NULL;
		}
	}
}

/*
 * A bounced request whose window has ended and that has more to move: copy
 * a read window out, start the next window (copying a write's in) and
 * return true; the request ends again later. Without the guest's memory
 * (@guest_mm false: the owner is exiting) the rest fails with IOERR.
 *
 * Context: process context, vq->mutex held, the owner's mm if @guest_mm.
 */
bool vhost_blk_req_next_window(struct vhost_blk_req *req, bool guest_mm)
{
	struct vhost_blk_bounce *b = req->bounce;
	struct vhost_blk_vq *bvq = req->bvq;

	lockdep_assert_held(&bvq->vq.mutex);

	if (!b || b->done + b->window == b->len ||
	    req->status != VIRTIO_BLK_S_OK)
		return false;
	if (!guest_mm || (!b->write && !vhost_blk_bounce_copy(b, true))) {
		req->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	b->done += b->window;
	b->window = min_t(size_t, b->len - b->done,
			  (size_t)b->nr_pages << PAGE_SHIFT);
	if (b->write && !vhost_blk_bounce_copy(b, false)) {
		req->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	atomic_inc(&bvq->inflight);
	atomic_set(&req->pending, 1);
	vhost_blk_bounce_submit(req, b);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
	return true;
}

/*
 * Read or write @len bytes through @nr host pages (the first window), taken
 * from the queue's bounce budget (checked by the caller). Returns a
 * VIRTIO_BLK_S_* status, as vhost_blk_rw().
 */
static u8 vhost_blk_bounce_rw(struct vhost_blk_req *req,
			      struct block_device *bdev, size_t len,
			      unsigned int nr, sector_t sector, bool write,
			      const struct vhost_blk_layout *l)
{
	struct vhost_blk_vq *bvq = req->bvq;
	struct vhost_blk_bounce *b;
	unsigned int i;

	b = kvzalloc(struct_size(b, pages, nr), GFP_KERNEL_ACCOUNT);
	if (!b)
		return VIRTIO_BLK_S_IOERR;
	req->bounce = b;
	b->len = len;
	b->window = min_t(size_t, len, (size_t)nr << PAGE_SHIFT);
	b->bdev = bdev;
	b->sector = sector;
	b->write = write;
	for (i = 0; i < nr; i++) {
		/* Zeroed for reads: no stale host data, whatever the device does. */
		b->pages[i] = alloc_page(write ? GFP_KERNEL_ACCOUNT :
					 GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!b->pages[i])
			return VIRTIO_BLK_S_IOERR;
		b->nr_pages++;
		bvq->bounce_pages++;
	}

	/* Keep the guest's chain: later windows copy from or to it. */
	if (write) {
		b->iov = kmemdup(l->out_iov, l->out_nr * sizeof(*l->out_iov),
				 GFP_KERNEL_ACCOUNT);
		b->nr_iov = l->out_nr;
		b->skip = sizeof(struct virtio_blk_outhdr);
	} else {
		b->iov = kmemdup(l->in_iov, l->in_nr * sizeof(*l->in_iov),
				 GFP_KERNEL_ACCOUNT);
		b->nr_iov = l->in_nr;
	}
	if (!b->iov)
		return VIRTIO_BLK_S_IOERR;
	if (write && !vhost_blk_bounce_copy(b, false))
		return VIRTIO_BLK_S_IOERR;

	vhost_blk_bounce_submit(req, b);
	return VIRTIO_BLK_S_OK;
}

/* Count the iovecs @len bytes at @skip span; reject an over-long one. */
static bool vhost_blk_segments_ok(const struct iovec *iov, unsigned int nr,
				  size_t skip, size_t len)
{
	unsigned int segs = 0;

	for (; nr && len; iov++, nr--) {
		size_t seg = iov->iov_len;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		seg = min(seg - skip, len);
		skip = 0;
		if (seg > VHOST_BLK_SIZE_MAX || ++segs > VHOST_BLK_SEG_MAX)
			return false;
		len -= seg;
	}
	return true;
}

/* Is [@sector, @sector + @bytes) inside the disk and block aligned? */
static bool vhost_blk_range_ok(struct block_device *bdev, u64 sector,
			       u64 bytes)
{
	unsigned int lbs_sectors = bdev_logical_block_size(bdev) >> SECTOR_SHIFT;
	u64 capacity = bdev_nr_sectors(bdev);
	u64 nr = bytes >> SECTOR_SHIFT;

	if (bytes & (bdev_logical_block_size(bdev) - 1))
		return false;
	if (sector & (lbs_sectors - 1))
		return false;
	return sector <= capacity && nr <= capacity - sector;
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
 * Charge @len bytes to the queue's in-flight budget; false when they do not
 * fit beside what is in flight (a request alone always fits). Released in
 * vhost_blk_req_release().
 */
static bool vhost_blk_charge(struct vhost_blk_req *req, size_t len)
{
	struct vhost_blk_vq *bvq = req->bvq;

	if (bvq->inflight_bytes &&
	    bvq->inflight_bytes + len > VHOST_BLK_INFLIGHT_BYTES)
		return false;
	bvq->inflight_bytes += len;
	req->charged = len;
	return true;
}

/*
 * Returns the request's status so far. Sets *@retry instead when it does not
 * fit the queue's budgets now: nothing was allocated or submitted, and the
 * request goes back on the ring (the status is then meaningless).
 */
static u8 vhost_blk_read_write(struct vhost_blk_req *req,
			       struct vhost_blk_disk *disk,
			       struct vhost_blk_layout *l,
			       struct iov_iter *out, bool write, u64 sector,
			       bool *retry)
{
	struct block_device *bdev = disk->bdev;
	struct vhost_blk_vq *bvq = req->bvq;
	struct iov_iter data;
	unsigned int pages;
	size_t len, charge;
	bool aligned;

	if (write) {
		/* Data must follow the header, nothing may be written back. */
		if (l->in_len || disk->read_only)
			return VIRTIO_BLK_S_IOERR;
		data = *out;
		len = iov_iter_count(&data);
		if (!vhost_blk_segments_ok(l->out_iov, l->out_nr,
					   sizeof(struct virtio_blk_outhdr), len))
			return VIRTIO_BLK_S_IOERR;
	} else {
		if (iov_iter_count(out))
			return VIRTIO_BLK_S_IOERR;
		len = l->in_len;
		iov_iter_init(&data, ITER_DEST, l->in_iov, l->in_nr, len);
		if (!vhost_blk_segments_ok(l->in_iov, l->in_nr, 0, len))
			return VIRTIO_BLK_S_IOERR;
	}

	if (!vhost_blk_range_ok(bdev, sector, len))
		return VIRTIO_BLK_S_IOERR;

	/*
	 * A device that needs stable pages (data digests, dm-integrity,
	 * RAID parity) must not see a guest rewrite a buffer in flight.
	 */
	aligned = vhost_blk_zero_copy_ok(bdev, &data) &&
		  !(write && bdev_stable_writes(bdev));
	/* A larger bounced buffer moves in windows of the whole budget. */
	charge = len;
	if (!aligned) {
		pages = min_t(size_t, DIV_ROUND_UP(len, PAGE_SIZE),
			      VHOST_BLK_BOUNCE_PAGES);
		if (bvq->bounce_pages + pages > VHOST_BLK_BOUNCE_PAGES)
			goto retry;
		charge = min_t(size_t, len, (size_t)pages << PAGE_SHIFT);
	}
	if (!vhost_blk_charge(req, charge))
		goto retry;
	/* Nothing asks for a retry from here on. */

	if (!write) {
		req->to_guest = true;
		req->used_len = len + 1;
	}
	if (!aligned)
		return vhost_blk_bounce_rw(req, bdev, len, pages, sector,
					   write, l);
	return vhost_blk_rw(req, bdev, &data, sector,
			    write ? VHOST_BLK_WRITE_OPF : REQ_OP_READ);

retry:
	*retry = true;
	return VIRTIO_BLK_S_OK;
}

static u8 vhost_blk_guest_flush(struct vhost_blk_req *req,
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

static u8 vhost_blk_get_id(struct vhost_blk *blk, struct vhost_blk_req *req,
			   struct vhost_blk_layout *l)
{
	size_t len = min_t(size_t, l->in_len, VIRTIO_BLK_ID_BYTES);
	u8 serial[VIRTIO_BLK_ID_BYTES];
	struct iov_iter iter;

	spin_lock(&blk->serial_lock);
	memcpy(serial, blk->serial, sizeof(serial));
	spin_unlock(&blk->serial_lock);
	iov_iter_init(&iter, ITER_DEST, l->in_iov, l->in_nr, len);
	if (copy_to_iter(serial, len, &iter) != len)
		return VIRTIO_BLK_S_IOERR;
	req->used_len = len + 1;
	return VIRTIO_BLK_S_OK;
}

/*
 * DISCARD and WRITE_ZEROES, with QEMU's answers to odd requests. Both are
 * charged to the weight and the in-flight budget by the bytes they cover:
 * write zeroes may become that many bytes of zero-page writes, and a discard
 * can keep a device as busy as a write. A request covers at most the budget
 * (VHOST_BLK_INFLIGHT_BYTES); one alone always runs. *@retry as in
 * vhost_blk_read_write().
 */
static u8 vhost_blk_discard_write_zeroes(struct vhost_blk_req *req,
					 struct vhost_blk_disk *disk,
					 struct iov_iter *out, u32 type,
					 size_t *bytes, bool *retry)
{
	struct block_device *bdev = disk->bdev;
	struct virtio_blk_discard_write_zeroes seg;
	bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
	struct bio *bio = NULL;
	u32 nr, flags, max;
	u64 sector;
	int ret;

	/* One segment per request, as max_*_seg in the config says. */
	if (iov_iter_count(out) != sizeof(seg))
		return iov_iter_count(out) > sizeof(seg) ?
		       VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
	if (copy_from_iter(&seg, sizeof(seg), out) != sizeof(seg))
		return VIRTIO_BLK_S_IOERR;
	sector = le64_to_cpu(seg.sector);
	nr = le32_to_cpu(seg.num_sectors);
	flags = le32_to_cpu(seg.flags);

	if (disk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
		return VIRTIO_BLK_S_UNSUPP;
	if (!zeroes && flags)
		return VIRTIO_BLK_S_UNSUPP;

	max = zeroes ? vhost_blk_write_zeroes_max(bdev) :
		       min_t(unsigned long, bdev_max_discard_sectors(bdev),
			     U32_MAX);
	if (!zeroes && !max)
		return VIRTIO_BLK_S_UNSUPP;
	if (nr > max || !vhost_blk_range_ok(bdev, sector, (u64)nr << SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	if (!nr)
		return VIRTIO_BLK_S_OK;
	*bytes = min_t(u64, (u64)nr << SECTOR_SHIFT, VHOST_BLK_INFLIGHT_BYTES);
	if (!vhost_blk_charge(req, *bytes)) {
		*retry = true;
		return VIRTIO_BLK_S_OK;
	}

	if (zeroes && bdev_write_zeroes_sectors(bdev)) {
		/* Offloaded: if the device refuses, zero pages (below). */
		req->zeroes_bdev = bdev;
		req->zeroes_sector = sector;
		req->zeroes_nr = nr;
	}
	if (zeroes)
		ret = __blkdev_issue_zeroout(bdev, sector, nr, GFP_KERNEL, &bio,
					     flags ? 0 : BLKDEV_ZERO_NOUNMAP);
	else
		ret = __blkdev_issue_discard(bdev, sector, nr, GFP_KERNEL,
					     &bio);
	/* The helpers chain their bios; the last one ends the chain. */
	if (bio)
		vhost_blk_submit(req, bio, vhost_blk_bio_end_io_nodata);
	if (ret)
		return ret == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP :
					    VIRTIO_BLK_S_IOERR;
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
 * and ends again. Returns true when it was. Bounded as every write-zeroes
 * request (vhost_blk_write_zeroes_max()) and still charged to the budget.
 *
 * Context: process context, vq->mutex held.
 */
bool vhost_blk_req_retry_zeroes(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->zeroes_bdev;
	struct vhost_blk_vq *bvq = req->bvq;

	lockdep_assert_held(&bvq->vq.mutex);

	if (!bdev || req->status != VIRTIO_BLK_S_UNSUPP)
		return false;
	req->zeroes_bdev = NULL;	/* once */
	req->status = VIRTIO_BLK_S_OK;
	atomic_inc(&bvq->inflight);
	atomic_set(&req->pending, 1);
	vhost_blk_write_zero_pages(req, bdev, req->zeroes_sector,
				   req->zeroes_nr);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
	return true;
}

/*
 * Find the status byte (the chain's last writable byte) and the pieces
 * around it. Returns false when there is no writable byte at all.
 */
static bool vhost_blk_layout(struct vhost_blk_req *req, struct iovec *iov,
			     unsigned int out, unsigned int in,
			     struct vhost_blk_layout *l)
{
	int i;

	l->out_iov = iov;
	l->out_nr = out;
	l->out_len = iov_length(iov, out);
	l->in_iov = iov + out;
	l->in_nr = in;
	l->in_len = iov_length(iov + out, in);

	for (i = in - 1; i >= 0; i--) {
		struct iovec *last = &l->in_iov[i];

		if (last->iov_len) {
			req->status_ptr = (u8 __user *)last->iov_base +
					  last->iov_len - 1;
			l->in_len--;
			return true;
		}
	}
	return false;
}

/*
 * The guest's I/O priority (virtio-blk header, as ioprio_set(2) encodes it),
 * limited to what an unprivileged process may set: best-effort levels and
 * idle. Real-time (a guest must not starve the host), hints and invalid
 * values give 0: the bio takes the worker's priority, as any bio without one.
 */
static u16 vhost_blk_ioprio(u32 prio)
{
	if (prio > U16_MAX)
		return 0;
	switch (IOPRIO_PRIO_CLASS(prio)) {
	case IOPRIO_CLASS_BE:
	case IOPRIO_CLASS_IDLE:
		return IOPRIO_PRIO_DATA(prio) < IOPRIO_NR_LEVELS ? prio : 0;
	default:
		return 0;
	}
}

/* The request's status so far, or *@retry as in vhost_blk_read_write(). */
static u8 vhost_blk_dispatch(struct vhost_blk *blk,
			     struct vhost_blk_disk *disk,
			     struct vhost_blk_req *req,
			     struct vhost_blk_layout *l, size_t *bytes,
			     bool *retry)
{
	struct vhost_virtqueue *vq = &req->bvq->vq;
	struct virtio_blk_outhdr hdr;
	struct iov_iter out;
	u64 sector;
	u32 type;

	/* The header may be split across descriptors (ANY_LAYOUT). */
	iov_iter_init(&out, ITER_SOURCE, l->out_iov, l->out_nr, l->out_len);
	if (l->out_len < sizeof(hdr) ||
	    copy_from_iter(&hdr, sizeof(hdr), &out) != sizeof(hdr))
		return VIRTIO_BLK_S_IOERR;
	type = vhost32_to_cpu(vq, hdr.type);
	sector = vhost64_to_cpu(vq, hdr.sector);
	req->ioprio = vhost_blk_ioprio(vhost32_to_cpu(vq, hdr.ioprio));
	vhost_blk_stat_parsed(&req->stat, type);
	vhost_blk_capacity_check(&blk->capacity, bdev_nr_sectors(disk->bdev));

	switch (type) {
	case VIRTIO_BLK_T_IN:
		*bytes = l->in_len;
		return vhost_blk_read_write(req, disk, l, &out, false, sector,
					    retry);
	case VIRTIO_BLK_T_OUT:
		*bytes = iov_iter_count(&out);
		return vhost_blk_read_write(req, disk, l, &out, true, sector,
					    retry);
	case VIRTIO_BLK_T_FLUSH:
		return vhost_blk_guest_flush(req, disk);
	case VIRTIO_BLK_T_GET_ID:
		return vhost_blk_get_id(blk, req, l);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return vhost_blk_discard_write_zeroes(req, disk, &out, type,
						      bytes, retry);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/*
 * Start the request whose chain the vhost core left in vq->iov. The request
 * ends exactly once through vhost_blk_req_ended(), after its last bio or at
 * once when it needs no I/O. Returns the data bytes it moves (for weights),
 * or -EAGAIN when it does not fit the queue's budgets now: then nothing was
 * allocated or submitted and the caller puts the chain back on the ring.
 *
 * Context: the queue's worker, vq->mutex held.
 */
ssize_t vhost_blk_req_submit(struct vhost_blk *blk,
			     struct vhost_blk_disk *disk,
			     struct vhost_blk_req *req, unsigned int out,
			     unsigned int in)
{
	struct vhost_virtqueue *vq = &req->bvq->vq;
	struct vhost_blk_layout l;
	bool retry = false;
	size_t bytes = 0;
	u8 status;

	req->status_ptr = NULL;
	req->used_len = 1;
	req->status = VIRTIO_BLK_S_OK;
	req->to_guest = false;
	req->bounce = NULL;
	req->charged = 0;
	req->ioprio = 0;
	req->zeroes_bdev = NULL;
	vhost_blk_stat_begin(&req->stat);
	/* Our own reference: the request cannot end while we build it. */
	atomic_set(&req->pending, 1);

	if (!vhost_blk_layout(req, vq->iov, out, in, &l)) {
		/* Nowhere to put a status: return the buffer unwritten. */
		vq_err(vq, "Request at head %u has no writable status byte\n",
		       req->head);
		req->used_len = 0;
	} else {
		status = vhost_blk_dispatch(blk, disk, req, &l, &bytes, &retry);
		if (retry)
			return -EAGAIN;
		/* The whole request, not a bounce window's charge. */
		req->stat.bytes = bytes;
		/* A bio may already have failed; keep the first error. */
		if (status != VIRTIO_BLK_S_OK &&
		    READ_ONCE(req->status) == VIRTIO_BLK_S_OK)
			WRITE_ONCE(req->status, status);
	}

	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
	return bytes;
}

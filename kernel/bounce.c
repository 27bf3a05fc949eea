// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: host pages standing in for guest buffers a backend cannot use
 * in place (a block device's DMA alignment, an image's O_DIRECT alignment,
 * a device that needs stable pages). What every backend shares: the queue's
 * budgets, the copies between the pages and the guest's buffer, and the
 * windows a larger buffer moves in. The backend's ops move each window
 * (@rw_window): bios of the pages, or a kiocb on them.
 *
 * The guest's memory is touched only where the zero-copy paths touch it:
 * in the queue's worker or an ioctl of the owner, in the owner's address
 * space, while the request is in flight (a memory table change drains it
 * first: vhost_blk_pause()).
 */
#include "vhost_blk.h"

#include <linux/slab.h>

/**
 * vhost_blk_rw_charge - charge a read or write to the queue's budgets
 * @req: the request
 * @len: its data bytes
 * @bounce: whether it goes through bounce pages
 * @nr_pages: set to the pages of its first window when @bounce
 *
 * A bounced buffer takes at most the whole bounce budget and moves in
 * windows of that many pages; the in-flight budget is charged a window.
 *
 * Context: the queue's worker, vq->mutex held.
 * Return: false, nothing charged, when the request does not fit now.
 */
bool vhost_blk_rw_charge(struct vhost_blk_req *req, size_t len, bool bounce,
			 unsigned int *nr_pages)
{
	struct vhost_blk_vq *bvq = req->bvq;
	unsigned int pages;

	lockdep_assert_held(&bvq->vq.mutex);

	if (!bounce)
		return vhost_blk_charge(req, len);
	pages = min_t(size_t, DIV_ROUND_UP(len, PAGE_SIZE),
		      VHOST_BLK_BOUNCE_PAGES);
	if (bvq->bounce_pages + pages > VHOST_BLK_BOUNCE_PAGES)
		return false;
	if (!vhost_blk_charge(req, min_t(size_t, len,
					 (size_t)pages << PAGE_SHIFT)))
		return false;
	*nr_pages = pages;
	return true;
}

static void vhost_blk_bounce_free(struct vhost_blk_bounce *b)
{
	unsigned int i;

	for (i = 0; i < b->nr_pages; i++)
		__free_page(b->bvecs[i].bv_page);
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
		struct page *page = b->bvecs[i].bv_page;
		size_t n = min_t(size_t, PAGE_SIZE, b->window - done);

		if ((to_guest ? copy_page_to_iter(page, 0, n, &iter) :
				copy_page_from_iter(page, 0, n, &iter)) != n)
			return false;
		done += n;
	}
	return true;
}

/**
 * vhost_blk_bounce_start - read or write a guest buffer through host pages
 * @req: the request, charged with vhost_blk_rw_charge()
 * @disk: its disk, whose ops move the windows
 * @len: the buffer's bytes
 * @nr: pages of a window, from vhost_blk_rw_charge()
 * @sector: where the buffer goes on @disk
 * @flags: VHOST_BLK_IO_* of the request
 * @l: the chain holding the buffer
 *
 * Takes @nr pages from the queue's bounce budget, copies a write's first
 * window out of the guest and starts the first window; the completion path
 * moves the next ones (vhost_blk_req_next_window()).
 *
 * Context: the queue's worker in the owner's mm, vq->mutex held.
 * Return: a VIRTIO_BLK_S_* status, as the ops' @rw. On error the pages
 * taken are released with the request (vhost_blk_bounce_release()).
 */
u8 vhost_blk_bounce_start(struct vhost_blk_req *req,
			  struct vhost_blk_disk *disk, size_t len,
			  unsigned int nr, u64 sector, unsigned int flags,
			  const struct vhost_blk_layout *l)
{
	struct vhost_blk_vq *bvq = req->bvq;
	bool write = flags & VHOST_BLK_IO_WRITE;
	struct vhost_blk_bounce *b;
	unsigned int i;

	b = kvzalloc(struct_size(b, bvecs, nr), GFP_KERNEL_ACCOUNT);
	if (!b)
		return VIRTIO_BLK_S_IOERR;
	req->bounce = b;
	b->len = len;
	b->window = min_t(size_t, len, (size_t)nr << PAGE_SHIFT);
	b->disk = disk;
	b->sector = sector;
	b->flags = flags;
	for (i = 0; i < nr; i++) {
		/* Zeroed for reads: no stale host data, whatever the device does. */
		struct page *page = alloc_page(write ? GFP_KERNEL_ACCOUNT :
					       GFP_KERNEL_ACCOUNT | __GFP_ZERO);

		if (!page)
			return VIRTIO_BLK_S_IOERR;
		b->bvecs[i].bv_page = page;
		b->bvecs[i].bv_len = PAGE_SIZE;
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

	disk->ops->rw_window(req, b);
	return VIRTIO_BLK_S_OK;
}

/*
 * Release a request's bounce pages and, when @guest_mm says the guest's
 * memory is reachable, copy a bounced read that succeeded into the guest.
 *
 * Context: process context, vq->mutex held.
 */
void vhost_blk_bounce_release(struct vhost_blk_req *req, bool guest_mm)
{
	struct vhost_blk_vq *bvq = req->bvq;

	if (!req->bounce)
		return;
	bvq->bounce_pages -= req->bounce->nr_pages;
	if (req->to_guest && guest_mm && req->status == VIRTIO_BLK_S_OK &&
	    !vhost_blk_bounce_copy(req->bounce, true))
		req->status = VIRTIO_BLK_S_IOERR;
	vhost_blk_bounce_free(req->bounce);
	req->bounce = NULL;
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
	bool write;

	lockdep_assert_held(&bvq->vq.mutex);

	if (!b || b->done + b->window == b->len ||
	    req->status != VIRTIO_BLK_S_OK)
		return false;
	write = b->flags & VHOST_BLK_IO_WRITE;
	if (!guest_mm || (!write && !vhost_blk_bounce_copy(b, true))) {
		req->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	b->done += b->window;
	b->window = min_t(size_t, b->len - b->done,
			  (size_t)b->nr_pages << PAGE_SHIFT);
	if (write && !vhost_blk_bounce_copy(b, false)) {
		req->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	atomic_inc(&bvq->inflight);
	atomic_set(&req->pending, 1);
	b->disk->ops->rw_window(req, b);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
	return true;
}

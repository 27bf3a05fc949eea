// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: one virtio-blk request. Everything here is guest-controlled:
 * the header, the layout of the descriptor chain, sectors, lengths and
 * flags are checked before any I/O starts, and every failure ends as a
 * status byte (IOERR or UNSUPP) rather than a lost request.
 *
 * What faces the device (bios, or kiocbs on a file) is behind the disk's
 * ops, chosen at attach time: bio_io.c and file_io.c. What the cache mode
 * asks of writes and flushes is decided here, with cache.c.
 */
#include "vhost_blk.h"

#include <linux/ioprio.h>

int vhost_blk_request_init(void)
{
	return vhost_blk_bio_init();
}

void vhost_blk_request_exit(void)
{
	vhost_blk_bio_exit();
}

/* The status for a backend's @err: UNSUPP for EOPNOTSUPP, else IOERR. */
u8 vhost_blk_errno_status(int err)
{
	if (!err)
		return VIRTIO_BLK_S_OK;
	return err == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* Record an error from any context: as with bios, any error wins. */
void vhost_blk_req_error(struct vhost_blk_req *req, u8 status)
{
	WRITE_ONCE(req->status, status);
}

/*
 * Release what the request holds once its I/O has ended: its share of the
 * queue's budgets, and bounce pages (a bounced read is finished when
 * @guest_mm says the guest's memory is reachable). Guest pages were
 * released as the I/O ended. The budgets are charged by the backend ops
 * with vhost_blk_charge().
 *
 * Context: process context, vq->mutex held.
 */
void vhost_blk_req_release(struct vhost_blk_req *req, bool guest_mm)
{
	struct vhost_blk_vq *bvq = req->bvq;

	lockdep_assert_held(&bvq->vq.mutex);

	bvq->inflight_bytes -= req->charged;
	vhost_blk_bounce_release(req, guest_mm);
}

/**
 * vhost_blk_iov_window - the pieces of a chain a data buffer covers
 * @iov: the chain's iovecs
 * @nr: how many
 * @skip: bytes of @iov before the buffer
 * @len: the buffer's bytes
 * @window: where to copy the pieces (room for @nr), or NULL
 * @longest: set to the longest piece's length, if not NULL
 *
 * Return: the number of pieces.
 */
unsigned int vhost_blk_iov_window(const struct iovec *iov, unsigned int nr,
				  size_t skip, size_t len, struct iovec *window,
				  size_t *longest)
{
	unsigned int n = 0;
	size_t top = 0;

	for (; nr && len; iov++, nr--) {
		size_t seg = iov->iov_len;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		seg = min(seg - skip, len);
		if (window) {
			window[n].iov_base = iov->iov_base + skip;
			window[n].iov_len = seg;
		}
		top = max(top, seg);
		skip = 0;
		len -= seg;
		n++;
	}
	if (longest)
		*longest = top;
	return n;
}

/* Reject a buffer in too many pieces, or with an over-long one. */
static bool vhost_blk_segments_ok(const struct iovec *iov, unsigned int nr,
				  size_t skip, size_t len)
{
	size_t longest;

	return vhost_blk_iov_window(iov, nr, skip, len, NULL, &longest) <=
	       VHOST_BLK_SEG_MAX && longest <= VHOST_BLK_SIZE_MAX;
}

/*
 * Is [@sector, @sector + @bytes) inside the disk and block aligned? For an
 * image the capacity is its size at attach, rounded down to whole blocks:
 * the guest never reaches past its end. A block device's is its size now.
 */
static bool vhost_blk_range_ok(const struct vhost_blk_disk *disk, u64 sector,
			       u64 bytes)
{
	unsigned int lbs_sectors = disk->lbs >> SECTOR_SHIFT;
	u64 capacity = vhost_blk_disk_sectors(disk);
	u64 nr = bytes >> SECTOR_SHIFT;

	if (bytes & (disk->lbs - 1))
		return false;
	if (sector & (lbs_sectors - 1))
		return false;
	return sector <= capacity && nr <= capacity - sector;
}

/*
 * Charge @len bytes to the queue's in-flight budget; false when they do not
 * fit beside what is in flight (a request alone always fits). Released in
 * vhost_blk_req_release().
 */
bool vhost_blk_charge(struct vhost_blk_req *req, size_t len)
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
static u8 vhost_blk_read_write(struct vhost_blk *blk,
			       struct vhost_blk_req *req,
			       struct vhost_blk_disk *disk,
			       struct vhost_blk_layout *l,
			       struct iov_iter *out, bool write, u64 sector,
			       bool *retry)
{
	unsigned int flags = 0;
	struct iov_iter data;
	size_t len;

	if (write) {
		/* Data must follow the header, nothing may be written back. */
		if (l->in_len || disk->read_only)
			return VIRTIO_BLK_S_IOERR;
		data = *out;
		len = iov_iter_count(&data);
		if (!vhost_blk_segments_ok(l->out_iov, l->out_nr,
					   sizeof(struct virtio_blk_outhdr), len))
			return VIRTIO_BLK_S_IOERR;
		flags = VHOST_BLK_IO_WRITE;
		if (vhost_blk_cache_write_stable(disk, READ_ONCE(blk->wce))) {
			flags |= VHOST_BLK_IO_STABLE;
			req->stat.cache |= VHOST_BLK_STAT_FUA;
		}
		vhost_blk_cache_write_sent(blk, disk,
					   flags & VHOST_BLK_IO_STABLE);
	} else {
		if (iov_iter_count(out))
			return VIRTIO_BLK_S_IOERR;
		len = l->in_len;
		iov_iter_init(&data, ITER_DEST, l->in_iov, l->in_nr, len);
		if (!vhost_blk_segments_ok(l->in_iov, l->in_nr, 0, len))
			return VIRTIO_BLK_S_IOERR;
	}

	if (!vhost_blk_range_ok(disk, sector, len))
		return VIRTIO_BLK_S_IOERR;

	/* Harmless if the ops ask for a retry: the request starts over. */
	if (!write) {
		req->to_guest = true;
		req->used_len = len + 1;
	}
	return disk->ops->rw(req, disk, &data, sector, flags, l, retry);
}

/* A guest FLUSH, or nothing when the cache mode leaves nothing to do. */
static u8 vhost_blk_guest_flush(struct vhost_blk *blk,
				struct vhost_blk_req *req,
				struct vhost_blk_disk *disk)
{
	if (!vhost_blk_cache_flush_needed(blk, disk))
		return VIRTIO_BLK_S_OK;
	req->stat.cache |= VHOST_BLK_STAT_FLUSH_SENT;
	req->flush_gen = atomic64_read(&blk->write_gen);
	return disk->ops->flush(req, disk);
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
static u8 vhost_blk_discard_write_zeroes(struct vhost_blk *blk,
					 struct vhost_blk_req *req,
					 struct vhost_blk_disk *disk,
					 struct iov_iter *out, u32 type,
					 size_t *bytes, bool *retry)
{
	struct virtio_blk_discard_write_zeroes seg;
	bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
	u32 nr, flags, max;
	u64 sector;

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

	max = zeroes ? disk->write_zeroes_max : disk->discard_max;
	if (!max)
		return VIRTIO_BLK_S_UNSUPP;
	if (nr > max || !vhost_blk_range_ok(disk, sector, (u64)nr << SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	if (!nr)
		return VIRTIO_BLK_S_OK;
	*bytes = min_t(u64, (u64)nr << SECTOR_SHIFT, VHOST_BLK_INFLIGHT_BYTES);
	if (!vhost_blk_charge(req, *bytes)) {
		*retry = true;
		return VIRTIO_BLK_S_OK;
	}

	if (!zeroes)
		return disk->ops->discard(req, disk, sector, nr);
	/* Zeroes are written data: stable when a write would be (QEMU: FUA). */
	flags = flags ? VHOST_BLK_IO_UNMAP : 0;
	if (vhost_blk_cache_write_stable(disk, READ_ONCE(blk->wce)))
		flags |= VHOST_BLK_IO_STABLE;
	return disk->ops->write_zeroes(req, disk, sector, nr, flags);
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
	vhost_blk_capacity_check(&blk->capacity, vhost_blk_disk_sectors(disk));

	switch (type) {
	case VIRTIO_BLK_T_IN:
		*bytes = l->in_len;
		return vhost_blk_read_write(blk, req, disk, l, &out, false,
					    sector, retry);
	case VIRTIO_BLK_T_OUT:
		*bytes = iov_iter_count(&out);
		return vhost_blk_read_write(blk, req, disk, l, &out, true,
					    sector, retry);
	case VIRTIO_BLK_T_FLUSH:
		return vhost_blk_guest_flush(blk, req, disk);
	case VIRTIO_BLK_T_GET_ID:
		return vhost_blk_get_id(blk, req, l);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return vhost_blk_discard_write_zeroes(blk, req, disk, &out, type,
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
	req->zeroes_flush = NULL;
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

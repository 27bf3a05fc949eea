/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk: per-queue counters for the netlink interface (netlink.c), and
 * the one-line hooks the data path calls to update them.
 *
 * Cost: the counters live in struct vhost_blk_vq and change only under
 * vq->mutex, which the kick handler and the completion work hold anyway, so
 * an update is a plain add to a cache line the queue already owns. Readers
 * (netlink) take no lock and use READ_ONCE; each counter is a u64 written
 * with WRITE_ONCE, so it is never torn on 64-bit kernels (the only ones
 * this module builds for). Counters of one queue are not a snapshot of one
 * instant: in_flight is derived from two of them and may be momentarily
 * off by the requests in between.
 */
#ifndef VHOST_BLK_STATS_H
#define VHOST_BLK_STATS_H

#include <linux/bits.h>
#include <linux/compiler.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_blk.h>

/* Request classes counted; a request is counted once, when it completes. */
enum vhost_blk_stat_type {
	VHOST_BLK_STAT_INVALID,		/* no status byte or no full header */
	VHOST_BLK_STAT_IN,
	VHOST_BLK_STAT_OUT,
	VHOST_BLK_STAT_FLUSH,
	VHOST_BLK_STAT_GET_ID,
	VHOST_BLK_STAT_DISCARD,
	VHOST_BLK_STAT_WRITE_ZEROES,
	VHOST_BLK_STAT_UNSUPPORTED,
	VHOST_BLK_STAT_NR_TYPES,
};

/* Locking: written under vq->mutex, read with READ_ONCE. */
struct vhost_blk_vq_stats {
	u64 reqs[VHOST_BLK_STAT_NR_TYPES];	/* completed, by type */
	u64 submitted;				/* fetched and started */
	u64 bytes_read;
	u64 bytes_written;
	u64 status_ok;
	u64 status_ioerr;
	u64 status_unsupp;
	u64 flushes;				/* FLUSH completed OK */
	u64 flushes_sent;			/* FLUSH passed to the backend */
	u64 fua_writes;				/* OUT sent stable (FUA, O_DSYNC) */
	u64 fua_emulated;			/* of those: write, then flush */
	u64 signals;				/* batches signalled */
	u64 signalled;				/* requests in those batches */
	u64 kicks;
};

/* What a request asked of the backend's cache (vhost_blk_req_stat.cache). */
#define VHOST_BLK_STAT_FLUSH_SENT	BIT(0)	/* a guest FLUSH passed on */
#define VHOST_BLK_STAT_FUA		BIT(1)	/* a write sent stable */
/*
 * ... as a write, then a flush of the device's whole volatile cache: a FUA
 * bio to a device without FUA, or O_DSYNC through a block device's page
 * cache.
 */
#define VHOST_BLK_STAT_FUA_EMULATED	BIT(2)

/* What a request in flight remembers for its completion. */
struct vhost_blk_req_stat {
	u8 type;				/* enum vhost_blk_stat_type */
	u8 cache;				/* VHOST_BLK_STAT_FLUSH_SENT ... */
	u32 bytes;				/* data it moves (IN/OUT) */
};

/*
 * The backing device's capacity as last noticed, for the monitor group's
 * capacity-changed event. @seen is compared on every request (READ_ONCE,
 * lock-free); on a difference the data path stores it and queues @work,
 * which sends the event from process context.
 */
struct vhost_blk_capacity {
	u64 seen;				/* sectors; READ/WRITE_ONCE */
	u64 reported;				/* dev.mutex */
	struct work_struct work;
};

/* One writer (the vq->mutex holder), lockless readers. */
static inline void vhost_blk_stat_add(u64 *counter, u64 n)
{
	WRITE_ONCE(*counter, *counter + n);
}

/* A kick found a backend. Context: vq->mutex held. */
static inline void vhost_blk_stat_kick(struct vhost_blk_vq_stats *s)
{
	vhost_blk_stat_add(&s->kicks, 1);
}

/* A request is being parsed: nothing known about it yet. */
static inline void vhost_blk_stat_begin(struct vhost_blk_req_stat *rs)
{
	rs->type = VHOST_BLK_STAT_INVALID;
	rs->cache = 0;
	rs->bytes = 0;
}

/* The request's header says @type (VIRTIO_BLK_T_*). */
static inline void vhost_blk_stat_parsed(struct vhost_blk_req_stat *rs,
					 u32 type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		rs->type = VHOST_BLK_STAT_IN;
		break;
	case VIRTIO_BLK_T_OUT:
		rs->type = VHOST_BLK_STAT_OUT;
		break;
	case VIRTIO_BLK_T_FLUSH:
		rs->type = VHOST_BLK_STAT_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID:
		rs->type = VHOST_BLK_STAT_GET_ID;
		break;
	case VIRTIO_BLK_T_DISCARD:
		rs->type = VHOST_BLK_STAT_DISCARD;
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		rs->type = VHOST_BLK_STAT_WRITE_ZEROES;
		break;
	default:
		rs->type = VHOST_BLK_STAT_UNSUPPORTED;
		break;
	}
}

/* A request was started (it will complete). Context: vq->mutex held. */
static inline void vhost_blk_stat_submitted(struct vhost_blk_vq_stats *s)
{
	vhost_blk_stat_add(&s->submitted, 1);
}

/*
 * A request completed with @status after moving @bytes of data (its
 * charge). What it sent to the backend's cache counts whatever the status.
 * Context: vq->mutex held.
 */
static inline void vhost_blk_stat_completed(struct vhost_blk_vq_stats *s,
					    const struct vhost_blk_req_stat *rs,
					    u8 status)
{
	vhost_blk_stat_add(&s->reqs[rs->type], 1);
	if (rs->cache & VHOST_BLK_STAT_FLUSH_SENT)
		vhost_blk_stat_add(&s->flushes_sent, 1);
	if (rs->cache & VHOST_BLK_STAT_FUA)
		vhost_blk_stat_add(&s->fua_writes, 1);
	if (rs->cache & VHOST_BLK_STAT_FUA_EMULATED)
		vhost_blk_stat_add(&s->fua_emulated, 1);
	switch (status) {
	case VIRTIO_BLK_S_OK:
		vhost_blk_stat_add(&s->status_ok, 1);
		if (rs->type == VHOST_BLK_STAT_IN)
			vhost_blk_stat_add(&s->bytes_read, rs->bytes);
		else if (rs->type == VHOST_BLK_STAT_OUT)
			vhost_blk_stat_add(&s->bytes_written, rs->bytes);
		else if (rs->type == VHOST_BLK_STAT_FLUSH)
			vhost_blk_stat_add(&s->flushes, 1);
		break;
	case VIRTIO_BLK_S_UNSUPP:
		vhost_blk_stat_add(&s->status_unsupp, 1);
		break;
	default:
		vhost_blk_stat_add(&s->status_ioerr, 1);
		break;
	}
}

/* @n requests went to the used ring with one signal. vq->mutex held. */
static inline void vhost_blk_stat_signalled(struct vhost_blk_vq_stats *s,
					    unsigned int n)
{
	vhost_blk_stat_add(&s->signals, 1);
	vhost_blk_stat_add(&s->signalled, n);
}

/*
 * The data path saw the backing device at @sectors: one compare, and a
 * queued work when it differs from what was seen before.
 */
static inline void vhost_blk_capacity_check(struct vhost_blk_capacity *c,
					    u64 sectors)
{
	if (unlikely(READ_ONCE(c->seen) != sectors)) {
		WRITE_ONCE(c->seen, sectors);
		schedule_work(&c->work);
	}
}

#endif /* VHOST_BLK_STATS_H */

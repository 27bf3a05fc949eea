// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile guest. Every malformed request must end with a status (IOERR or
 * UNSUPP, as QEMU answers) and leave the queue working; a chain the vhost
 * core cannot walk must be reported on the error eventfd without hanging or
 * crashing the host, and the device must still close cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(24 << 20)

FIXTURE(hostile) {
	struct vdrv d;
	struct vdrv_queue *q;
	int bdev;
	size_t bytes;
};

FIXTURE_SETUP(hostile)
{
	self->bdev = vblk_brd(3, &self->bytes);
	if (self->bdev < 0)
		SKIP(return, "no brd ram disk (modprobe brd failed)");
	ASSERT_EQ(0, vdrv_open(&self->d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&self->d, 1, 512, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&self->d, self->bdev));
	self->q = &self->d.q[0];
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->bdev >= 0) {
		vdrv_close(&self->d);
		close(self->bdev);
	}
}

/* Submit @segs, wait, return the status byte at @st (or -1 on timeout). */
static int submit(struct vdrv *d, struct vdrv_queue *q, struct vseg *segs,
		  unsigned int n, uint8_t *st, uint32_t *used)
{
	uint32_t head, len;

	if (st)
		*st = 0xff;
	if (vdrv_add(d, q, segs, n, false) < 0)
		return -2;
	vdrv_kick(q);
	if (vdrv_get_used(d, q, &head, &len, 5000))
		return -1;
	if (used)
		*used = len;
	return st ? *st : 0;
}

/* After every hostile request, an honest one must still work. */
static void still_works(struct __test_metadata *_metadata,
			struct vdrv *d, struct vdrv_queue *q)
{
	struct vreq r = vdrv_req_alloc(d, VIRTIO_BLK_T_IN, 0, 512);

	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(d, q, &r, 1, false, NULL));
}

static struct virtio_blk_outhdr *hdr(struct vdrv *d, uint32_t type,
				     uint64_t sector)
{
	struct virtio_blk_outhdr *h = vdrv_alloc(d, sizeof(*h), 16);

	h->type = type;
	h->sector = sector;
	return h;
}

TEST_F(hostile, short_header)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 0);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	struct vseg segs[] = { { h, 8, false }, { st, 1, true } };

	ASSERT_EQ(VIRTIO_BLK_S_IOERR, submit(&self->d, self->q, segs, 2, st,
					     NULL));
	still_works(_metadata, &self->d, self->q);
}

TEST_F(hostile, header_split_in_bytes)
{
	uint8_t *h = (uint8_t *)hdr(&self->d, VIRTIO_BLK_T_IN, 1);
	uint8_t *data = vdrv_alloc(&self->d, 512, 512);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	struct vseg segs[18];
	int i;

	for (i = 0; i < 16; i++)
		segs[i] = (struct vseg){ h + i, 1, false };
	segs[16] = (struct vseg){ data, 512, true };
	segs[17] = (struct vseg){ st, 1, true };
	ASSERT_EQ(VIRTIO_BLK_S_OK, submit(&self->d, self->q, segs, 18, st,
					  NULL));
}

TEST_F(hostile, no_status_byte)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_OUT, 0);
	uint8_t *data = vdrv_alloc(&self->d, 512, 512);
	struct vseg segs[] = { { h, 16, false }, { data, 512, false } };
	uint32_t used = 99;

	/* Returned unwritten (used len 0) and reported, not lost. */
	ASSERT_EQ(0, submit(&self->d, self->q, segs, 2, NULL, &used));
	ASSERT_EQ(0, used);
	ASSERT_TRUE(vdrv_error_signalled(self->q, 1000));
	still_works(_metadata, &self->d, self->q);
}

TEST_F(hostile, zero_length_status_descriptor)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 0);
	uint8_t *data = vdrv_alloc(&self->d, 512, 512);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	struct vseg segs[] = {
		{ h, 16, false }, { data, 512, true }, { st, 0, true },
	};

	/*
	 * The status byte is the chain's last writable byte: the end of the
	 * data buffer, which leaves 511 data bytes, not a whole sector.
	 */
	data[511] = 0xff;
	ASSERT_EQ(0, submit(&self->d, self->q, segs, 3, NULL, NULL));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, data[511]);
	still_works(_metadata, &self->d, self->q);
}

TEST_F(hostile, read_only_status_descriptor)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 0);
	uint8_t *data = vdrv_alloc(&self->d, 512, 512);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	struct vseg segs[] = {
		{ h, 16, false }, { data, 512, true }, { st, 1, false },
	};

	/* A readable descriptor after a writable one: the core refuses it. */
	*st = 0xff;
	ASSERT_LE(0, vdrv_add(&self->d, self->q, segs, 3, false));
	vdrv_kick(self->q);
	ASSERT_TRUE(vdrv_error_signalled(self->q, 2000));
	ASSERT_EQ(0xff, *st);
}

TEST_F(hostile, write_with_writable_data)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_OUT, 0);
	uint8_t *data = vdrv_alloc(&self->d, 512, 512);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	struct vseg segs[] = {
		{ h, 16, false }, { data, 512, true }, { st, 1, true },
	};

	ASSERT_EQ(VIRTIO_BLK_S_IOERR, submit(&self->d, self->q, segs, 3, st,
					     NULL));
	still_works(_metadata, &self->d, self->q);
}

TEST_F(hostile, read_with_readable_data)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 0);
	uint8_t *data = vdrv_alloc(&self->d, 512, 512);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	struct vseg segs[] = {
		{ h, 16, false }, { data, 512, false }, { st, 1, true },
	};

	memset(data, 0x5a, 512);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, submit(&self->d, self->q, segs, 3, st,
					     NULL));
	still_works(_metadata, &self->d, self->q);
}

static int rw(struct vdrv *d, struct vdrv_queue *q, uint32_t type,
	      uint64_t sector, uint32_t len, unsigned int nsegs)
{
	struct vreq r = vdrv_req_alloc(d, type, sector, len);

	return vdrv_do(d, q, &r, nsegs, nsegs > 8, NULL);
}

TEST_F(hostile, past_capacity)
{
	uint64_t cap = self->bytes / 512;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_IN,
					 cap, 512, 1));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_OUT,
					 cap - 1, 1024, 1));
	/* sector + length wraps around 2^64 */
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_IN,
					 ~0ULL - 1, 4096, 1));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_OUT,
					 ~0ULL >> 9, 512, 1));
	/* Zero bytes at the very end is inside. */
	ASSERT_EQ(VIRTIO_BLK_S_OK, rw(&self->d, self->q, VIRTIO_BLK_T_IN,
				      cap, 0, 0));
}

TEST_F(hostile, length_not_sector_multiple)
{
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_IN,
					 0, 1000, 1));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_OUT,
					 0, 513, 1));
	still_works(_metadata, &self->d, self->q);
}

TEST_F(hostile, segment_limits)
{
	/* seg_max data segments are fine, one more is not. */
	ASSERT_EQ(VIRTIO_BLK_S_OK, rw(&self->d, self->q, VIRTIO_BLK_T_OUT, 0,
				      VHOST_BLK_SEG_MAX * 512,
				      VHOST_BLK_SEG_MAX));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_OUT,
					 0, (VHOST_BLK_SEG_MAX + 1) * 512,
					 VHOST_BLK_SEG_MAX + 1));
	/* One segment larger than size_max. */
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, rw(&self->d, self->q, VIRTIO_BLK_T_IN, 0,
					 VHOST_BLK_SIZE_MAX + 512, 1));
	still_works(_metadata, &self->d, self->q);
}

TEST_F(hostile, unaligned_buffers_are_bounced)
{
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 8);
	uint8_t *data = vdrv_alloc(&self->d, 8192, 4096);
	uint8_t *st = vdrv_alloc(&self->d, 1, 1);
	uint8_t check[1024];
	struct vseg segs[] = {
		{ h, 16, false }, { data + 1, 300, true },
		{ data + 1 + 300, 724, true }, { st, 1, true },
	};

	/*
	 * Valid for virtio, but no device can DMA it: odd addresses, pieces
	 * that are not whole sectors. It must still read the right bytes.
	 */
	vblk_fill(check, sizeof(check), 8);
	ASSERT_EQ(0, vblk_pwrite(self->bdev, check, sizeof(check), 8 * 512));
	memset(data, 0x11, 8192);
	ASSERT_EQ(VIRTIO_BLK_S_OK, submit(&self->d, self->q, segs, 4, st,
					  NULL));
	ASSERT_EQ(0x11, data[0]);
	ASSERT_EQ(0, memcmp(data + 1, check, sizeof(check)));
	ASSERT_EQ(0x11, data[1 + sizeof(check)]);

	/* And write them. */
	h->type = VIRTIO_BLK_T_OUT;
	h->sector = 100;
	segs[1].in = segs[2].in = false;
	vblk_fill(data + 1, sizeof(check), 100);
	ASSERT_EQ(VIRTIO_BLK_S_OK, submit(&self->d, self->q, segs, 4, st,
					  NULL));
	ASSERT_EQ(0, vblk_pread(self->bdev, check, sizeof(check), 100 * 512));
	ASSERT_EQ(0, memcmp(data + 1, check, sizeof(check)));
}

TEST_F(hostile, bounce_budget_exhausted_then_recovers)
{
	struct vdrv *d = &self->d;
	struct vdrv_queue *q = self->q;
	uint8_t *data[8], *st[8];
	struct virtio_blk_outhdr *h[8];
	uint32_t head, len;
	int i;

	/*
	 * Eight unaligned 1 MiB reads: more than the per-queue bounce budget
	 * at once. Some wait for others; all complete.
	 */
	for (i = 0; i < 8; i++) {
		h[i] = hdr(d, VIRTIO_BLK_T_IN, 0);
		data[i] = vdrv_alloc(d, (1 << 20) + 512, 4096);
		st[i] = vdrv_alloc(d, 1, 1);
		*st[i] = 0xff;
		struct vseg segs[] = {
			{ h[i], 16, false }, { data[i] + 3, 1 << 20, true },
			{ st[i], 1, true },
		};
		ASSERT_LE(0, vdrv_add(d, q, segs, 3, false));
	}
	vdrv_kick(q);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, vdrv_get_used(d, q, &head, &len, 20000));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, *st[i]);

	/* One larger than the whole budget moves in windows: OK. */
	uint8_t *big = vdrv_alloc(d, (5 << 20) + 512, 4096);
	uint8_t *s1 = vdrv_alloc(d, 1, 1);
	struct vseg segs[] = {
		{ h[0], 16, false }, { big + 1, 1 << 20, true },
		{ big + 1 + (1 << 20), 1 << 20, true },
		{ big + 1 + (2 << 20), 1 << 20, true },
		{ big + 1 + (3 << 20), 1 << 20, true },
		{ big + 1 + (4 << 20), 1 << 20, true }, { s1, 1, true },
	};
	ASSERT_EQ(VIRTIO_BLK_S_OK, submit(d, q, segs, 7, s1, NULL));
	still_works(_metadata, d, q);
}

static int dwz_segs(struct vdrv *d, struct vdrv_queue *q, uint32_t type,
		    unsigned int nsegs, uint64_t sector, uint32_t nr,
		    uint32_t flags)
{
	struct virtio_blk_outhdr *h = hdr(d, type, 0);
	struct virtio_blk_discard_write_zeroes *seg =
		vdrv_alloc(d, nsegs * sizeof(*seg), 16);
	uint8_t *st = vdrv_alloc(d, 1, 1);
	uint32_t head, len;

	for (unsigned int i = 0; i < nsegs; i++) {
		seg[i].sector = sector + i * nr;
		seg[i].num_sectors = nr;
		seg[i].flags = flags;
	}
	struct vseg segs[] = {
		{ h, 16, false }, { seg, nsegs * sizeof(*seg), false },
		{ st, 1, true },
	};

	*st = 0xff;
	if (vdrv_add(d, q, segs, 3, false) < 0)
		return -2;
	vdrv_kick(q);
	if (vdrv_get_used(d, q, &head, &len, 5000))
		return -1;
	return *st;
}

TEST_F(hostile, discard_write_zeroes_odd_requests)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct virtio_blk_config *cfg = (void *)c.config;
	uint64_t cap = self->bytes / 512;
	struct vdrv *d = &self->d;

	ASSERT_EQ(0, ioctl(d->fd, VHOST_BLK_GET_CONFIG, &c));
	/* QEMU's answers: more than one segment -> UNSUPP */
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_WRITE_ZEROES, 2, 0, 8, 0));
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_DISCARD, 2, 0, 8, 0));
	/* reserved flags -> UNSUPP; UNMAP on discard -> UNSUPP */
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_WRITE_ZEROES, 1, 0, 8, 2));
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_DISCARD, 1, 0, 8,
			   VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP));
	/* past capacity or over the limit -> IOERR */
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_WRITE_ZEROES, 1, cap - 4,
			   8, 0));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_WRITE_ZEROES, 1, ~0ULL - 2,
			   8, 0));
	if (cfg->max_write_zeroes_sectors < cap)
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  dwz_segs(d, self->q, VIRTIO_BLK_T_WRITE_ZEROES, 1, 0,
				   cfg->max_write_zeroes_sectors + 1, 0));
	/* a truncated segment -> IOERR */
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dwz_segs(d, self->q, VIRTIO_BLK_T_WRITE_ZEROES, 0, 0, 8, 0));
	still_works(_metadata, d, self->q);
}

/* Make @head the next avail entry, bypassing the driver's bookkeeping. */
static void publish_raw(struct vdrv_queue *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->num] = head;
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	vdrv_kick(q);
}

/* A read whose data descriptor is at guest address @gpa. */
static void raw_read(struct vdrv *d, struct vdrv_queue *q, uint64_t gpa,
		     uint32_t len)
{
	struct virtio_blk_outhdr *h = hdr(d, VIRTIO_BLK_T_IN, 0);

	q->desc[0].addr = vdrv_gpa(d, h);
	q->desc[0].len = 16;
	q->desc[0].flags = VRING_DESC_F_NEXT;
	q->desc[0].next = 1;
	q->desc[1].addr = gpa;
	q->desc[1].len = len;
	q->desc[1].flags = VRING_DESC_F_WRITE;
	publish_raw(q, 0);
}

TEST_F(hostile, descriptor_loop)
{
	struct vdrv_queue *q = self->q;
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 0);

	/* 0 -> 1 -> 0 -> ... */
	q->desc[0].addr = vdrv_gpa(&self->d, h);
	q->desc[0].len = 16;
	q->desc[0].flags = VRING_DESC_F_NEXT;
	q->desc[0].next = 1;
	q->desc[1] = q->desc[0];
	q->desc[1].next = 0;
	publish_raw(q, 0);
	ASSERT_TRUE(vdrv_error_signalled(q, 2000));
	/* Teardown closes the device: it must not hang. */
}

TEST_F(hostile, indirect_loop)
{
	struct vdrv_queue *q = self->q;
	struct vring_desc *t = vdrv_alloc(&self->d, 4 * 16, 16);
	struct virtio_blk_outhdr *h = hdr(&self->d, VIRTIO_BLK_T_IN, 0);

	for (int i = 0; i < 4; i++) {
		t[i].addr = vdrv_gpa(&self->d, h);
		t[i].len = 16;
		t[i].flags = VRING_DESC_F_NEXT;
		t[i].next = (i + 1) % 4;
	}
	q->desc[0].addr = vdrv_gpa(&self->d, t);
	q->desc[0].len = 4 * 16;
	q->desc[0].flags = VRING_DESC_F_INDIRECT;
	publish_raw(q, 0);
	ASSERT_TRUE(vdrv_error_signalled(q, 2000));
}

TEST_F(hostile, address_outside_memory_table)
{
	/* Data "at" guest address 0: below the only region. */
	raw_read(&self->d, self->q, 0, 4096);
	ASSERT_TRUE(vdrv_error_signalled(self->q, 2000));
	ASSERT_EQ(0, self->q->used->idx);
}

TEST_F(hostile, region_end_straddled)
{
	/* Data that starts inside guest memory and runs past its end. */
	raw_read(&self->d, self->q, VDRV_GPA_BASE + MEM_SIZE - 512, 4096);
	ASSERT_TRUE(vdrv_error_signalled(self->q, 2000));
	ASSERT_EQ(0, self->q->used->idx);
}

TEST_F(hostile, avail_index_jump)
{
	struct vdrv_queue *q = self->q;

	/* More new entries than the ring holds. */
	__atomic_store_n(&q->avail->idx, q->num + 5, __ATOMIC_RELEASE);
	vdrv_kick(q);
	ASSERT_TRUE(vdrv_error_signalled(q, 2000));
}

TEST_F(hostile, head_out_of_range)
{
	struct vdrv_queue *q = self->q;

	publish_raw(q, q->num + 7);
	ASSERT_TRUE(vdrv_error_signalled(q, 2000));
}

TEST_F(hostile, guest_never_reads_used_ring)
{
	struct vdrv *d = &self->d;
	struct vdrv_queue *q = self->q;
	struct vreq r = vdrv_req_alloc(d, VIRTIO_BLK_T_IN, 0, 512);
	struct vring_desc *desc = q->desc;
	int round, i;

	/*
	 * Reuse one chain over and over, never consuming the used ring:
	 * thousands of requests for the same head, with the ring overrun
	 * many times. The host must keep up without hanging or leaking.
	 */
	desc[0].addr = vdrv_gpa(d, r.hdr);
	desc[0].len = 16;
	desc[0].flags = VRING_DESC_F_NEXT;
	desc[0].next = 1;
	desc[1].addr = vdrv_gpa(d, r.data);
	desc[1].len = 512;
	desc[1].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
	desc[1].next = 2;
	desc[2].addr = vdrv_gpa(d, r.status);
	desc[2].len = 1;
	desc[2].flags = VRING_DESC_F_WRITE;
	for (round = 0; round < 20; round++) {
		for (i = 0; i < (int)q->num; i++)
			q->avail->ring[(q->avail_idx + i) % q->num] = 0;
		q->avail_idx += q->num;
		__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
		vdrv_kick(q);
		for (i = 0; i < 500; i++) {
			if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) ==
			    q->avail_idx)
				break;
			usleep(10000);
		}
		ASSERT_EQ(q->avail_idx, q->used->idx);
	}
	ASSERT_EQ(VIRTIO_BLK_S_OK, *r.status);
}

TEST_F(hostile, same_buffer_everywhere)
{
	struct vdrv *d = &self->d;
	struct vdrv_queue *q = self->q;
	uint8_t *buf = vdrv_alloc(d, 1 << 20, 4096);
	uint8_t *st = vdrv_alloc(d, 128, 1);
	struct virtio_blk_outhdr *h = hdr(d, VIRTIO_BLK_T_IN, 0);
	struct vseg segs[10];
	uint32_t head, len;
	int i, j;

	/*
	 * 128 reads of 8 MiB, every segment the same 1 MiB of guest memory:
	 * a GiB of I/O from a MiB of memory. The host throttles what it has
	 * in flight per queue; every request still completes.
	 */
	segs[0] = (struct vseg){ h, 16, false };
	for (j = 1; j <= 8; j++)
		segs[j] = (struct vseg){ buf, 1 << 20, true };
	for (i = 0; i < 128; i++) {
		st[i] = 0xff;
		segs[9] = (struct vseg){ &st[i], 1, true };
		ASSERT_LE(0, vdrv_add(d, q, segs, 10, true));
	}
	vdrv_kick(q);
	for (i = 0; i < 128; i++)
		ASSERT_EQ(0, vdrv_get_used(d, q, &head, &len, 60000));
	for (i = 0; i < 128; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, st[i]);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A guest address for a random buffer: mostly sane, sometimes not. */
static uint64_t random_addr(struct vdrv *d, uint8_t *arena, size_t arena_len,
			    uint32_t len, uint64_t *s)
{
	switch (rnd(s) % 16) {
	case 0:
		return 0;				/* below the table */
	case 1:
		return VDRV_GPA_BASE + d->mem_size - len / 2;	/* straddles */
	case 2:
		return VDRV_GPA_BASE + d->mem_size + rnd(s) % 65536;
	case 3:
		return rnd(s);				/* anywhere */
	default:
		return vdrv_gpa(d, arena + rnd(s) % (arena_len - len));
	}
}

static uint32_t random_type(uint64_t *s)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
		VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
		VIRTIO_BLK_T_WRITE_ZEROES,
	};

	return rnd(s) % 8 ? types[rnd(s) % 6] : (uint32_t)rnd(s);
}

/*
 * Random chains: lengths, directions, next pointers (loops included),
 * indirect tables, addresses in and out of the memory table, types, sectors.
 * Each must either complete (status written where the chain says) or stop
 * the queue with an error report; the queue is then reset as a VMM would.
 * No hang, no host warning (the runner checks dmesg).
 */
/* Sized by VBLK_FUZZ_ITERS: bounded by the runner, not the 30 s default. */
TEST_F_TIMEOUT(hostile, random_chains, 6 * 3600)
{
	const char *env = getenv("VBLK_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0xfa22ed;
	long iters = getenv("VBLK_FUZZ_ITERS") ?
		     atol(getenv("VBLK_FUZZ_ITERS")) : 3000;
	size_t arena_len = 4 << 20;
	uint8_t *arena = vdrv_alloc(&self->d, arena_len, 4096);
	struct vring_desc *table = vdrv_alloc(&self->d, 16 * 16, 16);
	struct vdrv_queue *q = self->q;
	uint64_t s = seed;
	long completed = 0, broken = 0, it;

	TH_LOG("seed 0x%llx, %ld chains", (unsigned long long)seed, iters);
	for (it = 0; it < iters; it++) {
		bool indirect = rnd(&s) % 4 == 0;
		struct vring_desc *desc = indirect ? table : q->desc;
		unsigned int n = 1 + rnd(&s) % (indirect ? 16 : 8), i;
		struct virtio_blk_outhdr *h;
		uint16_t before = q->used->idx;

		/* A header in the arena, then random pieces. */
		h = (void *)(arena + (rnd(&s) % 1024) * 16);
		h->type = random_type(&s);
		h->sector = rnd(&s) % 4 ? rnd(&s) % (self->bytes / 512) :
					  rnd(&s);
		for (i = 0; i < n; i++) {
			uint32_t len = rnd(&s) % 5 ? 512 * (rnd(&s) % 9) :
						     rnd(&s) % 70000;
			bool last = i + 1 == n;

			desc[i].len = i == 0 && rnd(&s) % 4 ? 16 : len;
			desc[i].addr = i == 0 ? vdrv_gpa(&self->d, h) :
				       random_addr(&self->d, arena, arena_len,
						   len, &s);
			desc[i].flags = (i > 0 && rnd(&s) % 2 ?
					 VRING_DESC_F_WRITE : 0) |
					(last ? 0 : VRING_DESC_F_NEXT);
			if (last && rnd(&s) % 3)
				desc[i].flags |= VRING_DESC_F_WRITE;
			desc[i].next = rnd(&s) % 10 ? i + 1 : rnd(&s) % 20;
			if (rnd(&s) % 50 == 0)
				desc[i].flags |= VRING_DESC_F_INDIRECT;
		}
		if (indirect) {
			q->desc[0].addr = vdrv_gpa(&self->d, table);
			q->desc[0].len = 16 * n + (rnd(&s) % 20 ? 0 : 8);
			q->desc[0].flags = VRING_DESC_F_INDIRECT;
		}
		publish_raw(q, 0);

		for (i = 0; i < 400; i++) {
			if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) !=
			    before)
				break;
			if (vdrv_error_signalled(q, 5))
				break;
		}
		if (q->used->idx != before) {
			completed++;
			ASSERT_EQ(0, q->used->ring[before % q->num].id);
			/* Consumed: and ask for the next interrupt (EVENT_IDX). */
			q->last_used = q->used->idx;
			__atomic_store_n(&q->avail->ring[q->num], q->last_used,
					 __ATOMIC_RELEASE);
			continue;
		}
		ASSERT_GT(400, i) TH_LOG("chain %ld: neither completed nor reported (seed 0x%llx)",
					 it, (unsigned long long)seed);
		broken++;
		ASSERT_EQ(0, vdrv_attach(&self->d, -1));
		ASSERT_EQ(0, vdrv_reset_queue(&self->d, 0));
		ASSERT_EQ(0, vdrv_attach(&self->d, self->bdev));
	}
	TH_LOG("%ld completed, %ld stopped the queue", completed, broken);
	/* Half-broken chains stay rare enough that both kinds were seen. */
	ASSERT_LT(0, completed);
	ASSERT_LT(0, broken);
	still_works(_metadata, &self->d, q);
}

TEST_HARNESS_MAIN

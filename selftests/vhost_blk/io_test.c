// SPDX-License-Identifier: GPL-2.0
/*
 * The data path with a well-behaved guest: every request type, data checked
 * against the backing device read and written directly (O_DIRECT), chain
 * layouts, backends (brd, null_blk, loop), read-only and exclusive access.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(8 << 20)

FIXTURE(io) {
	struct vdrv d;
	struct vdrv_queue *q;
	int bdev;
	size_t bytes;
};

FIXTURE_VARIANT(io) {
	bool event_idx;
};

FIXTURE_VARIANT_ADD(io, event_idx) { .event_idx = true };
FIXTURE_VARIANT_ADD(io, no_event_idx) { .event_idx = false };

FIXTURE_SETUP(io)
{
	uint64_t f = VHOST_BLK_FEATURES;

	if (!variant->event_idx)
		f &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	self->bdev = vblk_brd(0, &self->bytes);
	if (self->bdev < 0)
		SKIP(return, "no brd ram disk (modprobe brd failed: %s)",
		     strerror(-self->bdev));
	ASSERT_EQ(0, vdrv_open(&self->d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&self->d, 1, 128, f));
	ASSERT_EQ(0, vdrv_attach(&self->d, self->bdev));
	self->q = &self->d.q[0];
}

FIXTURE_TEARDOWN(io)
{
	if (self->bdev >= 0) {
		vdrv_close(&self->d);
		close(self->bdev);
	}
}

/* Write through vhost in @nsegs pieces, check on the device, and back. */
static void roundtrip(struct __test_metadata *_metadata, struct vdrv *d,
		      struct vdrv_queue *q, int bdev, uint64_t sector,
		      uint32_t len, unsigned int nsegs, bool indirect)
{
	struct vreq w = vdrv_req_alloc(d, VIRTIO_BLK_T_OUT, sector, len);
	struct vreq r = vdrv_req_alloc(d, VIRTIO_BLK_T_IN, sector, len);
	uint8_t *check = malloc(len);
	uint32_t used;

	vblk_fill(w.data, len, sector * 31 + nsegs);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(d, q, &w, nsegs, indirect, &used));
	ASSERT_EQ(0, vblk_pread(bdev, check, len, sector * 512));
	ASSERT_EQ(0, memcmp(check, w.data, len));

	vblk_fill(check, len, sector * 17 + 5);
	ASSERT_EQ(0, vblk_pwrite(bdev, check, len, sector * 512));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(d, q, &r, nsegs, indirect, &used));
	ASSERT_EQ(len + 1, used);
	ASSERT_EQ(0, memcmp(check, r.data, len));
	free(check);
}

TEST_F(io, single_segment)
{
	roundtrip(_metadata, &self->d, self->q, self->bdev, 8, 4096, 1, false);
}

TEST_F(io, multi_segment_lands_at_right_sectors)
{
	/* 8 pieces of 8 KiB: each must land right after the previous. */
	roundtrip(_metadata, &self->d, self->q, self->bdev, 1000, 65536, 8,
		  false);
	roundtrip(_metadata, &self->d, self->q, self->bdev, 3, 512 * 7, 7,
		  false);
}

TEST_F(io, indirect_chain)
{
	roundtrip(_metadata, &self->d, self->q, self->bdev, 64, 32768, 16,
		  true);
}

TEST_F(io, large_request_spans_bios)
{
	/* 2 MiB in 4 segments: more pages than one bio holds. */
	roundtrip(_metadata, &self->d, self->q, self->bdev, 2048, 2 << 20, 4,
		  true);
}

TEST_F(io, last_sector)
{
	roundtrip(_metadata, &self->d, self->q, self->bdev,
		  self->bytes / 512 - 1, 512, 1, false);
}

TEST_F(io, any_layout_split_header_and_shared_status)
{
	struct vdrv *d = &self->d;
	uint8_t *hdr = vdrv_alloc(d, 16, 16);
	uint8_t *buf = vdrv_alloc(d, 4096 + 1, 4096);
	uint8_t *check = malloc(4096);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 77 };
	uint32_t head, len;

	memcpy(hdr, &h, sizeof(h));
	vblk_fill(check, 4096, 99);
	ASSERT_EQ(0, vblk_pwrite(self->bdev, check, 4096, 77 * 512));

	/* Header in 3 pieces; data and status share one descriptor. */
	struct vseg segs[] = {
		{ hdr, 5, false }, { hdr + 5, 3, false }, { hdr + 8, 8, false },
		{ buf, 4097, true },
	};
	buf[4096] = 0xff;
	ASSERT_LE(0, vdrv_add(d, self->q, segs, 4, false));
	vdrv_kick(self->q);
	ASSERT_EQ(0, vdrv_get_used(d, self->q, &head, &len, 10000));
	ASSERT_EQ(VIRTIO_BLK_S_OK, buf[4096]);
	ASSERT_EQ(4097, len);
	ASSERT_EQ(0, memcmp(buf, check, 4096));
	free(check);
}

TEST_F(io, header_and_data_in_one_descriptor)
{
	struct vdrv *d = &self->d;
	uint8_t *buf = vdrv_alloc(d, 16 + 512, 4096);
	uint8_t *st = vdrv_alloc(d, 1, 1);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT, .sector = 5 };
	uint8_t check[512];
	uint32_t head, len;

	/* A write whose data follows the header in the same buffer. */
	memcpy(buf, &h, sizeof(h));
	vblk_fill(buf + 16, 512, 5);
	struct vseg segs[] = { { buf, 16 + 512, false }, { st, 1, true } };

	*st = 0xff;
	ASSERT_LE(0, vdrv_add(d, self->q, segs, 2, false));
	vdrv_kick(self->q);
	ASSERT_EQ(0, vdrv_get_used(d, self->q, &head, &len, 10000));
	ASSERT_EQ(VIRTIO_BLK_S_OK, *st);
	ASSERT_EQ(0, vblk_pread(self->bdev, check, 512, 5 * 512));
	ASSERT_EQ(0, memcmp(check, buf + 16, 512));
}

TEST_F(io, flush)
{
	struct vreq f = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_FLUSH, 0, 0);

	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, self->q, &f, 0, false,
					   NULL));
}

TEST_F(io, get_id)
{
	struct vhost_blk_params p = {
		.size = sizeof(p), .mask = VHOST_BLK_PARAM_SERIAL,
	};
	struct vreq r;
	uint32_t used;

	/* No serial set: all zero, nothing else from the host. */
	r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_GET_ID, 0, 64);
	memset(r.data, 0xaa, 64);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, self->q, &r, 1, false,
					   &used));
	ASSERT_EQ(21, used);
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(0, r.data[i]);
	for (int i = 20; i < 64; i++)
		ASSERT_EQ(0xaa, r.data[i]);

	memcpy(p.serial, "SERIAL-0123456789abc", 20);
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, self->q, &r, 1, false,
					   &used));
	ASSERT_EQ(0, memcmp(r.data, "SERIAL-0123456789abc", 20));

	/* A short buffer gets the first bytes only. */
	r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_GET_ID, 0, 8);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, self->q, &r, 1, false,
					   &used));
	ASSERT_EQ(9, used);
	ASSERT_EQ(0, memcmp(r.data, "SERIAL-0", 8));
}

static int dwz(struct vdrv *d, struct vdrv_queue *q, uint32_t type,
	       uint64_t sector, uint32_t nr, uint32_t flags)
{
	struct vreq r = vdrv_req_alloc(d, type, 0, 16);
	struct virtio_blk_discard_write_zeroes *seg = (void *)r.data;

	seg->sector = sector;
	seg->num_sectors = nr;
	seg->flags = flags;
	r.hdr->type = type;
	/* The segment is device-readable: build the chain by hand. */
	struct vseg segs[] = {
		{ r.hdr, 16, false }, { r.data, 16, false }, { r.status, 1, true },
	};
	uint32_t head, len;

	if (vdrv_add(d, q, segs, 3, false) < 0)
		return -1;
	vdrv_kick(q);
	if (vdrv_get_used(d, q, &head, &len, 10000))
		return -1;
	return *r.status;
}

TEST_F(io, write_zeroes)
{
	uint8_t *buf = malloc(65536), *zero = calloc(1, 65536);

	for (uint32_t flags = 0; flags <= VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	     flags++) {
		vblk_fill(buf, 65536, flags + 1);
		ASSERT_EQ(0, vblk_pwrite(self->bdev, buf, 65536, 4096 * 512));
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  dwz(&self->d, self->q, VIRTIO_BLK_T_WRITE_ZEROES,
			      4096 + 8, 16, flags));
		ASSERT_EQ(0, vblk_pread(self->bdev, buf, 65536, 4096 * 512));
		/* Exactly sectors 8..23 of the range are zero now. */
		ASSERT_NE(0, memcmp(buf, zero, 8 * 512));
		ASSERT_EQ(0, memcmp(buf + 8 * 512, zero, 16 * 512));
		ASSERT_NE(0, memcmp(buf + 24 * 512, zero, 512));
	}
	free(buf);
	free(zero);
}

TEST_F(io, discard)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	int st;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_GET_CONFIG, &c));
	st = dwz(&self->d, self->q, VIRTIO_BLK_T_DISCARD, 0, 8, 0);
	if (c.features & (1ULL << VIRTIO_BLK_F_DISCARD)) {
		ASSERT_EQ(VIRTIO_BLK_S_OK, st);
	} else {
		ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, st);
	}
}

TEST_F(io, unknown_type_is_unsupp)
{
	struct vreq r = vdrv_req_alloc(&self->d, 0x1234, 0, 0);

	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, vdrv_do(&self->d, self->q, &r, 0,
					       false, NULL));
	/* GET_LIFETIME and SECURE_ERASE are not offered either. */
	r.hdr->type = VIRTIO_BLK_T_SECURE_ERASE;
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, vdrv_do(&self->d, self->q, &r, 0,
					       false, NULL));
}

TEST_F(io, config_reflects_backend)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct virtio_blk_config *cfg = (void *)c.config;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_GET_CONFIG, &c));
	ASSERT_EQ(self->bytes / 512, cfg->capacity);
	ASSERT_EQ(512, cfg->blk_size);
	ASSERT_EQ(1, cfg->num_queues);
	ASSERT_EQ(1, cfg->max_discard_seg);
	ASSERT_EQ(1, cfg->max_write_zeroes_seg);
	ASSERT_LT(0, cfg->max_write_zeroes_sectors);
	ASSERT_EQ(0, c.features & (1ULL << VIRTIO_BLK_F_RO));
}

TEST_F(io, exclusive_claim)
{
	struct vdrv d2;
	int excl;

	/* A second vhost-blk device on the same disk. */
	ASSERT_EQ(0, vdrv_open(&d2, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d2, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(-EBUSY, vdrv_attach(&d2, self->bdev));
	vdrv_close(&d2);

	/* Our claim keeps other exclusive openers (mount, mkfs) out. */
	excl = open("/dev/ram0", O_RDWR | O_EXCL);
	ASSERT_EQ(-1, excl);
	ASSERT_EQ(EBUSY, errno);
}

TEST_F(io, busy_when_claimed_by_others)
{
	int excl, fd2;
	struct vdrv d2;

	excl = vblk_brd(1, NULL);
	ASSERT_LE(0, excl);
	close(excl);
	excl = open("/dev/ram1", O_RDWR | O_EXCL);
	ASSERT_LE(0, excl);
	fd2 = open("/dev/ram1", O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, vdrv_open(&d2, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d2, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(-EBUSY, vdrv_attach(&d2, fd2));
	close(excl);
	/* Released: now it attaches. */
	ASSERT_EQ(0, vdrv_attach(&d2, fd2));
	vdrv_close(&d2);
	close(fd2);
}

TEST(completions_are_batched)
{
	struct vreq r[64];
	struct vdrv d;
	uint64_t signals = 0;
	int bdev, i;

	bdev = vblk_brd(0, NULL);
	if (bdev < 0)
		SKIP(return, "no brd ram disk");
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	/* Without EVENT_IDX every signal the device sends is counted. */
	ASSERT_EQ(0, vdrv_setup(&d, 1, 128, VHOST_BLK_FEATURES &
				~(1ULL << VIRTIO_RING_F_EVENT_IDX)));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	for (i = 0; i < 64; i++) {
		r[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, i * 8, 4096);
		ASSERT_LE(0, vdrv_start(&d, &d.q[0], &r[i], 1, true));
	}
	vdrv_kick(&d.q[0]);
	for (i = 0; i < 2000; i++) {
		if (__atomic_load_n(&d.q[0].used->idx, __ATOMIC_ACQUIRE) == 64)
			break;
		usleep(5000);
	}
	ASSERT_EQ(64, d.q[0].used->idx);
	for (i = 0; i < 64; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, *r[i].status);
	/* One kick's worth of completions: a handful of signals, not 64. */
	ASSERT_EQ(sizeof(signals), read(d.q[0].call, &signals, sizeof(signals)));
	ASSERT_LT(0, signals);
	ASSERT_GT(8, signals) TH_LOG("%llu signals for 64 requests",
				     (unsigned long long)signals);
	vdrv_close(&d);
	close(bdev);
}

TEST(mounted_device_is_busy)
{
	const char *mnt = "/tmp/vblk-mnt";
	struct vdrv d;
	int fd;

	fd = vblk_brd(3, NULL);
	if (fd < 0)
		SKIP(return, "no brd ram disk");
	close(fd);
	if (system("modprobe ext4 && mkfs.ext4 -q -F /dev/ram3 >/dev/null 2>&1"))
		SKIP(return, "cannot make an ext4 file system (modprobe ext4, mkfs.ext4)");
	mkdir(mnt, 0755);
	ASSERT_EQ(0, mount("/dev/ram3", mnt, "ext4", 0, NULL));

	fd = open("/dev/ram3", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdrv_open(&d, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(-EBUSY, vdrv_attach(&d, fd));
	ASSERT_EQ(0, umount(mnt));
	ASSERT_EQ(0, vdrv_attach(&d, fd));
	vdrv_close(&d);
	close(fd);
}

TEST(read_only_backend)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct vdrv d;
	struct vreq r;
	uint8_t before[4096];
	int rw, ro;

	rw = vblk_brd(2, NULL);
	if (rw < 0)
		SKIP(return, "no brd ram disk");
	vblk_fill(before, sizeof(before), 7);
	ASSERT_EQ(0, vblk_pwrite(rw, before, sizeof(before), 0));
	ro = open("/dev/ram2", O_RDONLY);
	ASSERT_LE(0, ro);

	ASSERT_EQ(0, vdrv_open(&d, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, ro));
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, &c));
	ASSERT_NE(0, c.features & (1ULL << VIRTIO_BLK_F_RO));

	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	ASSERT_EQ(0, memcmp(r.data, before, sizeof(before)));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, dwz(&d, &d.q[0],
					  VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0));
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_FLUSH, 0, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 0, false, NULL));

	/* The device itself is unchanged. */
	uint8_t after[4096];

	ASSERT_EQ(0, vblk_pread(rw, after, sizeof(after), 0));
	ASSERT_EQ(0, memcmp(before, after, sizeof(after)));
	vdrv_close(&d);
	close(ro);
	close(rw);
}

static void backend_roundtrip(struct __test_metadata *_metadata,
			      const char *path)
{
	struct vdrv d;
	int fd = vdrv_open_on(&d, path, O_RDWR, MEM_SIZE, 1, 128);

	ASSERT_LE(0, fd);
	roundtrip(_metadata, &d, &d.q[0], fd, 0, 4096, 1, false);
	roundtrip(_metadata, &d, &d.q[0], fd, 1234, 65536, 5, true);
	vdrv_close(&d);
	close(fd);
}

TEST(null_blk_backend)
{
	char path[64];
	int ret = vblk_null_blk("vblk_nb0", 64, 512, false, path, sizeof(path));

	if (ret)
		SKIP(return, "cannot create a null_blk device via configfs: %s",
		     strerror(-ret));
	backend_roundtrip(_metadata, path);
	vblk_null_blk_remove("vblk_nb0");
}

TEST(logical_block_4k)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct virtio_blk_config *cfg = (void *)c.config;
	char path[64];
	struct vdrv d;
	struct vreq r;
	int fd, ret;

	ret = vblk_null_blk("vblk_nb4k", 64, 4096, false, path, sizeof(path));
	if (ret)
		SKIP(return, "cannot create a 4K null_blk via configfs: %s",
		     strerror(-ret));
	fd = vdrv_open_on(&d, path, O_RDWR, MEM_SIZE, 1, 128);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, &c));
	ASSERT_EQ(4096, cfg->blk_size);
	ASSERT_EQ(64ULL << 11, cfg->capacity);

	/* Sectors stay 512 bytes; requests must cover whole 4K blocks. */
	roundtrip(_metadata, &d, &d.q[0], fd, 8, 8192, 2, false);
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 1, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 8, 512);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	/* 4K in eight 512-byte pieces: not whole blocks, so bounced. */
	roundtrip(_metadata, &d, &d.q[0], fd, 16, 4096, 8, false);
	vdrv_close(&d);
	close(fd);
	vblk_null_blk_remove("vblk_nb4k");
}

TEST(loop_backend)
{
	char path[64];
	int ret = vblk_loop("/tmp/vblk-loop.img", 32 << 20, path,
			    sizeof(path));

	if (ret)
		SKIP(return, "cannot set up a loop device: %s", strerror(-ret));
	backend_roundtrip(_metadata, path);
	vblk_loop_remove(path);
	unlink("/tmp/vblk-loop.img");
}

static unsigned long flushes_completed(const char *name)
{
	unsigned long v[17] = { 0 };
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/stat", name);
	f = fopen(path, "r");
	if (!f)
		return ~0UL;
	for (int i = 0; i < 17; i++)
		if (fscanf(f, "%lu", &v[i]) != 1)
			break;
	fclose(f);
	return v[15];	/* flush requests completed */
}

TEST(flush_reaches_device)
{
	char path[64];
	unsigned long before, after;
	struct vdrv d;
	struct vreq r;
	int fd, ret;

	/* A null_blk with a volatile cache, so flushes are not elided. */
	ret = vblk_null_blk("vblk_nbc", 64, 512, true, path, sizeof(path));
	if (ret)
		SKIP(return, "cannot create a cached null_blk: %s",
		     strerror(-ret));
	fd = vdrv_open_on(&d, path, O_RDWR, 1 << 20, 1, 64);
	ASSERT_LE(0, fd);

	before = flushes_completed("vblk_nbc");
	ASSERT_NE(~0UL, before);
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_FLUSH, 0, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 0, false, NULL));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 0, false, NULL));
	after = flushes_completed("vblk_nbc");
	ASSERT_LE(before + 2, after);

	vdrv_close(&d);
	close(fd);
	vblk_null_blk_remove("vblk_nbc");
}

TEST_HARNESS_MAIN

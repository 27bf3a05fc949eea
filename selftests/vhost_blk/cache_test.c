// SPDX-License-Identifier: GPL-2.0
/*
 * Cache modes and raw image files: the uapi (versioned struct, cache mode,
 * the guest's write cache), data through every mode on a block device and on
 * images on tmpfs, ext4 and xfs, and what each mode sends to the device
 * under the backend, seen by the block_bio_queue tracepoint.
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
#include <sys/utsname.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(8 << 20)
#define IMG_SIZE	((8 << 20) + 1000)	/* not whole blocks on purpose */

static const char *const mode_names[] = {
	"none", "writeback", "writethrough", "directsync", "unsafe",
};

static int attach_mode(struct vdrv *d, int fd, unsigned int mode)
{
	struct vhost_blk_backend b = {
		.size = sizeof(b), .fd = fd, .cache_mode = mode,
	};

	return ioctl(d->fd, VHOST_BLK_SET_BACKEND, &b) ? -errno : 0;
}

static int get_config(struct vdrv *d, struct virtio_blk_config *cfg,
		      uint64_t *features)
{
	struct vhost_blk_config c = { .size = sizeof(c) };

	if (ioctl(d->fd, VHOST_BLK_GET_CONFIG, &c))
		return -errno;
	memcpy(cfg, c.config, sizeof(*cfg));
	if (features)
		*features = c.features;
	return 0;
}

static int set_wce(struct vdrv *d, uint32_t wce)
{
	struct vhost_blk_params p = {
		.size = sizeof(p), .mask = VHOST_BLK_PARAM_WCE, .wce = wce,
	};

	return ioctl(d->fd, VHOST_BLK_SET_PARAMS, &p) ? -errno : 0;
}

/* One request on queue 0 with @len bytes of @buf; returns the status. */
static int io(struct vdrv *d, uint32_t type, uint64_t sector, void *buf,
	      uint32_t len, unsigned int nsegs)
{
	size_t mark = d->mem_used;
	struct vreq r = vdrv_req_alloc(d, type, sector, len);
	int st;

	if (type == VIRTIO_BLK_T_OUT || type == VIRTIO_BLK_T_DISCARD ||
	    type == VIRTIO_BLK_T_WRITE_ZEROES)
		memcpy(r.data, buf, len);
	st = vdrv_do(d, &d->q[0], &r, nsegs, false, NULL);
	if (st == VIRTIO_BLK_S_OK && type == VIRTIO_BLK_T_IN)
		memcpy(buf, r.data, len);
	/* Guest memory is a bump allocator: give the request's back. */
	d->mem_used = mark;
	return st;
}

static int zero_req(struct vdrv *d, uint32_t type, uint64_t sector,
		    uint32_t nr, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes seg = {
		.sector = sector, .num_sectors = nr, .flags = flags,
	};

	return io(d, type, 0, &seg, sizeof(seg), 1);
}

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma, mi;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

/* Backends: a brd ram disk, or an image file on a filesystem. */
enum kind { KIND_BDEV, KIND_TMPFS, KIND_EXT4, KIND_XFS };

/* A zero-filled image of @size bytes, written and synced: no holes. */
static int make_image(const char *path, size_t size)
{
	static char zero[1 << 16];
	size_t done = 0;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (done < size) {
		size_t n = size - done < sizeof(zero) ? size - done :
							 sizeof(zero);

		if (write(fd, zero, n) != (ssize_t)n) {
			close(fd);
			return -EIO;
		}
		done += n;
	}
	fsync(fd);
	return fd;
}

FIXTURE(data) {
	struct vdrv d;
	int fd;
	size_t bytes;
	const char *fsname, *dir;
	char img[128];
	bool skip;		/* the 6.1 harness runs a test its setup skipped */
};

FIXTURE_VARIANT(data) {
	enum kind kind;
	unsigned int mode;
};

#define DATA_VARIANTS(kname, k)						\
	FIXTURE_VARIANT_ADD(data, kname##_none) { k, VHOST_BLK_CACHE_NONE }; \
	FIXTURE_VARIANT_ADD(data, kname##_writeback) {			\
		k, VHOST_BLK_CACHE_WRITEBACK };				\
	FIXTURE_VARIANT_ADD(data, kname##_writethrough) {		\
		k, VHOST_BLK_CACHE_WRITETHROUGH };			\
	FIXTURE_VARIANT_ADD(data, kname##_directsync) {			\
		k, VHOST_BLK_CACHE_DIRECTSYNC };			\
	FIXTURE_VARIANT_ADD(data, kname##_unsafe) { k, VHOST_BLK_CACHE_UNSAFE }

DATA_VARIANTS(bdev, KIND_BDEV);
DATA_VARIANTS(tmpfs, KIND_TMPFS);
DATA_VARIANTS(ext4, KIND_EXT4);
DATA_VARIANTS(xfs, KIND_XFS);

FIXTURE_SETUP(data)
{
	bool direct = variant->mode == VHOST_BLK_CACHE_NONE ||
		      variant->mode == VHOST_BLK_CACHE_DIRECTSYNC;
	int ret;

	self->fd = -1;
	self->fsname = NULL;
	self->skip = true;
	ASSERT_EQ(0, vdrv_open(&self->d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&self->d, 1, 64, VHOST_BLK_FEATURES));

	if (variant->kind == KIND_BDEV) {
		self->fd = vblk_brd(0, &self->bytes);
		if (self->fd < 0)
			SKIP(return, "no brd ram disk: %s", strerror(-self->fd));
	} else {
		if (variant->kind == KIND_TMPFS) {
			/* Its own: the runner's /tmp may be an overlay. */
			self->dir = "/tmp/cache-tmpfs";
			mkdir(self->dir, 0755);
			if (!vblk_mounted(self->dir))
				ASSERT_EQ(0, mount("tmpfs", self->dir, "tmpfs",
						   0, "size=64m"));
		} else {
			bool xfs = variant->kind == KIND_XFS;

			self->fsname = xfs ? "cachexfs" : "cacheext4";
			self->dir = xfs ? "/tmp/cache-xfs" : "/tmp/cache-ext4";
			ret = vblk_fs(self->fsname, xfs ? "xfs" : "ext4", false,
				      self->dir);
			if (ret == -ENOEXEC || ret == -ENODEV)
				SKIP(return, "cannot make %s: mkfs.%s, null_blk or the %s module missing (%s)",
				     xfs ? "xfs" : "ext4", xfs ? "xfs" : "ext4",
				     xfs ? "xfs" : "ext4", strerror(-ret));
			ASSERT_EQ(0, ret);
		}
		snprintf(self->img, sizeof(self->img), "%s/vblk-image",
			 self->dir);
		self->fd = make_image(self->img, IMG_SIZE);
		ASSERT_LE(0, self->fd);
		self->bytes = IMG_SIZE;
	}

	ret = attach_mode(&self->d, self->fd, variant->mode);
	if (variant->kind == KIND_TMPFS && direct &&
	    !kernel_at_least(6, 6)) {
		/* tmpfs has O_DIRECT only from Linux 6.6: documented EINVAL. */
		ASSERT_EQ(-EINVAL, ret);
		SKIP(return, "tmpfs has no O_DIRECT before 6.6: EINVAL, as documented");
	}
	ASSERT_EQ(0, ret);
	self->skip = false;
}

FIXTURE_TEARDOWN(data)
{
	vdrv_close(&self->d);
	if (self->fd >= 0)
		close(self->fd);
	if (self->img[0])
		unlink(self->img);
}

/* Config: capacity, write cache, features for the mode and backend. */
TEST_F_TIMEOUT(data, config, 150)
{
	bool wt = variant->mode == VHOST_BLK_CACHE_WRITETHROUGH ||
		  variant->mode == VHOST_BLK_CACHE_DIRECTSYNC;
	struct virtio_blk_config cfg;
	uint64_t features;

	if (self->skip)
		SKIP(return, "backend not attached (see setup)");

	ASSERT_EQ(0, get_config(&self->d, &cfg, &features));
	ASSERT_TRUE(features & (1ULL << VIRTIO_BLK_F_CONFIG_WCE));
	ASSERT_EQ(wt ? 0 : 1, cfg.wce);
	/* Whole logical blocks, never past the end of the image. */
	ASSERT_EQ(0, cfg.capacity % (cfg.blk_size / 512));
	ASSERT_EQ((self->bytes / cfg.blk_size) * cfg.blk_size / 512,
		  cfg.capacity);
	if (variant->kind == KIND_TMPFS) {
		/* tmpfs punches holes: discard and write zeroes offered. */
		ASSERT_TRUE(features & (1ULL << VIRTIO_BLK_F_DISCARD));
		ASSERT_TRUE(features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	}

	/*
	 * The guest's toggle, kept by a re-attach in the same mode (a VMM
	 * re-attaches around feature and memory changes); set back after.
	 */
	ASSERT_EQ(0, set_wce(&self->d, !cfg.wce));
	ASSERT_EQ(0, get_config(&self->d, &cfg, NULL));
	ASSERT_EQ(wt ? 1 : 0, cfg.wce);
	ASSERT_EQ(0, attach_mode(&self->d, self->fd, variant->mode));
	ASSERT_EQ(0, get_config(&self->d, &cfg, NULL));
	ASSERT_EQ(wt ? 1 : 0, cfg.wce);
	ASSERT_EQ(0, set_wce(&self->d, !cfg.wce));
}

/*
 * Write patterns in several segments, read them back through vhost, flush
 * and check them on the backend itself; the same with the write cache off.
 */
TEST_F_TIMEOUT(data, write_read_flush, 150)
{
	static uint8_t a[256 << 10], b[sizeof(a)], c[sizeof(a)];
	static const uint64_t sectors[] = { 0, 8, 4000 };
	struct virtio_blk_config cfg;
	unsigned int i, wce;

	if (self->skip)
		SKIP(return, "backend not attached (see setup)");

	ASSERT_EQ(0, get_config(&self->d, &cfg, NULL));
	for (wce = 0; wce < 2; wce++) {
		ASSERT_EQ(0, set_wce(&self->d, wce));
		for (i = 0; i < 3; i++) {
			vblk_fill(a, sizeof(a), i + 10 * wce + 1);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  io(&self->d, VIRTIO_BLK_T_OUT, sectors[i], a,
				     sizeof(a), i + 1));
			memset(b, 0, sizeof(b));
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  io(&self->d, VIRTIO_BLK_T_IN, sectors[i], b,
				     sizeof(b), 3 - i));
			ASSERT_EQ(0, memcmp(a, b, sizeof(a)));
		}
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  io(&self->d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0));
		/* On the backend: the last pattern at its sector. */
		memset(c, 0, sizeof(c));
		if (variant->kind == KIND_BDEV) {
			ASSERT_EQ(0, vblk_pread(self->fd, c, sizeof(c),
						sectors[2] * 512));
		} else {
			ASSERT_EQ((ssize_t)sizeof(c),
				  pread(self->fd, c, sizeof(c),
					sectors[2] * 512));
		}
		ASSERT_EQ(0, memcmp(a, c, sizeof(a)));
	}

	/* The last block reads; the one past the end does not. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  io(&self->d, VIRTIO_BLK_T_IN,
		     cfg.capacity - cfg.blk_size / 512, b, cfg.blk_size, 1));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  io(&self->d, VIRTIO_BLK_T_IN, cfg.capacity, b, cfg.blk_size,
		     1));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  io(&self->d, VIRTIO_BLK_T_OUT, cfg.capacity, b, cfg.blk_size,
		     1));
}

/* Write zeroes (with and without UNMAP) and discard read back as zeroes. */
TEST_F_TIMEOUT(data, zeroes, 150)
{
	static uint8_t a[64 << 10], b[sizeof(a)], zero[sizeof(a)];
	struct virtio_blk_config cfg;
	uint64_t features;
	uint32_t flags;

	if (self->skip)
		SKIP(return, "backend not attached (see setup)");

	ASSERT_EQ(0, get_config(&self->d, &cfg, &features));
	if (!(features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES)))
		SKIP(return, "write zeroes not offered on this backend");
	for (flags = 0; flags < 2; flags++) {
		vblk_fill(a, sizeof(a), 77 + flags);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  io(&self->d, VIRTIO_BLK_T_OUT, 64, a, sizeof(a), 1));
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  zero_req(&self->d, VIRTIO_BLK_T_WRITE_ZEROES, 64,
				   sizeof(a) / 512, flags));
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  io(&self->d, VIRTIO_BLK_T_IN, 64, b, sizeof(b), 1));
		ASSERT_EQ(0, memcmp(zero, b, sizeof(b)));
	}
	if (variant->kind == KIND_BDEV ||
	    !(features & (1ULL << VIRTIO_BLK_F_DISCARD)))
		return;
	/* On an image, a discarded range is a hole: zeroes. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  io(&self->d, VIRTIO_BLK_T_OUT, 64, a, sizeof(a), 1));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  zero_req(&self->d, VIRTIO_BLK_T_DISCARD, 64,
			   sizeof(a) / 512, 0));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  io(&self->d, VIRTIO_BLK_T_IN, 64, b, sizeof(b), 1));
	ASSERT_EQ(0, memcmp(zero, b, sizeof(b)));
}

/* The uapi: versions of the structs and the errors. */
TEST(uapi)
{
	struct vhost_blk_params p = { .size = sizeof(p) };
	struct virtio_blk_config cfg;
	struct vhost_blk_backend b;
	uint8_t buf[64];
	struct vdrv d;
	int fd;

	fd = vblk_brd(0, NULL);
	if (fd < 0)
		SKIP(return, "no brd ram disk");
	ASSERT_EQ(0, vdrv_open(&d, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));

	/* A first-version caller: 16 bytes, cache mode none. */
	memset(&b, 0xff, sizeof(b));
	b.size = VHOST_BLK_BACKEND_SIZE_VER0;
	b.fd = fd;
	b.flags = 0;
	b.__reserved = 0;
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(0, get_config(&d, &cfg, NULL));
	ASSERT_EQ(1, cfg.wce);

	memset(&b, 0, sizeof(b));
	b.size = sizeof(b);
	b.fd = fd;
	b.cache_mode = VHOST_BLK_CACHE_MAX + 1;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EINVAL, errno);
	b.cache_mode = VHOST_BLK_CACHE_DIRECTSYNC;
	b.__reserved2 = 1;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EINVAL, errno);
	b.__reserved2 = 0;
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(0, get_config(&d, &cfg, NULL));
	ASSERT_EQ(0, cfg.wce);

	/* The guest's write cache: 0 or 1 only. */
	ASSERT_EQ(-EINVAL, set_wce(&d, 2));
	ASSERT_EQ(0, set_wce(&d, 1));
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_PARAMS, &p));
	ASSERT_EQ(1, p.wce);
	ASSERT_EQ(VHOST_BLK_PARAM_ALL, p.mask);

	/*
	 * A re-attach in the same mode (detach first, as vhostblkctl does
	 * around SET_FEATURES) keeps the guest's choice; a new mode starts
	 * from its default.
	 */
	b.fd = -1;
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	b.fd = fd;
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(0, get_config(&d, &cfg, NULL));
	ASSERT_EQ(1, cfg.wce);
	b.cache_mode = VHOST_BLK_CACHE_WRITEBACK;
	ASSERT_EQ(0, set_wce(&d, 0));
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(0, get_config(&d, &cfg, NULL));
	ASSERT_EQ(1, cfg.wce);
	b.cache_mode = VHOST_BLK_CACHE_DIRECTSYNC;
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(0, get_config(&d, &cfg, NULL));
	ASSERT_EQ(0, cfg.wce);
	ASSERT_EQ(0, set_wce(&d, 1));
	p.__reserved2 = 1;
	p.mask = VHOST_BLK_PARAM_WCE;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(EINVAL, errno);

	/* GET_PARAMS writes no more than a first-version caller gave. */
	memset(buf, 0, VHOST_BLK_PARAMS_SIZE_VER0);
	memset(buf + VHOST_BLK_PARAMS_SIZE_VER0, 0xa5,
	       sizeof(buf) - VHOST_BLK_PARAMS_SIZE_VER0);
	((struct vhost_blk_params *)buf)->size = VHOST_BLK_PARAMS_SIZE_VER0;
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_PARAMS, buf));
	ASSERT_EQ(0xa5, buf[VHOST_BLK_PARAMS_SIZE_VER0]);

	/* Neither a block device nor a regular file; an empty image. */
	b.cache_mode = 0;
	b.fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(ENOTBLK, errno);
	close(b.fd);
	b.fd = open("/tmp/vblk-empty", O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, b.fd);
	b.cache_mode = VHOST_BLK_CACHE_WRITEBACK;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EINVAL, errno);
	close(b.fd);
	unlink("/tmp/vblk-empty");

	vdrv_close(&d);
	close(fd);
}

/* What the block layer is asked to do, from block_bio_queue. */
struct flags_seen {
	unsigned int writes;		/* data writes */
	unsigned int fua;		/* data writes with FUA */
	unsigned int preflush;		/* bios with PREFLUSH */
};

static void count_flags(void *arg, const char *rwbs, uint64_t sector,
			unsigned int sectors)
{
	struct flags_seen *s = arg;
	const char *op = rwbs[0] == 'F' ? rwbs + 1 : rwbs;

	(void)sector;
	if (rwbs[0] == 'F')
		s->preflush++;
	if (op[0] == 'W' && sectors) {
		s->writes++;
		if (op[1] == 'F')
			s->fua++;
	}
}

/* Count what was queued since vblk_trace_begin() or the last call. */
static int trace_take(struct flags_seen *s)
{
	int n;

	memset(s, 0, sizeof(*s));
	n = vblk_trace_take(count_flags, s);
	return n < 0 ? n : 0;
}

FIXTURE(trace) {
	struct vdrv d;
	int fd;
	dev_t dev;
	char nullb[64];
	bool fs;
	bool skip;
};

FIXTURE_VARIANT(trace) {
	bool image;			/* an ext4 image, else the device */
	unsigned int mode;
	int wce;			/* -1: the mode's default */
	/* expected after two writes, then after a guest flush */
	struct flags_seen after_writes, after_flush;
	bool at_least;			/* writes may be split or merged */
};

/*
 * On the device (null_blk with a volatile cache and FUA), exactly what the
 * mode table says. Two 64 KiB writes far apart, then a guest flush.
 */
FIXTURE_VARIANT_ADD(trace, bdev_none) {
	false, VHOST_BLK_CACHE_NONE, -1, { 2, 0, 0 }, { 0, 0, 1 }, false };
FIXTURE_VARIANT_ADD(trace, bdev_none_wce_off) {
	false, VHOST_BLK_CACHE_NONE, 0, { 2, 2, 0 }, { 0, 0, 1 }, false };
FIXTURE_VARIANT_ADD(trace, bdev_directsync) {
	false, VHOST_BLK_CACHE_DIRECTSYNC, -1, { 2, 2, 0 }, { 0, 0, 0 }, false };
FIXTURE_VARIANT_ADD(trace, bdev_writeback) {
	false, VHOST_BLK_CACHE_WRITEBACK, -1, { 0, 0, 0 }, { 2, 0, 1 }, true };
FIXTURE_VARIANT_ADD(trace, bdev_writethrough) {
	false, VHOST_BLK_CACHE_WRITETHROUGH, -1, { 2, 0, 2 }, { 0, 0, 0 }, true };
FIXTURE_VARIANT_ADD(trace, bdev_writethrough_wce_on) {
	false, VHOST_BLK_CACHE_WRITETHROUGH, 1, { 0, 0, 0 }, { 2, 0, 1 }, true };
FIXTURE_VARIANT_ADD(trace, bdev_unsafe) {
	false, VHOST_BLK_CACHE_UNSAFE, -1, { 0, 0, 0 }, { 0, 0, 0 }, false };
FIXTURE_VARIANT_ADD(trace, bdev_unsafe_wce_off) {
	false, VHOST_BLK_CACHE_UNSAFE, 0, { 0, 0, 0 }, { 0, 0, 0 }, false };
/*
 * An image on ext4 on that device: the filesystem adds journal writes and
 * may make O_DSYNC a FUA write or a journal commit, so only "some flush or
 * FUA, or none at all" and "at least this many writes" are checked.
 */
FIXTURE_VARIANT_ADD(trace, ext4_none) {
	true, VHOST_BLK_CACHE_NONE, -1, { 2, 0, 0 }, { 0, 0, 1 }, true };
/* No write at all must reach the device for a flush of unsafe mode. */
FIXTURE_VARIANT_ADD(trace, ext4_writeback) {
	true, VHOST_BLK_CACHE_WRITEBACK, -1, { 0, 0, 0 }, { 1, 0, 1 }, true };
FIXTURE_VARIANT_ADD(trace, ext4_directsync) {
	true, VHOST_BLK_CACHE_DIRECTSYNC, -1, { 2, 1, 0 }, { 0, 0, 0 }, true };
FIXTURE_VARIANT_ADD(trace, ext4_writethrough) {
	true, VHOST_BLK_CACHE_WRITETHROUGH, -1, { 2, 1, 0 }, { 0, 0, 0 }, true };
FIXTURE_VARIANT_ADD(trace, ext4_unsafe) {
	true, VHOST_BLK_CACHE_UNSAFE, -1, { 0, 0, 0 }, { 0, 0, 0 }, false };

FIXTURE_SETUP(trace)
{
	struct stat st;
	int ret;

	self->fd = -1;
	self->fs = false;
	self->skip = true;
	ASSERT_EQ(0, vdrv_open(&self->d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&self->d, 1, 64, VHOST_BLK_FEATURES));
	if (variant->image) {
		ret = vblk_fs("cachetrace", "ext4", true, "/tmp/cache-trace");
		if (ret == -ENOEXEC || ret == -ENODEV)
			SKIP(return, "cannot make ext4 on null_blk");
		ASSERT_EQ(0, ret);
		self->fs = true;
		snprintf(self->nullb, sizeof(self->nullb), "/dev/cachetrace");
		self->fd = make_image("/tmp/cache-trace/img", 16 << 20);
	} else {
		ret = vblk_null_blk("cachenullb", 64, 512, true, self->nullb,
				    sizeof(self->nullb));
		if (ret)
			SKIP(return, "no null_blk: %s", strerror(-ret));
		self->fd = open(self->nullb, O_RDWR | O_CLOEXEC);
	}
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, stat(self->nullb, &st));
	self->dev = st.st_rdev;
	ASSERT_EQ(0, attach_mode(&self->d, self->fd, variant->mode));
	if (variant->wce >= 0)
		ASSERT_EQ(0, set_wce(&self->d, variant->wce));
	ret = vblk_trace_begin(self->dev);
	if (ret == -ENOENT)
		SKIP(return, "no block:block_bio_queue event in tracefs");
	ASSERT_EQ(0, ret);
	self->skip = false;
}

FIXTURE_TEARDOWN(trace)
{
	if (!self->skip)
		vblk_trace_end();
	vdrv_close(&self->d);
	if (self->fd >= 0)
		close(self->fd);
	if (self->fs)
		unlink("/tmp/cache-trace/img");
	else
		vblk_null_blk_remove("cachenullb");
}

static void expect(struct __test_metadata *_metadata, const char *when,
		   const struct flags_seen *got, const struct flags_seen *want,
		   bool at_least, bool image)
{
	TH_LOG("%s: %u writes (%u FUA), %u preflush", when, got->writes,
	       got->fua, got->preflush);
	if (image && !want->writes && !want->fua && !want->preflush) {
		EXPECT_EQ(0, got->writes + got->fua + got->preflush);
	} else if (image) {
		/*
		 * O_DSYNC is FUA or a journal commit: either will do; fsync
		 * may add journal writes.
		 */
		EXPECT_LE(want->writes, got->writes);
		EXPECT_EQ(want->fua || want->preflush,
			  got->fua || got->preflush);
	} else if (at_least) {
		/* Zero stays exact: nothing must be sent. */
		EXPECT_EQ(!!want->writes, !!got->writes);
		EXPECT_EQ(!!want->fua, !!got->fua);
		EXPECT_EQ(!!want->preflush, !!got->preflush);
		EXPECT_LE(want->writes, got->writes);
	} else {
		EXPECT_EQ(want->writes, got->writes);
		EXPECT_EQ(want->fua, got->fua);
		EXPECT_EQ(want->preflush, got->preflush);
	}
}

TEST_F_TIMEOUT(trace, flags, 150)
{
	static uint8_t a[64 << 10];
	struct flags_seen s;

	if (self->skip)
		SKIP(return, "no backend (see setup)");

	vblk_fill(a, sizeof(a), 5);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  io(&self->d, VIRTIO_BLK_T_OUT, 0, a, sizeof(a), 1));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  io(&self->d, VIRTIO_BLK_T_OUT, 8192, a, sizeof(a), 1));
	ASSERT_EQ(0, trace_take(&s));
	expect(_metadata, "writes", &s, &variant->after_writes,
	       variant->at_least, variant->image);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  io(&self->d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0));
	ASSERT_EQ(0, trace_take(&s));
	expect(_metadata, "flush", &s, &variant->after_flush,
	       variant->at_least, variant->image);
	TH_LOG("mode %s", mode_names[variant->mode]);
}

/* Last: remove the filesystems the tests above shared. */
TEST(cleanup)
{
	vblk_fs_remove("cacheext4", "/tmp/cache-ext4");
	vblk_fs_remove("cachexfs", "/tmp/cache-xfs");
	vblk_fs_remove("cachetrace", "/tmp/cache-trace");
	umount("/tmp/cache-tmpfs");
	rmdir("/tmp/cache-tmpfs");
	ASSERT_FALSE(vblk_mounted("/tmp/cache-tmpfs"));
	ASSERT_FALSE(vblk_mounted("/tmp/cache-ext4"));
	ASSERT_FALSE(vblk_mounted("/tmp/cache-xfs"));
	ASSERT_FALSE(vblk_mounted("/tmp/cache-trace"));
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * The control interface: the device node, owner, features, memory table,
 * params and backend errnos, and teardown with rings set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

TEST(device_node_exists)
{
	struct stat st;

	ASSERT_EQ(0, stat("/dev/vhost-blk", &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	/* A misc device: major 10. */
	ASSERT_EQ(10, major(st.st_rdev));
}

TEST(set_owner_once)
{
	int fd = open("/dev/vhost-blk", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	ASSERT_EQ(-1, ioctl(fd, VHOST_SET_OWNER));
	ASSERT_EQ(EBUSY, errno);
	close(fd);
}

TEST(ioctls_need_owner)
{
	struct vhost_vring_state st = { .index = 0, .num = 128 };
	struct vhost_blk_backend b = { .size = sizeof(b), .fd = -1 };
	int fd = open("/dev/vhost-blk", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, ioctl(fd, VHOST_SET_VRING_NUM, &st));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EPERM, errno);
	close(fd);
}

TEST(get_features_matches_uapi)
{
	uint64_t features = 0;
	int fd = open("/dev/vhost-blk", O_RDWR);

	ASSERT_LE(0, fd);
	/* Answered before VHOST_SET_OWNER, as QEMU asks it. */
	ASSERT_EQ(0, ioctl(fd, VHOST_GET_FEATURES, &features));
	ASSERT_EQ((uint64_t)VHOST_BLK_FEATURES, features);
	/* Never dirty logging or an IOTLB we do not implement. */
	ASSERT_EQ(0, features & (1ULL << VHOST_F_LOG_ALL));
	ASSERT_EQ(0, features & (1ULL << VIRTIO_F_ACCESS_PLATFORM));
	close(fd);
}

TEST(set_features_rejects_unknown)
{
	uint64_t features = VHOST_BLK_FEATURES | (1ULL << VHOST_F_LOG_ALL);
	int fd = open("/dev/vhost-blk", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	ASSERT_EQ(-1, ioctl(fd, VHOST_SET_FEATURES, &features));
	ASSERT_EQ(EOPNOTSUPP, errno);
	features = VHOST_BLK_FEATURES;
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_FEATURES, &features));
	close(fd);
}

FIXTURE(memtable) {
	int fd;
	void *mem;
	struct vhost_memory *m;
};

FIXTURE_SETUP(memtable)
{
	self->fd = open("/dev/vhost-blk", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER));
	self->mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	self->m = calloc(1, sizeof(*self->m) + 128 * sizeof(self->m->regions[0]));
	self->m->nregions = 1;
	self->m->regions[0].guest_phys_addr = 0x100000;
	self->m->regions[0].memory_size = 1 << 20;
	self->m->regions[0].userspace_addr = (uintptr_t)self->mem;
}

FIXTURE_TEARDOWN(memtable)
{
	close(self->fd);
	munmap(self->mem, 1 << 20);
	free(self->m);
}

TEST_F(memtable, accepts_own_memory)
{
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_MEM_TABLE, self->m));
	/* Replacing the table is allowed too. */
	self->m->regions[0].guest_phys_addr = 0;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_MEM_TABLE, self->m));
}

TEST_F(memtable, rejects_padding)
{
	self->m->padding = 1;
	ASSERT_EQ(-1, ioctl(self->fd, VHOST_SET_MEM_TABLE, self->m));
	ASSERT_EQ(EOPNOTSUPP, errno);
}

TEST_F(memtable, rejects_too_many_regions)
{
	/* The vhost core's default max_mem_regions is 64. */
	self->m->nregions = 65;
	ASSERT_EQ(-1, ioctl(self->fd, VHOST_SET_MEM_TABLE, self->m));
	ASSERT_EQ(E2BIG, errno);
}

TEST_F(memtable, rejects_kernel_address)
{
	self->m->regions[0].userspace_addr = 0xffff888000000000ULL;
	ASSERT_EQ(-1, ioctl(self->fd, VHOST_SET_MEM_TABLE, self->m));
	ASSERT_EQ(EFAULT, errno);
}

TEST_F(memtable, rejects_wrapping_region)
{
	self->m->regions[0].guest_phys_addr = ~0ULL - 4095;
	self->m->regions[0].memory_size = 1 << 20;
	ASSERT_EQ(-1, ioctl(self->fd, VHOST_SET_MEM_TABLE, self->m));
	ASSERT_EQ(EFAULT, errno);
}

TEST_F(memtable, rejects_unreadable_table)
{
	ASSERT_EQ(-1, ioctl(self->fd, VHOST_SET_MEM_TABLE, (void *)8));
	ASSERT_EQ(EFAULT, errno);
}

TEST(params_roundtrip_and_errnos)
{
	struct vhost_blk_params p = { .size = sizeof(p) };
	int fd = open("/dev/vhost-blk", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_GET_PARAMS, &p));
	ASSERT_EQ(VHOST_BLK_PARAM_ALL, p.mask);
	ASSERT_EQ(1, p.num_queues);

	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	p.mask = VHOST_BLK_PARAM_NUM_QUEUES | VHOST_BLK_PARAM_SERIAL;
	p.num_queues = VHOST_BLK_MAX_QUEUES;
	memcpy(p.serial, "vhost-blk-serial-123", 20);
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_GET_PARAMS, &p));
	ASSERT_EQ(VHOST_BLK_MAX_QUEUES, p.num_queues);
	ASSERT_EQ(0, memcmp(p.serial, "vhost-blk-serial-123", 20));

	p.mask = VHOST_BLK_PARAM_NUM_QUEUES;
	p.num_queues = VHOST_BLK_MAX_QUEUES + 1;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(EINVAL, errno);
	p.num_queues = 0;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(EINVAL, errno);
	p.num_queues = 1;
	p.mask = 1u << 31;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(EINVAL, errno);
	p.mask = 0;
	p.__reserved[3] = 1;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(EINVAL, errno);
	p.__reserved[3] = 0;
	p.size = 4;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
	ASSERT_EQ(EINVAL, errno);

	/* A newer, larger struct: fine while the tail is zero. */
	char big[256] = { 0 };
	struct vhost_blk_params *bp = (void *)big;

	bp->size = sizeof(big);
	bp->mask = VHOST_BLK_PARAM_NUM_QUEUES;
	bp->num_queues = 2;
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_SET_PARAMS, bp));
	big[200] = 1;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, bp));
	ASSERT_EQ(E2BIG, errno);
	bp->size = 1 << 20;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_PARAMS, bp));
	ASSERT_EQ(E2BIG, errno);
	close(fd);
}

TEST(config_without_backend)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct virtio_blk_config *cfg = (void *)c.config;
	int fd = open("/dev/vhost-blk", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_GET_CONFIG, &c));
	/* Through write_zeroes_may_unmap: what QEMU's GET_CONFIG asks. */
	ASSERT_EQ(57, c.len);
	ASSERT_EQ(0, cfg->capacity);
	ASSERT_EQ(VHOST_BLK_SEG_MAX, cfg->seg_max);
	ASSERT_EQ(VHOST_BLK_SIZE_MAX, cfg->size_max);
	ASSERT_EQ(1, cfg->num_queues);
	ASSERT_EQ(0, c.features & (1ULL << VIRTIO_BLK_F_RO));
	close(fd);
}

TEST(backend_errnos)
{
	struct vhost_blk_backend b = { .size = sizeof(b) };
	struct vdrv d;
	char tmpl[] = "/tmp/vblk-file-XXXXXX";
	int file;

	ASSERT_EQ(0, vdrv_open(&d, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));

	/* A closed fd. */
	ASSERT_EQ(-EBADF, vdrv_attach(&d, 1000));

	/* Neither a block device nor a regular file: a directory. */
	file = open("/tmp", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, file);
	ASSERT_EQ(-ENOTBLK, vdrv_attach(&d, file));
	close(file);
	/* An empty image has no block to show. */
	file = mkstemp(tmpl);
	ASSERT_LE(0, file);
	unlink(tmpl);
	ASSERT_EQ(-EINVAL, vdrv_attach(&d, file));
	close(file);

	file = vblk_brd(0, NULL);
	if (file >= 0) {
		close(file);
		/* A disk open only for writing cannot be read by the guest. */
		file = open("/dev/ram0", O_WRONLY);
		ASSERT_LE(0, file);
		ASSERT_EQ(-EACCES, vdrv_attach(&d, file));
		close(file);
		/* An O_PATH fd is no open file for the kernel's fget(). */
		file = open("/dev/ram0", O_PATH);
		ASSERT_LE(0, file);
		ASSERT_EQ(-EBADF, vdrv_attach(&d, file));
		close(file);
	}

	/* Must-be-zero fields. */
	b.fd = -1;
	b.flags = 1;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EINVAL, errno);
	b.flags = 0;
	b.__reserved = 1;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EINVAL, errno);
	b.__reserved = 0;
	b.size = VHOST_BLK_BACKEND_SIZE_VER0 - 4;
	ASSERT_EQ(-1, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EINVAL, errno);

	/* Detaching with nothing attached is fine. */
	b.size = sizeof(b);
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
	vdrv_close(&d);
}

TEST(backend_before_memory_table)
{
	struct vhost_vring_state st = { .index = 0, .num = 64 };
	struct vhost_vring_addr addr = { .index = 0 };
	struct vhost_blk_backend b = { .size = sizeof(b) };
	int fd, bdev;
	void *ring;

	bdev = vblk_brd(0, NULL);
	if (bdev < 0)
		SKIP(return, "no brd ram disk");
	fd = open("/dev/vhost-blk", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	ring = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ring);
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_VRING_NUM, &st));
	addr.desc_user_addr = (uintptr_t)ring;
	addr.avail_user_addr = (uintptr_t)ring + 4096;
	addr.used_user_addr = (uintptr_t)ring + 8192;
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_VRING_ADDR, &addr));

	/* A ring is set up but there is no memory table yet. */
	b.fd = bdev;
	ASSERT_EQ(-1, ioctl(fd, VHOST_BLK_SET_BACKEND, &b));
	ASSERT_EQ(EFAULT, errno);

	/* Nothing was claimed by the failed attach. */
	int excl = open("/dev/ram0", O_RDWR | O_EXCL);

	ASSERT_LE(0, excl);
	close(excl);
	close(fd);
	close(bdev);
	munmap(ring, 3 * 4096);
}

TEST(close_with_rings_set_up)
{
	struct vdrv d;
	int i;

	/* Repeated so a leak per device would show in the module refcount. */
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, vdrv_open(&d, 1 << 20));
		ASSERT_EQ(0, vdrv_setup(&d, 4, 128, VHOST_BLK_FEATURES));
		vdrv_close(&d);
	}
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Hostile userspace: random ioctls of the vhost space (known numbers with
 * random payloads, and random numbers, sizes and directions) with fds,
 * pointers and sizes that are sometimes real and mostly not. Nothing may
 * crash, warn or hang (the runner checks dmesg), every failure must be a
 * plain errno, and a fresh device must still work afterwards.
 */
TEST(ioctl_fuzz)
{
	static const unsigned long known[] = {
		VHOST_GET_FEATURES, VHOST_SET_FEATURES, VHOST_SET_OWNER,
		VHOST_RESET_OWNER, VHOST_SET_MEM_TABLE, VHOST_SET_LOG_BASE,
		VHOST_SET_LOG_FD, VHOST_SET_VRING_NUM, VHOST_SET_VRING_ADDR,
		VHOST_SET_VRING_BASE, VHOST_GET_VRING_BASE,
		VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL,
		VHOST_SET_VRING_ERR, VHOST_BLK_SET_BACKEND,
		VHOST_BLK_GET_CONFIG, VHOST_BLK_SET_PARAMS,
		VHOST_BLK_GET_PARAMS,
	};
	const char *env = getenv("VBLK_SEED");
	uint64_t s = env ? strtoull(env, NULL, 0) : 0x10c71;
	uint8_t *buf = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fds[6], bdev, fd = -1, i, j;
	long ok = 0, failed = 0;
	struct vdrv d;
	struct vreq r;

	ASSERT_NE(MAP_FAILED, buf);
	bdev = vblk_brd(0, NULL);
	if (bdev < 0)
		SKIP(return, "no brd ram disk");
	fds[0] = bdev;
	fds[1] = eventfd(0, EFD_NONBLOCK);
	fds[2] = eventfd(0, EFD_NONBLOCK);
	fds[3] = open("/dev/null", O_RDWR);
	fds[4] = -1;
	fds[5] = 999;

	for (i = 0; i < 20000; i++) {
		unsigned long cmd;
		void *arg;

		if (i % 500 == 0) {
			if (fd >= 0)
				close(fd);
			fd = open("/dev/vhost-blk", O_RDWR);
			ASSERT_LE(0, fd);
			if (rnd(&s) % 4)
				ioctl(fd, VHOST_SET_OWNER);
		}
		/* Random bytes, then plausible values in the usual places. */
		for (j = 0; j < 64; j++)
			((uint64_t *)buf)[j] = rnd(&s) % 3 ? rnd(&s) % 256 : rnd(&s);
		((uint32_t *)buf)[0] = rnd(&s) % 2 ? rnd(&s) % 16 :
				       rnd(&s) % 300;	/* index or size */
		((int32_t *)buf)[1] = fds[rnd(&s) % 6];	/* fd field */
		if (rnd(&s) % 4 == 0)
			((uint64_t *)buf)[1] = (uintptr_t)(buf + 4096 +
						rnd(&s) % 8192);
		cmd = rnd(&s) % 4 ? known[rnd(&s) % (sizeof(known) / sizeof(known[0]))] :
		      _IOC(rnd(&s) % 4, VHOST_VIRTIO, rnd(&s) % 256,
			   rnd(&s) % 128);
		arg = rnd(&s) % 16 ? (void *)buf :
		      rnd(&s) % 2 ? NULL : (void *)(uintptr_t)rnd(&s);
		if (ioctl(fd, cmd, arg) == 0) {
			ok++;
		} else {
			failed++;
			/* A plain errno, never a kernel-internal code. */
			ASSERT_GT(512, errno) TH_LOG("ioctl %#lx: errno %d",
						     cmd, errno);
		}
	}
	close(fd);
	TH_LOG("%ld ioctls succeeded, %ld failed", ok, failed);

	/* The module is still healthy. */
	ASSERT_EQ(0, vdrv_open(&d, 1 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	vdrv_close(&d);
	for (j = 0; j < 4; j++)
		close(fds[j]);
	munmap(buf, 1 << 20);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * Defects found in review (issue 11), one test each: every test here failed
 * on the module before its fix. Backing devices with the properties a defect
 * needs (slow, throttled, zoned, 4 KiB blocks, writeback throttling) come from
 * null_blk and scsi_debug, loaded here; a test skips when they are missing.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(8 << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A null_blk device @name configured by @attrs (name, value pairs, NULL
 * terminated) through configfs. Returns 0 and the node in @path, or -errno
 * (the attribute that failed is printed).
 */
static int nullb_create(const char *name, const char *const *attrs,
			char *path, size_t pathlen)
{
	char dir[128];
	int ret;

	if (system("modprobe null_blk nr_devices=0 2>/dev/null"))
		return -ENODEV;
	if (access("/sys/kernel/config/nullb", F_OK) &&
	    system("mount -t configfs none /sys/kernel/config 2>/dev/null"))
		return -ENODEV;
	snprintf(dir, sizeof(dir), "/sys/kernel/config/nullb/%s", name);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	for (; attrs[0]; attrs += 2) {
		ret = vblk_write_attr(dir, attrs[0], attrs[1]);
		if (ret) {
			fprintf(stderr, "# null_blk %s=%s: %s\n", attrs[0],
				attrs[1], strerror(-ret));
			rmdir(dir);
			return ret;
		}
	}
	ret = vblk_write_attr(dir, "power", "1");
	if (ret) {
		rmdir(dir);
		return ret;
	}
	snprintf(path, pathlen, "/dev/%s", name);
	for (int i = 0; i < 200 && access(path, F_OK); i++)
		usleep(10000);
	return access(path, F_OK) ? -ENOENT : 0;
}

static void nullb_remove(const char *name)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "/sys/kernel/config/nullb/%s", name);
	vblk_write_attr(dir, "power", "0");
	rmdir(dir);
}

static int set_mem_table(int fd, unsigned int n, const uint64_t *gpa,
			 const uint64_t *size, void *const *uaddr)
{
	struct vhost_memory *m;
	unsigned int i;
	int ret;

	m = calloc(1, sizeof(*m) + n * sizeof(m->regions[0]));
	m->nregions = n;
	for (i = 0; i < n; i++) {
		m->regions[i].guest_phys_addr = gpa[i];
		m->regions[i].memory_size = size[i];
		m->regions[i].userspace_addr = (uintptr_t)uaddr[i];
	}
	ret = ioctl(fd, VHOST_SET_MEM_TABLE, m) ? -errno : 0;
	free(m);
	return ret;
}

/*
 * A fixture only for its timeout: module loads, dmsetup and slow devices
 * take longer under TCG than the default 30 s (and the unfixed module took
 * minutes to detach).
 */
FIXTURE(slow) {
	int unused;
};

FIXTURE_SETUP(slow)
{
}

FIXTURE_TEARDOWN(slow)
{
}

/* --- 1: no completion writes after a memory-table change --- */

#define REGION_B	(1 << 20)

TEST_F_TIMEOUT(slow, mem_table_change_drains_bounced_read, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "512", "memory_backed", "1",
		"irqmode", "2", "completion_nsec", "2000000000", NULL };
	struct vdrv d;
	struct vreq r, ok;
	uint8_t *mem, *b, *tmp;
	uint64_t gpa[2], size[2];
	void *ua[2];
	char path[64];
	uint32_t head, len;
	double t0, took;
	int bdev, ret;
	size_t i;

	ret = nullb_create("vbh_slow", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no slow null_blk (irqmode=2, completion_nsec): %s",
		     strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);

	/* Region A: the driver's memory (rings, headers); B right after it. */
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	mem = mmap(NULL, MEM_SIZE + REGION_B, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	munmap(d.mem, d.mem_size);
	d.mem = mem;
	b = mem + MEM_SIZE;
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	gpa[0] = VDRV_GPA_BASE;
	size[0] = MEM_SIZE;
	ua[0] = mem;
	gpa[1] = VDRV_GPA_BASE + MEM_SIZE;
	size[1] = REGION_B;
	ua[1] = b;
	ASSERT_EQ(0, set_mem_table(d.fd, 2, gpa, size, ua));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	/* A read into B at +2: unaligned, so bounced, completed in 2 s. */
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 0);
	r.data = b + 2;
	r.len = 4096;
	ASSERT_LE(0, vdrv_start(&d, &d.q[0], &r, 1, false));
	vdrv_kick(&d.q[0]);
	usleep(300 * 1000);

	/* The VMM unplugs B, then maps something else at its address. */
	t0 = now_s();
	ASSERT_EQ(0, set_mem_table(d.fd, 1, gpa, size, ua));
	took = now_s() - t0;
	ASSERT_EQ(0, munmap(b, REGION_B));
	tmp = mmap(b, REGION_B, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(b, tmp);
	memset(b, 0xaa, REGION_B);

	ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &len, 10000));
	usleep(100 * 1000);
	for (i = 0; i < REGION_B; i++)
		if (b[i] != 0xaa)
			break;
	TH_LOG("SET_MEM_TABLE took %.2f s; first changed byte of the new mapping: %zd",
	       took, i < REGION_B ? (ssize_t)i : -1);
	ASSERT_EQ(REGION_B, i);
	ASSERT_EQ(VIRTIO_BLK_S_OK, *r.status);

	/* The ring runs again after the change. */
	ok = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 8, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &ok, 1, false, NULL));

	vdrv_close(&d);
	munmap(b, REGION_B);
	close(bdev);
	nullb_remove("vbh_slow");
}


/* --- 2: detach under a backlog of write-zeroes is bounded --- */

#define WZ_QUEUES	4
#define WZ_PER_QUEUE	16
#define WZ_SECTORS	((32U << 20) >> 9)
#define DETACH_BOUND_S	20.0

static int detach(struct vdrv *d)
{
	return vdrv_attach(d, -1);
}

static int wz_start(struct vdrv *d, struct vdrv_queue *q, uint64_t sector,
		    uint32_t nr, uint8_t **status)
{
	struct virtio_blk_outhdr *hdr = vdrv_alloc(d, sizeof(*hdr), 16);
	struct virtio_blk_discard_write_zeroes *seg =
		vdrv_alloc(d, sizeof(*seg), 16);
	struct vseg segs[3];

	hdr->type = VIRTIO_BLK_T_WRITE_ZEROES;
	hdr->sector = 0;
	seg->sector = sector;
	seg->num_sectors = nr;
	seg->flags = 0;
	*status = vdrv_alloc(d, 1, 1);
	**status = 0xff;
	segs[0] = (struct vseg){ hdr, sizeof(*hdr), false };
	segs[1] = (struct vseg){ seg, sizeof(*seg), false };
	segs[2] = (struct vseg){ *status, 1, true };
	return vdrv_add(d, q, segs, 3, false);
}

TEST_F_TIMEOUT(slow, detach_bounded_under_write_zeroes, 200)
{
	/* 50 MB/s, not memory backed: zeroes cost time, not memory. */
	static const char *const attrs[] = {
		"size", "4096", "blocksize", "512", "memory_backed", "0",
		"mbps", "50", NULL };
	uint8_t *status[WZ_QUEUES][WZ_PER_QUEUE];
	unsigned int i, j, done = 0;
	char path[64];
	struct vdrv d;
	double t0, took;
	int bdev, ret;

	ret = nullb_create("vbh_thr", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no throttled null_blk (mbps=50): %s",
		     strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, WZ_QUEUES, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	for (i = 0; i < WZ_QUEUES; i++) {
		for (j = 0; j < WZ_PER_QUEUE; j++)
			ASSERT_LE(0, wz_start(&d, &d.q[i], j * WZ_SECTORS,
					      WZ_SECTORS, &status[i][j]));
		vdrv_kick(&d.q[i]);
	}
	usleep(500 * 1000);

	t0 = now_s();
	ASSERT_EQ(0, detach(&d));
	took = now_s() - t0;
	for (i = 0; i < WZ_QUEUES; i++)
		for (j = 0; j < WZ_PER_QUEUE; j++)
			done += *status[i][j] == VIRTIO_BLK_S_OK;
	TH_LOG("detach with %u x 32 MiB write-zeroes queued took %.1f s (%u completed)",
	       WZ_QUEUES * WZ_PER_QUEUE, took, done);
	ASSERT_GT(DETACH_BOUND_S, took);

	vdrv_close(&d);
	close(bdev);
	nullb_remove("vbh_thr");
}

/* --- 6: VHOST_SET_FEATURES: owner only, not while attached --- */

TEST(set_features_owner_and_busy)
{
	uint64_t f = VHOST_BLK_FEATURES;
	struct vdrv d;
	size_t bytes;
	int bdev, status;
	pid_t pid;

	bdev = vblk_brd(0, &bytes);
	if (bdev < 0)
		SKIP(return, "no brd ram disk: %s", strerror(-bdev));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, f));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (!ioctl(d.fd, VHOST_SET_FEATURES, &f))
			_exit(1);
		_exit(errno == EPERM ? 0 : 2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child's SET_FEATURES: not EPERM (%d)",
						 WEXITSTATUS(status));

	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	f &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	EXPECT_EQ(-1, ioctl(d.fd, VHOST_SET_FEATURES, &f));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, detach(&d));
	EXPECT_EQ(0, ioctl(d.fd, VHOST_SET_FEATURES, &f));
	vdrv_close(&d);
	close(bdev);
}

/* --- 14: ENOTTY for every command the device does not implement --- */

TEST(unknown_ioctl_enotty)
{
	static const unsigned long cmds[] = {
		_IOW(VHOST_VIRTIO, 0x5f, unsigned int),
		_IOWR(VHOST_VIRTIO, 0x2f, struct vhost_vring_state),
		_IO(VHOST_VIRTIO, 0x7f),
		_IOW('x', 1, int),
	};
	struct vhost_vring_state s;
	unsigned int i, j;
	int fd;

	fd = open("/dev/vhost-blk", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		for (j = 0; j < 3; j++) {
			void *arg = j == 2 ? NULL : &s;

			s.index = j ? 1000 : 0;
			s.num = 0;
			errno = 0;
			EXPECT_EQ(-1, ioctl(fd, cmds[i], arg));
			EXPECT_EQ(ENOTTY, errno)
				TH_LOG("cmd %#lx arg %u: %s", cmds[i], j,
				       strerror(errno));
		}
	}
	close(fd);
}

/* --- 13: overlapping memory-table regions --- */

TEST(mem_table_overlap_einval)
{
	uint64_t gpa[2], size[2];
	void *ua[2];
	uint8_t *mem;
	int fd;

	fd = open("/dev/vhost-blk", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	mem = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);

	/* Adjacent in both spaces: fine. */
	gpa[0] = 0; size[0] = 2 << 20; ua[0] = mem;
	gpa[1] = 2 << 20; size[1] = 2 << 20; ua[1] = mem + (2 << 20);
	EXPECT_EQ(0, set_mem_table(fd, 2, gpa, size, ua));
	/* Guest-physical ranges overlap by a page. */
	gpa[1] = (2 << 20) - 4096;
	EXPECT_EQ(-EINVAL, set_mem_table(fd, 2, gpa, size, ua));
	/* Userspace ranges overlap (two guest addresses, one page). */
	gpa[1] = 8 << 20;
	ua[1] = mem + (2 << 20) - 4096;
	EXPECT_EQ(-EINVAL, set_mem_table(fd, 2, gpa, size, ua));
	/* One inside the other. */
	ua[1] = mem + 4096; size[1] = 4096;
	EXPECT_EQ(-EINVAL, set_mem_table(fd, 2, gpa, size, ua));
	munmap(mem, 4 << 20);
	close(fd);
}

/* --- 8: zoned devices are refused at attach --- */

TEST_F_TIMEOUT(slow, zoned_refused, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "4096", "memory_backed", "1",
		"zoned", "1", "zone_size", "4", NULL };
	struct vdrv d;
	char path[64];
	int bdev, ret;

	ret = nullb_create("vbh_zoned", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no zoned null_blk: %s", strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	EXPECT_EQ(-EOPNOTSUPP, vdrv_attach(&d, bdev));
	vdrv_close(&d);
	close(bdev);
	nullb_remove("vbh_zoned");
}

/* --- scsi_debug: a SCSI disk, so writeback throttling is on --- */

/* Load scsi_debug with @params; the disk's node in @path. */
static int sdebug_load(const char *params, char *path, size_t pathlen)
{
	char cmd[256];
	glob_t g;
	int i, ret = -ENOENT;

	if (!access("/sys/bus/pseudo/drivers/scsi_debug", F_OK) &&
	    system("rmmod scsi_debug 2>/dev/null"))
		return -EBUSY;
	/* sd_mod too: without udev nothing loads it for the new disk. */
	snprintf(cmd, sizeof(cmd),
		 "modprobe sd_mod 2>/dev/null; modprobe scsi_debug %s 2>/dev/null",
		 params);
	if (system(cmd))
		return -ENODEV;
	for (i = 0; i < 200 && ret; i++) {
		if (!glob("/sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/*",
			  0, NULL, &g)) {
			snprintf(path, pathlen, "/dev/%s",
				 strrchr(g.gl_pathv[0], '/') + 1);
			ret = access(path, F_OK) ? -ENOENT : 0;
			globfree(&g);
		}
		if (ret)
			usleep(20000);
	}
	return ret;
}

/*
 * No command delay. scsi_debug refuses to change it (EBUSY) while commands
 * are queued, so retry for up to 30 s: left at seconds a command, an
 * unmount or a flush after the test would take minutes.
 */
static int sdebug_no_delay(void)
{
	int i, ret = -EBUSY;

	for (i = 0; i < 300 && ret == -EBUSY; i++) {
		ret = vblk_write_attr("/sys/bus/pseudo/drivers/scsi_debug",
				      "delay", "0");
		if (ret == -EBUSY)
			usleep(100000);
	}
	return ret;
}

static void sdebug_unload(void)
{
	if (sdebug_no_delay())
		fprintf(stderr, "# scsi_debug delay=0 failed\n");
	if (system("rmmod scsi_debug 2>/dev/null"))
		fprintf(stderr, "# rmmod scsi_debug failed\n");
}

static long read_long(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 0) : -1;
}

/* --- 3: guest writes are not background writeback --- */

/* Bios by their exact RWBS, from block_bio_queue (vblk_trace_*). */
struct rwbs_count {
	int ws, w, fws, fw;
};

static void count_rwbs(void *arg, const char *rwbs, uint64_t sector,
		       unsigned int sectors)
{
	struct rwbs_count *c = arg;

	(void)sector;
	(void)sectors;
	c->ws += !strcmp(rwbs, "WS");
	c->w += !strcmp(rwbs, "W");
	c->fws += !strcmp(rwbs, "FWS");
	c->fw += !strcmp(rwbs, "FW");
}

TEST_F_TIMEOUT(slow, writes_are_sync_not_writeback, 200)
{
	char path[64], attr[128];
	uint32_t head, len;
	struct stat st;
	struct vdrv d;
	struct vreq w[64];
	double t0, took;
	struct rwbs_count c = { 0 };
	int bdev, i, ret, round;
	long lat;

	ret = sdebug_load("dev_size_mb=64", path, sizeof(path));
	if (ret)
		SKIP(return, "no scsi_debug disk: %s", strerror(-ret));
	snprintf(attr, sizeof(attr), "/sys/block/%s/queue/wbt_lat_usec",
		 path + 5);
	lat = read_long(attr);
	if (lat <= 0) {
		sdebug_unload();
		SKIP(return, "writeback throttling is off on %s (wbt_lat_usec %ld)",
		     path, lat);
	}
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, fstat(bdev, &st));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 128, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	/* What the block layer sees of guest writes and flushes. */
	ret = vblk_trace_begin(st.st_rdev);
	if (ret == -ENOENT) {
		TH_LOG("no block_bio_queue event in tracefs: RWBS not checked; wbt_on_completes_as_many_as_off checks the effect");
	} else {
		ASSERT_EQ(0, ret);
		ASSERT_LE(0, vblk_trace_take(count_rwbs, &c));
		memset(&c, 0, sizeof(c));
		for (i = 0; i < 8; i++) {
			w[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, i * 128,
					      65536);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  vdrv_do(&d, &d.q[0], &w[i], 1, false, NULL));
		}
		w[8] = vdrv_req_alloc(&d, VIRTIO_BLK_T_FLUSH, 0, 0);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vdrv_do(&d, &d.q[0], &w[8], 0, false, NULL));
		ASSERT_LE(0, vblk_trace_take(count_rwbs, &c));
		vblk_trace_end();
		TH_LOG("block_bio_queue on %s: %d WS, %d plain W; flush: %d FWS, %d FW",
		       path, c.ws, c.w, c.fws, c.fw);
		EXPECT_LE(8, c.ws);
		EXPECT_EQ(0, c.w);
		EXPECT_EQ(0, c.fw);
	}

	/*
	 * A slow disk (100 jiffies a command). Two rounds of 16 writes let
	 * wbt see the latency and scale its depth down, as on a busy disk;
	 * then 64 writes in flight, and close.
	 */
	ASSERT_EQ(0, vblk_write_attr("/sys/bus/pseudo/drivers/scsi_debug", "delay",
				"100"));
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 16; i++) {
			w[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, i * 128,
					      65536);
			ASSERT_LE(0, vdrv_start(&d, &d.q[0], &w[i], 1, true));
		}
		vdrv_kick(&d.q[0]);
		for (i = 0; i < 16; i++)
			ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &len,
						   60000));
	}
	for (i = 0; i < 64; i++) {
		w[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, i * 128, 65536);
		ASSERT_LE(0, vdrv_start(&d, &d.q[0], &w[i], 1, true));
	}
	vdrv_kick(&d.q[0]);
	usleep(500 * 1000);
	t0 = now_s();
	vdrv_close(&d);
	took = now_s() - t0;
	TH_LOG("close with 64 x 64 KiB writes on a 100-jiffy disk took %.1f s",
	       took);
	EXPECT_GT(10.0, took);
	close(bdev);
	sdebug_unload();
}

/*
 * Guest requests of 4 KiB kept @qd deep on queue 0 for @secs, one in 8 a
 * read (wbt scales its write depth down when reads wait, as a guest's
 * reads do behind its writes): the number of writes completed (all must
 * be OK; *@reads gets the reads), or -1 on a timeout or error.
 */
static long qd_mixed(struct vdrv *d, unsigned int qd, double secs,
		     long *reads)
{
	struct vdrv_queue *q = &d->q[0];
	int slot_of[256], i, h, busy = 0;
	struct vreq w[64];
	uint32_t head, len;
	long done = 0;
	double end;

	if (qd > 64 || q->num > 256)
		return -1;
	for (i = 0; i < (int)qd; i++)
		w[i] = vdrv_req_alloc(d, i % 8 ? VIRTIO_BLK_T_OUT :
				      VIRTIO_BLK_T_IN, i * 8, 4096);
	/* One indirect descriptor each: all @qd fit in the ring. */
	for (i = 0; i < (int)qd; i++, busy++) {
		h = vdrv_start(d, q, &w[i], 1, true);
		if (h < 0)
			return -1;
		slot_of[h] = i;
	}
	vdrv_kick(q);
	end = now_s() + secs;
	while (busy) {
		bool more = now_s() < end;

		if (vdrv_get_used(d, q, &head, &len, 30000))
			return -1;
		/* Take every completion there is, then one kick for all. */
		do {
			busy--;
			i = slot_of[head];
			if (*w[i].status != VIRTIO_BLK_S_OK)
				return -1;
			if (!more)
				continue;
			if (i % 8)
				done++;
			else
				(*reads)++;
			h = vdrv_start(d, q, &w[i], 1, true);
			if (h < 0)
				return -1;
			slot_of[h] = i;
			busy++;
		} while (!vdrv_reap(d, q, &head, &len));
		if (more)
			vdrv_kick(q);
	}
	return done;
}

/*
 * The figure: a guest's requests at QD 64 for 5 s on a scsi_debug
 * disk with writeback throttling at its default latency target, against
 * the same with it off. Each command takes 3 ms, so reads always miss the
 * 2 ms target and wbt throttles background writes (the issue: 1279
 * requests against 20579 on 6.12). Reads are never throttled, so the
 * writes are counted. On and off alternate in halves of 2.5 s against
 * drift in the host's load.
 *
 * Measured under TCG here, the unfixed module completed 1/1.8 to 1/2.8 of
 * the writes with wbt on, while the fixed one, which wbt does not throttle
 * at all, measured from 1.1x to 1/1.8 between runs: the figure is a
 * diagnostic. The bound, a quarter, catches only a collapse like the
 * issue's; writes_are_sync_not_writeback is the check that failed before
 * the fix.
 */
TEST_F_TIMEOUT(slow, wbt_on_completes_as_many_as_off, 120)
{
	char path[64], attr[128], lat_s[32];
	long lat, n, on = 0, off = 0, rd[2] = { 0, 0 };
	struct vdrv d;
	int bdev, ret, i;

	ret = sdebug_load("dev_size_mb=64 ndelay=3000000", path, sizeof(path));
	if (ret)
		SKIP(return, "no scsi_debug disk: %s", strerror(-ret));
	snprintf(attr, sizeof(attr), "/sys/block/%s/queue/wbt_lat_usec",
		 path + 5);
	lat = read_long(attr);
	if (lat <= 0) {
		sdebug_unload();
		SKIP(return, "writeback throttling is off on %s (wbt_lat_usec %ld)",
		     path, lat);
	}
	snprintf(lat_s, sizeof(lat_s), "%ld", lat);
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 128, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, vblk_write_str(attr, i % 2 ? "0" : lat_s));
		n = qd_mixed(&d, 64, 2.5, &rd[i % 2]);
		ASSERT_LT(0, n);
		if (i % 2)
			off += n;
		else
			on += n;
	}
	ASSERT_EQ(0, vblk_write_str(attr, lat_s));
	TH_LOG("%s (3 ms a command), 4 KiB guest requests at QD 64 for 5 s, 7 writes to a read: %ld writes (and %ld reads) with wbt on (wbt_lat_usec %ld), %ld writes (%ld reads) with it off",
	       path, on, rd[0], lat, off, rd[1]);
	EXPECT_LE(off, 4 * on);

	vdrv_close(&d);
	close(bdev);
	sdebug_unload();
}

/*
 * The header's ioprio on the bios, seen by mq-deadline: its debugfs
 * "queued" counts requests inserted and not yet completed per class (RT,
 * BE, IDLE). Best-effort and idle pass; real-time, which a guest must not
 * get, becomes no priority (the worker's: best-effort).
 */
#define DEBUGFS		"/sys/kernel/debug"
#define PRIO(class, data)	(((class) << 13) | (data))

static int dd_queued(const char *dev, unsigned int *rt, unsigned int *be,
		     unsigned int *idle)
{
	char p[128], buf[64] = "";

	snprintf(p, sizeof(p), DEBUGFS "/block/%s/sched/queued", dev);
	if (vblk_read_str(p, buf, sizeof(buf)))
		return -1;
	return sscanf(buf, "%u %u %u", rt, be, idle) == 3 ? 0 : -1;
}

/*
 * Poll the counters until @n requests are in (or 10 s): the sample with the
 * most requests in it.
 */
static int dd_queued_all(const char *dev, unsigned int n, unsigned int *rt,
			 unsigned int *be, unsigned int *idle)
{
	unsigned int r, b, i, best = 0;
	double end = now_s() + 10;

	*rt = *be = *idle = 0;
	do {
		usleep(20000);
		if (dd_queued(dev, &r, &b, &i))
			return -1;
		if (r + b + i >= best) {
			best = r + b + i;
			*rt = r;
			*be = b;
			*idle = i;
		}
	} while (best < n && now_s() < end);
	return 0;
}

/*
 * A scsi_debug disk (@params) with mq-deadline, whose debugfs counters show
 * the class of every queued request. 0, or non-zero with @why saying what
 * is missing (the disk is gone again).
 */
static int ioprio_disk(const char *params, char *path, size_t pathlen,
		       char *why, size_t whylen)
{
	unsigned int rt, be, idle;
	char attr[128];
	int ret;

	ret = sdebug_load(params, path, pathlen);
	if (ret) {
		snprintf(why, whylen, "no scsi_debug disk: %s", strerror(-ret));
		return ret;
	}
	snprintf(attr, sizeof(attr), "/sys/block/%s/queue", path + 5);
	if (vblk_write_attr(attr, "scheduler", "mq-deadline")) {
		snprintf(why, whylen, "no mq-deadline scheduler for %s", path);
		goto unload;
	}
	if (access(DEBUGFS "/block", F_OK))
		system("mount -t debugfs none " DEBUGFS " 2>/dev/null");
	if (dd_queued(path + 5, &rt, &be, &idle)) {
		snprintf(why, whylen,
			 "no mq-deadline queued counters in debugfs (CONFIG_BLK_DEBUG_FS)");
		goto unload;
	}
	return 0;
unload:
	sdebug_unload();
	return -ENOENT;
}

/*
 * Four idle, four real-time and four best-effort guest reads in flight on
 * @d's ioprio_disk() at @path (@where says what lies between): mq-deadline
 * must queue them as 4 IDLE and 8 BE (a guest gets no real-time class), and
 * each must complete OK.
 */
static void ioprio_reads(struct __test_metadata *_metadata, struct vdrv *d,
			 const char *path, const char *where)
{
	static const uint32_t prio[3] = {
		PRIO(3, 0),	/* idle */
		PRIO(1, 0),	/* real-time: not for a guest */
		PRIO(2, 7),	/* best-effort, lowest level */
	};
	unsigned int rt, be, idle, i;
	uint32_t head, len;
	struct vreq r[12];

	/* Each command takes 5 s (1250 jiffies at HZ=250): all 12 overlap. */
	ASSERT_EQ(0, vblk_write_attr("/sys/bus/pseudo/drivers/scsi_debug",
				     "delay", "1250"));
	/* Not adjacent: requests of one priority must not merge. */
	for (i = 0; i < 12; i++) {
		r[i] = vdrv_req_alloc(d, VIRTIO_BLK_T_IN, i * 16, 4096);
		r[i].hdr->ioprio = prio[i % 3];
		ASSERT_LE(0, vdrv_start(d, &d->q[0], &r[i], 1, false));
	}
	vdrv_kick(&d->q[0]);
	ASSERT_EQ(0, dd_queued_all(path + 5, 12, &rt, &be, &idle));
	TH_LOG("mq-deadline on %s%s, 4 idle, 4 real-time, 4 best-effort guest reads in flight: queued RT %u, BE %u, IDLE %u",
	       path, where, rt, be, idle);
	EXPECT_EQ(0, rt);
	EXPECT_EQ(8, be);
	EXPECT_EQ(4, idle);
	for (i = 0; i < 12; i++)
		ASSERT_EQ(0, vdrv_get_used(d, &d->q[0], &head, &len, 60000));
	for (i = 0; i < 12; i++)
		EXPECT_EQ(VIRTIO_BLK_S_OK, *r[i].status);
}

TEST_F_TIMEOUT(slow, header_ioprio_on_bios, 120)
{
	char path[64], why[128];
	struct vdrv d;
	int bdev;

	if (ioprio_disk("dev_size_mb=16", path, sizeof(path), why, sizeof(why)))
		SKIP(return, "%s", why);
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	ioprio_reads(_metadata, &d, path, "");

	vdrv_close(&d);
	close(bdev);
	sdebug_unload();
}

/*
 * The same through a raw image in the direct cache mode: kiocbs with
 * ki_ioprio on an ext4 file, whose direct I/O gives the bios the kiocb's
 * priority. The buffered modes have no per-request priority to give (the
 * page cache issues the I/O).
 */
#define IMG_MNT		"/tmp/vbh_ext4"

TEST_F_TIMEOUT(slow, header_ioprio_on_image_kiocbs, 180)
{
	char path[64], why[128], cmd[512];
	const char *img = IMG_MNT "/disk.img";
	struct vdrv d;
	int fd;
	uint8_t *buf;

	if (ioprio_disk("dev_size_mb=64", path, sizeof(path), why, sizeof(why)))
		SKIP(return, "%s", why);
	/* Inode tables and journal written now: no lazy-init I/O below. */
	snprintf(cmd, sizeof(cmd),
		 "modprobe ext4 && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s && mkdir -p " IMG_MNT " && mount -t ext4 -o noatime,commit=600 %s " IMG_MNT,
		 path, path);
	if (system(cmd)) {
		sdebug_unload();
		SKIP(return, "no ext4 on %s (mkfs.ext4 and the ext4 module)", path);
	}
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	buf = malloc(1 << 20);
	ASSERT_NE(NULL, buf);
	vblk_fill(buf, 1 << 20, 3);
	/* Written, not preallocated: reads of unwritten extents do no I/O. */
	ASSERT_EQ(1 << 20, write(fd, buf, 1 << 20));
	ASSERT_EQ(0, fsync(fd));
	free(buf);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, fd));

	/*
	 * Nothing of ext4's left to write (its metadata sits dirty in the
	 * disk's page cache after the journal commit), so only the guest's
	 * reads meet the 5 s commands and the delay can be reset after them.
	 */
	sync();
	ioprio_reads(_metadata, &d, path, " under an ext4 image");

	EXPECT_EQ(0, sdebug_no_delay());
	vdrv_close(&d);
	close(fd);
	if (system("umount " IMG_MNT))
		TH_LOG("umount " IMG_MNT " failed");
	sdebug_unload();
}

/*
 * --- 5: alignment_offset of a misaligned stack ---
 * bdev_alignment_offset() is -1 for a stack whose legs disagree; the config
 * space's u8 field got that divided by the block size and truncated.
 *
 * Legs at offsets 0 and 1 sector of one 4 KiB-physical disk: 6.1 marks the
 * stack misaligned (-1), 6.12 settles on the legs' common offset (3584,
 * blk_validate_limits() clears the misaligned flag when the offset is not
 * 0), so on 6.12 this checks that offset is reported and cannot see the
 * truncation; the io_opt stack below is misaligned on both.
 */

TEST_F_TIMEOUT(slow, misaligned_stack_alignment_offset_zero, 120)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct virtio_blk_config *cfg = (void *)c.config;
	char path[64], cmd[512], dm[128], attr[128];
	struct stat st;
	struct vdrv d;
	int bdev, ret, ioc_off = 0;
	long off;

	ret = sdebug_load("dev_size_mb=16 physblk_exp=3", path, sizeof(path));
	if (ret)
		SKIP(return, "no scsi_debug disk: %s", strerror(-ret));
	/* Two legs at offsets 0 and 1 sector of a 4 KiB-physical disk. */
	snprintf(cmd, sizeof(cmd),
		 "modprobe dm-mod; DM_DISABLE_UDEV=1 dmsetup remove vbh_misaligned 2>/dev/null; printf '0 64 linear %s 0\\n64 64 linear %s 1\\n' | DM_DISABLE_UDEV=1 dmsetup create vbh_misaligned",
		 path, path);
	if (system(cmd)) {
		sdebug_unload();
		SKIP(return, "dmsetup create of a dm-linear table failed");
	}
	snprintf(dm, sizeof(dm), "/dev/mapper/vbh_misaligned");
	bdev = vblk_open_dev(dm, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, fstat(bdev, &st));
	snprintf(attr, sizeof(attr), "/sys/dev/block/%u:%u/alignment_offset",
		 major(st.st_rdev), minor(st.st_rdev));
	off = read_long(attr);
	ASSERT_EQ(0, ioctl(bdev, BLKALIGNOFF, &ioc_off));
	TH_LOG("%s alignment_offset: sysfs %ld, BLKALIGNOFF %d", dm, off,
	       ioc_off);
	ASSERT_EQ(off, ioc_off);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, &c));
	TH_LOG("config alignment_offset %u, physical_block_exp %u",
	       cfg->alignment_offset, cfg->physical_block_exp);
	/*
	 * 6.1 keeps the stack marked misaligned (-1); 6.12 keeps the legs'
	 * common offset instead. Either way: never a truncated -1.
	 */
	EXPECT_EQ(off < 0 ? 0 : off / 512, cfg->alignment_offset);
	vdrv_close(&d);
	close(bdev);
	if (system("DM_DISABLE_UDEV=1 dmsetup remove vbh_misaligned"))
		TH_LOG("dmsetup remove vbh_misaligned failed");
	sdebug_unload();
}

/*
 * The misaligned case itself, on both kernels: a leg whose optimal I/O size
 * (4.5 KiB, scsi_debug opt_blks=9 on 512-byte blocks) is not a multiple of
 * another leg's physical block (null_blk, 4 KiB). Stacking marks the table
 * misaligned with no common offset, so bdev_alignment_offset() is -1 on 6.1
 * and 6.12 alike (6.12 keeps the flag when the offset it settles on is 0).
 */
TEST_F_TIMEOUT(slow, misaligned_io_opt_stack_alignment_offset_zero, 120)
{
	static const char *const attrs[] = {
		"size", "16", "blocksize", "4096", "memory_backed", "1", NULL };
	struct vhost_blk_config c = { .size = sizeof(c) };
	struct virtio_blk_config *cfg = (void *)c.config;
	char path[64], nb[64], cmd[512], attr[128];
	const char *dm = "/dev/mapper/vbh_misaligned";
	struct stat st;
	struct vdrv d;
	int bdev, ret;
	long off;

	ret = sdebug_load("dev_size_mb=16 opt_blks=9", path, sizeof(path));
	if (ret)
		SKIP(return, "no scsi_debug disk: %s", strerror(-ret));
	ret = nullb_create("vbh_4k", attrs, nb, sizeof(nb));
	if (ret) {
		sdebug_unload();
		SKIP(return, "no null_blk: %s", strerror(-ret));
	}
	snprintf(cmd, sizeof(cmd),
		 "modprobe dm-mod; DM_DISABLE_UDEV=1 dmsetup remove vbh_misaligned 2>/dev/null; printf '0 64 linear %s 0\\n64 64 linear %s 0\\n' | DM_DISABLE_UDEV=1 dmsetup create vbh_misaligned",
		 path, nb);
	if (system(cmd)) {
		nullb_remove("vbh_4k");
		sdebug_unload();
		SKIP(return, "dmsetup create of a dm-linear table failed");
	}
	bdev = vblk_open_dev(dm, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, fstat(bdev, &st));
	snprintf(attr, sizeof(attr), "/sys/dev/block/%u:%u/alignment_offset",
		 major(st.st_rdev), minor(st.st_rdev));
	off = read_long(attr);
	TH_LOG("%s over %s (io_opt 4608) and %s (4 KiB): sysfs alignment_offset %ld",
	       dm, path, nb, off);
	/* The case under test: the block layer reports the stack misaligned. */
	ASSERT_EQ(-1, off);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, &c));
	TH_LOG("config alignment_offset %u", cfg->alignment_offset);
	EXPECT_EQ(0, cfg->alignment_offset);
	vdrv_close(&d);
	close(bdev);
	if (system("DM_DISABLE_UDEV=1 dmsetup remove vbh_misaligned"))
		TH_LOG("dmsetup remove vbh_misaligned failed");
	nullb_remove("vbh_4k");
	sdebug_unload();
}

/* --- 11: page pieces that are not whole logical blocks are bounced --- */

TEST_F_TIMEOUT(slow, blocks_straddling_pages_on_4k_null_blk, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "4096", "memory_backed", "1", NULL };
	const uint32_t len = 1 << 20;
	struct vreq w, r;
	char path[64];
	uint8_t *check, *buf;
	struct vdrv d;
	int bdev, ret;

	ret = nullb_create("vbh_4k", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no null_blk with 4 KiB blocks: %s", strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	/* Room for a direct chain of 66 descriptors. */
	ASSERT_EQ(0, vdrv_setup(&d, 1, 128, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	check = malloc(len);
	ASSERT_NE(NULL, check);

	/*
	 * Whole 4 KiB blocks starting 512 bytes into a page: each block is a
	 * piece of 3584 and one of 512 bytes. First one block, then 1 MiB in
	 * 64 segments of 16 KiB (on 6.12 this oopsed in null_blk).
	 */
	buf = vdrv_alloc(&d, 4096 + 512, 4096);
	w = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0, 0);
	w.data = buf + 512;
	w.len = 4096;
	vblk_fill(w.data, 4096, 11);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &w, 1, false, NULL));
	ASSERT_EQ(0, vblk_pread(bdev, check, 4096, 0));
	EXPECT_EQ(0, memcmp(check, w.data, 4096));
	buf = vdrv_alloc(&d, 4096 + 512, 4096);
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 0);
	r.data = buf + 512;
	r.len = 4096;
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	EXPECT_EQ(0, memcmp(check, r.data, 4096));

	buf = vdrv_alloc(&d, len + 512, 4096);
	w = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 64, 0);
	w.data = buf + 512;
	w.len = len;
	vblk_fill(w.data, len, 12);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &w, 64, false, NULL));
	ASSERT_EQ(0, vblk_pread(bdev, check, len, 64 * 512));
	EXPECT_EQ(0, memcmp(check, w.data, len));

	/* And back: a read laid out the same way. */
	buf = vdrv_alloc(&d, len + 512, 4096);
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 64, 0);
	r.data = buf + 512;
	r.len = len;
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 64, false, NULL));
	EXPECT_EQ(0, memcmp(check, r.data, len));

	free(check);
	vdrv_close(&d);
	close(bdev);
	nullb_remove("vbh_4k");
}

/* --- 10: devices that need stable pages get a copy of guest writes --- */

TEST_F_TIMEOUT(slow, stable_writes_bounced, 120)
{
	char cmd[512], attr[128];
	const char *dm = "/dev/mapper/vbh_delay";
	struct stat st;
	uint8_t *check;
	size_t bytes;
	struct vdrv d;
	struct vreq w;
	uint32_t head, len;
	int brd, bdev;

	brd = vblk_brd(0, &bytes);
	if (brd < 0)
		SKIP(return, "no brd ram disk: %s", strerror(-brd));
	/* Writes reach brd 1 s late: it copies the pages then. */
	snprintf(cmd, sizeof(cmd),
		 "modprobe dm-delay; DM_DISABLE_UDEV=1 dmsetup remove vbh_delay 2>/dev/null; echo '0 2048 delay /dev/ram0 0 0 /dev/ram0 0 1000' | DM_DISABLE_UDEV=1 dmsetup create vbh_delay");
	if (system(cmd)) {
		close(brd);
		SKIP(return, "dmsetup create of a dm-delay target failed");
	}
	bdev = vblk_open_dev(dm, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, fstat(bdev, &st));
	snprintf(attr, sizeof(attr), "/sys/dev/block/%u:%u/queue",
		 major(st.st_rdev), minor(st.st_rdev));
	ASSERT_EQ(0, vblk_write_attr(attr, "stable_writes", "1"));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	/* A page-aligned write (zero-copy material), rewritten in flight. */
	w = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0, 4096);
	vblk_fill(w.data, 4096, 10);
	check = malloc(4096);
	ASSERT_NE(NULL, check);
	memcpy(check, w.data, 4096);
	ASSERT_LE(0, vdrv_start(&d, &d.q[0], &w, 1, false));
	vdrv_kick(&d.q[0]);
	usleep(300 * 1000);
	memset(w.data, 0x55, 4096);
	ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &len, 10000));
	ASSERT_EQ(VIRTIO_BLK_S_OK, *w.status);
	ASSERT_EQ(0, vblk_pread(brd, w.data, 4096, 0));
	EXPECT_EQ(0, memcmp(check, w.data, 4096))
		TH_LOG("the device got the buffer as rewritten after submission");

	free(check);
	vdrv_close(&d);
	close(bdev);
	if (system("DM_DISABLE_UDEV=1 dmsetup remove vbh_delay"))
		TH_LOG("dmsetup remove vbh_delay failed");
	close(brd);
}

/* --- 12: write-zeroes a loop device over tmpfs cannot offload --- */

static int wz_do(struct vdrv *d, uint64_t sector, uint32_t nr, uint32_t flags)
{
	struct virtio_blk_outhdr *hdr = vdrv_alloc(d, sizeof(*hdr), 16);
	struct virtio_blk_discard_write_zeroes *seg =
		vdrv_alloc(d, sizeof(*seg), 16);
	uint8_t *status = vdrv_alloc(d, 1, 1);
	struct vseg segs[3];
	uint32_t head, len;

	hdr->type = VIRTIO_BLK_T_WRITE_ZEROES;
	seg->sector = sector;
	seg->num_sectors = nr;
	seg->flags = flags;
	*status = 0xff;
	segs[0] = (struct vseg){ hdr, sizeof(*hdr), false };
	segs[1] = (struct vseg){ seg, sizeof(*seg), false };
	segs[2] = (struct vseg){ status, 1, true };
	if (vdrv_add(d, &d->q[0], segs, 3, false) < 0)
		return -1;
	vdrv_kick(&d->q[0]);
	if (vdrv_get_used(d, &d->q[0], &head, &len, 10000))
		return -1;
	return *status;
}

TEST_F_TIMEOUT(slow, write_zeroes_on_loop_over_tmpfs, 120)
{
	const char *img = "/tmp/vbh-loop.img";
	const uint32_t len = 1 << 20;
	char path[64], attr[128];
	uint8_t *buf, *zero;
	struct stat st;
	struct vdrv d;
	int bdev, ret;
	long wz;

	ret = vblk_loop(img, 32 << 20, path, sizeof(path));
	if (ret)
		SKIP(return, "cannot set up a loop device: %s", strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, fstat(bdev, &st));
	snprintf(attr, sizeof(attr),
		 "/sys/dev/block/%u:%u/queue/write_zeroes_max_bytes",
		 major(st.st_rdev), minor(st.st_rdev));
	wz = read_long(attr);
	TH_LOG("%s over a tmpfs file: write_zeroes_max_bytes %ld", path, wz);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	buf = malloc(len);
	zero = calloc(1, len);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, zero);

	/* Without UNMAP (loop: FALLOC_FL_ZERO_RANGE, which tmpfs lacks). */
	vblk_fill(buf, len, 12);
	ASSERT_EQ(0, vblk_pwrite(bdev, buf, len, 4096));
	EXPECT_EQ(VIRTIO_BLK_S_OK, wz_do(&d, 8, len / 512, 0));
	ASSERT_EQ(0, vblk_pread(bdev, buf, len, 4096));
	EXPECT_EQ(0, memcmp(buf, zero, len));
	/* With UNMAP (punching a hole works on tmpfs). */
	vblk_fill(buf, len, 13);
	ASSERT_EQ(0, vblk_pwrite(bdev, buf, len, 4096));
	EXPECT_EQ(VIRTIO_BLK_S_OK,
		  wz_do(&d, 8, len / 512, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP));
	ASSERT_EQ(0, vblk_pread(bdev, buf, len, 4096));
	EXPECT_EQ(0, memcmp(buf, zero, len));

	free(buf);
	free(zero);
	vdrv_close(&d);
	close(bdev);
	vblk_loop_remove(path);
	unlink(img);
}

/*
 * --- 10b: a device that needs stable pages, with a guest buffer it could
 * not take anyway (at +1, odd pieces) and write zeroes ---
 * Both reasons to bounce at once end in one copy; write zeroes (here the
 * block layer's zero pages: null_blk has no offload) leave zeroes and
 * nothing else changed.
 */
TEST_F_TIMEOUT(slow, stable_writes_unaligned_and_write_zeroes, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "512", "memory_backed", "1", NULL };
	const uint32_t len = 64 << 10;
	struct virtio_blk_outhdr *hdr;
	uint8_t *buf, *check, *status;
	char path[64], attr[128];
	struct vseg segs[6];
	uint32_t head, used;
	struct stat st;
	struct vdrv d;
	int bdev, ret;

	ret = nullb_create("vbh_stable", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no null_blk: %s", strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, fstat(bdev, &st));
	snprintf(attr, sizeof(attr), "/sys/dev/block/%u:%u/queue",
		 major(st.st_rdev), minor(st.st_rdev));
	ret = vblk_write_attr(attr, "stable_writes", "1");
	if (ret) {
		close(bdev);
		nullb_remove("vbh_stable");
		SKIP(return, "cannot set stable_writes on null_blk: %s",
		     strerror(-ret));
	}
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	check = malloc(len);
	ASSERT_NE(NULL, check);

	/* 64 KiB at +1 in pieces of 1000, 3, 7000 and the rest. */
	hdr = vdrv_alloc(&d, sizeof(*hdr), 16);
	buf = vdrv_alloc(&d, len + 4096, 4096) + 1;
	status = vdrv_alloc(&d, 1, 1);
	hdr->type = VIRTIO_BLK_T_OUT;
	hdr->sector = 0;
	*status = 0xff;
	vblk_fill(buf, len, 31);
	segs[0] = (struct vseg){ hdr, sizeof(*hdr), false };
	segs[1] = (struct vseg){ buf, 1000, false };
	segs[2] = (struct vseg){ buf + 1000, 3, false };
	segs[3] = (struct vseg){ buf + 1003, 7000, false };
	segs[4] = (struct vseg){ buf + 8003, len - 8003, false };
	segs[5] = (struct vseg){ status, 1, true };
	ASSERT_LE(0, vdrv_add(&d, &d.q[0], segs, 6, false));
	vdrv_kick(&d.q[0]);
	ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &used, 10000));
	EXPECT_EQ(VIRTIO_BLK_S_OK, *status);
	ASSERT_EQ(0, vblk_pread(bdev, check, len, 0));
	EXPECT_EQ(0, memcmp(check, buf, len));

	/* Zeroes over sectors 16..47, with and without UNMAP. */
	EXPECT_EQ(VIRTIO_BLK_S_OK, wz_do(&d, 16, 16, 0));
	EXPECT_EQ(VIRTIO_BLK_S_OK,
		  wz_do(&d, 32, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP));
	memset(buf + 16 * 512, 0, 32 * 512);
	ASSERT_EQ(0, vblk_pread(bdev, check, len, 0));
	EXPECT_EQ(0, memcmp(check, buf, len));

	free(check);
	vdrv_close(&d);
	close(bdev);
	nullb_remove("vbh_stable");
}

/* --- 4: pinned pages stay within the in-flight budget --- */

#define STORM_REQS	512
#define STORM_DEPTH	64
#define STORM_LEN	(4 << 20)
/* Only what the storm uses, so that it also runs on earlier modules. */
#define STORM_FEATURES	((1ULL << VIRTIO_F_VERSION_1) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC))
#define STORM_CACHES	16

/* One bio slab cache: objects in use before the storm and at its peak. */
struct storm_cache {
	char name[64];
	long base;		/* exact: counted just after a shrink */
	long peak;		/* at least: per-CPU slabs counted as free */
};

struct storm_sampler {
	volatile int stop;
	bool shrink;		/* KASAN: free objects wait in a quarantine */
	bool pins;		/* /proc/vmstat has the FOLL_PIN counters */
	long pin_base, pin_peak;
	struct storm_cache cache[STORM_CACHES];
	int ncache;
	long samples;
};

/*
 * Pins acquired minus released, into *held; false without the counters.
 * The difference may be negative: /proc/vmstat shows the global counters
 * without the per-CPU deltas not yet folded in, so a release can be counted
 * before the acquire it matches.
 */
static bool pins_held(long *held)
{
	char line[128];
	long acq = -1, rel = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "nr_foll_pin_acquired %ld", &acq);
		sscanf(line, "nr_foll_pin_released %ld", &rel);
	}
	fclose(f);
	if (acq < 0 || rel < 0)
		return false;
	*held = acq - rel;
	return true;
}

/* Objects of @name in use at least; -1 if it cannot be read. */
static long storm_cache_in_use(const char *name, bool shrink)
{
	struct vblk_slab c;

	if (shrink)
		vblk_slab_shrink(name);
	if (vblk_slab_count(name, &c) <= 0)
		return -1;
	return c.objects - c.cpu_free;
}

/* The bio caches (/sys/kernel/slab/bio-*, SLUB), counted exactly now. */
static void storm_caches(struct storm_sampler *s)
{
	const char *dir = "/sys/kernel/slab/";
	glob_t g;

	if (glob("/sys/kernel/slab/bio-*", 0, NULL, &g))
		return;
	for (size_t i = 0; i < g.gl_pathc && s->ncache < STORM_CACHES; i++) {
		struct storm_cache *c = &s->cache[s->ncache];

		snprintf(c->name, sizeof(c->name), "%s",
			 g.gl_pathv[i] + strlen(dir));
		c->base = storm_cache_in_use(c->name, true);
		c->peak = c->base;
		if (c->base >= 0)
			s->ncache++;
	}
	globfree(&g);
}

static void *storm_sample(void *arg)
{
	struct storm_sampler *s = arg;

	while (!s->stop) {
		long held;
		int i;

		if (s->pins && pins_held(&held) && held - s->pin_base > s->pin_peak)
			s->pin_peak = held - s->pin_base;
		for (i = 0; i < s->ncache; i++) {
			struct storm_cache *c = &s->cache[i];
			long n = storm_cache_in_use(c->name, s->shrink);

			if (n > c->peak)
				c->peak = n;
		}
		s->samples++;
		if (s->shrink)
			usleep(20000);
	}
	return NULL;
}

/*
 * The device's vhost worker: a kernel thread "vhost-<owner pid>" on 6.1, a
 * thread of the owner's own on 6.12. Its thread id, or -ENOENT.
 */
static int storm_worker(pid_t owner)
{
	static const char *const dirs[] = { "/proc/self/task", "/proc" };
	char want[32], comm[32], path[300];
	int found = -ENOENT;
	glob_t g;

	snprintf(want, sizeof(want), "vhost-%d", owner);
	for (unsigned int i = 0; i < 2 && found < 0; i++) {
		snprintf(path, sizeof(path), "%s/[0-9]*/comm", dirs[i]);
		if (glob(path, 0, NULL, &g))
			continue;
		for (size_t j = 0; j < g.gl_pathc && found < 0; j++)
			if (!vblk_read_str(g.gl_pathv[j], comm, sizeof(comm)) &&
			    !strcmp(comm, want))
				sscanf(g.gl_pathv[j] + strlen(dirs[i]) + 1, "%d",
				       &found);
		globfree(&g);
	}
	return found;
}

/*
 * Put @worker on the first CPU of @cpus and the calling thread on the
 * second, so that the worker keeps its CPU to itself while this thread
 * feeds it. False (nothing changed) with a single CPU.
 */
static bool storm_pin(int worker, const cpu_set_t *cpus)
{
	int first = -1, second = -1;
	cpu_set_t one;

	for (int cpu = 0; cpu < CPU_SETSIZE && second < 0; cpu++) {
		if (!CPU_ISSET(cpu, cpus))
			continue;
		if (first < 0)
			first = cpu;
		else
			second = cpu;
	}
	if (second < 0)
		return false;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	if (sched_setaffinity(worker, sizeof(one), &one))
		return false;
	CPU_ZERO(&one);
	CPU_SET(second, &one);
	return !sched_setaffinity(0, sizeof(one), &one);
}

/* Every read into the same buffer, STORM_DEPTH in flight; 0 or -errno. */
static int storm_run(struct vdrv *d, struct vreq *r)
{
	unsigned int sent = 0, done = 0;
	struct vdrv_queue *q = &d->q[0];
	uint32_t head, len;
	int ret;

	while (done < STORM_REQS) {
		while (sent < STORM_REQS && sent - done < STORM_DEPTH) {
			ret = vdrv_start(d, q, &r[sent % STORM_DEPTH], 4, true);
			if (ret < 0)
				return ret;
			sent++;
		}
		vdrv_kick(q);
		ret = vdrv_get_used(d, q, &head, &len, 10000);
		if (ret)
			return ret;
		done++;
		while (!vdrv_get_used(d, q, &head, &len, 0))
			done++;
	}
	return 0;
}

/*
 * A guest that reads into one buffer over and over must not hold more of
 * the host's pages than the in-flight budget admits: a read must end, and
 * give back its share of the budget, only after its pages are released.
 * The pages are counted where the kernel counts them: FOLL_PIN pins in
 * /proc/vmstat (6.12; 6.1's bios take plain page references, which nothing
 * counts), and on every kernel the bios that hold them, which the module
 * puts only once their pages are released.
 *
 * The worker runs SCHED_FIFO on a CPU of its own, as hosts that give vhost
 * threads a real-time priority run it: nothing else runs on its CPU while
 * it has requests to start, so the budget is all that can stop it, and
 * pages whose release waits for a work item on that CPU pile up unless
 * the budget waits for them too.
 */
TEST_F_TIMEOUT(slow, read_storm_pins_within_budget, 300)
{
	/*
	 * max_sectors 2048: a 1 MiB bio is split at most in two (at 128
	 * segments), so the block layer's clones of the module's bios (from
	 * another bio cache) are at most as many as those.
	 */
	static const char *const attrs[] = {
		"size", "1024", "blocksize", "512", "memory_backed", "0",
		"max_sectors", "2048", NULL };
	/* 64 MiB of pages per queue, plus one request that may run alone. */
	const long bound = ((64L << 20) + STORM_LEN) / 4096;
	/*
	 * The bios that hold them: each but a request's last holds
	 * BIO_MAX_VECS (256) pages, so the budget admits at most this many
	 * at once; a bio is put only after its pages are released.
	 */
	const long bio_bound = bound / 256;
	struct storm_sampler smp = { 0 };
	struct sched_param rt = { .sched_priority = 1 };
	struct vreq r[STORM_DEPTH];
	bool exceeded = false, pinned;
	cpu_set_t cpus;
	pthread_t thr;
	char path[64];
	struct vdrv d;
	uint8_t *buf;
	int bdev, ret, i, worker;

	ret = nullb_create("vbh_fast", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no null_blk: %s", strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, 16 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 2 * STORM_DEPTH, STORM_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	buf = vdrv_alloc(&d, STORM_LEN, 4096);
	for (i = 0; i < STORM_DEPTH; i++) {
		r[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 0);
		r[i].data = buf;
		r[i].len = STORM_LEN;
	}
	worker = storm_worker(getpid());
	ASSERT_LT(0, worker) TH_LOG("no vhost-%d thread", getpid());
	ASSERT_EQ(0, sched_setscheduler(worker, SCHED_FIFO, &rt))
		TH_LOG("cannot make the worker SCHED_FIFO: %s", strerror(errno));
	/* The worker on one CPU, this thread and the sampler on another. */
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(cpus), &cpus));
	pinned = storm_pin(worker, &cpus);

	smp.pins = pins_held(&smp.pin_base);
	smp.shrink = vblk_kasan();
	storm_caches(&smp);
	if (!smp.pins && !smp.ncache)
		SKIP(goto out, "neither FOLL_PIN counters in /proc/vmstat nor SLUB bio caches in /sys/kernel/slab");
	ASSERT_EQ(0, pthread_create(&thr, NULL, storm_sample, &smp));
	ret = storm_run(&d, r);
	smp.stop = 1;
	pthread_join(thr, NULL);
	if (pinned)
		sched_setaffinity(0, sizeof(cpus), &cpus);
	ASSERT_EQ(0, ret);

	/* 6.1: bios take page references, the pin counters stay put. */
	if (smp.pins && smp.pin_peak) {
		TH_LOG("%u reads of 4 MiB into one buffer: at most %ld pages pinned (bound %ld)",
		       STORM_REQS, smp.pin_peak, bound);
		EXPECT_GE(bound, smp.pin_peak);
	}
	for (i = 0; i < smp.ncache; i++) {
		struct storm_cache *c = &smp.cache[i];

		TH_LOG("%s: %ld objects in use before, at least %ld at the peak (bound: %ld more; %ld samples)",
		       c->name, c->base, c->peak, bio_bound, smp.samples);
		if (c->peak - c->base > bio_bound)
			exceeded = true;
	}
	EXPECT_FALSE(exceeded)
		TH_LOG("more bios held than the in-flight budget admits");
out:
	vdrv_close(&d);
	close(bdev);
	nullb_remove("vbh_fast");
}

/*
 * A read whose guest pages are cleaned while it is in flight: the guest
 * punches a hole in its memfd RAM over the buffer (truncation cancels the
 * folios' dirty bit), so the bio's end finds them clean and leaves them to
 * the queue's dirtying work, the path every read took before reads released
 * their pages as they ended. The request must still complete. (Whether
 * its pins are released is not checked here: /proc/vmstat's FOLL_PIN
 * counters lag by per-CPU deltas larger than one request's pages.)
 */
TEST_F_TIMEOUT(slow, read_into_punched_memfd_released, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "512", "memory_backed", "1",
		"irqmode", "2", "completion_nsec", "2000000000", NULL };
	const size_t len = 64 << 10;
	uint32_t head, used;
	struct vreq w, r, ok;
	size_t i;
	char path[64];
	struct vdrv d;
	uint8_t *mem;
	int bdev, mfd, ret;

	ret = nullb_create("vbh_punch", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no slow null_blk (irqmode=2, completion_nsec): %s",
		     strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);

	/* The driver's memory, from a memfd as a VMM's guest RAM is. */
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	mfd = memfd_create("vbh-punch", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, MEM_SIZE));
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, mem);
	munmap(d.mem, d.mem_size);
	d.mem = mem;
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));

	/* Something to read that the punched pages cannot show. */
	w = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0, len);
	memset(w.data, 0xab, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &w, 1, false, NULL));

	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 0);
	r.data = vdrv_alloc(&d, len, 4096);
	r.len = len;
	memset(r.data, 0x55, len);
	ASSERT_LE(0, vdrv_start(&d, &d.q[0], &r, 1, false));
	vdrv_kick(&d.q[0]);
	/* Submitted (pinned, marked dirty); it ends 2 s after submission. */
	usleep(500 * 1000);
	ASSERT_EQ(0, fallocate(mfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       r.data - mem, len));

	ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &used, 10000));
	ASSERT_EQ(VIRTIO_BLK_S_OK, *r.status);
	ASSERT_EQ(len + 1, used);
	/*
	 * Pages punched in flight went with the read's data; fresh zero
	 * pages took their place. The data itself: not submitted in time.
	 */
	for (i = 0; i < len && !r.data[i]; i++)
		;
	if (i < len && r.data[i] == 0xab)
		SKIP(goto out, "the read was not submitted within 0.5 s: the punch came first");
	ASSERT_EQ(len, i);
	/* The queue still serves reads. */
	ok = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &ok, 1, false, NULL));
	EXPECT_EQ(0xab, ok.data[0]);
out:
	vdrv_close(&d);
	close(mfd);
	close(bdev);
	nullb_remove("vbh_punch");
}

/* --- 7: unaligned requests larger than the bounce budget --- */

TEST_F_TIMEOUT(slow, unaligned_8m_bounced_in_windows, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "512", "memory_backed", "1", NULL };
	const uint32_t len = 8 << 20;
	uint8_t *buf, *check;
	struct vreq w, r;
	char path[64];
	struct vdrv d;
	int bdev, ret;

	ret = nullb_create("vbh_big", attrs, path, sizeof(path));
	if (ret)
		SKIP(return, "no null_blk: %s", strerror(-ret));
	bdev = vblk_open_dev(path, O_RDWR);
	ASSERT_LE(0, bdev);
	ASSERT_EQ(0, vdrv_open(&d, 24 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	check = malloc(len);
	ASSERT_NE(NULL, check);

	/* 8 MiB at +2 in 16 segments: twice the bounce pages a queue has. */
	buf = vdrv_alloc(&d, len + 4096, 4096);
	w = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0, 0);
	w.data = buf + 2;
	w.len = len;
	vblk_fill(w.data, len, 7);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &w, 16, true, NULL));
	ASSERT_EQ(0, vblk_pread(bdev, check, len, 0));
	EXPECT_EQ(0, memcmp(check, w.data, len));

	vblk_fill(check, len, 8);
	ASSERT_EQ(0, vblk_pwrite(bdev, check, len, 0));
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 0);
	r.data = buf + 2;
	r.len = len;
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 16, true, NULL));
	EXPECT_EQ(0, memcmp(check, r.data, len));

	free(check);
	vdrv_close(&d);
	close(bdev);
	nullb_remove("vbh_big");
}

/*
 * --- 9: what the device allocates for its owner is charged to the owner's
 * memory cgroup ---
 * The test (the owner) moves into a cgroup of its own; memory.current then
 * grows by what attaching big rings and bouncing requests allocate. Without
 * __GFP_ACCOUNT, or on a kthread worker without the owner's memcg made
 * active (6.1), the growth is near zero.
 */

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_DIR		CG_ROOT "/vbh_acct"
#define CGROUP2_MAGIC	0x63677270

/* Move the caller into a new cgroup with the memory controller: 0 or -errno. */
static int cg_enter(void)
{
	char buf[256] = "", pid[16];
	struct statfs sfs;
	int ret;

	if (statfs(CG_ROOT, &sfs) || sfs.f_type != CGROUP2_MAGIC) {
		mkdir(CG_ROOT, 0755);
		if (mount("none", CG_ROOT, "cgroup2", 0, NULL))
			return -errno;
	}
	ret = vblk_read_str(CG_ROOT "/cgroup.controllers", buf, sizeof(buf));
	if (ret)
		return ret;
	if (!strstr(buf, "memory"))
		return -EOPNOTSUPP;
	ret = vblk_write_attr(CG_ROOT, "cgroup.subtree_control", "+memory");
	if (ret)
		return ret;
	rmdir(CG_DIR);
	if (mkdir(CG_DIR, 0755))
		return -errno;
	snprintf(pid, sizeof(pid), "%d", getpid());
	return vblk_write_attr(CG_DIR, "cgroup.procs", pid);
}

static void cg_leave(void)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", getpid());
	vblk_write_attr(CG_ROOT, "cgroup.procs", pid);
	/* Charges left (freed later) do not keep rmdir from working. */
	if (rmdir(CG_DIR))
		fprintf(stderr, "# rmdir %s: %s\n", CG_DIR, strerror(errno));
}

static long cg_current(void)
{
	return read_long(CG_DIR "/memory.current");
}

/* memory.stat's @key (kernel, vmalloc...), or -1 without it. */
static long cg_stat(const char *key)
{
	size_t n = strlen(key);
	char line[128];
	long v = -1;
	FILE *f = fopen(CG_DIR "/memory.stat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

#define ACCT_QUEUES	2
#define ACCT_NUM	32768
/*
 * A request table entry is a struct vhost_blk_req (a kiocb, a work item,
 * list links: well over 128 bytes) plus an 8-byte used element.
 */
#define ACCT_MIN_ENTRY	(128 + 8)

/*
 * The memcg tests' device: null_blk "vbh_acct" with @attrs, opened, with
 * this process in a memory cgroup of its own. The fd, or -1 after marking
 * the test skipped.
 */
static int acct_begin(struct __test_metadata *_metadata,
		      const char *const *attrs)
{
	char path[64];
	int bdev, ret;

	ret = nullb_create("vbh_acct", attrs, path, sizeof(path));
	if (ret)
		SKIP(return -1, "no null_blk: %s", strerror(-ret));
	ret = cg_enter();
	if (ret) {
		nullb_remove("vbh_acct");
		SKIP(return -1, "no cgroup v2 memory controller: %s",
		     strerror(-ret));
	}
	bdev = vblk_open_dev(path, O_RDWR);
	EXPECT_LE(0, bdev);
	if (bdev < 0) {
		cg_leave();
		nullb_remove("vbh_acct");
	}
	return bdev;
}

static void acct_end(int bdev)
{
	close(bdev);
	cg_leave();
	nullb_remove("vbh_acct");
}

TEST_F_TIMEOUT(slow, request_tables_charged_to_owner_memcg, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "512", "memory_backed", "0", NULL };
	long before, after, kbefore, kafter, want;
	struct vdrv d;
	int bdev;

	bdev = acct_begin(_metadata, attrs);
	if (bdev < 0)
		return;
	ASSERT_EQ(0, vdrv_open(&d, 16 << 20));
	memset(d.mem, 0, d.mem_size);	/* charged now, not below */
	ASSERT_EQ(0, vdrv_setup(&d, ACCT_QUEUES, ACCT_NUM, VHOST_BLK_FEATURES));

	before = cg_current();
	kbefore = cg_stat("kernel");
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	after = cg_current();
	kafter = cg_stat("kernel");
	want = (long)ACCT_QUEUES * ACCT_NUM * ACCT_MIN_ENTRY;
	TH_LOG("attach of %d queues x %d entries: memory.current +%ld KiB (kernel +%ld KiB), %ld bytes an entry; at least %ld KiB expected",
	       ACCT_QUEUES, ACCT_NUM, (after - before) >> 10,
	       (kafter - kbefore) >> 10,
	       (after - before) / (ACCT_QUEUES * ACCT_NUM), want >> 10);
	EXPECT_LE(want, after - before);

	vdrv_close(&d);
	acct_end(bdev);
}

#define ACCT_BOUNCED	16
#define ACCT_BOUNCE_LEN	(256 << 10)

TEST_F_TIMEOUT(slow, bounce_pages_charged_to_owner_memcg, 120)
{
	static const char *const attrs[] = {
		"size", "64", "blocksize", "512", "memory_backed", "0",
		"irqmode", "2", "completion_nsec", "3000000000", NULL };
	/* 16 x 64 pages: the queue's whole bounce budget, 4 MiB. */
	const long pages = ACCT_BOUNCED * (ACCT_BOUNCE_LEN / 4096);
	struct vreq r[ACCT_BOUNCED];
	long before, during, want;
	uint32_t head, len;
	struct vdrv d;
	uint8_t *buf;
	int bdev, i;

	bdev = acct_begin(_metadata, attrs);
	if (bdev < 0)
		return;
	ASSERT_EQ(0, vdrv_open(&d, 16 << 20));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	buf = vdrv_alloc(&d, ACCT_BOUNCED * (ACCT_BOUNCE_LEN + 4096), 4096);
	for (i = 0; i < ACCT_BOUNCED; i++) {
		/* At +2: not aligned for the device, so bounced. */
		r[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 0);
		r[i].data = buf + i * (ACCT_BOUNCE_LEN + 4096) + 2;
		r[i].len = ACCT_BOUNCE_LEN;
	}
	memset(d.mem, 0, d.mem_size);	/* charged now, not below */

	before = cg_current();
	for (i = 0; i < ACCT_BOUNCED; i++)
		ASSERT_LE(0, vdrv_start(&d, &d.q[0], &r[i], 1, false));
	vdrv_kick(&d.q[0]);
	/* Completions come 3 s after submission: sample well before. */
	usleep(1000 * 1000);
	during = cg_current();
	want = pages * 4096 * 9 / 10;
	TH_LOG("%d bounced reads of %d KiB in flight: memory.current +%ld KiB; at least %ld KiB expected",
	       ACCT_BOUNCED, ACCT_BOUNCE_LEN >> 10, (during - before) >> 10,
	       want >> 10);
	for (i = 0; i < ACCT_BOUNCED; i++) {
		ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &len, 30000));
	}
	for (i = 0; i < ACCT_BOUNCED; i++)
		EXPECT_EQ(VIRTIO_BLK_S_OK, *r[i].status);
	EXPECT_LE(want, during - before);

	vdrv_close(&d);
	acct_end(bdev);
}

TEST_HARNESS_MAIN

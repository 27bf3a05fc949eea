// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation-failure sweep (the debug kernel's lane, make check-debug).
 *
 * For each step a VMM takes (open, owner, features, memory table, params,
 * rings, attach, swap, detach, reset, close) and each request path (read,
 * write, flush, discard, write zeroes, bounced read and write), fail the
 * Nth allocation of the task doing the work, for N = 1, 2, ... until the
 * step runs without reaching an Nth allocation: the per-task fail-nth file
 * of CONFIG_FAULT_INJECTION, with failslab and fail_page_alloc armed for
 * every allocation (debugfs). Ioctl steps run in this thread; requests run
 * in the device's vhost worker, a thread of this process, whose fail-nth
 * is armed instead.
 *
 * Every failure must give a clean errno (ENOMEM) or a clean status
 * (IOERR, or OK when a mempool absorbed it) and leave the device usable
 * (the step retried without injection works and a request's data is right)
 * or at least closable; leaks are kmemleak's part at the end of the run.
 *
 * Then fail_make_request on the backing disk under load: every injected bio
 * error reaches the guest as IOERR, and nothing hangs.
 *
 * Needs CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC,
 * FAIL_MAKE_REQUEST and FAULT_INJECTION_DEBUG_FS (the debug kernel); skips
 * elsewhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define FI	"/sys/kernel/debug/"
#define MEM_SIZE	(8u << 20)
#define RING	64
#define MAX_NTH	20000	/* a sequence with more failure points is a runaway */

/* debugfs knobs: fail every allocation fail-nth reaches, quietly. */
static const char *const knobs[][2] = {
	{ FI "failslab/ignore-gfp-wait", "N" },
	{ FI "failslab/verbose", "0" },
	{ FI "fail_page_alloc/ignore-gfp-wait", "N" },
	{ FI "fail_page_alloc/ignore-gfp-highmem", "N" },
	{ FI "fail_page_alloc/min-order", "0" },
	{ FI "fail_page_alloc/verbose", "0" },
	{ FI "fail_make_request/verbose", "0" },
};
#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

static char saved[NKNOBS][64];

static void kmsg(const char *msg)
{
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, msg, strlen(msg)) < 0)
			perror("# /dev/kmsg");
		close(fd);
	}
}

/* 0, or a reason to skip. */
static const char *inject_setup(void)
{
	unsigned int i;

	if (access("/proc/thread-self/fail-nth", W_OK))
		return "no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)";
	for (i = 0; i < NKNOBS; i++) {
		if (vblk_read_str(knobs[i][0], saved[i], sizeof(saved[i])))
			return "no failslab, fail_page_alloc or fail_make_request in debugfs (CONFIG_FAULT_INJECTION_DEBUG_FS, FAILSLAB, FAIL_PAGE_ALLOC, FAIL_MAKE_REQUEST)";
	}
	for (i = 0; i < NKNOBS; i++)
		if (vblk_write_str(knobs[i][0], knobs[i][1]))
			return "cannot write the fault injection knobs in debugfs";
	/* vmrun's dmesg check expects warn_alloc dumps inside these markers only. */
	kmsg("vmrun: fault injection begin (fail_nth_test)\n");
	return NULL;
}

static void inject_restore(void)
{
	unsigned int i;

	kmsg("vmrun: fault injection end (fail_nth_test)\n");
	for (i = 0; i < NKNOBS; i++)
		if (saved[i][0])
			vblk_write_str(knobs[i][0], saved[i]);
}

static int nth_open(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", tid);
	return open(path, O_RDWR | O_CLOEXEC);
}

static void nth_arm(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (pwrite(fd, buf, len, 0) != len) {
		perror("# arming fail-nth");
		abort();
	}
}

/* Disarm; true when the Nth allocation was reached (and failed). */
static bool nth_fired(int fd)
{
	char buf[16] = "";

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0) {
		perror("# reading fail-nth");
		abort();
	}
	nth_arm(fd, 0);
	return strtoul(buf, NULL, 10) == 0;
}

/* The vhost worker of this process's device: a thread named vhost-<pid>. */
static pid_t worker_tid(void)
{
	char want[32], path[300], comm[32];
	struct dirent *de;
	pid_t tid = -1;
	DIR *dir;

	snprintf(want, sizeof(want), "vhost-%d", getpid());
	dir = opendir("/proc/self/task");
	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		if (!vblk_read_str(path, comm, sizeof(comm)) && !strcmp(comm, want))
			tid = atoi(de->d_name);
	}
	closedir(dir);
	return tid;
}

enum step {
	S_OPEN, S_OWNER, S_FEATURES, S_MEM_TABLE, S_PARAMS, S_RINGS, S_ATTACH,
	S_SWAP, S_DETACH, S_RESET, S_CLOSE, S_NR
};

static const char *const step_name[S_NR] = {
	"open", "owner", "features", "mem table", "params", "rings",
	"attach", "swap", "detach", "reset owner", "close",
};

struct ctx {
	struct vdrv d;
	int disk[2];		/* /dev/ram0, /dev/ram1 */
	struct vhost_memory *mt;
	unsigned int points, retried_ok, retry_failed, absorbed;
	unsigned int core_efault;	/* of those that failed: EFAULT, not ENOMEM */
};

static int step_do(struct ctx *c, enum step s)
{
	struct vhost_vring_state st = { .index = 0, .num = RING };
	struct vhost_blk_params p = {
		.size = sizeof(p),
		.mask = VHOST_BLK_PARAM_NUM_QUEUES,
		.num_queues = 1,
	};
	struct vhost_vring_addr addr = { .index = 0 };
	struct vhost_vring_file f = { .index = 0 };
	struct vdrv_queue *q = &c->d.q[0];
	uint64_t features;
	int fd = c->d.fd;

	switch (s) {
	case S_OPEN:
		c->d.fd = open("/dev/vhost-blk", O_RDWR | O_CLOEXEC);
		return c->d.fd < 0 ? -errno : 0;
	case S_OWNER:
		return ioctl(fd, VHOST_SET_OWNER) ? -errno : 0;
	case S_FEATURES:
		if (ioctl(fd, VHOST_GET_FEATURES, &features))
			return -errno;
		c->d.features = features;
		return ioctl(fd, VHOST_SET_FEATURES, &features) ? -errno : 0;
	case S_MEM_TABLE:
		return ioctl(fd, VHOST_SET_MEM_TABLE, c->mt) ? -errno : 0;
	case S_PARAMS:
		c->d.nq = 1;
		return ioctl(fd, VHOST_BLK_SET_PARAMS, &p) ? -errno : 0;
	case S_RINGS:
		if (ioctl(fd, VHOST_SET_VRING_NUM, &st))
			return -errno;
		st.num = 0;
		if (ioctl(fd, VHOST_SET_VRING_BASE, &st))
			return -errno;
		addr.desc_user_addr = (uintptr_t)q->desc;
		addr.avail_user_addr = (uintptr_t)q->avail;
		addr.used_user_addr = (uintptr_t)q->used;
		if (ioctl(fd, VHOST_SET_VRING_ADDR, &addr))
			return -errno;
		f.fd = q->kick;
		if (ioctl(fd, VHOST_SET_VRING_KICK, &f))
			return -errno;
		f.fd = q->call;
		if (ioctl(fd, VHOST_SET_VRING_CALL, &f))
			return -errno;
		f.fd = q->err;
		return ioctl(fd, VHOST_SET_VRING_ERR, &f) ? -errno : 0;
	case S_ATTACH:
		return vdrv_attach(&c->d, c->disk[0]);
	case S_SWAP:
		return vdrv_attach(&c->d, c->disk[1]);
	case S_DETACH:
		return vdrv_attach(&c->d, -1);
	case S_RESET:
		return ioctl(fd, VHOST_RESET_OWNER) ? -errno : 0;
	case S_CLOSE:
		c->d.fd = -1;
		return close(fd) ? -errno : 0;
	default:
		return -EINVAL;
	}
}

/* The steps that come before @s on a fresh device. */
static enum step prefix_end(enum step s)
{
	return s > S_ATTACH ? S_ATTACH + 1 : s;
}

/* A fresh guest: memory cleared, rings and eventfds ready, no device. */
static int fresh(struct ctx *c)
{
	memset(c->d.mem, 0, c->d.mem_used);
	c->d.mem_used = 0;
	c->d.fd = -1;
	return vdrv_queue_init(&c->d, 0, RING);
}

static void drop(struct ctx *c)
{
	if (c->d.fd >= 0)
		close(c->d.fd);
	c->d.fd = -1;
}

/* Write, then read back and compare 8 KiB at @sector: the device works. */
static int io_check(struct ctx *c, uint64_t sector, uint64_t seed)
{
	struct vreq w = vdrv_req_alloc(&c->d, VIRTIO_BLK_T_OUT, sector, 8192);
	struct vreq r = vdrv_req_alloc(&c->d, VIRTIO_BLK_T_IN, sector, 8192);
	int st;

	vblk_fill(w.data, w.len, seed);
	st = vdrv_do(&c->d, &c->d.q[0], &w, 1, false, NULL);
	if (st != VIRTIO_BLK_S_OK)
		return st < 0 ? -ETIMEDOUT : -EIO;
	st = vdrv_do(&c->d, &c->d.q[0], &r, 2, false, NULL);
	if (st != VIRTIO_BLK_S_OK)
		return st < 0 ? -ETIMEDOUT : -EIO;
	return memcmp(w.data, r.data, r.len) ? -EILSEQ : 0;
}

FIXTURE(fi) {
	struct ctx c;
	int nth;		/* this thread's fail-nth */
	bool armed;
	const char *skip;	/* why the setup skipped, or NULL */
};

/*
 * Older kselftest harnesses (6.1's) run the test body even when the fixture
 * setup skipped: every body starts with this.
 */
#define SKIP_IF_UNREADY() do {					\
	if (self->skip)						\
		SKIP(return, "%s", self->skip);			\
} while (0)

FIXTURE_SETUP(fi)
{
	const char *why;
	int i;

	memset(&self->c, 0, sizeof(self->c));
	self->nth = -1;
	self->skip = NULL;
	self->c.d.fd = -1;
	self->c.disk[0] = self->c.disk[1] = -1;
	for (i = 0; i < 2; i++) {
		self->c.disk[i] = vblk_brd(i, NULL);
		if (self->c.disk[i] < 0)
			self->skip = "no brd ram disk (modprobe brd failed)";
	}
	if (!self->skip && access("/dev/vhost-blk", F_OK))
		self->skip = "no /dev/vhost-blk (module not loaded)";
	if (!self->skip) {
		why = inject_setup();
		if (why) {
			inject_restore();
			self->skip = why;
		}
	}
	if (self->skip)
		SKIP(return, "%s", self->skip);
	self->armed = true;
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->nth);

	self->c.d.fd = -1;
	self->c.d.memfd = -1;
	self->c.d.mem_size = MEM_SIZE;
	self->c.d.mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->c.d.mem);
	self->c.mt = calloc(1, sizeof(*self->c.mt) + sizeof(self->c.mt->regions[0]));
	ASSERT_NE(NULL, self->c.mt);
	self->c.mt->nregions = 1;
	self->c.mt->regions[0].guest_phys_addr = VDRV_GPA_BASE;
	self->c.mt->regions[0].memory_size = MEM_SIZE;
	self->c.mt->regions[0].userspace_addr = (uintptr_t)self->c.d.mem;
}

FIXTURE_TEARDOWN(fi)
{
	int i;

	if (self->nth >= 0)
		nth_arm(self->nth, 0);
	drop(&self->c);
	if (self->armed)
		inject_restore();
	for (i = 0; i < 2; i++)
		if (self->c.disk[i] >= 0)
			close(self->c.disk[i]);
}

/* Sweep one ioctl step. */
static void sweep_step(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		       enum step s)
{
	struct ctx *c = &self->c;
	unsigned int n, k;
	int ret, ret2;
	bool fired;

	for (n = 1; n <= MAX_NTH; n++) {
		ASSERT_EQ(0, fresh(c));
		for (k = 0; k < prefix_end(s); k++) {
			ret = step_do(c, k);
			ASSERT_EQ(0, ret) TH_LOG("step %s before %s: %s",
						 step_name[k], step_name[s], strerror(-ret));
		}
		nth_arm(self->nth, n);
		ret = step_do(c, s);
		fired = nth_fired(self->nth);
		if (!fired) {
			/* Every allocation of the step succeeded: it must have worked. */
			ASSERT_EQ(0, ret) TH_LOG("%s without injection: %s",
						 step_name[s], strerror(-ret));
			if (s <= S_SWAP && s >= S_ATTACH)
				ASSERT_EQ(0, io_check(c, 64, n));
			drop(c);
			c->points = n - 1;
			break;
		}
		if (ret) {
			/*
			 * A clean errno: allocation failures are ENOMEM, but for
			 * one the vhost core owns. vhost_set_memory() answers
			 * EFAULT when vhost_iotlb_add_range() cannot allocate a
			 * map (its "err:" path, shared by vhost-net and vsock);
			 * the table has passed the module's own check by then,
			 * so nothing the VMM did is at fault either way.
			 */
			if (s == S_MEM_TABLE && ret == -EFAULT)
				c->core_efault++;
			else
				ASSERT_EQ(-ENOMEM, ret)
					TH_LOG("%s with allocation %u failed: %s, not ENOMEM",
					       step_name[s], n, strerror(-ret));
		} else {
			c->absorbed++;
		}
		if (s == S_CLOSE)
			continue;
		/* Usable: the step retried without injection, then I/O. */
		ret2 = ret ? step_do(c, s) : 0;
		if (ret2 == 0) {
			c->retried_ok++;
			for (k = s + 1; k <= S_ATTACH; k++) {
				ret = step_do(c, k);
				ASSERT_EQ(0, ret) TH_LOG("%s after a failed %s (allocation %u): %s",
							 step_name[k], step_name[s], n,
							 strerror(-ret));
			}
			if (s == S_DETACH)
				ASSERT_EQ(0, step_do(c, S_ATTACH));
			if (s == S_RESET) {
				drop(c);	/* the guest is gone with the owner */
				continue;
			}
			ret = io_check(c, 8 * (n % 1000), n);
			ASSERT_EQ(0, ret) TH_LOG("I/O after a failed %s (allocation %u): %s",
						 step_name[s], n, strerror(-ret));
		} else {
			/* Not retryable here, then closable. */
			c->retry_failed++;
			TH_LOG("%s retried after allocation %u failed: %s (closing)",
			       step_name[s], n, strerror(-ret2));
		}
		drop(c);
	}
	ASSERT_GE(MAX_NTH, n) TH_LOG("%s: more than %u allocations", step_name[s], MAX_NTH);

	/* Nothing stayed claimed: a fresh device attaches both disks again. */
	ASSERT_EQ(0, fresh(c));
	for (k = 0; k <= S_SWAP; k++)
		ASSERT_EQ(0, step_do(c, k)) TH_LOG("fresh device, %s", step_name[k]);
	drop(c);
	printf("# fail-nth %s: %u allocation failure points swept (%u ENOMEM then usable, %u ENOMEM then only closable, %u absorbed, %u EFAULT from the vhost core's table)\n",
	       step_name[s], c->points, c->retried_ok - c->absorbed - c->core_efault,
	       c->retry_failed, c->absorbed, c->core_efault);
}

#define STEP_TEST(name, s) \
	TEST_F_TIMEOUT(fi, name, 600) { SKIP_IF_UNREADY(); sweep_step(_metadata, self, s); }

STEP_TEST(open, S_OPEN)
STEP_TEST(owner, S_OWNER)
STEP_TEST(features, S_FEATURES)
STEP_TEST(mem_table, S_MEM_TABLE)
STEP_TEST(params, S_PARAMS)
STEP_TEST(rings, S_RINGS)
STEP_TEST(attach, S_ATTACH)
STEP_TEST(swap, S_SWAP)
STEP_TEST(detach, S_DETACH)
STEP_TEST(reset_owner, S_RESET)
STEP_TEST(close, S_CLOSE)

/* --- request paths: the worker's allocations --- */

enum rq { R_READ, R_WRITE, R_FLUSH, R_DISCARD, R_WZEROES, R_BREAD, R_BWRITE, R_NR };

static const char *const rq_name[R_NR] = {
	"read", "write", "flush", "discard", "write zeroes",
	"bounced read", "bounced write",
};

/* The request of kind @k on 16 KiB at sector 256, data at @buf. */
static struct vreq rq_make(struct vdrv *d, enum rq k)
{
	static const uint32_t type[R_NR] = {
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
		VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
	};
	struct virtio_blk_discard_write_zeroes *dwz;
	struct vreq r;

	r = vdrv_req_alloc(d, type[k], 256, 0);
	switch (k) {
	case R_FLUSH:
		r.hdr->sector = 0;
		break;
	case R_DISCARD:
	case R_WZEROES:
		r.hdr->sector = 0;
		dwz = vdrv_alloc(d, sizeof(*dwz), 16);
		dwz->sector = 256;
		dwz->num_sectors = 32;
		dwz->flags = 0;
		r.data = (uint8_t *)dwz;
		r.len = sizeof(*dwz);
		break;
	case R_BREAD:
	case R_BWRITE:
		/* Not on a logical-block boundary: the request goes through bounce pages. */
		r.len = 16384;
		r.data = (uint8_t *)vdrv_alloc(d, r.len + 4096, 4096) + 2;
		break;
	default:
		r.len = 16384;
		r.data = vdrv_alloc(d, r.len, 4096);
		break;
	}
	return r;
}

static void sweep_rq(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		     enum rq k)
{
	struct ctx *c = &self->c;
	struct vdrv *d = &c->d;
	struct vdrv_queue *q = &d->q[0];
	unsigned int n, ioerr = 0, ok = 0, i;
	uint8_t *pattern;
	struct vreq r;
	pid_t tid;
	int wnth, st, st0;
	bool fired;

	ASSERT_EQ(0, fresh(c));
	for (i = 0; i <= S_ATTACH; i++)
		ASSERT_EQ(0, step_do(c, i)) TH_LOG("%s", step_name[i]);
	tid = worker_tid();
	ASSERT_LT(0, tid) TH_LOG("no vhost-%d worker thread", getpid());
	wnth = nth_open(tid);
	ASSERT_LE(0, wnth);

	r = rq_make(d, k);
	pattern = malloc(16384);
	ASSERT_NE(NULL, pattern);
	vblk_fill(pattern, 16384, k + 1);
	if (k == R_READ || k == R_BREAD) {
		/* The data a read must return, written through the device. */
		struct vreq w = vdrv_req_alloc(d, VIRTIO_BLK_T_OUT, 256, 16384);

		memcpy(w.data, pattern, 16384);
		ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(d, q, &w, 1, false, NULL));
	}
	if (k == R_WRITE || k == R_BWRITE)
		memcpy(r.data, pattern, r.len);
	/* Without injection: the status every retry must get. */
	st0 = vdrv_do(d, q, &r, 1, false, NULL);
	ASSERT_LE(0, st0) TH_LOG("%s timed out without injection", rq_name[k]);
	if (k == R_FLUSH || k == R_READ || k == R_WRITE || k == R_BREAD || k == R_BWRITE)
		ASSERT_EQ(VIRTIO_BLK_S_OK, st0);

	for (n = 1; n <= MAX_NTH; n++) {
		if (k == R_READ || k == R_BREAD)
			memset(r.data, 0, r.len);
		nth_arm(wnth, n);
		st = vdrv_do(d, q, &r, 1, false, NULL);
		fired = nth_fired(wnth);
		/* Nothing hangs: vdrv_do waits 10 s for the used entry. */
		ASSERT_LE(0, st) TH_LOG("%s with allocation %u failing: no completion",
					rq_name[k], n);
		if (!fired) {
			ASSERT_EQ(st0, st);
			break;
		}
		if (st == VIRTIO_BLK_S_OK) {
			ok++;
		} else {
			ASSERT_EQ(VIRTIO_BLK_S_IOERR, st)
				TH_LOG("%s with allocation %u failing: status %d",
				       rq_name[k], n, st);
			ioerr++;
		}
		if (st == VIRTIO_BLK_S_OK && (k == R_READ || k == R_BREAD))
			ASSERT_EQ(0, memcmp(r.data, pattern, r.len))
				TH_LOG("%s with allocation %u failing: wrong data", rq_name[k], n);
		/* Usable: the same request again without injection. */
		if (k == R_READ || k == R_BREAD)
			memset(r.data, 0, r.len);
		ASSERT_EQ(st0, vdrv_do(d, q, &r, 1, false, NULL))
			TH_LOG("%s after allocation %u failed", rq_name[k], n);
		if (k == R_READ || k == R_BREAD)
			ASSERT_EQ(0, memcmp(r.data, pattern, r.len));
	}
	ASSERT_GE(MAX_NTH, n);
	if (k == R_WRITE || k == R_BWRITE) {
		struct vreq rd = vdrv_req_alloc(d, VIRTIO_BLK_T_IN, 256, 16384);

		ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(d, q, &rd, 1, false, NULL));
		ASSERT_EQ(0, memcmp(rd.data, pattern, 16384));
	}
	ASSERT_EQ(0, io_check(c, 1024, k));
	close(wnth);
	free(pattern);
	drop(c);
	printf("# fail-nth %s: %u allocation failure points swept in the worker (%u IOERR, %u absorbed), status without injection %d\n",
	       rq_name[k], n - 1, ioerr, ok, st0);
}

#define RQ_TEST(name, k) \
	TEST_F_TIMEOUT(fi, name, 600) { SKIP_IF_UNREADY(); sweep_rq(_metadata, self, k); }

RQ_TEST(rq_read, R_READ)
RQ_TEST(rq_write, R_WRITE)
RQ_TEST(rq_flush, R_FLUSH)
RQ_TEST(rq_discard, R_DISCARD)
RQ_TEST(rq_write_zeroes, R_WZEROES)
RQ_TEST(rq_bounced_read, R_BREAD)
RQ_TEST(rq_bounced_write, R_BWRITE)

/*
 * fail_make_request on the backing disk under load: 400 requests of 4 KiB
 * (one bio each), 16 in flight (3 descriptors each in a ring of 64), with up to 40 bios failed at random. Every
 * injected failure is one IOERR the guest sees, every other request is OK.
 */
TEST_F_TIMEOUT(fi, fail_make_request_under_load, 600)
{
	enum { TOTAL = 400, DEPTH = 16, TIMES = 40 };
	struct ctx *c = &self->c;
	struct vdrv *d = &c->d;
	struct vdrv_queue *q = &d->q[0];
	struct vreq r[DEPTH];
	int slot_of[RING];
	unsigned int sent = 0, done = 0, ioerr = 0, i;
	char left[32], mif[32] = "";
	const char *disk_mif = "/sys/block/ram0/make-it-fail";
	uint32_t head, len;
	int injected;

	SKIP_IF_UNREADY();
	ASSERT_EQ(0, fresh(c));
	for (i = 0; i <= S_ATTACH; i++)
		ASSERT_EQ(0, step_do(c, i));
	for (i = 0; i < DEPTH; i++) {
		r[i] = vdrv_req_alloc(d, VIRTIO_BLK_T_OUT, 0, 4096);
		vblk_fill(r[i].data, 4096, i);
	}
	if (vblk_read_str(disk_mif, mif, sizeof(mif)))
		SKIP(return, "no %s (CONFIG_FAIL_MAKE_REQUEST)", disk_mif);
	ASSERT_EQ(0, vblk_write_str(FI "fail_make_request/interval", "1"));
	ASSERT_EQ(0, vblk_write_str(FI "fail_make_request/probability", "10"));
	snprintf(left, sizeof(left), "%d", TIMES);
	ASSERT_EQ(0, vblk_write_str(FI "fail_make_request/times", left));
	ASSERT_EQ(0, vblk_write_str(disk_mif, "1"));

	for (i = 0; i < RING; i++)
		slot_of[i] = -1;
	while (done < TOTAL) {
		while (sent < TOTAL && sent - done < DEPTH) {
			unsigned int s;
			int h;

			/* A free request slot: the one no head points at. */
			for (s = 0; s < DEPTH; s++) {
				bool busy = false;

				for (i = 0; i < RING; i++)
					busy |= slot_of[i] == (int)s;
				if (!busy)
					break;
			}
			r[s].hdr->type = sent % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
			r[s].hdr->sector = 8 * (sent % 512);
			h = vdrv_start(d, q, &r[s], 1, false);
			ASSERT_LE(0, h);
			slot_of[h] = s;
			sent++;
		}
		vdrv_kick(q);
		ASSERT_EQ(0, vdrv_get_used(d, q, &head, &len, 30000))
			TH_LOG("no completion after %u of %u requests: hung", done, TOTAL);
		ASSERT_LE(0, slot_of[head]);
		if (*r[slot_of[head]].status == VIRTIO_BLK_S_IOERR)
			ioerr++;
		else
			ASSERT_EQ(VIRTIO_BLK_S_OK, *r[slot_of[head]].status);
		slot_of[head] = -1;
		done++;
	}
	vblk_write_str(disk_mif, "0");
	vblk_write_str(FI "fail_make_request/probability", "0");
	ASSERT_EQ(0, vblk_read_str(FI "fail_make_request/times", left, sizeof(left)));
	injected = TIMES - atoi(left);
	vblk_write_str(FI "fail_make_request/times", "1");
	ASSERT_LT(0, injected) TH_LOG("fail_make_request injected nothing");
	ASSERT_EQ((unsigned int)injected, ioerr)
		TH_LOG("%d bio errors injected, the guest saw %u IOERR", injected, ioerr);
	ASSERT_EQ(0, io_check(c, 2048, 7));
	drop(c);
	printf("# fail_make_request: %d bio errors injected in %u requests, %u IOERR seen\n",
	       injected, TOTAL, ioerr);
}

TEST_HARNESS_MAIN

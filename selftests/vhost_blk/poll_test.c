// SPDX-License-Identifier: GPL-2.0
/*
 * Busy-polling of the avail ring (VHOST_SET_VRING_BUSYLOOP_TIMEOUT): the
 * ioctl round trip and its errnos, data still correct with polling on
 * (mixed reads and writes on several queues, at depth 1 and 8, brd and
 * null_blk), and the poll bounded whatever the VMM asks: a device polled
 * with UINT_MAX microseconds neither keeps its worker spinning while the
 * guest is idle or sparse, nor holds up detach, close or the owner's death.
 * The CPU bounds are generous (a tenth of what an unbounded poll takes);
 * they catch a poll that never ends, not a slow one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(16 << 20)
#define NQ		4
#define DEPTH		8
#define REQ_LEN		4096
#define ROUNDS		24
/* Sectors each queue owns on the disk: DEPTH requests per round. */
#define QUEUE_SPAN	(ROUNDS * DEPTH * (REQ_LEN / 512))

static int set_poll(int fd, unsigned int index, unsigned int us)
{
	struct vhost_vring_state s = { .index = index, .num = us };

	return ioctl(fd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &s) ? -errno : 0;
}

static int get_poll(int fd, unsigned int index, unsigned int *us)
{
	struct vhost_vring_state s = { .index = index };

	if (ioctl(fd, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, &s))
		return -errno;
	*us = s.num;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The worker serving the device owned by @owner: a thread named
 * vhost-<pid> (a vhost task of the owner on 6.12, a kthread on 6.1).
 * Returns its CPU time (user + system) in seconds, or -1 if not found.
 */
static double worker_cpu_s(pid_t owner)
{
	char want[32], path[600], comm[32], buf[1024];
	double cpu = -1;
	struct dirent *de, *te;
	DIR *dir, *tdir;

	snprintf(want, sizeof(want), "vhost-%d", owner);
	dir = opendir("/proc");
	if (!dir)
		return -1;
	while (cpu < 0 && (de = readdir(dir))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", de->d_name);
		tdir = opendir(path);
		if (!tdir)
			continue;
		while ((te = readdir(tdir))) {
			unsigned long ut, st;
			char *p;

			if (te->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/comm",
				 de->d_name, te->d_name);
			if (vblk_read_str(path, comm, sizeof(comm)) ||
			    strcmp(comm, want))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stat",
				 de->d_name, te->d_name);
			if (vblk_read_str(path, buf, sizeof(buf)))
				continue;
			/* Fields 14 and 15, counted after the ")" of comm. */
			p = strrchr(buf, ')');
			if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
					&ut, &st) == 2)
				cpu = (double)(ut + st) / sysconf(_SC_CLK_TCK);
			break;
		}
		closedir(tdir);
	}
	closedir(dir);
	return cpu;
}

TEST(busyloop_timeout_round_trip)
{
	unsigned int us, i;
	struct vdrv d;
	int fd;

	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	/* Not the owner yet: the core's owner check. */
	EXPECT_EQ(-EPERM, set_poll(d.fd, 0, 50));
	EXPECT_EQ(-EPERM, get_poll(d.fd, 0, &us));
	ASSERT_EQ(0, vdrv_setup(&d, 2, 128, VHOST_BLK_FEATURES));

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		ASSERT_EQ(0, get_poll(d.fd, i, &us));
		EXPECT_EQ(0, us) TH_LOG("ring %u starts at %u us", i, us);
	}
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		ASSERT_EQ(0, set_poll(d.fd, i, i * 10 + 1));
	/* The module clamps when it polls; the value reads back as set. */
	ASSERT_EQ(0, set_poll(d.fd, 1, UINT_MAX));
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		ASSERT_EQ(0, get_poll(d.fd, i, &us));
		EXPECT_EQ(i == 1 ? UINT_MAX : i * 10 + 1, us);
	}
	/* A ring the device does not have. */
	EXPECT_EQ(-ENOBUFS, set_poll(d.fd, VHOST_BLK_MAX_QUEUES, 50));
	EXPECT_EQ(-ENOBUFS, get_poll(d.fd, VHOST_BLK_MAX_QUEUES, &us));
	EXPECT_EQ(-ENOBUFS, set_poll(d.fd, UINT_MAX, 50));

	/* Another process is not the owner either. */
	fd = d.fd;
	if (fork() == 0)
		_exit(set_poll(fd, 0, 50) == -EPERM ? 0 : 1);
	{
		int st;

		ASSERT_LT(0, wait(&st));
		EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	vdrv_close(&d);
}

struct qjob {
	struct vdrv *d;
	struct vdrv_queue *q;
	int bdev;
	uint64_t base;			/* first sector the queue owns */
	struct vreq w[DEPTH], r[DEPTH];
	int failed;			/* line of the first failed check */
};

#define QCHECK(cond) do { if (!(cond)) { j->failed = __LINE__; return NULL; } } while (0)

/* Start @n requests, kick once if the device asks, reap all n. */
static int qjob_batch(struct qjob *j, struct vreq *reqs, unsigned int n)
{
	uint16_t old = j->q->avail_idx;
	uint32_t head, len;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (vdrv_start(j->d, j->q, &reqs[i], 1, false) < 0)
			return -1;
	if (vdrv_kick_needed(j->d, j->q, old))
		vdrv_kick(j->q);
	for (i = 0; i < n; i++)
		if (vdrv_get_used(j->d, j->q, &head, &len, 20000))
			return -1;
	for (i = 0; i < n; i++)
		if (*reqs[i].status != VIRTIO_BLK_S_OK)
			return -1;
	return 0;
}

/*
 * Each round writes DEPTH blocks of a pattern of (queue, round, block) and
 * reads them back, at depth 1 on odd rounds (one request at a time: the
 * poll's case) and DEPTH on even ones; the device is read directly too.
 */
static void *qjob_run(void *arg)
{
	struct qjob *j = arg;
	uint8_t *check = malloc(REQ_LEN);
	unsigned int round, i;

	QCHECK(check);
	for (round = 0; round < ROUNDS; round++) {
		uint64_t sector = j->base + round * DEPTH * (REQ_LEN / 512);
		unsigned int qd = round % 2 ? 1 : DEPTH;

		for (i = 0; i < DEPTH; i++) {
			j->w[i].hdr->sector = sector + i * (REQ_LEN / 512);
			j->r[i].hdr->sector = j->w[i].hdr->sector;
			vblk_fill(j->w[i].data, REQ_LEN,
				  (j->base << 20) + round * DEPTH + i);
			memset(j->r[i].data, 0xa5, REQ_LEN);
		}
		for (i = 0; i < DEPTH; i += qd)
			QCHECK(!qjob_batch(j, &j->w[i], qd));
		for (i = 0; i < DEPTH; i += qd)
			QCHECK(!qjob_batch(j, &j->r[i], qd));
		for (i = 0; i < DEPTH; i++) {
			QCHECK(!memcmp(j->r[i].data, j->w[i].data, REQ_LEN));
			QCHECK(!vblk_pread(j->bdev, check, REQ_LEN,
					   j->w[i].hdr->sector * 512));
			QCHECK(!memcmp(check, j->w[i].data, REQ_LEN));
		}
	}
	free(check);
	return NULL;
}

static void mixed_io(struct __test_metadata *_metadata, const char *disk,
		     unsigned int poll_us)
{
	struct qjob jobs[NQ];
	pthread_t th[NQ];
	struct vdrv d;
	unsigned int i, k;
	int bdev;

	bdev = vdrv_open_on(&d, disk, O_RDWR, MEM_SIZE, NQ, 128);
	ASSERT_LE(0, bdev) TH_LOG("%s: %s", disk, strerror(-bdev));
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, set_poll(d.fd, i, poll_us));
	for (i = 0; i < NQ; i++) {
		jobs[i] = (struct qjob){ .d = &d, .q = &d.q[i], .bdev = bdev,
					 .base = i * QUEUE_SPAN };
		for (k = 0; k < DEPTH; k++) {
			jobs[i].w[k] = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0,
						      REQ_LEN);
			jobs[i].r[k] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0,
						      REQ_LEN);
		}
	}
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, qjob_run, &jobs[i]));
	for (i = 0; i < NQ; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NQ; i++) {
		int line = jobs[i].failed;

		EXPECT_EQ(0, line) TH_LOG("queue %u failed at line %d", i, line);
	}
	vdrv_close(&d);
	close(bdev);
}

FIXTURE(mixed) {
	char path[64];
	bool null_blk;
};

FIXTURE_VARIANT(mixed) {
	bool null_blk;
	unsigned int poll_us;
};

FIXTURE_VARIANT_ADD(mixed, brd_50us) { .null_blk = false, .poll_us = 50 };
FIXTURE_VARIANT_ADD(mixed, brd_max) { .null_blk = false, .poll_us = UINT_MAX };
FIXTURE_VARIANT_ADD(mixed, null_blk_50us) { .null_blk = true, .poll_us = 50 };
FIXTURE_VARIANT_ADD(mixed, null_blk_max) { .null_blk = true, .poll_us = UINT_MAX };

FIXTURE_SETUP(mixed)
{
	int ret;

	self->null_blk = variant->null_blk;
	if (variant->null_blk) {
		ret = vblk_null_blk("vblk_poll", 64, 512, false, self->path,
				    sizeof(self->path));
		if (ret)
			SKIP(return, "cannot create a null_blk device via configfs: %s",
			     strerror(-ret));
		return;
	}
	ret = vblk_brd(0, NULL);
	if (ret < 0)
		SKIP(return, "no brd ram disk (modprobe brd failed: %s)",
		     strerror(-ret));
	close(ret);
	snprintf(self->path, sizeof(self->path), "/dev/ram0");
}

FIXTURE_TEARDOWN(mixed)
{
	if (self->null_blk)
		vblk_null_blk_remove("vblk_poll");
}

TEST_F(mixed, data_correct_with_polling)
{
	mixed_io(_metadata, self->path, variant->poll_us);
}

/* A brd device with every ring polled for UINT_MAX us; one request done. */
/* /dev/ram0 is there (brd loads on demand). */
static bool have_brd(void)
{
	int fd = vblk_brd(0, NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int polled_device(struct __test_metadata *_metadata, struct vdrv *d,
			 unsigned int nq)
{
	struct vreq r;
	unsigned int i;
	int bdev;

	bdev = vdrv_open_on(d, "/dev/ram0", O_RDWR, MEM_SIZE, nq, 128);
	if (bdev < 0)
		return bdev;
	for (i = 0; i < nq; i++)
		EXPECT_EQ(0, set_poll(d->fd, i, UINT_MAX));
	r = vdrv_req_alloc(d, VIRTIO_BLK_T_IN, 0, REQ_LEN);
	EXPECT_EQ(VIRTIO_BLK_S_OK, vdrv_do(d, &d->q[0], &r, 1, false, NULL));
	return bdev;
}

TEST(idle_device_does_not_spin)
{
	double cpu0, cpu1, t0, t1;
	struct vdrv d;
	int bdev;

	if (!have_brd())
		SKIP(return, "no brd ram disk");
	bdev = polled_device(_metadata, &d, 2);
	ASSERT_LE(0, bdev);
	cpu0 = worker_cpu_s(getpid());
	ASSERT_LE(0, cpu0) TH_LOG("no vhost-%d worker thread", getpid());
	t0 = now_s();
	sleep(3);
	cpu1 = worker_cpu_s(getpid());
	t1 = now_s();
	/* An unbounded poll spins the whole time; a bounded one ~never. */
	TH_LOG("worker CPU %.2f s in %.2f s idle", cpu1 - cpu0, t1 - t0);
	EXPECT_GT(0.3 * (t1 - t0), cpu1 - cpu0)
		TH_LOG("worker used %.2f s of CPU in %.2f s idle",
		       cpu1 - cpu0, t1 - t0);
	vdrv_close(&d);
	close(bdev);
}

TEST(sparse_requests_do_not_spin)
{
	double cpu0, cpu1, t0, t1;
	struct vreq r;
	struct vdrv d;
	int bdev, i;

	if (!have_brd())
		SKIP(return, "no brd ram disk");
	bdev = polled_device(_metadata, &d, 1);
	ASSERT_LE(0, bdev);
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 8, REQ_LEN);
	cpu0 = worker_cpu_s(getpid());
	ASSERT_LE(0, cpu0) TH_LOG("no vhost-%d worker thread", getpid());
	t0 = now_s();
	/*
	 * A request every 20 ms: each kick may poll 1 ms after it, so the
	 * worker is busy a few percent of the time, not all of it.
	 */
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
		usleep(20000);
	}
	cpu1 = worker_cpu_s(getpid());
	t1 = now_s();
	TH_LOG("worker CPU %.2f s in %.2f s of sparse I/O", cpu1 - cpu0,
	       t1 - t0);
	EXPECT_GT(0.5 * (t1 - t0), cpu1 - cpu0)
		TH_LOG("worker used %.2f s of CPU in %.2f s of sparse I/O",
		       cpu1 - cpu0, t1 - t0);
	vdrv_close(&d);
	close(bdev);
}

/*
 * Requests at depth 1 while another thread detaches: the detach waits for
 * the queue's mutex, which the poll holds, so it shows the poll ending.
 */
struct streamer {
	struct vdrv *d;
	struct vreq r;
	volatile bool stop;
};

static void *stream_reads(void *arg)
{
	struct streamer *s = arg;

	/* Fails (times out) once detached; the stop flag ends it. */
	while (!s->stop)
		if (vdrv_do(s->d, &s->d->q[0], &s->r, 1, false, NULL) !=
		    VIRTIO_BLK_S_OK)
			break;
	return NULL;
}

TEST(detach_and_close_while_polling)
{
	struct streamer s = { 0 };
	struct vdrv d;
	pthread_t th;
	double t0;
	int bdev;

	if (!have_brd())
		SKIP(return, "no brd ram disk");
	bdev = polled_device(_metadata, &d, 1);
	ASSERT_LE(0, bdev);
	s.d = &d;
	s.r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 16, REQ_LEN);
	ASSERT_EQ(0, pthread_create(&th, NULL, stream_reads, &s));
	usleep(300000);
	t0 = now_s();
	EXPECT_EQ(0, vdrv_attach(&d, -1));
	/* Generous: a poll that ignored the mutex waiter would take forever. */
	EXPECT_GT(5.0, now_s() - t0);
	s.stop = true;
	pthread_join(th, NULL);

	/* Attach again, poll, and close with the worker polling. */
	EXPECT_EQ(0, vdrv_attach(&d, bdev));
	s.stop = false;
	ASSERT_EQ(0, pthread_create(&th, NULL, stream_reads, &s));
	usleep(300000);
	s.stop = true;
	pthread_join(th, NULL);
	t0 = now_s();
	vdrv_close(&d);
	EXPECT_GT(5.0, now_s() - t0);
	close(bdev);
}

TEST(owner_killed_while_polling)
{
	struct streamer s = { 0 };
	int pipefd[2], st, bdev;
	struct vdrv d;
	pthread_t th;
	double t0;
	pid_t pid;
	char c;

	if (!have_brd())
		SKIP(return, "no brd ram disk");
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipefd[0]);
		bdev = polled_device(_metadata, &d, 1);
		if (bdev < 0)
			_exit(1);
		s.d = &d;
		s.r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 24, REQ_LEN);
		if (pthread_create(&th, NULL, stream_reads, &s))
			_exit(1);
		c = 1;
		if (write(pipefd[1], &c, 1) != 1)
			_exit(1);
		pthread_join(th, NULL);
		_exit(2);	/* the stream stopped on its own: an error */
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1)) TH_LOG("the owner failed to set up");
	close(pipefd[0]);
	usleep(300000);
	t0 = now_s();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_GT(10.0, now_s() - t0);
	EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		TH_LOG("owner exited with status %d", st);
	/* The device released its claim: brd can be opened exclusively. */
	bdev = open("/dev/ram0", O_RDWR | O_EXCL);
	EXPECT_LE(0, bdev) TH_LOG("brd still claimed: %s", strerror(errno));
	if (bdev >= 0)
		close(bdev);
}

TEST_HARNESS_MAIN

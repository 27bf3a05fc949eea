// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency and lifecycle: all queues busy at once, a seeded randomized
 * soak against a shadow copy, and stop/detach/reset/close with requests in
 * flight, checked for lost requests and leaked pins.
 *
 * VBLK_SEED=<n> reproduces a soak run; VBLK_SOAK_OPS=<n> sizes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(32 << 20)
#define NQ		4
#define DEPTH		16

/* FOLL_PIN accounting (6.2+): acquired == released when nothing leaks. */
static long pins_outstanding(void)
{
	long acq = -1, rel = -1, v;
	char name[64];
	FILE *f;
	int fd;

	/* Fold the per-cpu counter deltas first, or the sums drift. */
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			{ /* a negative counter is reported, still folded */ }
		close(fd);
	}
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &v) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			acq = v;
		else if (!strcmp(name, "nr_foll_pin_released"))
			rel = v;
	}
	fclose(f);
	return acq < 0 || rel < 0 ? -1 : acq - rel;
}

/*
 * Objects in the bio slabs: back to where they were when idle. Shrunk
 * first: a KASAN kernel keeps freed objects in its quarantine, counted as
 * in use until a shrink of their cache releases them. -1: no SLUB counts.
 */
static long bio_slab_objects(void)
{
	struct vblk_slab c;

	vblk_slab_shrink("bio-*");
	return vblk_slab_count("bio-*", &c) > 0 ? c.objects : -1;
}

/*
 * A device with @nq queues of @num entries on /dev/ram0. Returns the disk's
 * fd, or -1 after marking the test skipped.
 */
static int start_device(struct __test_metadata *_metadata, struct vdrv *d,
			unsigned int nq, unsigned int num)
{
	int bdev = vblk_brd(0, NULL);

	if (bdev < 0)
		SKIP(return -1, "no brd ram disk");
	close(bdev);
	bdev = vdrv_open_on(d, "/dev/ram0", O_RDWR, MEM_SIZE, nq, num);
	ASSERT_LE(0, bdev);
	return bdev;
}

struct worker {
	struct vdrv *d;
	struct vdrv_queue *q;
	int bdev;
	uint64_t base;		/* first sector of this queue's region */
	struct vreq w[DEPTH], r[DEPTH];
	int rounds;
	int failed;
	char why[128];
};

/* DEPTH requests of @type on the worker's queue, in varied layouts. */
static const char *run_batch(struct worker *wk, struct vreq *r, uint32_t type,
			     int round)
{
	uint32_t head, len;
	int i;

	for (i = 0; i < DEPTH; i++) {
		r[i].hdr->type = type;
		r[i].hdr->sector = wk->base + i * 16;
		if (type == VIRTIO_BLK_T_OUT)
			vblk_fill(r[i].data, 8192, round * 1000 + i + wk->base);
		if (vdrv_start(wk->d, wk->q, &r[i], 1 + (i + type) % 3,
			       (i + type) & 1) < 0)
			return "ring full";
	}
	vdrv_kick(wk->q);
	for (i = 0; i < DEPTH; i++)
		if (vdrv_get_used(wk->d, wk->q, &head, &len, 20000))
			return "completion timed out";
	return NULL;
}

static void *queue_worker(void *arg)
{
	struct worker *wk = arg;
	const char *err;
	int round, i;

	for (round = 0; round < wk->rounds; round++) {
		err = run_batch(wk, wk->w, VIRTIO_BLK_T_OUT, round);
		if (!err)
			err = run_batch(wk, wk->r, VIRTIO_BLK_T_IN, round);
		for (i = 0; !err && i < DEPTH; i++)
			if (*wk->w[i].status || *wk->r[i].status ||
			    memcmp(wk->w[i].data, wk->r[i].data, 8192))
				err = "data or status mismatch";
		if (err) {
			wk->failed = 1;
			snprintf(wk->why, sizeof(wk->why), "queue %u round %d: %s",
				 wk->q->index, round, err);
			break;
		}
	}
	return NULL;
}

TEST(all_queues_busy)
{
	struct worker wk[NQ];
	pthread_t th[NQ];
	struct vdrv d;
	int bdev, i, j;

	bdev = start_device(_metadata, &d, NQ, 128);
	if (bdev < 0)
		return;

	for (i = 0; i < NQ; i++) {
		memset(&wk[i], 0, sizeof(wk[i]));
		wk[i].d = &d;
		wk[i].q = &d.q[i];
		wk[i].bdev = bdev;
		wk[i].base = i * 2048;
		wk[i].rounds = 30;
		for (j = 0; j < DEPTH; j++) {
			wk[i].w[j] = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, 0, 8192);
			wk[i].r[j] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 8192);
		}
	}
	/* Indirect tables come from the shared allocator: reserve up front. */
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, queue_worker, &wk[i]));
	for (i = 0; i < NQ; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NQ; i++) {
		if (wk[i].failed)
			TH_LOG("%s", wk[i].why);
		EXPECT_EQ(0, wk[i].failed);
	}
	vdrv_close(&d);
	close(bdev);
}

/* The soak: random requests, several in flight, checked against a shadow. */
struct soak_req {
	struct vreq r;
	uint32_t type;
	uint64_t sector;
	uint32_t len;
	bool busy;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Sized by VBLK_SOAK_OPS, so the harness's 30 s default cannot apply: the
 * runner's per-binary timeout (settings) bounds the default lane.
 */
FIXTURE(soak) {};
FIXTURE_SETUP(soak) {}
FIXTURE_TEARDOWN(soak) {}

TEST_F_TIMEOUT(soak, randomized, 6 * 3600)
{
	const char *env = getenv("VBLK_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed1234;
	uint64_t s = seed, cap;
	long ops = getenv("VBLK_SOAK_OPS") ? atol(getenv("VBLK_SOAK_OPS")) : 20000;
	struct soak_req reqs[2][DEPTH];
	uint8_t *shadow;
	size_t bytes;
	struct vdrv d;
	int bdev, qi, i;
	long done = 0, issued = 0;

	bdev = vblk_brd(1, &bytes);
	if (bdev < 0)
		SKIP(return, "no brd ram disk");
	/* Keep the region small so requests overlap often. */
	cap = 4096;
	shadow = calloc(1, cap * 512);
	ASSERT_EQ(0, vblk_pwrite(bdev, shadow, cap * 512, 0));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 2, 128, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	for (qi = 0; qi < 2; qi++)
		for (i = 0; i < DEPTH; i++) {
			reqs[qi][i].r = vdrv_req_alloc(&d, 0, 0, 128 * 1024);
			reqs[qi][i].busy = false;
		}
	TH_LOG("seed 0x%llx, %ld requests", (unsigned long long)seed, ops);

	/*
	 * Issue in waves: pick random requests for both queues that do not
	 * overlap any write in flight (their order would be undefined),
	 * apply writes to the shadow, then check reads against it.
	 */
	while (done < ops) {
		int n[2] = { 0, 0 };
		uint64_t wlo[2 * DEPTH], whi[2 * DEPTH];
		int nw = 0;

		for (qi = 0; qi < 2; qi++) {
			int want = 1 + rnd(&s) % DEPTH;

			for (i = 0; i < want; i++) {
				struct soak_req *sr = &reqs[qi][i];
				uint32_t kind = rnd(&s) % 10;
				uint64_t lo, hi;
				bool clash = false;

				sr->len = (1 + rnd(&s) % 256) * 512;
				sr->sector = rnd(&s) % (cap - sr->len / 512 + 1);
				sr->type = kind < 4 ? VIRTIO_BLK_T_IN :
					   kind < 8 ? VIRTIO_BLK_T_OUT :
					   kind < 9 ? VIRTIO_BLK_T_WRITE_ZEROES :
						      VIRTIO_BLK_T_FLUSH;
				lo = sr->sector;
				hi = lo + sr->len / 512;
				for (int k = 0; k < nw; k++)
					if (lo < whi[k] && wlo[k] < hi)
						clash = true;
				if (clash)
					sr->type = VIRTIO_BLK_T_FLUSH;
				if (sr->type == VIRTIO_BLK_T_OUT ||
				    sr->type == VIRTIO_BLK_T_WRITE_ZEROES ||
				    sr->type == VIRTIO_BLK_T_IN) {
					/* reads also must not race writes */
					wlo[nw] = lo;
					whi[nw++] = hi;
				}
				sr->r.hdr->type = sr->type;
				sr->r.hdr->sector = sr->sector;
				if (sr->type == VIRTIO_BLK_T_OUT) {
					vblk_fill(sr->r.data, sr->len, rnd(&s));
					memcpy(shadow + sr->sector * 512,
					       sr->r.data, sr->len);
				} else if (sr->type == VIRTIO_BLK_T_WRITE_ZEROES) {
					struct virtio_blk_discard_write_zeroes *z =
						(void *)sr->r.data;

					z->sector = sr->sector;
					z->num_sectors = sr->len / 512;
					z->flags = rnd(&s) & 1;
					memset(shadow + sr->sector * 512, 0,
					       sr->len);
				}
				uint32_t keep = sr->r.len;

				if (sr->type == VIRTIO_BLK_T_FLUSH)
					sr->r.len = 0;
				else if (sr->type != VIRTIO_BLK_T_WRITE_ZEROES)
					sr->r.len = sr->len;
				if (sr->type == VIRTIO_BLK_T_WRITE_ZEROES) {
					struct vseg segs[] = {
						{ sr->r.hdr, 16, false },
						{ sr->r.data, 16, false },
						{ sr->r.status, 1, true },
					};
					*sr->r.status = 0xff;
					ASSERT_LE(0, vdrv_add(&d, &d.q[qi], segs, 3,
							      false));
				} else {
					ASSERT_LE(0, vdrv_start(&d, &d.q[qi], &sr->r,
								1 + rnd(&s) % 4,
								rnd(&s) & 1));
				}
				sr->r.len = keep;
				n[qi]++;
				issued++;
			}
			vdrv_kick(&d.q[qi]);
		}
		for (qi = 0; qi < 2; qi++) {
			for (i = 0; i < n[qi]; i++) {
				uint32_t head, len;

				ASSERT_EQ(0, vdrv_get_used(&d, &d.q[qi], &head,
							   &len, 20000));
			}
			for (i = 0; i < n[qi]; i++) {
				struct soak_req *sr = &reqs[qi][i];

				ASSERT_EQ(VIRTIO_BLK_S_OK, *sr->r.status)
					TH_LOG("seed 0x%llx request %ld type %u",
					       (unsigned long long)seed,
					       done + i, sr->type);
				if (sr->type == VIRTIO_BLK_T_IN)
					ASSERT_EQ(0, memcmp(sr->r.data,
							    shadow + sr->sector * 512,
							    sr->len))
						TH_LOG("seed 0x%llx: read at %llu differs",
						       (unsigned long long)seed,
						       (unsigned long long)sr->sector);
			}
			done += n[qi];
		}
	}
	/* Finally the whole device against the shadow. */
	uint8_t *all = malloc(cap * 512);

	ASSERT_EQ(0, vblk_pread(bdev, all, cap * 512, 0));
	ASSERT_EQ(0, memcmp(all, shadow, cap * 512));
	TH_LOG("%ld requests checked", issued);
	free(all);
	free(shadow);
	vdrv_close(&d);
	close(bdev);
}

/* Start @n reads on queue @q without waiting. */
static void start_reads(struct __test_metadata *_metadata, struct vdrv *d,
			struct vdrv_queue *q, struct vreq *r, int n)
{
	/* Indirect: one ring descriptor each, so @n fits a small ring. */
	for (int i = 0; i < n; i++)
		ASSERT_LE(0, vdrv_start(d, q, &r[i], 1 + i % 4, true));
	vdrv_kick(q);
}

enum stop_how { STOP_DETACH, STOP_GET_BASE, STOP_SWAP };

static void stop_in_flight(struct __test_metadata *_metadata, enum stop_how how)
{
	struct vreq r[32];
	struct vdrv d;
	int bdev, bdev2, i, round;

	bdev = vblk_brd(0, NULL);
	bdev2 = vblk_brd(1, NULL);
	if (bdev < 0 || bdev2 < 0)
		SKIP(return, "no brd ram disk");
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	for (i = 0; i < 32; i++)
		r[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, i * 256, 65536);

	for (round = 0; round < 20; round++) {
		struct vhost_vring_state st = { .index = 0 };
		struct vdrv_queue *q = &d.q[0];

		ASSERT_EQ(0, vdrv_attach(&d, round & 1 && how == STOP_SWAP ?
					 bdev2 : bdev));
		start_reads(_metadata, &d, q, r, 32);
		usleep(round * 100);
		switch (how) {
		case STOP_DETACH:
			ASSERT_EQ(0, vdrv_attach(&d, -1));
			break;
		case STOP_GET_BASE:
			break;
		case STOP_SWAP:
			ASSERT_EQ(0, vdrv_attach(&d, round & 1 ? bdev : bdev2));
			break;
		}
		if (how != STOP_SWAP) {
			/*
			 * Stopped: every request fetched so far is already in
			 * the used ring, so a VMM restarting from the base
			 * loses nothing. Restart, as a VMM would.
			 */
			ASSERT_EQ(0, ioctl(d.fd, VHOST_GET_VRING_BASE, &st));
			ASSERT_EQ(st.num, __atomic_load_n(&q->used->idx,
							  __ATOMIC_ACQUIRE));
			ASSERT_EQ(0, ioctl(d.fd, VHOST_SET_VRING_BASE, &st));
			ASSERT_EQ(0, vdrv_attach(&d, bdev));
		}
		/* Every request completes: drained, or served after. */
		for (i = 0; i < 32; i++) {
			uint32_t head, len;

			ASSERT_EQ(0, vdrv_get_used(&d, q, &head, &len, 20000))
				TH_LOG("round %d: request %d lost", round, i);
		}
		for (i = 0; i < 32; i++)
			ASSERT_EQ(VIRTIO_BLK_S_OK, *r[i].status);
		if (how == STOP_SWAP)
			ASSERT_EQ(0, vdrv_attach(&d, -1));
	}
	vdrv_close(&d);
	close(bdev);
	close(bdev2);
}

TEST(detach_in_flight)
{
	stop_in_flight(_metadata, STOP_DETACH);
}

TEST(get_vring_base_in_flight)
{
	stop_in_flight(_metadata, STOP_GET_BASE);
}

TEST(swap_backend_in_flight)
{
	stop_in_flight(_metadata, STOP_SWAP);
}

TEST(close_and_reset_in_flight)
{
	long pins_before = pins_outstanding();
	long bios_before = bio_slab_objects();
	struct vreq r[32];
	struct vdrv d;
	int bdev, round;

	bdev = vblk_brd(0, NULL);
	if (bdev < 0)
		SKIP(return, "no brd ram disk");
	for (round = 0; round < 30; round++) {
		ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
		ASSERT_EQ(0, vdrv_setup(&d, 2, 64, VHOST_BLK_FEATURES));
		ASSERT_EQ(0, vdrv_attach(&d, bdev));
		for (int i = 0; i < 32; i++)
			r[i] = vdrv_req_alloc(&d, i & 1 ? VIRTIO_BLK_T_IN :
					      VIRTIO_BLK_T_OUT, i * 128, 65536);
		start_reads(_metadata, &d, &d.q[round & 1], r, 32);
		if (round % 3 == 0)
			ASSERT_EQ(0, ioctl(d.fd, VHOST_RESET_OWNER));
		vdrv_close(&d);
	}
	/* The disk is free again: nothing kept a claim. */
	int excl = open("/dev/ram0", O_RDWR | O_EXCL);

	ASSERT_LE(0, excl);
	close(excl);
	if (pins_before >= 0)
		ASSERT_EQ(pins_before, pins_outstanding());
	/* Slabs are per-cpu cached: allow slack, not a per-request leak. */
	if (bios_before >= 0)
		ASSERT_GT(bios_before + 256, bio_slab_objects());
	close(bdev);
}

TEST(owner_exits_with_io_in_flight)
{
	long pins_before = pins_outstanding();
	int round, status, excl;

	excl = vblk_brd(0, NULL);
	if (excl < 0)
		SKIP(return, "no brd ram disk");
	close(excl);
	for (round = 0; round < 10; round++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			/* The owner dies mid-I/O: on 6.12 its worker dies too. */
			struct vreq r[32];
			struct vdrv d;
			int bdev = open("/dev/ram0", O_RDWR);

			if (bdev < 0 || vdrv_open(&d, MEM_SIZE) ||
			    vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES) ||
			    vdrv_attach(&d, bdev))
				_exit(1);
			for (int i = 0; i < 32; i++) {
				r[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN,
						      i * 128, 65536);
				if (vdrv_start(&d, &d.q[0], &r[i], 2, true) < 0)
					_exit(1);
			}
			vdrv_kick(&d.q[0]);
			if (round & 1)
				kill(getpid(), SIGKILL);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		if (round & 1) {
			ASSERT_TRUE(WIFSIGNALED(status));
		} else {
			ASSERT_EQ(0, WEXITSTATUS(status));
		}
	}
	/* Every device was released: the disk is free, no pins are left. */
	excl = open("/dev/ram0", O_RDWR | O_EXCL);
	ASSERT_LE(0, excl);
	close(excl);
	if (pins_before >= 0)
		ASSERT_EQ(pins_before, pins_outstanding());
}

TEST(ring_size_grows_between_runs)
{
	struct vdrv d;
	struct vreq r[256];
	int bdev, i;

	bdev = start_device(_metadata, &d, 1, 16);
	if (bdev < 0)
		return;
	r[0] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r[0], 1, false, NULL));

	/* Resizing with a backend attached is refused by the core. */
	struct vhost_vring_state st = { .index = 0, .num = 256 };

	ASSERT_EQ(-1, ioctl(d.fd, VHOST_SET_VRING_NUM, &st));
	ASSERT_EQ(EBUSY, errno);

	ASSERT_EQ(0, vdrv_attach(&d, -1));
	ASSERT_EQ(0, vdrv_setup_queue(&d, 0, 256));
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	/* 256 in flight at once: all of the larger ring. */
	for (i = 0; i < 256; i++) {
		r[i] = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, i * 8, 4096);
		ASSERT_LE(0, vdrv_start(&d, &d.q[0], &r[i], 1, true));
	}
	vdrv_kick(&d.q[0]);
	for (i = 0; i < 256; i++) {
		uint32_t head, len;

		ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &len, 20000));
	}
	for (i = 0; i < 256; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, *r[i].status);
	vdrv_close(&d);
	close(bdev);
}

TEST(one_queue_cannot_starve_another)
{
	struct vdrv d;
	struct vreq flood, one;
	uint32_t head, len;
	int bdev, i;

	bdev = start_device(_metadata, &d, 2, 256);
	if (bdev < 0)
		return;

	/*
	 * Queue 0: 256 MiB of reads (all into one buffer), far more than one
	 * kick may do. Queue 1, kicked right after: one small read. Both
	 * share a worker; the weights must let queue 1 in long before
	 * queue 0 is done. Progress order, not time, is what is checked.
	 */
	flood = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 0, 1 << 20);
	one = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 4096, 4096);
	for (i = 0; i < 256; i++)
		ASSERT_LE(0, vdrv_start(&d, &d.q[0], &flood, 1, true));
	/* Both published first, so the kicks come back to back. */
	ASSERT_LE(0, vdrv_start(&d, &d.q[1], &one, 1, false));
	vdrv_kick(&d.q[0]);
	vdrv_kick(&d.q[1]);
	ASSERT_EQ(0, vdrv_get_used(&d, &d.q[1], &head, &len, 60000));
	ASSERT_EQ(VIRTIO_BLK_S_OK, *one.status);
	ASSERT_GT(192, __atomic_load_n(&d.q[0].used->idx, __ATOMIC_ACQUIRE))
		TH_LOG("queue 1 waited for most of queue 0's backlog");
	for (i = 0; i < 256; i++)
		ASSERT_EQ(0, vdrv_get_used(&d, &d.q[0], &head, &len, 60000));
	vdrv_close(&d);
	close(bdev);
}

#ifdef VHOST_NEW_WORKER
TEST(worker_per_queue)
{
	struct vhost_worker_state ws;
	struct vdrv d;
	struct vreq r;
	int bdev, i;

	bdev = vblk_brd(0, NULL);
	if (bdev < 0)
		SKIP(return, "no brd ram disk");
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, NQ, 64, VHOST_BLK_FEATURES));
	for (i = 0; i < NQ; i++) {
		struct vhost_vring_worker vw = { .index = i };

		memset(&ws, 0, sizeof(ws));
		if (ioctl(d.fd, VHOST_NEW_WORKER, &ws)) {
			ASSERT_EQ(ENOTTY, errno);
			vdrv_close(&d);
			close(bdev);
			SKIP(return, "this kernel's vhost core has no per-queue workers (6.1 shares one)");
		}
		vw.worker_id = ws.worker_id;
		ASSERT_EQ(0, ioctl(d.fd, VHOST_ATTACH_VRING_WORKER, &vw));
		vw.worker_id = ~0u;
		ASSERT_EQ(0, ioctl(d.fd, VHOST_GET_VRING_WORKER, &vw));
		ASSERT_EQ(ws.worker_id, vw.worker_id);
	}
	ASSERT_EQ(0, vdrv_attach(&d, bdev));
	for (i = 0; i < NQ; i++) {
		r = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, i * 8, 4096);
		ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[i], &r, 2, false,
						   NULL));
	}
	vdrv_close(&d);
	close(bdev);
}
#else
TEST(worker_per_queue)
{
	SKIP(return, "built against a vhost uapi without VHOST_NEW_WORKER: this kernel's vhost core has one worker per device");
}
#endif

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * vblk_bench: one benchmark cell at the data-plane level, without a guest.
 *
 * Plays the guest's virtio-blk driver (the selftests' vblk_driver) and
 * drives the same requests through one back-end's own transport:
 *   --backend vhost-blk    /dev/vhost-blk through its ioctls, on --disk
 *                          (--poll-us N: each ring's busyloop timeout)
 *   --backend vhost-user   a vhost-user-blk back-end on --socket (QEMU's
 *                          front-end side, vu_frontend.c)
 * One submitting thread per queue keeps --qd requests in flight for --time
 * seconds, then drains. Prints one JSON object: IOPS, latency percentiles
 * from per-request timestamps, and CPU time of the back-end's data-plane
 * threads and of the submitting threads, read from /proc and getrusage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "vblk_driver.h"
#include "vu_frontend.h"

/* The features a Linux guest's virtio-blk would use, on both transports. */
#define BENCH_FEATURES					\
	((1ULL << VIRTIO_F_VERSION_1) |			\
	 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |	\
	 (1ULL << VIRTIO_RING_F_EVENT_IDX) |		\
	 (1ULL << VIRTIO_BLK_F_SEG_MAX) |		\
	 (1ULL << VIRTIO_BLK_F_BLK_SIZE) |		\
	 (1ULL << VIRTIO_BLK_F_FLUSH) |			\
	 (1ULL << VIRTIO_BLK_F_MQ))

#define BENCH_RING	256	/* entries; a request takes 3 descriptors */
#define BENCH_MAX_QD	64
#define BENCH_MAX_LAT	(4u << 20)	/* latency samples kept per thread */

struct bench_opts {
	const char *backend, *disk, *socket, *rw;
	unsigned int bs, qd, queues;
	unsigned int poll_us;	/* vhost-blk: VHOST_SET_VRING_BUSYLOOP_TIMEOUT */
	double time;
	uint64_t range;
	pid_t cpu_pid;		/* back-end process whose threads are counted */
	bool write, seq;
};

struct bench_worker {
	pthread_t thread;
	struct vdrv *d;
	struct vdrv_queue *q;
	const struct bench_opts *o;
	unsigned int idx;
	struct vreq slot[BENCH_MAX_QD];
	uint64_t t_submit[BENCH_MAX_QD];
	int16_t head_slot[BENCH_RING];
	uint32_t *lat;		/* ns */
	uint64_t nlat, ios, errors, kicks, calls, waits;
	uint64_t t_end;		/* last completion, ns */
	uint64_t cpu_us;	/* this thread's utime + stime */
};

static pthread_barrier_t bench_barrier;
static uint64_t bench_t0;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t thread_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ULL +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* utime + stime of one task from /proc/PID/task/TID/stat, in ticks. */
static uint64_t task_ticks(const char *dir)
{
	char path[700], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stat", dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p)
		return 0;
	/* comm may hold anything: the fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return 0;
	return ut + st;
}

static bool task_comm_is(const char *dir, const char *want)
{
	char path[700], comm[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/comm", dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	comm[strcspn(comm, "\n")] = 0;
	return !strcmp(comm, want);
}

/*
 * CPU ticks of the back-end's data plane: every thread of @pid (a
 * vhost-user daemon; 0 for none) and every vhost worker of owner @owner,
 * "vhost-<owner>": a kthread on 6.1, a thread of the owner since 6.4.
 */
static uint64_t backend_ticks(pid_t pid, pid_t owner)
{
	char worker[32], dir[600];
	struct dirent *p, *t;
	uint64_t sum = 0;
	DIR *pd, *td;

	snprintf(worker, sizeof(worker), "vhost-%d", owner);
	pd = opendir("/proc");
	if (!pd)
		return 0;
	while ((p = readdir(pd))) {
		bool all;

		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		all = pid && atoi(p->d_name) == pid;
		snprintf(dir, sizeof(dir), "/proc/%s/task", p->d_name);
		td = opendir(dir);
		if (!td)
			continue;
		while ((t = readdir(td))) {
			if (t->d_name[0] == '.')
				continue;
			snprintf(dir, sizeof(dir), "/proc/%s/task/%s",
				 p->d_name, t->d_name);
			if (all || task_comm_is(dir, worker))
				sum += task_ticks(dir);
		}
		closedir(td);
	}
	closedir(pd);
	return sum;
}

static uint64_t bench_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void bench_submit(struct bench_worker *w, unsigned int s,
			 uint64_t *off, uint64_t *rnd)
{
	const struct bench_opts *o = w->o;
	struct vreq *r = &w->slot[s];
	int head;

	if (o->seq) {
		r->hdr->sector = *off >> 9;
		*off += o->bs;
		if (*off + o->bs > o->range)
			*off = 0;
	} else {
		r->hdr->sector = (bench_rand(rnd) % (o->range / o->bs)) *
				 (o->bs >> 9);
	}
	head = vdrv_start(w->d, w->q, r, 1, false);
	if (head < 0 || head >= BENCH_RING) {
		fprintf(stderr, "vblk_bench: no free descriptors (head %d): bug\n",
			head);
		abort();
	}
	w->head_slot[head] = s;
	w->t_submit[s] = now_ns();
}

/* Take every used entry; returns how many. */
static unsigned int bench_reap(struct bench_worker *w, int *free_slots,
			       unsigned int *nfree)
{
	uint32_t head, len;
	unsigned int n = 0;
	uint64_t t;
	int s;

	while (!vdrv_reap(w->d, w->q, &head, &len)) {
		t = now_ns();
		s = head < BENCH_RING ? w->head_slot[head] : -1;
		if (s < 0) {
			fprintf(stderr, "vblk_bench: used id %u was not in flight\n",
				head);
			abort();
		}
		w->head_slot[head] = -1;
		if (*w->slot[s].status != VIRTIO_BLK_S_OK)
			w->errors++;
		if (w->nlat < BENCH_MAX_LAT) {
			uint64_t l = t - w->t_submit[s];

			w->lat[w->nlat++] = l > UINT32_MAX ? UINT32_MAX : l;
		}
		w->ios++;
		w->t_end = t;
		free_slots[(*nfree)++] = s;
		n++;
	}
	return n;
}

static void bench_wait_call(struct bench_worker *w)
{
	struct pollfd pfd = { .fd = w->q->call, .events = POLLIN };
	uint64_t cnt;

	w->waits++;
	if (poll(&pfd, 1, 1000) == 1 &&
	    read(w->q->call, &cnt, sizeof(cnt)) == sizeof(cnt))
		w->calls += cnt;
}

static void *bench_worker_run(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_opts *o = w->o;
	uint64_t rnd = 0x9E3779B97F4A7C15ULL * (w->idx + 1), off, deadline;
	uint64_t cpu0, stall_since = 0;
	int free_slots[BENCH_MAX_QD];
	unsigned int nfree = 0, i;

	for (i = 0; i < o->qd; i++)
		free_slots[nfree++] = o->qd - 1 - i;
	off = (o->range / o->queues) * w->idx / o->bs * o->bs;
	pthread_barrier_wait(&bench_barrier);
	cpu0 = thread_cpu_us();
	deadline = bench_t0 + (uint64_t)(o->time * 1e9);
	for (;;) {
		bool stop = now_ns() >= deadline;

		if (!stop && nfree) {
			uint16_t old = w->q->avail_idx;

			while (nfree)
				bench_submit(w, free_slots[--nfree], &off, &rnd);
			if (vdrv_kick_needed(w->d, w->q, old)) {
				vdrv_kick(w->q);
				w->kicks++;
			}
		}
		if (stop && nfree == o->qd)
			break;
		if (bench_reap(w, free_slots, &nfree)) {
			stall_since = 0;
			continue;
		}
		if (!stall_since) {
			stall_since = now_ns();
		} else if (now_ns() - stall_since > 10000000000ULL) {
			fprintf(stderr, "vblk_bench: queue %u: %u requests unanswered for 10 s\n",
				w->idx, o->qd - nfree);
			exit(1);
		}
		bench_wait_call(w);
	}
	w->cpu_us = thread_cpu_us() - cpu0;
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vblk_bench --backend vhost-blk --disk DEV [--poll-us N] | --backend vhost-user --socket PATH [--cpu-pid PID]\n"
		"                  [--rw randread|randwrite|read|write] [--bs BYTES] [--qd N] [--queues N]\n"
		"                  [--time SEC] [--range BYTES]\n");
	exit(2);
}

static void parse(int argc, char **argv, struct bench_opts *o)
{
	static const struct option opts[] = {
		{ "backend", 1, 0, 'b' }, { "disk", 1, 0, 'd' },
		{ "socket", 1, 0, 's' }, { "cpu-pid", 1, 0, 'p' },
		{ "rw", 1, 0, 'r' }, { "bs", 1, 0, 'B' }, { "qd", 1, 0, 'q' },
		{ "queues", 1, 0, 'n' }, { "time", 1, 0, 't' },
		{ "range", 1, 0, 'R' }, { "poll-us", 1, 0, 'P' },
		{ 0, 0, 0, 0 } };
	int c;

	*o = (struct bench_opts){ .rw = "randread", .bs = 4096, .qd = 1,
				  .queues = 1, .time = 3, .range = 64 << 20 };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': o->backend = optarg; break;
		case 'd': o->disk = optarg; break;
		case 's': o->socket = optarg; break;
		case 'p': o->cpu_pid = atoi(optarg); break;
		case 'r': o->rw = optarg; break;
		case 'B': o->bs = strtoul(optarg, NULL, 0); break;
		case 'q': o->qd = strtoul(optarg, NULL, 0); break;
		case 'n': o->queues = strtoul(optarg, NULL, 0); break;
		case 't': o->time = atof(optarg); break;
		case 'R': o->range = strtoull(optarg, NULL, 0); break;
		case 'P': o->poll_us = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!o->backend || optind != argc)
		usage();
	o->write = !strcmp(o->rw, "randwrite") || !strcmp(o->rw, "write");
	o->seq = !strcmp(o->rw, "read") || !strcmp(o->rw, "write");
	if (!o->write && !o->seq && strcmp(o->rw, "randread")) {
		fprintf(stderr, "vblk_bench: --rw %s: want randread, randwrite, read or write\n",
			o->rw);
		exit(2);
	}
	if (!o->bs || o->bs % 512 || o->bs > (4u << 20) || !o->qd ||
	    o->qd > BENCH_MAX_QD || !o->queues ||
	    o->queues > VHOST_BLK_MAX_QUEUES || o->time <= 0 ||
	    o->range < (uint64_t)o->bs * o->queues) {
		fprintf(stderr, "vblk_bench: want --bs a multiple of 512 up to 4 MiB, --qd 1-%u, --queues 1-%u, --time > 0, --range >= bs * queues\n",
			BENCH_MAX_QD, VHOST_BLK_MAX_QUEUES);
		exit(2);
	}
}

/* Guest memory and rings, attached to the back-end; exits on failure. */
static void bench_setup(const struct bench_opts *o, struct vdrv *d,
			struct vu_frontend *vu)
{
	size_t mem = (size_t)o->queues * (BENCH_RING * 32 + 16384 +
					  o->qd * (o->bs + 8192)) + (1 << 20);
	unsigned int i;
	int ret, fd;

	mem = (mem + 0xfffff) & ~(size_t)0xfffff;
	if (!strcmp(o->backend, "vhost-blk")) {
		if (!o->disk)
			usage();
		fd = open(o->disk, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "vblk_bench: cannot open --disk %s: %s\n",
				o->disk, strerror(errno));
			exit(1);
		}
		ret = vdrv_open(d, mem);
		if (!ret)
			ret = vdrv_setup(d, o->queues, BENCH_RING,
					 VHOST_BLK_FEATURES & BENCH_FEATURES);
		if (!ret)
			ret = vdrv_attach(d, fd);
		if (ret) {
			fprintf(stderr, "vblk_bench: /dev/vhost-blk set-up failed: %s (is vhost_blk loaded?)\n",
				strerror(-ret));
			exit(1);
		}
		for (i = 0; i < o->queues; i++) {
			struct vhost_vring_state s = { .index = i,
						       .num = o->poll_us };

			if (ioctl(d->fd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &s)) {
				fprintf(stderr, "vblk_bench: --poll-us %u on ring %u: %s\n",
					o->poll_us, i, strerror(errno));
				exit(1);
			}
		}
		return;
	}
	if (strcmp(o->backend, "vhost-user") || !o->socket)
		usage();
	ret = vdrv_open_memfd(d, mem);
	if (ret) {
		fprintf(stderr, "vblk_bench: guest memory: %s\n", strerror(-ret));
		exit(1);
	}
	ret = vu_connect(vu, o->socket);
	if (!ret)
		ret = vu_start(vu, d, o->queues, BENCH_RING, BENCH_FEATURES);
	if (ret) {
		fprintf(stderr, "vblk_bench: vhost-user: %s\n", vu_strerror());
		exit(1);
	}
}

static void bench_report(const struct bench_opts *o, struct bench_worker *w,
			 double secs, uint64_t be_ticks)
{
	uint64_t ios = 0, nlat = 0, errors = 0, kicks = 0, calls = 0;
	uint64_t waits = 0, tool_us = 0, n = 0;
	double tick_us = 1e6 / sysconf(_SC_CLK_TCK);
	unsigned int i;
	uint32_t *lat;

	for (i = 0; i < o->queues; i++)
		nlat += w[i].nlat;
	lat = malloc(sizeof(*lat) * (nlat ? nlat : 1));
	if (!lat)
		abort();
	for (i = 0; i < o->queues; i++) {
		memcpy(lat + n, w[i].lat, sizeof(*lat) * w[i].nlat);
		n += w[i].nlat;
		ios += w[i].ios;
		errors += w[i].errors;
		kicks += w[i].kicks;
		calls += w[i].calls;
		waits += w[i].waits;
		tool_us += w[i].cpu_us;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	printf("{\"backend\": \"%s\", \"rw\": \"%s\", \"bs\": %u, \"qd\": %u, \"queues\": %u, "
	       "\"secs\": %.3f, \"ios\": %llu, \"errors\": %llu, \"iops\": %.1f, "
	       "\"p50_us\": %.1f, \"p99_us\": %.1f, "
	       "\"backend_cpu_us_per_io\": %.2f, \"tool_cpu_us_per_io\": %.2f, "
	       "\"kicks\": %llu, \"calls\": %llu, \"waits\": %llu}\n",
	       o->backend, o->rw, o->bs, o->qd, o->queues, secs,
	       (unsigned long long)ios, (unsigned long long)errors,
	       ios / secs, nlat ? lat[nlat / 2] / 1e3 : 0,
	       nlat ? lat[nlat * 99 / 100] / 1e3 : 0,
	       ios ? be_ticks * tick_us / ios : 0,
	       ios ? (double)tool_us / ios : 0,
	       (unsigned long long)kicks, (unsigned long long)calls,
	       (unsigned long long)waits);
	free(lat);
}

int main(int argc, char **argv)
{
	static struct vdrv d;
	struct vu_frontend vu = { .sock = -1 };
	struct bench_worker *w;
	struct bench_opts o;
	uint64_t t_end = 0, be0, be1;
	unsigned int i, s;
	pid_t owner;

	parse(argc, argv, &o);
	bench_setup(&o, &d, &vu);
	/* The vhost workers of /dev/vhost-blk belong to us; of serve, to it. */
	owner = !strcmp(o.backend, "vhost-blk") ? getpid() : o.cpu_pid;

	w = calloc(o.queues, sizeof(*w));
	if (!w)
		abort();
	pthread_barrier_init(&bench_barrier, NULL, o.queues + 1);
	for (i = 0; i < o.queues; i++) {
		w[i] = (struct bench_worker){ .d = &d, .q = &d.q[i], .o = &o,
					      .idx = i };
		w[i].lat = malloc(sizeof(*w[i].lat) * BENCH_MAX_LAT);
		if (!w[i].lat)
			abort();
		memset(w[i].head_slot, -1, sizeof(w[i].head_slot));
		for (s = 0; s < o.qd; s++) {
			w[i].slot[s] = vdrv_req_alloc(&d, o.write ? VIRTIO_BLK_T_OUT :
						      VIRTIO_BLK_T_IN, 0, o.bs);
			vblk_fill(w[i].slot[s].data, o.bs, i * BENCH_MAX_QD + s);
		}
		if (pthread_create(&w[i].thread, NULL, bench_worker_run, &w[i]))
			abort();
	}
	be0 = backend_ticks(o.cpu_pid, owner);
	bench_t0 = now_ns();
	pthread_barrier_wait(&bench_barrier);
	for (i = 0; i < o.queues; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].t_end > t_end)
			t_end = w[i].t_end;
	}
	be1 = backend_ticks(o.cpu_pid, owner);
	bench_report(&o, w, (t_end - bench_t0) / 1e9, be1 - be0);
	if (vu.sock >= 0)
		vu_close(&vu, &d);
	vdrv_close(&d);
	for (i = 0; i < o.queues; i++) {
		if (w[i].errors) {
			fprintf(stderr, "vblk_bench: %llu requests failed on queue %u\n",
				(unsigned long long)w[i].errors, i);
			return 1;
		}
	}
	return 0;
}

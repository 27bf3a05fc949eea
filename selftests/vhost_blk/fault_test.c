// SPDX-License-Identifier: GPL-2.0
/*
 * A failing, slow, vanishing or shrinking backing device under load.
 *
 * A load engine keeps 32-64 requests in flight on one queue: reads and
 * writes of whole "slots", at most one request per slot at a time. Every
 * sector written carries a tag (slot, sector, generation of the write) and
 * a seeded fill, so a read, or a look at the device afterwards, tells which
 * write landed. A slot remembers the last write that completed OK and the
 * last one issued; a sector must hold the former or a later write that
 * failed (a failed write may land, partly or fully). So a write that
 * completed OK without its data on the device shows up as an older tag.
 *
 * The main thread injects the fault while the engine runs and marks phases;
 * a request issued and completed within one phase must end as that phase
 * expects (OK, IOERR). Figures for each scenario are printed as TAP
 * comments: requests in flight at the fault, time to drain, outcomes.
 *
 * Devices: dm (linear, error, flakey, delay) over /dev/ram2, and scsi_debug,
 * which unlike brd and dm has writeback throttling on, as real disks do.
 * dm devices are removed in the fixture teardown, and a killed test's
 * leftover in the next setup. One scsi_debug disk (8 MiB) serves all its
 * tests, with error injection and delay set at run time and reset in the
 * teardown; the harness's process removes the module when the run ends.
 * /proc/sys/kernel/hung_task_timeout_secs is 20 while a test runs, so a
 * stall long enough to matter is a hung-task report, which fails the run.
 *
 * VBLK_SEED=<n> changes the seed of the pattern and of the request mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define DM_NAME		"vbft-dev"
#define RAM		"/dev/ram2"
#define RAM_INDEX	2
#define REGION		(16u << 20)	/* bytes of the backing device used */
#define SD_MB		8		/* scsi_debug's size: quick to fill */
#define SD_PARAMS	"dev_size_mb=8"
#define HUNG_SECS	"20"		/* hung-task timeout while the tests run */

/* A request taking longer than this is a stall, not a slow device. */
#define STALL_MS	15000
/* Every request completes within this, faults included (TCG is slow). */
#define LATENCY_MS	10000
/*
 * Close, detach or SIGKILL with 64 requests in flight on a device taking a
 * second per command (dm-delay 1000 ms; scsi_debug delay=250 jiffies at
 * Debian's HZ=250): a drain waits for the commands in the device, so it
 * takes about one command latency. Three, plus a second for TCG, is the
 * bound; a drain that feeds the backlog to the device a few commands at a
 * time (writeback throttling) takes many.
 */
#define SLOW_CMD_MS	1000
#define DRAIN_MS	(3 * SLOW_CMD_MS + 1000)

enum { ST_OK, ST_IOERR, ST_UNSUPP, ST_OTHER, ST_N };
static const char *const st_name[ST_N] = { "OK", "IOERR", "UNSUPP", "other" };

#define NPHASE		6
#define EXP_ANY		-1

struct tag {
	uint64_t magic;
	uint64_t gen;
	uint32_t slot;
	uint32_t sect;
	uint64_t seed;
};

#define TAG_MAGIC	0x5642465447414731ULL	/* "VBFTGAG1" */

struct slot {
	uint64_t ok_gen;	/* last write that completed OK */
	uint64_t last_gen;	/* last write issued */
	bool busy;
	bool skip;		/* never used by the load */
};

struct ereq {
	struct vreq r;
	uint32_t slot;
	bool write;
	bool busy;
	uint64_t gen;
	int phase;
	double t;
};

struct eng {
	struct vdrv d;
	struct vdrv_queue *q;
	bool open;
	unsigned int depth;
	uint32_t slot_bytes;
	uint32_t nslots;
	struct slot *slots;
	struct ereq *reqs;
	struct ereq *by_head[256];
	uint64_t seed, rng, next_gen;
	int hot_slot;		/* issued to more often, or -1 */

	/* Expected status of a request issued and completed in one phase. */
	int expect[NPHASE];
	/* Overrides @expect (shrink: depends on the slot). */
	int (*expect_fn)(struct eng *e, struct ereq *r, int phase);
	uint32_t shrink_slots;	/* slots fully inside after a shrink */

	pthread_t th;
	bool running;
	volatile int phase;
	volatile int stop;
	unsigned int inflight;
	unsigned int inflight_at[NPHASE];	/* when the phase began */
	double phase_t[NPHASE];
	uint64_t gen_at[NPHASE];		/* first gen of the phase */

	long count[NPHASE][ST_N];	/* issued and completed in the phase */
	long count_rw[2][ST_N];		/* all completions by read/write */
	long spanning;			/* issued in one phase, ended in another */
	long total;
	double max_lat;
	long bad_status, bad_data;
	char why[256];
	bool stalled;
};

/*
 * A figure for the results, as a TAP comment. Flushed at once: the harness
 * ends a test's process with _exit(), which drops buffered output.
 */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct eng *e)
{
	e->rng = mix(e->rng);
	return e->rng;
}

/* One 512-byte sector of write @gen to @slot. */
static void fill_sector(const struct eng *e, void *buf, uint32_t slot,
			uint32_t sect, uint64_t gen)
{
	struct tag *t = buf;
	uint64_t *w = buf, x;
	unsigned int i;

	t->magic = TAG_MAGIC;
	t->gen = gen;
	t->slot = slot;
	t->sect = sect;
	t->seed = e->seed;
	x = mix(e->seed ^ (gen << 20) ^ ((uint64_t)slot << 8) ^ sect);
	for (i = sizeof(*t) / 8; i < 64; i++)
		w[i] = x = mix(x);
}

static void fill_slot(const struct eng *e, uint8_t *buf, uint32_t slot,
		      uint64_t gen)
{
	for (uint32_t s = 0; s < e->slot_bytes / 512; s++)
		fill_sector(e, buf + s * 512, slot, s, gen);
}

/*
 * The generation a sector holds, or -1 if it is not a whole sector of one
 * of this run's writes to exactly this place.
 */
static int64_t sector_gen(const struct eng *e, const uint8_t *buf,
			  uint32_t slot, uint32_t sect)
{
	const struct tag *t = (const void *)buf;
	uint8_t want[512];

	if (t->magic != TAG_MAGIC || t->slot != slot || t->sect != sect ||
	    t->seed != e->seed)
		return -1;
	fill_sector(e, want, slot, sect, t->gen);
	return memcmp(want, buf, 512) ? -1 : (int64_t)t->gen;
}

/*
 * Check a slot's content (from a read or from the device) against what its
 * writes allow; @below: no sector may hold a generation this high (0: none).
 */
static const char *check_slot(const struct eng *e, const uint8_t *buf,
			      uint32_t slot, uint32_t nsect, uint64_t below,
			      uint32_t *bad_sect, int64_t *got)
{
	const struct slot *s = &e->slots[slot];

	for (uint32_t i = 0; i < nsect; i++) {
		int64_t g = sector_gen(e, buf + i * 512, slot, i);

		*bad_sect = i;
		*got = g;
		if (g < 0)
			return "not a sector this run wrote there";
		if ((uint64_t)g < s->ok_gen)
			return "older than the last write that completed OK";
		if ((uint64_t)g > s->last_gen)
			return "newer than any write issued";
		if (below && (uint64_t)g >= below)
			return "written after the device stopped covering it";
	}
	return NULL;
}

static int status_class(uint8_t st)
{
	switch (st) {
	case VIRTIO_BLK_S_OK: return ST_OK;
	case VIRTIO_BLK_S_IOERR: return ST_IOERR;
	case VIRTIO_BLK_S_UNSUPP: return ST_UNSUPP;
	default: return ST_OTHER;
	}
}

static void eng_fail(struct eng *e, long *counter, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void eng_fail(struct eng *e, long *counter, const char *fmt, ...)
{
	va_list ap;

	if (!e->bad_status && !e->bad_data && !e->stalled) {
		va_start(ap, fmt);
		vsnprintf(e->why, sizeof(e->why), fmt, ap);
		va_end(ap);
	}
	if (counter)
		(*counter)++;
}

static int expected(struct eng *e, struct ereq *r, int phase)
{
	if (e->expect_fn)
		return e->expect_fn(e, r, phase);
	return e->expect[phase];
}

static bool slot_free(struct eng *e, uint32_t i)
{
	return !e->slots[i].busy && !e->slots[i].skip;
}

static int eng_issue(struct eng *e, struct ereq *r)
{
	uint32_t i = rnd(e) % e->nslots, n;
	int head;

	if (e->hot_slot >= 0 && !(rnd(e) & 3) && slot_free(e, e->hot_slot))
		i = e->hot_slot;
	for (n = 0; n < e->nslots && !slot_free(e, i); n++)
		i = (i + 1) % e->nslots;
	if (n == e->nslots)
		return -EBUSY;
	r->slot = i;
	r->write = rnd(e) & 1;
	r->gen = ++e->next_gen;
	r->phase = e->phase;
	r->r.hdr->type = r->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r->r.hdr->sector = (uint64_t)i * (e->slot_bytes / 512);
	if (r->write) {
		fill_slot(e, r->r.data, i, r->gen);
		e->slots[i].last_gen = r->gen;
	} else {
		memset(r->r.data, 0, e->slot_bytes);
	}
	/* One to three pieces; direct chains only for one piece. */
	n = 1 + r->gen % 3;
	head = vdrv_start(&e->d, e->q, &r->r, n, n > 1);
	if (head < 0)
		return head;
	e->slots[i].busy = true;
	r->busy = true;
	r->t = now_ms();
	e->by_head[head] = r;
	e->inflight++;
	return 0;
}

static void eng_complete(struct eng *e, uint32_t head)
{
	struct ereq *r = head < 256 ? e->by_head[head] : NULL;
	int phase = e->phase, st, want;
	struct slot *s;
	double lat;

	if (!r || !r->busy) {
		eng_fail(e, &e->bad_status, "used entry %u is no request in flight",
			 head);
		return;
	}
	e->by_head[head] = NULL;
	r->busy = false;
	e->inflight--;
	s = &e->slots[r->slot];
	s->busy = false;
	lat = now_ms() - r->t;
	if (lat > e->max_lat)
		e->max_lat = lat;
	st = status_class(*r->r.status);
	e->total++;
	e->count_rw[r->write][st]++;
	if (st == ST_OTHER || st == ST_UNSUPP)
		eng_fail(e, &e->bad_status, "%s of slot %u ended with status %u",
			 r->write ? "write" : "read", r->slot, *r->r.status);
	if (r->phase == phase) {
		e->count[phase][st]++;
		want = expected(e, r, phase);
		if (want != EXP_ANY && want != st)
			eng_fail(e, &e->bad_status,
				 "%s of slot %u in phase %d: %s, expected %s",
				 r->write ? "write" : "read", r->slot, phase,
				 st_name[st], st_name[want]);
	} else {
		e->spanning++;
	}
	if (st != ST_OK)
		return;
	if (r->write) {
		s->ok_gen = r->gen;
	} else {
		uint32_t bad;
		int64_t got;
		const char *why = check_slot(e, r->r.data, r->slot,
					     e->slot_bytes / 512, 0, &bad, &got);

		if (why)
			eng_fail(e, &e->bad_data,
				 "read of slot %u, sector %u: gen %lld: %s (ok %llu, last %llu)",
				 r->slot, bad, (long long)got, why,
				 (unsigned long long)s->ok_gen,
				 (unsigned long long)s->last_gen);
	}
}

static double oldest_ms(struct eng *e)
{
	double t = 0, n = now_ms();

	for (unsigned int i = 0; i < e->depth; i++)
		if (e->reqs[i].busy && n - e->reqs[i].t > t)
			t = n - e->reqs[i].t;
	return t;
}

/* Keep the queue full until told to stop, then drain. */
static void *eng_thread(void *arg)
{
	struct eng *e = arg;
	uint32_t head, len;

	for (;;) {
		bool stopping = __atomic_load_n(&e->stop, __ATOMIC_ACQUIRE);
		unsigned int issued = 0;

		if (stopping && !e->inflight)
			break;
		for (unsigned int i = 0; !stopping && i < e->depth; i++)
			if (!e->reqs[i].busy && !eng_issue(e, &e->reqs[i]))
				issued++;
		if (issued)
			vdrv_kick(e->q);
		if (!vdrv_get_used(&e->d, e->q, &head, &len, 50)) {
			eng_complete(e, head);
			/* Reap what else is there before refilling. */
			while (!vdrv_get_used(&e->d, e->q, &head, &len, 0))
				eng_complete(e, head);
		} else if (e->inflight && oldest_ms(e) > STALL_MS) {
			eng_fail(e, NULL, "a request got no completion for %d ms",
				 STALL_MS);
			e->stalled = true;
			break;
		}
	}
	return NULL;
}

/* Write generation 0 to every slot, straight to the device. */
static int eng_prefill(struct eng *e, const char *path)
{
	size_t len = (size_t)e->nslots * e->slot_bytes;
	uint8_t *buf = malloc(len);
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !buf) {
		free(buf);
		return -errno;
	}
	for (uint32_t i = 0; i < e->nslots; i++)
		fill_slot(e, buf + (size_t)i * e->slot_bytes, i, 0);
	ret = vblk_pwrite(fd, buf, len, 0);
	close(fd);
	free(buf);
	return ret;
}

static void eng_init(struct eng *e, unsigned int depth, uint32_t slot_bytes,
		     uint32_t nslots)
{
	const char *env = getenv("VBLK_SEED");

	memset(e, 0, sizeof(*e));
	e->d.fd = -1;
	e->depth = depth;
	e->slot_bytes = slot_bytes;
	e->nslots = nslots;
	e->hot_slot = -1;
	e->seed = env ? strtoull(env, NULL, 0) : 0xfa017;
	e->rng = e->seed;
	e->slots = calloc(nslots, sizeof(*e->slots));
	e->reqs = calloc(depth, sizeof(*e->reqs));
	for (int p = 0; p < NPHASE; p++)
		e->expect[p] = EXP_ANY;
}

/* A device of one queue on @disk. Returns 0 or -errno. */
static int eng_open(struct eng *e, const char *disk)
{
	size_t mem = (size_t)e->depth * (e->slot_bytes + 8192) + (4 << 20);
	int fd;

	fd = vdrv_open_on(&e->d, disk, O_RDWR, mem, 1, 256);
	if (fd < 0)
		return fd;
	close(fd);
	e->open = true;
	e->q = &e->d.q[0];
	for (unsigned int i = 0; i < e->depth; i++)
		e->reqs[i].r = vdrv_req_alloc(&e->d, VIRTIO_BLK_T_IN, 0,
					      e->slot_bytes);
	return 0;
}

static int eng_start(struct eng *e)
{
	e->stop = 0;
	e->running = !pthread_create(&e->th, NULL, eng_thread, e);
	return e->running ? 0 : -1;
}

/* Stop issuing, wait for what is in flight; returns the drain time. */
static double eng_stop(struct eng *e)
{
	double t0 = now_ms();

	if (!e->running)
		return 0;
	__atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
	pthread_join(e->th, NULL);
	e->running = false;
	return now_ms() - t0;
}

static void eng_phase(struct eng *e, int phase)
{
	e->inflight_at[phase] = e->inflight;
	e->gen_at[phase] = e->next_gen + 1;
	e->phase_t[phase] = now_ms();
	__atomic_store_n(&e->phase, phase, __ATOMIC_RELEASE);
}

/* Issue @n requests at once (no thread), without waiting. */
static int eng_burst(struct eng *e, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		int ret = eng_issue(e, &e->reqs[i]);

		if (ret)
			return ret;
	}
	vdrv_kick(e->q);
	return 0;
}

static void eng_close(struct eng *e)
{
	eng_stop(e);
	if (e->open)
		vdrv_close(&e->d);
	e->open = false;
}

/*
 * Read every slot (but @skip) straight from @path and check it. @from..@to:
 * the slots to check; @below as in check_slot() for them.
 */
static long eng_verify(struct eng *e, const char *path, uint32_t from,
		       uint32_t to, uint64_t below)
{
	size_t len = (size_t)(to - from) * e->slot_bytes;
	uint8_t *buf = malloc(len);
	long bad = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf ||
	    vblk_pread(fd, buf, len, (uint64_t)from * e->slot_bytes)) {
		eng_fail(e, NULL, "cannot read %s back: %s", path,
			 strerror(errno));
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	for (uint32_t i = from; i < to; i++) {
		const uint8_t *s = buf + (size_t)(i - from) * e->slot_bytes;
		const char *why;
		uint32_t sect;
		int64_t got;

		if (e->slots[i].skip)
			continue;
		why = check_slot(e, s, i, e->slot_bytes / 512, below, &sect,
				 &got);
		if (why) {
			if (!bad)
				note("verify %s: slot %u sector %u: gen %lld: %s (ok %llu, last %llu)\n",
				       path, i, sect, (long long)got, why,
				       (unsigned long long)e->slots[i].ok_gen,
				       (unsigned long long)e->slots[i].last_gen);
			bad++;
		}
	}
	free(buf);
	return bad;
}

static void print_counts(const char *what, const long *c)
{
	note("%s: %ld OK, %ld IOERR, %ld UNSUPP, %ld other\n", what,
	       c[ST_OK], c[ST_IOERR], c[ST_UNSUPP], c[ST_OTHER]);
}

static void eng_report(struct eng *e, const char *test, const char *const *names)
{
	char what[128];

	note("%s: %ld requests, depth %u, %u-byte slots, max latency %.0f ms, %ld spanning a phase change\n",
	       test, e->total, e->depth, e->slot_bytes, e->max_lat, e->spanning);
	for (int p = 0; p < NPHASE && names && names[p]; p++) {
		snprintf(what, sizeof(what), "%s phase %d (%s, %u in flight at its start)",
			 test, p, names[p], e->inflight_at[p]);
		print_counts(what, e->count[p]);
	}
	snprintf(what, sizeof(what), "%s reads", test);
	print_counts(what, e->count_rw[0]);
	snprintf(what, sizeof(what), "%s writes", test);
	print_counts(what, e->count_rw[1]);
}

/* ---- the fixture: devices made, and removed whatever happens ---- */

FIXTURE(fault) {
	struct eng e;
	char dm[64];		/* /dev/mapper path, if made */
	char sd[64];		/* scsi_debug disk, if loaded */
	char hung_old[32];
	double t0;
};

#define SD_DRV		"/sys/bus/pseudo/drivers/scsi_debug/"
#define SD_PARAM	"/sys/module/scsi_debug/parameters/"

/* scsi_debug as loaded: no error injection, default 1-jiffy delay. */
static void scsi_debug_defaults(void)
{
	vblk_write_str(SD_DRV "opts", "0");
	vblk_write_str(SD_DRV "delay", "1");
}

/*
 * Tests share one scsi_debug (loading it takes seconds in TCG); the test
 * process that started them all removes it, whatever happened.
 */
static pid_t harness_pid;

static void __attribute__((constructor)) note_harness(void)
{
	harness_pid = getpid();
}

static void __attribute__((destructor)) remove_scsi_debug(void)
{
	if (getpid() == harness_pid)
		vblk_scsi_debug_remove();
}

FIXTURE_SETUP(fault)
{
	memset(self, 0, sizeof(*self));
	self->e.d.fd = -1;
	self->t0 = now_ms();
	/* Leftovers of a test killed by its timeout. */
	if (vblk_dm_exists(DM_NAME) && vblk_dm_remove(DM_NAME, false))
		vblk_dm_remove(DM_NAME, true);
	/* Catch a long stall as a hung-task report (the runner fails on it). */
	if (!vblk_read_str("/proc/sys/kernel/hung_task_timeout_secs",
			   self->hung_old, sizeof(self->hung_old)))
		vblk_write_str("/proc/sys/kernel/hung_task_timeout_secs",
			       HUNG_SECS);
}

FIXTURE_TEARDOWN(fault)
{
	eng_close(&self->e);
	if (self->dm[0] && vblk_dm_remove(DM_NAME, false))
		vblk_dm_remove(DM_NAME, true);
	if (self->sd[0])
		scsi_debug_defaults();
	if (self->hung_old[0])
		vblk_write_str("/proc/sys/kernel/hung_task_timeout_secs",
			       self->hung_old);
	free(self->e.slots);
	free(self->e.reqs);
	note("%s: %.1f s with set-up and clean-up\n", _metadata->name,
	     (now_ms() - self->t0) / 1000);
}

/* dm-linear over /dev/ram2 (16 MiB), as self->dm. Skips if impossible. */
static bool make_dm(struct __test_metadata *_metadata,
		    FIXTURE_DATA(fault) *self, const char *fmt_table)
{
	char table[256];
	size_t bytes;
	int fd;

	fd = vblk_brd(RAM_INDEX, &bytes);
	if (fd < 0) {
		SKIP(return false, "no brd ram disk %s", RAM);
	}
	close(fd);
	if (bytes < REGION)
		SKIP(return false, "%s has %zu bytes, fewer than %u", RAM,
		     bytes, REGION);
	snprintf(table, sizeof(table), fmt_table, REGION / 512, RAM);
	if (vblk_dm_create(DM_NAME, table, self->dm, sizeof(self->dm))) {
		self->dm[0] = 0;
		SKIP(return false, "cannot create dm device '%s' (dmsetup, dm-mod)",
		     table);
	}
	return true;
}

/* The shared scsi_debug disk (SD_PARAMS), as self->sd, at its defaults. */
static bool make_scsi_debug(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fault) *self)
{
	char mb[16] = "";
	double t0 = now_ms();
	int ret;

	/* Someone else's scsi_debug, of another size: start afresh. */
	if (!vblk_read_str(SD_PARAM "dev_size_mb", mb, sizeof(mb)) &&
	    atoi(mb) != SD_MB)
		vblk_scsi_debug_remove();
	ret = vblk_scsi_debug_get(SD_PARAMS, self->sd, sizeof(self->sd));

	note("scsi_debug %s: %s after %.0f ms\n", SD_PARAMS,
	     ret ? "failed" : self->sd, now_ms() - t0);
	if (ret == -ENODEV) {
		self->sd[0] = 0;
		SKIP(return false, "cannot load scsi_debug %s", SD_PARAMS);
	}
	if (ret) {
		/* Loaded, no disk: remove in the teardown. */
		strcpy(self->sd, "?");
		EXPECT_EQ(0, ret) TH_LOG("scsi_debug %s: no disk appeared",
					 SD_PARAMS);
		return false;
	}
	scsi_debug_defaults();
	return true;
}

static void run_for(int ms)
{
	usleep(ms * 1000);
}

/*
 * Let the current phase run @ms, and on until @min requests were issued
 * and completed in it (TCG may be slow to start), at most 10 s.
 */
static void run_phase(struct eng *e, int ms, long min)
{
	int p = e->phase;
	double t0 = now_ms();

	for (;;) {
		long done = 0;

		for (int st = 0; st < ST_N; st++)
			done += __atomic_load_n(&e->count[p][st], __ATOMIC_RELAXED);
		if ((now_ms() - t0 >= ms && done >= min) ||
		    now_ms() - t0 > 10000 || e->stalled)
			return;
		usleep(20000);
	}
}

static uint64_t capacity(struct eng *e)
{
	struct vhost_blk_config c = { .size = sizeof(c) };
	uint64_t cap;

	if (ioctl(e->d.fd, VHOST_BLK_GET_CONFIG, &c))
		return ~0ULL;
	memcpy(&cap, c.config, sizeof(cap));
	return le64toh(cap);
}

static void assert_clean(struct __test_metadata *_metadata, struct eng *e)
{
	EXPECT_FALSE(e->stalled) TH_LOG("%s", e->why);
	EXPECT_EQ(0, e->bad_status) TH_LOG("%s", e->why);
	EXPECT_EQ(0, e->bad_data) TH_LOG("%s", e->why);
	EXPECT_GT(LATENCY_MS, e->max_lat);
}

/* ---- a failing device ---- */

#define LINEAR	"0 %u linear %s 0"
#define DEPTH	48
#define SLOT	(16u << 10)

static const char *const switch_names[] = {
	"healthy", "switching to dm-error", "dm-error",
	"switching back", "healthy again", NULL
};

static void error_switch(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fault) *self, bool noflush,
			 const char *test)
{
	struct eng *e = &self->e;
	char table[128];
	double t0, sw1, sw2, drain;

	if (!make_dm(_metadata, self, LINEAR))
		return;
	eng_init(e, DEPTH, SLOT, REGION / SLOT);
	e->expect[0] = ST_OK;
	e->expect[2] = ST_IOERR;
	e->expect[4] = ST_OK;
	ASSERT_EQ(0, eng_prefill(e, self->dm));
	ASSERT_EQ(0, eng_open(e, self->dm));
	ASSERT_EQ(0, eng_start(e));
	run_phase(e, 500, 100);

	eng_phase(e, 1);
	t0 = now_ms();
	snprintf(table, sizeof(table), "0 %u error", REGION / 512);
	ASSERT_EQ(0, vblk_dm_switch(DM_NAME, table, noflush));
	sw1 = now_ms() - t0;
	eng_phase(e, 2);
	run_phase(e, 500, 100);

	eng_phase(e, 3);
	t0 = now_ms();
	snprintf(table, sizeof(table), LINEAR, REGION / 512, RAM);
	ASSERT_EQ(0, vblk_dm_switch(DM_NAME, table, noflush));
	sw2 = now_ms() - t0;
	eng_phase(e, 4);
	run_phase(e, 500, 100);
	drain = eng_stop(e);

	eng_report(e, test, switch_names);
	note("%s: switch to error took %.0f ms with %u in flight, back %.0f ms with %u in flight; drain at the end %.0f ms\n",
	       test, sw1, e->inflight_at[1], sw2, e->inflight_at[3], drain);
	assert_clean(_metadata, e);
	EXPECT_LT(0, e->count[0][ST_OK]);
	EXPECT_LT(0, e->count[2][ST_IOERR]);
	EXPECT_LT(0, e->count[4][ST_OK]) TH_LOG("I/O did not work again after the switch back");
	/* Every OK write is on the device; every failed one is harmless. */
	EXPECT_EQ(0, eng_verify(e, self->dm, 0, e->nslots, 0));
}

TEST_F_TIMEOUT(fault, dm_error_switch, 120)
{
	error_switch(_metadata, self, false, "dm_error_switch");
}

TEST_F_TIMEOUT(fault, dm_error_switch_noflush, 120)
{
	error_switch(_metadata, self, true, "dm_error_switch_noflush");
}

static void flakey(struct __test_metadata *_metadata,
		   FIXTURE_DATA(fault) *self, bool error_writes,
		   const char *test)
{
	struct eng *e = &self->e;
	char fmt[128];
	double drain;

	/* Up 1 s, down 1 s; down: writes fail, or everything fails. */
	snprintf(fmt, sizeof(fmt), "0 %%u flakey %%s 0 1 1%s",
		 error_writes ? " 1 error_writes" : "");
	if (!make_dm(_metadata, self, fmt))
		return;
	eng_init(e, DEPTH, SLOT, REGION / SLOT);
	ASSERT_EQ(0, eng_prefill(e, RAM));
	ASSERT_EQ(0, eng_open(e, self->dm));
	ASSERT_EQ(0, eng_start(e));
	run_for(3500);
	drain = eng_stop(e);
	eng_report(e, test, NULL);
	note("%s: drain at the end %.0f ms\n", test, drain);
	assert_clean(_metadata, e);
	EXPECT_LT(0, e->count_rw[1][ST_OK]);
	EXPECT_LT(0, e->count_rw[1][ST_IOERR]) TH_LOG("no write hit a down interval");
	EXPECT_LT(0, e->count_rw[0][ST_OK]);
	if (error_writes) {
		EXPECT_EQ(0, e->count_rw[0][ST_IOERR]) TH_LOG("error_writes failed a read");
	} else {
		EXPECT_LT(0, e->count_rw[0][ST_IOERR]) TH_LOG("no read hit a down interval");
	}
	/* Straight from the ram disk: the flakey table may be down now. */
	EXPECT_EQ(0, eng_verify(e, RAM, 0, e->nslots, 0));
}

TEST_F_TIMEOUT(fault, dm_flakey_error_writes, 120)
{
	flakey(_metadata, self, true, "dm_flakey_error_writes");
}

TEST_F_TIMEOUT(fault, dm_flakey_all_io, 120)
{
	flakey(_metadata, self, false, "dm_flakey_all_io");
}

/*
 * Unreadable sectors inside slot BAD_SLOT. Its neighbours stay unused, so
 * the block layer cannot merge a good request into a command that fails.
 */
#define BAD_SLOT	100

static int medium_expect(struct eng *e, struct ereq *r, int phase)
{
	(void)e;
	(void)phase;
	return r->slot == BAD_SLOT && !r->write ? ST_IOERR : ST_OK;
}

TEST_F_TIMEOUT(fault, scsi_medium_error, 120)
{
	uint32_t spslot = SLOT / 512, start = BAD_SLOT * spslot + spslot / 4;
	struct eng *e = &self->e;
	char params[160];
	uint8_t buf[SLOT];
	double drain;
	int fd;

	if (!make_scsi_debug(_metadata, self))
		return;
	snprintf(params, sizeof(params), "%u", start);
	ASSERT_EQ(0, vblk_write_str(SD_PARAM "medium_error_start", params));
	ASSERT_EQ(0, vblk_write_str(SD_PARAM "medium_error_count", "8"));
	/* opts=2: reads of those sectors fail with MEDIUM ERROR */
	ASSERT_EQ(0, vblk_write_str(SD_DRV "opts", "2"));
	eng_init(e, DEPTH, SLOT, (SD_MB << 20) / SLOT);
	e->slots[BAD_SLOT - 1].skip = true;
	e->slots[BAD_SLOT + 1].skip = true;
	e->hot_slot = BAD_SLOT;
	e->expect_fn = medium_expect;
	ASSERT_EQ(0, eng_prefill(e, self->sd));
	ASSERT_EQ(0, eng_open(e, self->sd));
	ASSERT_EQ(0, eng_start(e));
	run_phase(e, 2000, 300);
	drain = eng_stop(e);
	eng_report(e, "scsi_medium_error", NULL);
	note("scsi_medium_error: sectors %u-%u unreadable; drain %.0f ms\n",
	       start, start + 7, drain);
	assert_clean(_metadata, e);
	EXPECT_LT(0, e->count[0][ST_IOERR]) TH_LOG("no read hit the bad sectors");
	EXPECT_LT(0, e->count[0][ST_OK]);
	/* The bad slot reads as an error from the host too. */
	fd = open(self->sd, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EIO, vblk_pread(fd, buf, SLOT, (uint64_t)BAD_SLOT * SLOT));
	close(fd);
	e->slots[BAD_SLOT].skip = true;
	EXPECT_EQ(0, eng_verify(e, self->sd, 0, BAD_SLOT, 0));
	EXPECT_EQ(0, eng_verify(e, self->sd, BAD_SLOT + 2, e->nslots, 0));
}

/* ---- a slow device: close, detach, SIGKILL with 64 requests in flight ---- */

#define SLOW_DEPTH	64
#define SLOW_SLOT	(64u << 10)
#define DM_DELAY_MS	SLOW_CMD_MS
#define SDEBUG_JIFFIES	"250"		/* SLOW_CMD_MS at HZ=250 */

enum slow_dev { SLOW_DM_DELAY, SLOW_SCSI };
enum slow_how { SLOW_CLOSE, SLOW_DETACH, SLOW_KILL };
static const char *const how_name[] = { "close", "detach", "SIGKILL" };

/* /sys/block/NAME of a device node. */
static void sysfs_name(const char *path, char *name, size_t len)
{
	char real[256];

	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	snprintf(name, len, "%s", strrchr(real, '/') + 1);
}

static void print_sysfs(const char *test, const char *dev, const char *attr)
{
	char name[64], path[160], val[64];

	sysfs_name(dev, name, sizeof(name));
	snprintf(path, sizeof(path), "/sys/block/%s/%s", name, attr);
	if (!vblk_read_str(path, val, sizeof(val)))
		note("%s: %s %s: %s\n", test, name, attr, val);
}

/* Open O_EXCL until it works: the device's claim is gone. */
static double wait_unclaimed(const char *path, int ms)
{
	double t0 = now_ms();

	while (now_ms() - t0 < ms) {
		int fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);

		if (fd >= 0) {
			close(fd);
			return now_ms() - t0;
		}
		usleep(10000);
	}
	return -1;
}

static bool make_slow(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fault) *self, enum slow_dev dev,
		      const char **path)
{
	struct eng *e = &self->e;
	char fmt[64];

	eng_init(e, SLOW_DEPTH, SLOW_SLOT, SLOW_DEPTH);
	if (dev == SLOW_DM_DELAY) {
		snprintf(fmt, sizeof(fmt), "0 %%u delay %%s 0 %u", DM_DELAY_MS);
		if (!make_dm(_metadata, self, fmt))
			return false;
		*path = self->dm;
		/* Straight to the ram disk: the delay target is slow. */
		ASSERT_EQ(0, eng_prefill(e, RAM)) return false;
		return true;
	}
	if (!make_scsi_debug(_metadata, self))
		return false;
	*path = self->sd;
	ASSERT_EQ(0, eng_prefill(e, self->sd)) return false;
	/* Slow from now on; settable while idle. */
	ASSERT_EQ(0, vblk_write_str(SD_DRV "delay",
				    SDEBUG_JIFFIES)) return false;
	return true;
}

/* The owner: starts the requests, says so, waits to be killed. */
static void slow_owner(struct eng *e, const char *path, int tell)
{
	char c = 1;

	if (eng_open(e, path) || eng_burst(e, SLOW_DEPTH))
		_exit(1);
	if (write(tell, &c, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void slow(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self,
		 enum slow_dev dev, enum slow_how how, const char *test)
{
	struct eng *e = &self->e;
	const char *path;
	double t, unclaimed;
	int pipefd[2], status;
	uint32_t head, len;
	pid_t pid = 0;

	if (!make_slow(_metadata, self, dev, &path))
		return;
	if (dev == SLOW_SCSI)
		print_sysfs(test, path, "queue/wbt_lat_usec");
	if (how == SLOW_KILL) {
		struct pollfd pfd;
		char c;

		ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			slow_owner(e, path, pipefd[1]);
		close(pipefd[1]);
		pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
		ASSERT_EQ(1, poll(&pfd, 1, 20000));
		ASSERT_EQ(1, read(pipefd[0], &c, 1)) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		close(pipefd[0]);
	} else {
		ASSERT_EQ(0, eng_open(e, path));
		ASSERT_EQ(0, eng_burst(e, SLOW_DEPTH));
	}
	/* Let the worker fetch and submit what it can. */
	run_for(300);
	print_sysfs(test, path, "inflight");

	t = now_ms();
	switch (how) {
	case SLOW_CLOSE:
		close(e->d.fd);
		e->d.fd = -1;
		break;
	case SLOW_DETACH:
		ASSERT_EQ(0, vdrv_attach(&e->d, -1));
		break;
	case SLOW_KILL:
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status));
		break;
	}
	t = now_ms() - t;
	unclaimed = how == SLOW_DETACH ? 0 : wait_unclaimed(path, 30000);
	note("%s: %s with %u requests of %u KiB in flight took %.0f ms; disk free after %.0f more ms\n",
	       test, how_name[how], SLOW_DEPTH, SLOW_SLOT >> 10, t, unclaimed);
	EXPECT_GT(DRAIN_MS, t) TH_LOG("%s took %.0f ms", how_name[how], t);
	EXPECT_LE(0, unclaimed) TH_LOG("the disk stayed claimed");
	if (how == SLOW_DETACH) {
		/* Detach drained: every request is in the used ring. */
		for (int i = 0; i < SLOW_DEPTH; i++) {
			ASSERT_EQ(0, vdrv_get_used(&e->d, e->q, &head, &len, 0))
				TH_LOG("only %d of %d requests completed by detach",
				       i, SLOW_DEPTH);
			eng_complete(e, head);
		}
		eng_report(e, test, NULL);
		EXPECT_EQ(SLOW_DEPTH, e->count[0][ST_OK]);
		assert_clean(_metadata, e);
	}
	eng_close(e);
	/* Whatever was in flight, the device holds whole writes. */
	if (how != SLOW_KILL) {
		if (dev == SLOW_SCSI)
			vblk_write_str(SD_DRV "delay",
				       "0");
		EXPECT_EQ(0, eng_verify(e, dev == SLOW_DM_DELAY ? RAM : path,
					0, e->nslots, 0));
	}
}

TEST_F_TIMEOUT(fault, slow_dm_delay_close, 120)
{
	slow(_metadata, self, SLOW_DM_DELAY, SLOW_CLOSE, "slow_dm_delay_close");
}

TEST_F_TIMEOUT(fault, slow_dm_delay_detach, 120)
{
	slow(_metadata, self, SLOW_DM_DELAY, SLOW_DETACH, "slow_dm_delay_detach");
}

TEST_F_TIMEOUT(fault, slow_dm_delay_kill, 120)
{
	slow(_metadata, self, SLOW_DM_DELAY, SLOW_KILL, "slow_dm_delay_kill");
}

TEST_F_TIMEOUT(fault, slow_scsi_close, 120)
{
	slow(_metadata, self, SLOW_SCSI, SLOW_CLOSE, "slow_scsi_close");
}

TEST_F_TIMEOUT(fault, slow_scsi_detach, 120)
{
	slow(_metadata, self, SLOW_SCSI, SLOW_DETACH, "slow_scsi_detach");
}

TEST_F_TIMEOUT(fault, slow_scsi_kill, 120)
{
	slow(_metadata, self, SLOW_SCSI, SLOW_KILL, "slow_scsi_kill");
}

/* ---- a vanishing device ---- */

static const char *const remove_names[] = {
	"healthy", "removing", "removed", NULL
};

static void removed(struct __test_metadata *_metadata,
		    FIXTURE_DATA(fault) *self, bool scsi, const char *test)
{
	struct eng *e = &self->e;
	const char *path;
	char del[160], name[64];
	double t, drain, detach, closing;
	int rc = 0;

	if (scsi) {
		if (!make_scsi_debug(_metadata, self))
			return;
		path = self->sd;
	} else {
		if (!make_dm(_metadata, self, LINEAR))
			return;
		path = self->dm;
	}
	sysfs_name(path, name, sizeof(name));
	eng_init(e, DEPTH, SLOT, (scsi ? SD_MB << 20 : REGION) / SLOT);
	e->expect[0] = ST_OK;
	e->expect[2] = ST_IOERR;
	ASSERT_EQ(0, eng_prefill(e, path));
	ASSERT_EQ(0, eng_open(e, path));
	ASSERT_EQ(0, eng_start(e));
	run_phase(e, 500, 100);

	eng_phase(e, 1);
	t = now_ms();
	if (scsi) {
		snprintf(del, sizeof(del), "/sys/block/%s/device/delete", name);
		ASSERT_EQ(0, vblk_write_str(del, "1"));
	} else {
		/* Busy: the table becomes dm-error, the device stays. */
		rc = vblk_dm_remove(DM_NAME, true);
	}
	t = now_ms() - t;
	eng_phase(e, 2);
	run_phase(e, 500, 100);
	drain = eng_stop(e);
	note("%s: removal took %.0f ms (exit %d) with %u in flight; capacity now %llu; drain %.0f ms\n",
	       test, t, rc, e->inflight_at[1],
	       (unsigned long long)capacity(e), drain);

	detach = now_ms();
	EXPECT_EQ(0, vdrv_attach(&e->d, -1));
	detach = now_ms() - detach;
	closing = now_ms();
	eng_close(e);
	closing = now_ms() - closing;
	eng_report(e, test, remove_names);
	note("%s: detach %.0f ms, close %.0f ms\n", test, detach, closing);
	assert_clean(_metadata, e);
	EXPECT_LT(0, e->count[0][ST_OK]);
	EXPECT_LT(0, e->count[2][ST_IOERR]);
	EXPECT_GT(DRAIN_MS, detach);
	EXPECT_GT(DRAIN_MS, closing);
	/* Nothing of the device is held any more. */
	if (scsi) {
		EXPECT_EQ(0, vblk_scsi_debug_remove());
		self->sd[0] = 0;
	} else if (vblk_dm_exists(DM_NAME)) {
		EXPECT_EQ(0, vblk_dm_remove(DM_NAME, false));
		self->dm[0] = 0;
	}
}

TEST_F_TIMEOUT(fault, removed_scsi_delete, 120)
{
	removed(_metadata, self, true, "removed_scsi_delete");
}

TEST_F_TIMEOUT(fault, removed_dm_force, 120)
{
	removed(_metadata, self, false, "removed_dm_force");
}

/* ---- a shrinking device ---- */

/* 8 MiB and 8 KiB: the slot at the new end is cut in half. */
#define SHRUNK_SECT	((8u << 20) / 512 + 16)

static int shrink_expect(struct eng *e, struct ereq *r, int phase)
{
	if (phase == 0)
		return ST_OK;
	if (phase != 2)
		return EXP_ANY;
	return r->slot < e->shrink_slots ? ST_OK : ST_IOERR;
}

static const char *const shrink_names[] = {
	"full size", "shrinking", "shrunk", NULL
};

TEST_F_TIMEOUT(fault, shrunk_dm_linear, 120)
{
	struct eng *e = &self->e;
	uint64_t cap0, cap1;
	char table[128];
	double t, drain;

	if (!make_dm(_metadata, self, LINEAR))
		return;
	eng_init(e, DEPTH, SLOT, REGION / SLOT);
	e->shrink_slots = SHRUNK_SECT / (SLOT / 512);
	e->expect_fn = shrink_expect;
	ASSERT_EQ(0, eng_prefill(e, self->dm));
	ASSERT_EQ(0, eng_open(e, self->dm));
	cap0 = capacity(e);
	ASSERT_EQ(0, eng_start(e));
	run_phase(e, 500, 100);

	eng_phase(e, 1);
	t = now_ms();
	snprintf(table, sizeof(table), "0 %u linear %s 0", SHRUNK_SECT, RAM);
	ASSERT_EQ(0, vblk_dm_switch(DM_NAME, table, false));
	t = now_ms() - t;
	eng_phase(e, 2);
	run_phase(e, 700, 200);
	drain = eng_stop(e);
	cap1 = capacity(e);
	eng_report(e, "shrunk_dm_linear", shrink_names);
	note("shrunk_dm_linear: %llu -> %llu sectors in %.0f ms with %u in flight; drain %.0f ms\n",
	       (unsigned long long)cap0, (unsigned long long)cap1, t,
	       e->inflight_at[1], drain);
	assert_clean(_metadata, e);
	EXPECT_EQ(REGION / 512, cap0);
	EXPECT_EQ(SHRUNK_SECT, cap1) TH_LOG("the config's capacity did not follow");
	EXPECT_LT(0, e->count[2][ST_OK]);
	EXPECT_LT(0, e->count[2][ST_IOERR]);
	/* Inside: as written. Past the end: nothing since the shrink. */
	EXPECT_EQ(0, eng_verify(e, self->dm, 0, e->shrink_slots, 0));
	EXPECT_EQ(0, eng_verify(e, RAM, e->shrink_slots, e->nslots,
				e->gen_at[2]));
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * Power cut: does every write the guest was told is stable survive?
 *
 * vhost-blk is attached over dm-log-writes. dm-log-writes logs a write only
 * once a flush that came after its completion has completed (a FUA write at
 * its own completion), so the log, replayed up to some point, is what a disk
 * with a volatile write cache would hold had the power gone there, provided
 * flushes reach the target one at a time: where they could overlap (writes
 * through a page cache), a loop device between the backend and the target
 * sees to that (see pc_loop_add()). The test drives a
 * seeded workload from the userspace guest: writes of self-describing data
 * (every 512 bytes carry their sector and the write's generation) with up
 * to DEPTH in flight, and flushes between them. After every batch of
 * completions it sets a mark in the log (a DM target message) and
 * remembers what the guest had been promised by then:
 *
 * - a write completed before a flush was submitted is stable once that
 *   flush completes (the guest saw a write cache: none, writeback, unsafe);
 * - a write is stable at its completion when the guest saw no write cache
 *   (writethrough, directsync: FUA or O_DSYNC).
 *
 * The log is then replayed, entry by entry, onto a copy of what the data
 * device held when logging started, with lw_replay.c; at each mark every
 * promised write must be there (its generation or a later one in each
 * sector), nothing may be garbage (except a sector a write not yet promised
 * was being copied into: through the page cache it may be torn), and
 * nothing may come from a write submitted after the mark. Between marks, no
 * entry may take a sector back to an older generation.
 *
 * The test must be able to fail. In unsafe mode guest flushes complete
 * without reaching the device: there the same checker must find lost
 * writes, and the log must hold no flush from the run. In none and
 * writeback, checking as if completion alone made a write stable must find
 * writes missing: the device under the backend really is a volatile cache,
 * so a flush the backend forgot would be caught. In writethrough and
 * directsync that check must find nothing missing.
 *
 * Backends: a brd ram disk (dm-log-writes' own semantics are the volatile
 * cache), a null_blk with a volatile cache of its own, and a raw image file
 * on ext4 on the ram disk (see "devices" below). The log is a null_blk, the
 * replayed device another ram disk. PC_SEED=N in the environment repeats a
 * run with another seed; PC_REGION=N has the writes fall on the first N
 * sectors only (4096), so that more of them share pages and are in flight
 * together.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/dm-ioctl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"
#include "lw_replay.h"

#define MEM_SIZE	(4 << 20)
#define DM_NAME		"vbpowercut"
#define RAM_INDEX	3		/* data: /dev/ram3, 16 MiB */
#define REPLAY_INDEX	1		/* replayed device: /dev/ram1 */
#define DEV_MB		16
#define LOG_MB		64
#define REGION		4096		/* sectors the workload writes */
#define MAX_SECTORS	16		/* per write */
#define NR_WRITES	256
#define DEPTH		8		/* writes in flight at most */
#define FLUSH_ONE_IN	6		/* chance of a flush per submission */
#define MAX_MARKS	1024
#define PC_MAGIC	0x3130545543504256ULL	/* "VBPCUT01" */

static double pc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sectors the workload writes: PC_REGION=N (at most REGION) crowds it. */
static uint32_t pc_region = REGION;

static const char *const mode_names[] = {
	"none", "writeback", "writethrough", "directsync", "unsafe",
};

/* ---- data that says what it is ---------------------------------------- */

static uint64_t pc_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static void pc_fill(uint8_t *p, uint64_t sector, uint32_t gen)
{
	uint64_t w[64], x = pc_mix(sector * 1000003 + gen);

	w[0] = PC_MAGIC;
	w[1] = sector;
	w[2] = gen;
	for (int i = 3; i < 64; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	memcpy(p, w, sizeof(w));
}

/* Generation in a 512-byte sector: 0 if never written, -1 if garbage. */
static int64_t pc_gen(const uint8_t *p, uint64_t sector)
{
	static const uint8_t zero[512];
	uint8_t want[512];
	uint64_t w[3];

	if (!memcmp(p, zero, sizeof(zero)))
		return 0;
	memcpy(w, p, sizeof(w));
	if (w[0] != PC_MAGIC || w[1] != sector || !w[2] || w[2] > NR_WRITES)
		return -1;
	pc_fill(want, sector, w[2]);
	return memcmp(p, want, sizeof(want)) ? -1 : (int64_t)w[2];
}

/* ---- what the guest was promised, per mark ----------------------------- */

struct pc_mark {
	uint32_t *durable;	/* per sector: the guest was told it is stable */
	uint32_t *done;		/* per sector: completed to the guest */
	uint32_t *submitted;	/* per sector: last write submitted */
	bool after_flush;	/* a guest flush completed in this batch */
};

struct pc_slot {
	struct vreq r;
	int head;		/* -1: free */
	bool flush;
	uint32_t gen, sector, nr;
};

struct pc_run {
	unsigned int mode;
	bool stable;		/* the guest sees no write cache */
	uint64_t rnd;
	uint32_t gen;		/* writes submitted */
	uint32_t done[REGION], durable[REGION], flush_snap[REGION];
	uint32_t submitted[REGION];
	bool busy[REGION];
	struct pc_slot slot[DEPTH + 1];
	unsigned int inflight, flushes, flushes_done;
	bool flush_inflight, batch_flush;
	struct pc_mark mark[MAX_MARKS];
	unsigned int nr_marks;
	int ctl;		/* /dev/mapper/control */
};

static uint32_t pc_rand(struct pc_run *r)
{
	r->rnd = r->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
	return r->rnd >> 33;
}

/* dmsetup message DM_NAME 0 mark TEXT, through the DM ioctl. */
static int pc_dm_mark(int ctl, const char *text)
{
	union {
		struct dm_ioctl io;
		char buf[1024];
	} u;
	struct dm_target_msg *msg = (void *)(u.buf + sizeof(u.io));

	memset(&u, 0, sizeof(u));
	u.io.version[0] = DM_VERSION_MAJOR;
	u.io.data_size = sizeof(u);
	u.io.data_start = sizeof(u.io);
	snprintf(u.io.name, sizeof(u.io.name), "%s", DM_NAME);
	msg->sector = 0;
	snprintf(msg->message, sizeof(u) - sizeof(u.io) - sizeof(*msg),
		 "mark %s", text);
	return ioctl(ctl, DM_TARGET_MSG, &u.io) ? -errno : 0;
}

static int pc_mark(struct pc_run *r)
{
	struct pc_mark *m;
	char name[32];
	int ret;

	if (r->nr_marks == MAX_MARKS) {
		fprintf(stderr, "powercut: more than %d marks: raise MAX_MARKS\n",
			MAX_MARKS);
		return -E2BIG;
	}
	m = &r->mark[r->nr_marks];
	snprintf(name, sizeof(name), "pc%u", r->nr_marks);
	ret = pc_dm_mark(r->ctl, name);
	if (ret)
		return ret;
	if (!m->durable) {
		m->durable = malloc(sizeof(r->durable));
		m->done = malloc(sizeof(r->done));
		m->submitted = malloc(sizeof(r->submitted));
		if (!m->durable || !m->done || !m->submitted)
			return -ENOMEM;
	}
	memcpy(m->durable, r->durable, sizeof(r->durable));
	memcpy(m->done, r->done, sizeof(r->done));
	memcpy(m->submitted, r->submitted, sizeof(r->submitted));
	m->after_flush = r->batch_flush;
	r->batch_flush = false;
	r->nr_marks++;
	return 0;
}

static struct pc_slot *pc_free_slot(struct pc_run *r)
{
	for (int i = 0; i < DEPTH + 1; i++)
		if (r->slot[i].head < 0)
			return &r->slot[i];
	return NULL;
}

/* A range no write in flight touches, or false after a few tries. */
static bool pc_pick(struct pc_run *r, uint32_t *sector, uint32_t *nr)
{
	for (int tries = 0; tries < 32; tries++) {
		uint32_t n = 1 + pc_rand(r) % MAX_SECTORS;
		uint32_t s = pc_rand(r) % (pc_region - n + 1), i;

		for (i = 0; i < n && !r->busy[s + i]; i++)
			;
		if (i == n) {
			*sector = s;
			*nr = n;
			return true;
		}
	}
	return false;
}

static int pc_submit(struct vdrv *d, struct pc_run *r, bool flush)
{
	struct pc_slot *sl = pc_free_slot(r);
	uint32_t i;

	if (!sl)
		return -ENOSPC;
	sl->flush = flush;
	if (flush) {
		/* What the flush will have to make stable. */
		memcpy(r->flush_snap, r->done, sizeof(r->done));
		sl->r.hdr->type = VIRTIO_BLK_T_FLUSH;
		sl->r.hdr->sector = 0;
		sl->r.len = 0;
		r->flush_inflight = true;
		r->flushes++;
	} else {
		if (!pc_pick(r, &sl->sector, &sl->nr))
			return -EAGAIN;
		sl->gen = ++r->gen;
		for (i = 0; i < sl->nr; i++) {
			r->busy[sl->sector + i] = true;
			r->submitted[sl->sector + i] = sl->gen;
			pc_fill(sl->r.data + i * 512, sl->sector + i, sl->gen);
		}
		sl->r.hdr->type = VIRTIO_BLK_T_OUT;
		sl->r.hdr->sector = sl->sector;
		sl->r.len = sl->nr * 512;
	}
	/* One to three data descriptors, of whole sectors. */
	sl->head = vdrv_start(d, &d->q[0], &sl->r,
			      flush ? 1 : 1 + pc_rand(r) % (sl->nr < 3 ? sl->nr : 3),
			      false);
	if (sl->head < 0)
		return -EIO;
	r->inflight++;
	return 0;
}

static int pc_complete(struct pc_run *r, uint32_t head)
{
	struct pc_slot *sl = NULL;
	uint32_t i;

	for (i = 0; i < DEPTH + 1; i++)
		if (r->slot[i].head == (int)head)
			sl = &r->slot[i];
	if (!sl) {
		fprintf(stderr, "powercut: used head %u was not submitted\n",
			head);
		return -EPROTO;
	}
	if (*sl->r.status != VIRTIO_BLK_S_OK) {
		fprintf(stderr, "powercut: %s completed with status %u\n",
			sl->flush ? "flush" : "write", *sl->r.status);
		return -EIO;
	}
	sl->head = -1;
	r->inflight--;
	if (sl->flush) {
		for (i = 0; i < REGION; i++)
			if (r->flush_snap[i] > r->durable[i])
				r->durable[i] = r->flush_snap[i];
		r->flush_inflight = false;
		r->batch_flush = true;
		r->flushes_done++;
		return 0;
	}
	for (i = sl->sector; i < sl->sector + sl->nr; i++) {
		r->done[i] = sl->gen;
		r->busy[i] = false;
		if (r->stable)
			r->durable[i] = sl->gen;
	}
	return 0;
}

/* Wait for completions, take them all, set a mark. */
static int pc_reap(struct vdrv *d, struct pc_run *r)
{
	uint32_t head, len;
	int ret;

	ret = vdrv_get_used(d, &d->q[0], &head, &len, 20000);
	if (ret) {
		fprintf(stderr, "powercut: no completion in 20 s (%u in flight)\n",
			r->inflight);
		return ret;
	}
	do {
		ret = pc_complete(r, head);
		if (ret)
			return ret;
	} while (!vdrv_reap(d, &d->q[0], &head, &len));
	return pc_mark(r);
}

static int pc_workload(struct vdrv *d, struct pc_run *r)
{
	int ret;

	for (int i = 0; i < DEPTH + 1; i++) {
		r->slot[i].r = vdrv_req_alloc(d, VIRTIO_BLK_T_OUT, 0,
					      MAX_SECTORS * 512);
		r->slot[i].head = -1;
	}
	while (r->gen < NR_WRITES || r->inflight) {
		while (r->inflight < DEPTH && r->gen < NR_WRITES) {
			bool flush = !r->flush_inflight &&
				     !(pc_rand(r) % FLUSH_ONE_IN);

			ret = pc_submit(d, r, flush);
			if (ret == -EAGAIN)
				break;
			if (ret)
				return ret;
		}
		vdrv_kick(&d->q[0]);
		ret = pc_reap(d, r);
		if (ret)
			return ret;
	}
	/* A last flush: everything written is promised by the end. */
	ret = pc_submit(d, r, true);
	if (!ret) {
		vdrv_kick(&d->q[0]);
		ret = pc_reap(d, r);
	}
	return ret;
}

/* ---- replay and check --------------------------------------------------- */

struct pc_stats {
	uint64_t entries, flush_entries, fua_entries, write_entries;
	uint64_t flush_at_start, flush_at_last;	/* FLUSH entries by then */
	unsigned int marks, flush_points, violations, unflushed;
	unsigned int writes_verified;
	unsigned int regressions;	/* sectors given older data */
	bool end;
};

/*
 * The workload's sectors as the replayed device holds them: @phys says
 * where (the same offsets on a block device, the image's blocks from FIEMAP
 * on a filesystem), @gen what (pc_gen() of each). Sectors an applied entry
 * wrote are read back at the next mark, runs of contiguous ones at once.
 *
 * @newest is the newest whole generation an entry wrote to each sector,
 * @entry that entry and @flush the flush it was logged with (entries
 * between two FLUSH entries, or a FUA write alone). A sector's generation
 * never goes back on a disk, in the order writes complete: a write of a
 * sector is submitted after the one before completed, and the page cache
 * writes a page back once at a time, its newest data. An entry that puts
 * an older generation over a newer one is a violation where it is, mark or
 * not.
 */
struct pc_view {
	const uint64_t *phys;
	bool touched[REGION];
	int64_t gen[REGION], newest[REGION];
	uint64_t entry[REGION];
	uint64_t flush[REGION];
	uint64_t cur_flush;	/* flushes logged before this entry */
};

/* The entry @e wrote bytes [@from, @to) of the replayed device. */
static void pc_touch(struct pc_view *v, const struct lw_entry *e,
		     uint64_t from, uint64_t to, struct pc_stats *st)
{
	for (uint32_t s = 0; s < REGION; s++) {
		uint64_t p = v->phys[s];
		int64_t x;

		if (p >= to || p + 512 <= from)
			continue;
		v->touched[s] = true;
		if (e->flags & LW_DISCARD || p < from || p + 512 > to)
			continue;
		x = pc_gen(e->data + (p - from), s);
		if (x < 0)
			continue;	/* torn: pc_check_mark() judges it */
		if (x < v->newest[s]) {
			if (st->regressions < 4)
				ksft_print_msg("log entry %llu (flush %llu): sector %u goes back to generation %lld from %lld, logged by entry %llu (flush %llu)\n",
					       (unsigned long long)e->index,
					       (unsigned long long)v->cur_flush,
					       s, (long long)x,
					       (long long)v->newest[s],
					       (unsigned long long)v->entry[s],
					       (unsigned long long)v->flush[s]);
			st->regressions++;
			st->violations++;
			continue;
		}
		v->newest[s] = x;
		v->entry[s] = e->index;
		v->flush[s] = v->cur_flush;
	}
}

static int pc_refresh(struct pc_view *v, int fd)
{
	static uint8_t buf[REGION * 512];
	uint32_t s = 0, run, i;

	while (s < REGION) {
		if (!v->touched[s]) {
			s++;
			continue;
		}
		for (run = 1; s + run < REGION && v->touched[s + run] &&
		     v->phys[s + run] == v->phys[s] + run * 512ULL; run++)
			;
		if (pread(fd, buf, run * 512ULL, v->phys[s]) !=
		    (ssize_t)(run * 512ULL))
			return -EIO;
		for (i = 0; i < run; i++) {
			v->gen[s + i] = pc_gen(buf + i * 512ULL, s + i);
			v->touched[s + i] = false;
		}
		s += run;
	}
	return 0;
}

static void pc_check_mark(const struct pc_mark *m, unsigned int idx,
			  const int64_t *gen, struct pc_stats *st,
			  bool *verified)
{
	unsigned int bad = 0;

	for (uint32_t s = 0; s < REGION; s++) {
		int64_t g = gen[s];
		const char *why = NULL;

		/*
		 * Through the page cache a sector may be written back while
		 * a newer write is copied into it: torn, which is allowed
		 * while that write is not promised yet.
		 */
		if (g < 0 && m->submitted[s] > m->durable[s])
			continue;
		if (g < 0)
			why = "garbage";
		else if (g > m->submitted[s])
			why = "written after the mark";
		else if (g < m->durable[s])
			why = "lost";
		else if (m->durable[s])
			verified[m->durable[s]] = true;
		if (g >= 0 && g < m->done[s])
			st->unflushed++;
		if (!why)
			continue;
		if (st->violations + bad < 8)
			ksft_print_msg("mark pc%u: sector %u %s: holds generation %lld, promised %u, completed %u, submitted %u\n",
				       idx, s, why, (long long)g,
				       m->durable[s], m->done[s],
				       m->submitted[s]);
		bad++;
	}
	st->violations += bad;
	st->marks++;
	st->flush_points += m->after_flush;
}

/* One mark: "pcstart" before the workload, "pcN" after each batch. */
static int pc_on_mark(struct pc_run *r, const struct lw_entry *e, int dev_fd,
		      struct pc_view *v, struct pc_stats *st, bool *verified)
{
	unsigned int idx;
	char tail;
	int ret;

	if (!strcmp(e->mark, LW_END_MARK)) {
		st->end = true;
		return 0;
	}
	if (!strcmp(e->mark, "pcstart")) {
		st->flush_at_start = st->flush_entries;
		return 0;
	}
	if (sscanf(e->mark, "pc%u%c", &idx, &tail) != 1 ||
	    idx >= r->nr_marks) {
		ksft_print_msg("log entry %llu: unknown mark '%s'\n",
			       (unsigned long long)e->index, e->mark);
		st->violations++;
		return 0;
	}
	ret = pc_refresh(v, dev_fd);
	if (ret)
		return ret;
	pc_check_mark(&r->mark[idx], idx, v->gen, st, verified);
	st->flush_at_last = st->flush_entries;
	return 0;
}

/*
 * Replay the log on @log_fd onto @dev_fd (holding what the data device held
 * when logging started), checking at each of our marks.
 */
static int pc_replay(struct pc_run *r, int log_fd, int dev_fd,
		     const uint64_t *phys, struct pc_stats *st)
{
	bool verified[NR_WRITES + 1] = { false };
	static struct pc_view v;
	struct lw_entry e;
	struct lw_log l;
	int ret;

	memset(st, 0, sizeof(*st));
	memset(&v, 0, sizeof(v));
	v.phys = phys;
	memset(v.touched, true, sizeof(v.touched));
	ret = lw_open(&l, log_fd);
	if (ret)
		return ret;
	while ((ret = lw_next(&l, &e)) > 0) {
		st->entries++;
		st->flush_entries += !!(e.flags & LW_FLUSH);
		st->fua_entries += !!(e.flags & LW_FUA);
		st->write_entries += e.nr && !(e.flags & LW_DISCARD);
		if (e.flags & LW_MARK) {
			ret = pc_on_mark(r, &e, dev_fd, &v, st, verified);
		} else {
			/* A FUA write is logged alone, at its completion. */
			if ((e.flags & (LW_FUA | LW_FLUSH)) == LW_FUA)
				v.cur_flush++;
			ret = lw_apply(&l, &e, dev_fd);
			pc_touch(&v, &e, e.sector * l.bs,
				 (e.sector + e.nr) * l.bs, st);
			if (e.flags & (LW_FUA | LW_FLUSH))
				v.cur_flush++;
		}
		if (ret)
			break;
	}
	lw_close(&l);
	for (unsigned int i = 1; i <= NR_WRITES; i++)
		st->writes_verified += verified[i];
	/* The harness's child ends with _exit(): flush what was printed. */
	fflush(stdout);
	return ret;
}

/* ---- devices ------------------------------------------------------------ */

/*
 * The data device: a brd ram disk, a null_blk with a volatile cache, or an
 * image file on ext4 on the brd ram disk. The image is
 * written in full before logging starts, so its blocks never move: FIEMAP
 * says where its sectors are on the replayed device (checked again at the
 * end), and no fsck or journal replay is needed to read it.
 */
enum data_kind { DATA_BRD, DATA_NULLB_CACHE, DATA_EXT4 };

#define EXT4_DIR	"/tmp/powercut-ext4"
#define EXT4_PRISTINE	"/tmp/powercut-ext4.fs"
#define EXT4_IMAGE	EXT4_DIR "/image"

FIXTURE(powercut) {
	struct vdrv d;
	bool open, mounted;
	bool skip;		/* the 6.1 harness runs a test its setup skipped */
	int fd;
	char data[64], log[64], dm[64], replay[64];
	char loop[64];		/* the loop device, or the target */
	uint64_t phys[REGION];
	struct pc_run *run;
};

FIXTURE_VARIANT(powercut) {
	enum data_kind kind;
	unsigned int mode;
};

#define PC_VARIANTS(kname, k)						\
	FIXTURE_VARIANT_ADD(powercut, kname##_none) {			\
		k, VHOST_BLK_CACHE_NONE };				\
	FIXTURE_VARIANT_ADD(powercut, kname##_writeback) {		\
		k, VHOST_BLK_CACHE_WRITEBACK };				\
	FIXTURE_VARIANT_ADD(powercut, kname##_writethrough) {		\
		k, VHOST_BLK_CACHE_WRITETHROUGH };			\
	FIXTURE_VARIANT_ADD(powercut, kname##_directsync) {		\
		k, VHOST_BLK_CACHE_DIRECTSYNC };			\
	FIXTURE_VARIANT_ADD(powercut, kname##_unsafe) {			\
		k, VHOST_BLK_CACHE_UNSAFE }

PC_VARIANTS(brd, DATA_BRD);
PC_VARIANTS(ext4_image, DATA_EXT4);
/* null_blk is slow under TCG: the two bio paths are enough there. */
FIXTURE_VARIANT_ADD(powercut, nullb_cache_none) {
	DATA_NULLB_CACHE, VHOST_BLK_CACHE_NONE };
FIXTURE_VARIANT_ADD(powercut, nullb_cache_directsync) {
	DATA_NULLB_CACHE, VHOST_BLK_CACHE_DIRECTSYNC };

static const char *const kind_names[] = { "brd", "nullb_cache", "ext4_image" };

static int pc_attach(struct vdrv *d, int fd, unsigned int mode)
{
	struct vhost_blk_backend b = {
		.size = sizeof(b), .fd = fd, .cache_mode = mode,
	};

	return ioctl(d->fd, VHOST_BLK_SET_BACKEND, &b) ? -errno : 0;
}

static int pc_dm_remove(void)
{
	int ret = 0;

	/* The vhost device's claim goes with its last file reference. */
	for (int i = 0; i < 50 && vblk_dm_exists(DM_NAME); i++) {
		ret = vblk_dm_remove(DM_NAME, false);
		if (ret != -EBUSY)
			break;
		usleep(100000);
	}
	return ret;
}

/* Copy (@src) or zero (@src < 0) @bytes of @dst, and sync it. */
static int pc_copy(int dst, int src, uint64_t bytes)
{
	static uint8_t buf[1 << 20];
	uint64_t off;

	memset(buf, 0, sizeof(buf));
	for (off = 0; off < bytes; off += sizeof(buf)) {
		if (src >= 0 &&
		    pread(src, buf, sizeof(buf), off) != sizeof(buf))
			return -EIO;
		if (pwrite(dst, buf, sizeof(buf), off) != sizeof(buf))
			return -EIO;
	}
	return fsync(dst) ? -errno : 0;
}

/* Where the image's first REGION sectors are on its block device. */
static int pc_fiemap(int fd, uint64_t *phys)
{
	const uint32_t bad = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
			     FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_NOT_ALIGNED |
			     FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_UNWRITTEN;
	struct fiemap *fm;
	uint32_t s;
	int ret = 0;

	fm = calloc(1, sizeof(*fm) + 256 * sizeof(struct fiemap_extent));
	if (!fm)
		return -ENOMEM;
	fm->fm_length = REGION * 512ULL;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = 256;
	if (ioctl(fd, FS_IOC_FIEMAP, fm)) {
		ret = -errno;
		goto out;
	}
	for (s = 0; s < REGION; s++)
		phys[s] = UINT64_MAX;
	for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
		const struct fiemap_extent *x = &fm->fm_extents[i];

		if (x->fe_flags & bad)
			continue;
		for (uint64_t o = x->fe_logical;
		     o < x->fe_logical + x->fe_length && o < REGION * 512ULL;
		     o += 512)
			phys[o / 512] = x->fe_physical + (o - x->fe_logical);
	}
	for (s = 0; s < REGION; s++)
		if (phys[s] == UINT64_MAX) {
			fprintf(stderr, "powercut: image sector %u has no written block (FIEMAP): the image must be written in full\n",
				s);
			ret = -EINVAL;
			break;
		}
out:
	free(fm);
	return ret;
}

/* Copy the device or file at @src over the one at @dst. */
static int pc_copy_path(const char *dst, const char *src, uint64_t bytes)
{
	int in, out, ret;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(dst, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ret = out < 0 ? -errno : pc_copy(out, in, bytes);
	if (out >= 0)
		close(out);
	close(in);
	return ret;
}

/*
 * ext4 with a zero-filled image written and synced, left unmounted on
 * @dev. mkfs takes long under TCG: the first test keeps a copy in
 * EXT4_PRISTINE for the others. No lazy initialisation: nothing the kernel
 * does in the background may write or flush during the run.
 */
static int pc_make_ext4(const char *dev)
{
	int fd, ret;

	if (!access(EXT4_PRISTINE, R_OK))
		return pc_copy_path(dev, EXT4_PRISTINE, DEV_MB << 20);
	(void)!system("modprobe ext4 2>/dev/null");
	/* DEV_MB, whatever size brd was loaded with: the table's size. */
	if (vblk_sh("mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 %s %uM >/dev/null 2>&1",
		    dev, DEV_MB))
		return -ENOEXEC;
	mkdir(EXT4_DIR, 0755);
	if (mount(dev, EXT4_DIR, "ext4", 0, NULL))
		return -errno;
	fd = open(EXT4_IMAGE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ret = fd < 0 ? -errno : pc_copy(fd, -1, 4 << 20);
	if (fd >= 0)
		close(fd);
	if (umount(EXT4_DIR) && !ret)
		ret = -errno;
	return ret ?: pc_copy_path(EXT4_PRISTINE, dev, DEV_MB << 20);
}

/* The log device outlives a test: creating a null_blk is slow. */
static int pc_log_dev(char *path, size_t len)
{
	snprintf(path, len, "/dev/pclog");
	if (!access(path, F_OK))
		return 0;
	return vblk_null_blk("pclog", LOG_MB, 512, false, path, len);
}

/* Left for the last test; the harness's parent process exits here. */
static void __attribute__((destructor)) pc_cleanup(void)
{
	vblk_null_blk_remove("pclog");
	unlink(EXT4_PRISTINE);
}

/*
 * The disk the backend writes to: a loop device over the log-writes target,
 * with direct I/O (no page cache of its own). dm-log-writes takes the writes
 * completed so far into a flush when it maps the flush, and logs them when
 * the flush completes. Flushes that reach it concurrently (the page cache's
 * O_DSYNC sends one per write, from each of up to 16 work items) may
 * complete in another order: one mapped first and completing last logs its
 * writes after the others', after marks set once a later flush had made
 * them stable (a completed write missing there), and after newer data of
 * the same page (a sector going back). No disk does either; the replay
 * would blame the backend. A blk-mq device, which loop is, has one flush at
 * most in flight to what is below it (block/blk-flush.c), as a disk's queue.
 */
static int pc_loop_add(const char *dev, char *path, size_t len)
{
	char cmd[256];
	FILE *p;
	int ret;

	(void)!system("modprobe loop 2>/dev/null");
	snprintf(cmd, sizeof(cmd),
		 "losetup --show -f --direct-io=on --sector-size 512 %s 2>&1",
		 dev);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	if (!fgets(path, len, p))
		path[0] = 0;
	ret = pclose(p);
	path[strcspn(path, "\n")] = 0;
	if (ret || strncmp(path, "/dev/loop", 9)) {
		fprintf(stderr, "powercut: %s: %s\n", cmd, path);
		path[0] = 0;
		return -ENODEV;
	}
	return 0;
}

static void pc_loop_remove(char *path)
{
	if (strncmp(path, "/dev/loop", 9))
		return;
	vblk_sh("losetup -d %s", path);
	path[0] = 0;
}

static void pc_set_phys_linear(uint64_t *phys)
{
	for (uint32_t s = 0; s < REGION; s++)
		phys[s] = s * 512ULL;
}

FIXTURE_SETUP(powercut)
{
	bool ext4 = variant->kind == DATA_EXT4;
	int fd, rfd, ret;
	char table[256];

	self->fd = -1;
	self->run = NULL;
	self->open = false;
	self->mounted = false;
	self->skip = true;
	self->loop[0] = 0;
	if (access("/sys/module/dm_log_writes", F_OK) &&
	    vblk_sh("modprobe dm-log-writes 2>/dev/null"))
		SKIP(return, "no dm-log-writes module (CONFIG_DM_LOG_WRITES)");
	umount(EXT4_DIR);
	pc_dm_remove();
	vblk_null_blk_remove("pcdata");

	if (variant->kind != DATA_NULLB_CACHE) {
		fd = vblk_brd(RAM_INDEX, NULL);
		if (fd < 0)
			SKIP(return, "no brd ram disk /dev/ram%d: %s",
			     RAM_INDEX, strerror(-fd));
		/* Other tests leave data there: start from zeroes. */
		if (!ext4)
			ASSERT_EQ(0, pc_copy(fd, -1, DEV_MB << 20));
		close(fd);
		snprintf(self->data, sizeof(self->data), "/dev/ram%d",
			 RAM_INDEX);
	} else {
		ret = vblk_null_blk("pcdata", DEV_MB, 512, true, self->data,
				    sizeof(self->data));
		if (ret == -ENODEV)
			SKIP(return, "no null_blk module");
		ASSERT_EQ(0, ret);
	}
	if (ext4) {
		ret = pc_make_ext4(self->data);
		if (ret == -ENOEXEC)
			SKIP(return, "mkfs.ext4 failed: e2fsprogs or the ext4 module missing");
		ASSERT_EQ(0, ret);
	}
	ret = pc_log_dev(self->log, sizeof(self->log));
	if (ret == -ENODEV)
		SKIP(return, "no null_blk module for the log device");
	ASSERT_EQ(0, ret);

	/* The replay starts from what the data device holds now. */
	rfd = vblk_brd(REPLAY_INDEX, NULL);
	if (rfd < 0)
		SKIP(return, "no brd ram disk /dev/ram%d: %s", REPLAY_INDEX,
		     strerror(-rfd));
	snprintf(self->replay, sizeof(self->replay), "/dev/ram%d",
		 REPLAY_INDEX);
	fd = open(self->data, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pc_copy(rfd, fd, DEV_MB << 20));
	close(rfd);
	close(fd);

	snprintf(table, sizeof(table), "0 %u log-writes %s %s",
		 DEV_MB * 2048, self->data, self->log);
	ASSERT_EQ(0, vblk_dm_create(DM_NAME, table, self->dm,
				    sizeof(self->dm)));
	/*
	 * Flushes may overlap where writes go through a page cache (the
	 * device's or the image's): O_DSYNC, fsync. The bio path sends FUA
	 * writes, logged at their completion, and the guest's flushes, one
	 * at a time here: it stays on the target, FUA and all.
	 */
	if (ext4 || (variant->mode != VHOST_BLK_CACHE_NONE &&
		     variant->mode != VHOST_BLK_CACHE_DIRECTSYNC)) {
		ret = pc_loop_add(self->dm, self->loop, sizeof(self->loop));
		if (ret)
			SKIP(return, "no loop device over %s (losetup, loop module)",
			     self->dm);
	} else {
		snprintf(self->loop, sizeof(self->loop), "%s", self->dm);
	}

	ASSERT_EQ(0, vdrv_open(&self->d, MEM_SIZE));
	self->open = true;
	ASSERT_EQ(0, vdrv_setup(&self->d, 1, 64, VHOST_BLK_FEATURES));
	if (ext4) {
		/* Journal commits every 60 s: none lands inside the run. */
		ASSERT_EQ(0, mount(self->loop, EXT4_DIR, "ext4", 0,
				   "commit=60,noinit_itable"));
		self->mounted = true;
		self->fd = open(EXT4_IMAGE, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->fd);
		ASSERT_EQ(0, pc_fiemap(self->fd, self->phys));
	} else {
		self->fd = open(self->loop, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->fd);
		pc_set_phys_linear(self->phys);
	}
	ASSERT_EQ(0, pc_attach(&self->d, self->fd, variant->mode));

	self->run = calloc(1, sizeof(*self->run));
	ASSERT_NE(NULL, self->run);
	self->run->ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->run->ctl);
	self->skip = false;
}

FIXTURE_TEARDOWN(powercut)
{
	if (self->open)
		vdrv_close(&self->d);
	if (self->fd >= 0)
		close(self->fd);
	if (self->mounted)
		umount(EXT4_DIR);
	pc_loop_remove(self->loop);
	pc_dm_remove();
	vblk_null_blk_remove("pcdata");
	if (self->run) {
		for (unsigned int i = 0; i < MAX_MARKS; i++) {
			free(self->run->mark[i].durable);
			free(self->run->mark[i].done);
			free(self->run->mark[i].submitted);
		}
		if (self->run->ctl >= 0)
			close(self->run->ctl);
		free(self->run);
	}
}

TEST_F_TIMEOUT(powercut, replay, 500)
{
	struct pc_run *r = self->run;
	unsigned int mode = variant->mode;
	const char *env = getenv("PC_SEED");
	unsigned int seed = env ? strtoul(env, NULL, 0) : 20260 + mode;
	uint64_t phys_after[REGION];
	struct pc_stats st;
	double t0 = pc_now(), t1, t2;
	uint64_t flushes;
	int log_fd, dev_fd;

	if (self->skip)
		SKIP(return, "no backend (see setup)");
	env = getenv("PC_REGION");
	if (env) {
		pc_region = strtoul(env, NULL, 0);
		ASSERT_TRUE(pc_region >= MAX_SECTORS && pc_region <= REGION)
			TH_LOG("PC_REGION=%s: give %u to %u sectors", env,
			       MAX_SECTORS, REGION);
	}
	r->mode = mode;
	r->stable = mode == VHOST_BLK_CACHE_WRITETHROUGH ||
		    mode == VHOST_BLK_CACHE_DIRECTSYNC;
	r->rnd = seed;
	ASSERT_EQ(0, pc_dm_mark(r->ctl, "pcstart"));
	ASSERT_EQ(0, pc_workload(&self->d, r));

	/* Pull the plug: detach, and let the target log its end mark. */
	vdrv_close(&self->d);
	self->open = false;
	if (self->mounted) {
		/* The image's blocks did not move: the map still holds. */
		ASSERT_EQ(0, pc_fiemap(self->fd, phys_after));
		ASSERT_EQ(0, memcmp(self->phys, phys_after,
				    sizeof(phys_after)));
	}
	close(self->fd);
	self->fd = -1;
	if (self->mounted) {
		ASSERT_EQ(0, umount(EXT4_DIR));
		self->mounted = false;
	}
	pc_loop_remove(self->loop);
	ASSERT_EQ(0, pc_dm_remove());
	t1 = pc_now();

	log_fd = open(self->log, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, log_fd);
	dev_fd = open(self->replay, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev_fd);
	ASSERT_EQ(0, pc_replay(r, log_fd, dev_fd, self->phys, &st));
	close(log_fd);
	close(dev_fd);
	t2 = pc_now();

	flushes = st.flush_at_last - st.flush_at_start;
	ksft_print_msg("%s/%s seed %u: %u writes, %u guest flushes; log %llu entries (%llu writes, %llu FLUSH of which %llu during the run, %llu FUA); replayed to %u marks, %u of them flush points; %u writes verified; %u violations (%u sectors logged after newer data); %u completed-but-unflushed sector checks; %.1f s run, %.1f s replay\n",
		       kind_names[variant->kind], mode_names[mode], seed,
		       r->gen, r->flushes_done,
		       (unsigned long long)st.entries,
		       (unsigned long long)st.write_entries,
		       (unsigned long long)st.flush_entries,
		       (unsigned long long)flushes,
		       (unsigned long long)st.fua_entries, st.marks,
		       st.flush_points, st.writes_verified, st.violations,
		       st.regressions, st.unflushed, t1 - t0, t2 - t1);
	fflush(stdout);

	/* Every mark we set was found: the log is whole. */
	ASSERT_TRUE(st.end);
	ASSERT_EQ(r->nr_marks, st.marks);
	if (mode == VHOST_BLK_CACHE_UNSAFE) {
		/* Negative control: flushes never reach the device... */
		ASSERT_EQ(0, flushes);
		/* ...and the checker sees the promised writes lost. */
		ASSERT_LT(0, st.violations);
		return;
	}
	ASSERT_EQ(0, st.violations);
	ASSERT_LT(0, st.flush_points);
	ASSERT_LT(NR_WRITES / 2, st.writes_verified);
	if (r->stable) {
		/* Stable at completion: nothing completed is ever missing. */
		ASSERT_EQ(0, st.unflushed);
	} else {
		/*
		 * The device is a volatile cache: completed writes were
		 * missing until flushed, so a dropped flush would be caught.
		 */
		ASSERT_LT(0, st.unflushed);
	}
}

TEST_HARNESS_MAIN

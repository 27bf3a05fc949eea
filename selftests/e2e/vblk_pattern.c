// SPDX-License-Identifier: GPL-2.0
/*
 * vblk_pattern: seeded pattern writer/checker for a whole block device, run
 * inside the end-to-end tests' level-2 guest (static, so the guest's tiny
 * initramfs needs no libraries) and on the test VM against the backing disk.
 *
 * Every 512-byte sector holds a header (magic, seed, sector number) and a
 * stream derived from (seed, sector) only, so a region can be written with
 * one block size and queue depth and read back with another, and a mismatch
 * says whose data was found instead (stale, misplaced or another seed).
 *
 *   vblk_pattern write  DEV --seed N [--plan BS:QD,...] [--offset B] [--length B] [--flush]
 *   vblk_pattern verify DEV --seed N [--plan BS:QD,...] [--offset B] [--length B]
 *   vblk_pattern write-fails DEV      (expects a read-only disk: prints the errno)
 *
 * --buf-above ADDR (write and verify): every I/O buffer must sit in guest
 * physical memory at or above ADDR (a hotplugged DIMM): buffers are mapped,
 * faulted in and checked page by page in /proc/self/pagemap (root sees the
 * frame numbers), and remapped until they land there.
 *
 * The range is split into one segment per plan entry, each done by QD threads
 * issuing BS-sized O_DIRECT requests. Output is one line per run, prefixed
 * "vblk_pattern:", with the counts the end-to-end tests compare against the
 * host's statistics. Exit 0 on success, 1 on a data or I/O error, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR		512u
#define WORDS		(SECTOR / 8)
#define MAGIC		0x7674626c6b706174ULL	/* "vtblkpat" */
#define MAX_PLAN	8
#define MAX_QD		64
#define MAX_BS		(4u << 20)
#define MAX_REPORTS	5

struct step {
	unsigned int bs;
	unsigned int qd;
};

struct job {
	int fd;
	int writing;
	uint64_t seed;
	uint64_t start;		/* byte offset of the segment */
	uint64_t len;		/* bytes, a multiple of bs except maybe the tail */
	unsigned int bs;
	uint64_t next;		/* next chunk index, taken atomically */
	uint64_t requests;
	uint64_t bytes;
	uint64_t bad_sectors;
	int io_errno;
	uint64_t buf_above;	/* --buf-above: lowest guest physical address for buffers */
	uint64_t buf_pages;	/* buffer pages checked to be above it */
	pthread_mutex_t lock;	/* reports and the counters above */
};

/* Is every page of BUF (LEN bytes, faulted in) at or above guest physical address MIN? */
static int buf_is_above(void *buf, size_t len, uint64_t min)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t e;
	size_t off;
	int fd, ok = 1;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	for (off = 0; off < len && ok; off += page) {
		uint64_t vpn = ((uintptr_t)buf + off) / page;

		if (pread(fd, &e, sizeof(e), vpn * sizeof(e)) != sizeof(e)) {
			ok = -EIO;
			break;
		}
		/* bit 63: present; bits 0-54: frame number (0 without CAP_SYS_ADMIN) */
		if (!(e >> 63) || !(e & ((1ULL << 55) - 1))) {
			ok = -EPERM;
			break;
		}
		ok = (e & ((1ULL << 55) - 1)) * page >= min;
	}
	close(fd);
	return ok;
}

#define BUF_TRIES	64

/* A buffer of @len bytes whose pages are all at or above @min; NULL and errno on failure. */
static void *buf_alloc_above(size_t len, uint64_t min)
{
	void *tried[BUF_TRIES], *buf = NULL;
	int i, n = 0, r = 0;

	for (i = 0; i < BUF_TRIES && !buf; i++) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (p == MAP_FAILED) {
			r = -errno;
			break;
		}
		memset(p, 0, len);
		r = buf_is_above(p, len, min);
		if (r == 1)
			buf = p;
		else
			tried[n++] = p;	/* keep its pages, so the next try gets others */
		if (r < 0)
			break;
	}
	while (n--)
		munmap(tried[n], len);
	if (!buf)
		errno = r < 0 ? -r : ENOMEM;
	return buf;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_sector(uint64_t *w, uint64_t seed, uint64_t sector)
{
	uint64_t x = seed * 0x2545f4914f6cdd1dULL ^ sector;
	unsigned int i;

	w[0] = MAGIC;
	w[1] = seed;
	w[2] = sector;
	for (i = 3; i < WORDS; i++)
		w[i] = splitmix(&x);
}

static void report_mismatch(struct job *j, uint64_t sector, const uint64_t *got)
{
	if (j->bad_sectors++ >= MAX_REPORTS)
		return;
	if (got[0] == MAGIC)
		printf("vblk_pattern: MISMATCH sector %" PRIu64 " (byte %" PRIu64
		       "): found a pattern sector of seed %" PRIu64 " sector %" PRIu64 "%s\n",
		       sector, sector * SECTOR, got[1], got[2],
		       got[1] == j->seed && got[2] == sector ? " with a damaged body" : "");
	else
		printf("vblk_pattern: MISMATCH sector %" PRIu64 " (byte %" PRIu64
		       "): no pattern header, first words %016" PRIx64 " %016" PRIx64 "\n",
		       sector, sector * SECTOR, got[0], got[1]);
}

static int do_chunk(struct job *j, uint64_t *buf, uint64_t *want, uint64_t off, size_t n)
{
	uint64_t s0 = off / SECTOR;
	size_t k;
	ssize_t r;

	if (j->writing) {
		for (k = 0; k < n / SECTOR; k++)
			fill_sector(buf + k * WORDS, j->seed, s0 + k);
		r = pwrite(j->fd, buf, n, off);
	} else {
		r = pread(j->fd, buf, n, off);
	}
	if (r != (ssize_t)n) {
		pthread_mutex_lock(&j->lock);
		if (!j->io_errno) {
			j->io_errno = r < 0 ? errno : EIO;
			printf("vblk_pattern: %s of %zu bytes at %" PRIu64 " failed: %s\n",
			       j->writing ? "write" : "read", n, off,
			       r < 0 ? strerror(errno) : "short transfer");
		}
		pthread_mutex_unlock(&j->lock);
		return -1;
	}
	if (!j->writing) {
		for (k = 0; k < n / SECTOR; k++) {
			fill_sector(want, j->seed, s0 + k);
			if (memcmp(want, buf + k * WORDS, SECTOR)) {
				pthread_mutex_lock(&j->lock);
				report_mismatch(j, s0 + k, buf + k * WORDS);
				pthread_mutex_unlock(&j->lock);
			}
		}
	}
	pthread_mutex_lock(&j->lock);
	j->requests++;
	j->bytes += n;
	pthread_mutex_unlock(&j->lock);
	return 0;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	uint64_t want[WORDS];
	uint64_t idx, off;
	void *buf;

	if (j->buf_above) {
		buf = buf_alloc_above(j->bs, j->buf_above);
		if (!buf) {
			int err = errno;

			pthread_mutex_lock(&j->lock);
			printf("vblk_pattern: no %u-byte buffer above physical address 0x%" PRIx64
			       " after %d tries: %s%s\n", j->bs, j->buf_above, BUF_TRIES,
			       strerror(err), err == EPERM ?
			       " (frame numbers need root)" : " (is the memory online and movable?)");
			j->io_errno = err;
			pthread_mutex_unlock(&j->lock);
			return NULL;
		}
		pthread_mutex_lock(&j->lock);
		j->buf_pages += (j->bs + 4095) / 4096;
		pthread_mutex_unlock(&j->lock);
	} else if (posix_memalign(&buf, 4096, j->bs)) {
		pthread_mutex_lock(&j->lock);
		j->io_errno = ENOMEM;
		pthread_mutex_unlock(&j->lock);
		return NULL;
	}
	for (;;) {
		idx = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		off = idx * j->bs;
		if (off >= j->len || j->io_errno)
			break;
		if (do_chunk(j, buf, want, j->start + off,
			     j->len - off < j->bs ? j->len - off : j->bs))
			break;
	}
	if (j->buf_above)
		munmap(buf, j->bs);
	else
		free(buf);
	return NULL;
}

static int run_segment(struct job *j, unsigned int qd)
{
	pthread_t tid[MAX_QD];
	unsigned int i, started = 0;
	int err;

	for (i = 0; i < qd; i++) {
		err = pthread_create(&tid[i], NULL, worker, j);
		if (err) {
			printf("vblk_pattern: pthread_create: %s\n", strerror(err));
			j->io_errno = err;
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	return j->io_errno || j->bad_sectors ? -1 : 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int parse_plan(char *s, struct step *plan)
{
	char *tok, *save = NULL, *colon;
	uint64_t bs, qd;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		colon = strchr(tok, ':');
		if (!colon || n == MAX_PLAN)
			return -1;
		*colon = '\0';
		if (parse_size(tok, &bs) || parse_size(colon + 1, &qd))
			return -1;
		if (bs < SECTOR || bs > MAX_BS || bs % SECTOR || !qd || qd > MAX_QD)
			return -1;
		plan[n].bs = bs;
		plan[n].qd = qd;
		n++;
	}
	return n;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: vblk_pattern write|verify DEV --seed N [--plan BS:QD,...] [--offset BYTES]\n"
		"                    [--length BYTES] [--flush] [--buf-above PHYS_ADDR]\n"
		"       vblk_pattern write-fails DEV\n"
		"BS is 512..4M in 512-byte multiples, QD (threads) 1..%d, at most %d steps;\n"
		"the default plan is 4k:1,16k:8,64k:2,1m:4.\n", MAX_QD, MAX_PLAN);
	return 2;
}

/* A read-only disk must refuse a write: print which errno, for the test to check. */
static int write_fails(const char *dev)
{
	void *buf;
	int fd;

	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		printf("vblk_pattern: write-fails: open O_RDWR refused: %s (%s)\n",
		       strerrorname_np(errno), strerror(errno));
		return 0;
	}
	if (posix_memalign(&buf, 4096, 4096))
		return 1;
	memset(buf, 0xa5, 4096);
	if (pwrite(fd, buf, 4096, 0) == 4096) {
		printf("vblk_pattern: write-fails: a 4096-byte write to %s succeeded\n", dev);
		return 1;
	}
	printf("vblk_pattern: write-fails: write refused: %s (%s)\n",
	       strerrorname_np(errno), strerror(errno));
	return 0;
}

struct opts {
	int writing;
	const char *dev;
	uint64_t seed;
	int have_seed;
	uint64_t offset;
	uint64_t length;
	int flush;
	uint64_t buf_above;
	struct step plan[MAX_PLAN];
	int nplan;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	char defplan[] = "4k:1,16k:8,64k:2,1m:4";
	int i;

	o->writing = !strcmp(argv[1], "write");
	o->dev = argv[2];
	o->nplan = parse_plan(defplan, o->plan);
	for (i = 3; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--flush")) {
			o->flush = 1;
			continue;
		}
		if (i + 1 == argc)
			return -1;
		if (!strcmp(a, "--seed")) {
			if (parse_size(argv[++i], &o->seed))
				return -1;
			o->have_seed = 1;
		} else if (!strcmp(a, "--offset")) {
			if (parse_size(argv[++i], &o->offset) || o->offset % 4096)
				return -1;
		} else if (!strcmp(a, "--length")) {
			if (parse_size(argv[++i], &o->length) || o->length % SECTOR)
				return -1;
		} else if (!strcmp(a, "--buf-above")) {
			if (parse_size(argv[++i], &o->buf_above) || !o->buf_above)
				return -1;
		} else if (!strcmp(a, "--plan")) {
			o->nplan = parse_plan(argv[++i], o->plan);
			if (o->nplan <= 0)
				return -1;
		} else {
			return -1;
		}
	}
	return o->have_seed ? 0 : -1;
}

static int dev_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -1;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size);
	*size = st.st_size;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t size, seg, pos, requests = 0, bytes = 0, bad = 0, buf_pages = 0;
	struct opts o = { 0 };
	int fd, i, rc = 0, flushes = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "write-fails"))
		return write_fails(argv[2]);
	if (argc < 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "verify")) ||
	    parse_args(argc, argv, &o))
		return usage();
	fd = open(o.dev, (o.writing ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0 || dev_size(fd, &size)) {
		printf("vblk_pattern: %s: %s\n", o.dev, strerror(errno));
		return 1;
	}
	if (!o.length)
		o.length = o.offset < size ? size - o.offset : 0;
	if (!o.length || o.offset + o.length > size) {
		printf("vblk_pattern: range %" PRIu64 "+%" PRIu64 " is outside %s (%" PRIu64
		       " bytes)\n", o.offset, o.length, o.dev, size);
		return 1;
	}
	/* Segments aligned to 1 MiB (the largest usual block) so each starts on a boundary. */
	seg = (o.length / o.nplan) & ~((uint64_t)(1 << 20) - 1);
	if (!seg)
		seg = o.length / o.nplan / SECTOR * SECTOR;
	printf("vblk_pattern: %s %s seed=%" PRIu64 " range=%" PRIu64 "+%" PRIu64 " plan=",
	       o.writing ? "write" : "verify", o.dev, o.seed, o.offset, o.length);
	for (i = 0; i < o.nplan; i++)
		printf("%s%u:%u", i ? "," : "", o.plan[i].bs, o.plan[i].qd);
	printf("\n");
	for (i = 0, pos = 0; i < o.nplan && pos < o.length; i++) {
		struct job j = {
			.fd = fd, .writing = o.writing, .seed = o.seed,
			.start = o.offset + pos, .bs = o.plan[i].bs,
			.buf_above = o.buf_above, .lock = PTHREAD_MUTEX_INITIALIZER,
		};

		j.len = i == o.nplan - 1 || !seg ? o.length - pos : seg;
		if (run_segment(&j, o.plan[i].qd))
			rc = 1;
		requests += j.requests;
		bytes += j.bytes;
		bad += j.bad_sectors;
		buf_pages += j.buf_pages;
		pos += j.len;
		if (rc)
			break;
	}
	if (!rc && o.writing && o.flush) {
		if (fdatasync(fd)) {
			printf("vblk_pattern: fdatasync: %s\n", strerror(errno));
			rc = 1;
		} else {
			flushes = 1;
		}
	}
	printf("vblk_pattern: %s %s requests=%" PRIu64 " bytes=%" PRIu64 " flushes=%d"
	       " bad_sectors=%" PRIu64 " %s\n", o.writing ? "write" : "verify", o.dev,
	       requests, bytes, flushes, bad, rc ? "FAILED" : "OK");
	if (o.buf_above && !rc)
		printf("vblk_pattern: %" PRIu64 " buffer pages, all above physical address 0x%" PRIx64
		       "\n", buf_pages, o.buf_above);
	close(fd);
	return rc;
}

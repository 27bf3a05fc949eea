// SPDX-License-Identifier: GPL-2.0
/*
 * lw-replay: replay a dm-log-writes log onto a device and stop at every
 * flush and every mark, for the end-to-end power-cut test
 * (selftests/e2e/e2e-powercut.sh). The log format and its reader are
 * selftests/vhost_blk/lw_replay.[ch], shared with powercut_test.
 *
 *   lw-replay LOG DEV [--copy COPY] [--exec CMD]
 *
 * Applies the log's entries in order to DEV (which must hold what the
 * logged device held when logging started: zeroes for a fresh ram disk).
 * After each FLUSH entry and each mark (the end mark of the target's
 * removal included) DEV is synced, with --copy all of it is copied to COPY
 * (where CMD may mount and recover a file system without changing DEV; COPY
 * must not be smaller), and CMD runs (sh -c) with, in its environment:
 *
 *   LW_INDEX   the entry's index in the log
 *   LW_KIND    flush, mark or end
 *   LW_MARK    the mark's text (marks only)
 *   LW_WRITES  writes and discards applied since the previous stop
 *
 * A stop is what a disk with a volatile write cache would hold had the
 * power gone right there: every write the log holds before a flush
 * completed before that flush was sent; a mark lies after every write
 * flushed before it was set. Prints one line per stop and a summary:
 *
 *   lw-replay: entries N writes N discards N flushes N marks N stops N failed N
 *
 * Exit status: 0, 1 when CMD failed at some stop, 2 when the log cannot be
 * read or DEV cannot be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "lw_replay.h"

struct lwr_count {
	uint64_t entries, writes, discards, flushes, marks, stops, failed;
	uint64_t since;		/* writes and discards since the last stop */
};

struct lwr_opts {
	const char *cmd;	/* --exec */
	int copy;		/* --copy, or -1 */
	uint64_t size;		/* bytes to copy: the replay device's size */
	uint8_t *buf;		/* for the copy */
};

#define LWR_COPY_CHUNK	(1 << 20)

static int lwr_usage(void)
{
	fprintf(stderr,
		"usage: lw-replay LOG DEV [--copy COPY] [--exec CMD]\n"
		"  replay the dm-log-writes log on LOG onto DEV; after every flush and mark,\n"
		"  copy what DEV holds to COPY and run CMD (sh -c) with LW_INDEX, LW_KIND,\n"
		"  LW_MARK and LW_WRITES set\n");
	return 2;
}

static const char *lwr_kind(const struct lw_entry *e)
{
	if (!(e->flags & LW_MARK))
		return "flush";
	return strcmp(e->mark, LW_END_MARK) ? "mark" : "end";
}

static int lwr_setenv_u64(const char *name, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return setenv(name, buf, 1);
}

/* Run CMD at this stop: 0 when it succeeded, 1 when not. */
static int lwr_exec(const char *cmd, const struct lw_entry *e,
		    uint64_t since)
{
	int status;

	if (lwr_setenv_u64("LW_INDEX", e->index) ||
	    setenv("LW_KIND", lwr_kind(e), 1) ||
	    setenv("LW_MARK", e->flags & LW_MARK ? e->mark : "", 1) ||
	    lwr_setenv_u64("LW_WRITES", since)) {
		perror("lw-replay: setenv");
		return 1;
	}
	fflush(stdout);
	status = system(cmd);
	if (status == -1) {
		perror("lw-replay: running the --exec command");
		return 1;
	}
	return !WIFEXITED(status) || WEXITSTATUS(status);
}

/* All of DEV to the copy, synced. */
static int lwr_copy(const struct lwr_opts *o, int dev)
{
	uint64_t end = o->size;
	uint64_t off;
	ssize_t n;

	for (off = 0; off < end; off += n) {
		n = end - off < LWR_COPY_CHUNK ? end - off : LWR_COPY_CHUNK;
		errno = 0;
		if (pread(dev, o->buf, n, off) != n ||
		    pwrite(o->copy, o->buf, n, off) != n) {
			fprintf(stderr, "lw-replay: copying %zd bytes at %" PRIu64 " to the copy device: %s (is it smaller than the replay device?)\n",
				n, off, errno ? strerror(errno) : "short transfer");
			return -1;
		}
	}
	if (fsync(o->copy)) {
		perror("lw-replay: fsync of the copy device");
		return -1;
	}
	return 0;
}

/* The replayed device as it is now: on stable storage (and copied) for the hook. */
static int lwr_stop(const struct lwr_opts *o, const struct lw_entry *e,
		    int dev, struct lwr_count *c)
{
	int failed = 0;

	if (fsync(dev)) {
		perror("lw-replay: fsync of the replay device");
		return -1;
	}
	if (o->copy >= 0 && lwr_copy(o, dev))
		return -1;
	c->stops++;
	if (o->cmd)
		failed = lwr_exec(o->cmd, e, c->since);
	printf("lw-replay: stop %" PRIu64 " at entry %" PRIu64 " %s%s%s after %" PRIu64 " writes%s\n",
	       c->stops, e->index, lwr_kind(e), e->flags & LW_MARK ? " " : "",
	       e->flags & LW_MARK ? e->mark : "", c->since,
	       failed ? ": CHECK FAILED" : "");
	c->failed += failed;
	c->since = 0;
	return 0;
}

static int lwr_replay(struct lw_log *l, int dev, const struct lwr_opts *o,
		      struct lwr_count *c)
{
	struct lw_entry e;
	int ret;

	while ((ret = lw_next(l, &e)) > 0) {
		c->entries++;
		if (e.flags & LW_MARK) {
			c->marks++;
		} else if (e.nr) {
			ret = lw_apply(l, &e, dev);
			if (ret) {
				fprintf(stderr, "lw-replay: entry %" PRIu64 ": writing %" PRIu64 " blocks at block %" PRIu64 " of the replay device: %s (is it smaller than the logged device?)\n",
					e.index, e.nr, e.sector, strerror(-ret));
				return -1;
			}
			c->since++;
			if (e.flags & LW_DISCARD)
				c->discards++;
			else
				c->writes++;
		}
		if (e.flags & LW_FLUSH)
			c->flushes++;
		if ((e.flags & (LW_FLUSH | LW_MARK)) && lwr_stop(o, &e, dev, c))
			return -1;
	}
	if (ret < 0) {
		fprintf(stderr, "lw-replay: reading entry %" PRIu64 " of the log: %s\n",
			c->entries, strerror(-ret));
		return -1;
	}
	return 0;
}

static int lwr_open(const char *path, int flags, const char *what)
{
	int fd = open(path, flags);

	if (fd < 0)
		fprintf(stderr, "lw-replay: cannot open the %s %s: %s\n", what,
			path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	struct lwr_opts o = { .copy = -1 };
	struct lwr_count c = { 0 };
	struct lw_log l;
	int log, dev, ret, i;

	if (argc < 3 || argc % 2 == 0)
		return lwr_usage();
	for (i = 3; i < argc; i += 2) {
		if (!strcmp(argv[i], "--exec")) {
			o.cmd = argv[i + 1];
		} else if (!strcmp(argv[i], "--copy")) {
			o.copy = lwr_open(argv[i + 1], O_WRONLY, "copy device");
			if (o.copy < 0)
				return 2;
		} else {
			return lwr_usage();
		}
	}
	o.buf = malloc(LWR_COPY_CHUNK);
	log = lwr_open(argv[1], O_RDONLY, "log");
	dev = lwr_open(argv[2], O_RDWR, "replay device");
	if (!o.buf || log < 0 || dev < 0)
		return 2;
	if (o.copy >= 0) {
		o.size = lseek(dev, 0, SEEK_END);
		if (lseek(o.copy, 0, SEEK_END) < (off_t)o.size) {
			fprintf(stderr, "lw-replay: the copy device is smaller than the replay device (%" PRIu64 " bytes): give a larger one\n",
				o.size);
			return 2;
		}
	}
	ret = lw_open(&l, log);
	if (ret) {
		fprintf(stderr, "lw-replay: %s: %s\n", argv[1], strerror(-ret));
		return 2;
	}
	printf("lw-replay: %s: %" PRIu64 " entries of %u-byte blocks\n",
	       argv[1], l.nr_entries, l.bs);
	ret = lwr_replay(&l, dev, &o, &c);
	lw_close(&l);
	free(o.buf);
	printf("lw-replay: entries %" PRIu64 " writes %" PRIu64 " discards %" PRIu64 " flushes %" PRIu64 " marks %" PRIu64 " stops %" PRIu64 " failed %" PRIu64 "\n",
	       c.entries, c.writes, c.discards, c.flushes, c.marks, c.stops,
	       c.failed);
	if (ret)
		return 2;
	return c.failed ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * lw-replay: replay a dm-log-writes log onto a device and stop at every
 * flush and every mark, for the end-to-end power-cut test
 * (selftests/e2e/e2e-powercut.sh). The log format and its reader are
 * selftests/vhost_blk/lw_replay.[ch], shared with powercut_test.
 *
 *   lw-replay LOG DEV [--exec CMD]
 *
 * Applies the log's entries in order to DEV (which must hold what the
 * logged device held when logging started: zeroes for a fresh ram disk).
 * After each FLUSH entry and each mark (the end mark of the target's
 * removal included) DEV is synced and CMD runs (sh -c) with, in its
 * environment:
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

static int lwr_usage(void)
{
	fprintf(stderr,
		"usage: lw-replay LOG DEV [--exec CMD]\n"
		"  replay the dm-log-writes log on LOG onto DEV, running CMD (sh -c) after\n"
		"  every flush and mark with LW_INDEX, LW_KIND, LW_MARK and LW_WRITES set\n");
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

/* The replayed device as it is now: on stable storage for the hook. */
static int lwr_stop(const char *cmd, const struct lw_entry *e, int dev,
		    struct lwr_count *c)
{
	int failed = 0;

	if (fsync(dev)) {
		perror("lw-replay: fsync of the replay device");
		return -1;
	}
	c->stops++;
	if (cmd)
		failed = lwr_exec(cmd, e, c->since);
	printf("lw-replay: stop %" PRIu64 " at entry %" PRIu64 " %s%s%s after %" PRIu64 " writes%s\n",
	       c->stops, e->index, lwr_kind(e), e->flags & LW_MARK ? " " : "",
	       e->flags & LW_MARK ? e->mark : "", c->since,
	       failed ? ": CHECK FAILED" : "");
	c->failed += failed;
	c->since = 0;
	return 0;
}

static int lwr_replay(struct lw_log *l, int dev, const char *cmd,
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
		if ((e.flags & (LW_FLUSH | LW_MARK)) && lwr_stop(cmd, &e, dev, c))
			return -1;
	}
	if (ret < 0) {
		fprintf(stderr, "lw-replay: reading entry %" PRIu64 " of the log: %s\n",
			c->entries, strerror(-ret));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct lwr_count c = { 0 };
	const char *cmd = NULL;
	struct lw_log l;
	int log, dev, ret;

	if (argc == 5 && !strcmp(argv[3], "--exec"))
		cmd = argv[4];
	else if (argc != 3)
		return lwr_usage();
	log = open(argv[1], O_RDONLY);
	if (log < 0) {
		fprintf(stderr, "lw-replay: cannot open the log %s: %s\n",
			argv[1], strerror(errno));
		return 2;
	}
	dev = open(argv[2], O_WRONLY);
	if (dev < 0) {
		fprintf(stderr, "lw-replay: cannot open the replay device %s: %s\n",
			argv[2], strerror(errno));
		return 2;
	}
	ret = lw_open(&l, log);
	if (ret) {
		fprintf(stderr, "lw-replay: %s: %s\n", argv[1], strerror(-ret));
		return 2;
	}
	printf("lw-replay: %s: %" PRIu64 " entries of %u-byte blocks\n",
	       argv[1], l.nr_entries, l.bs);
	ret = lwr_replay(&l, dev, cmd, &c);
	lw_close(&l);
	printf("lw-replay: entries %" PRIu64 " writes %" PRIu64 " discards %" PRIu64 " flushes %" PRIu64 " marks %" PRIu64 " stops %" PRIu64 " failed %" PRIu64 "\n",
	       c.entries, c.writes, c.discards, c.flushes, c.marks, c.stops,
	       c.failed);
	if (ret)
		return 2;
	return c.failed ? 1 : 0;
}

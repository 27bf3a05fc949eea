// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl stats [ID] [--watch SECONDS]: per-queue counters of vhost-blk
 * devices, from the family's STATS_GET. With --watch the query repeats
 * every SECONDS until interrupted; each round is printed whole (in JSON one
 * object per line, or indented with -p).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/vhost_blk_nl.h>

#include "json.h"
#include "nl.h"
#include "vhostblkctl.h"

/* Every counter of a queue: its attribute, JSON key and plain label. */
static const struct {
	int attr;
	const char *key;
} vbc_stats_fields[] = {
	{ VHOST_BLK_A_QUEUE_STATS_REQ_IN, "req_in" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_OUT, "req_out" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_FLUSH, "req_flush" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_GET_ID, "req_get_id" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_DISCARD, "req_discard" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_WRITE_ZEROES, "req_write_zeroes" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_UNSUPPORTED, "req_unsupported" },
	{ VHOST_BLK_A_QUEUE_STATS_REQ_INVALID, "req_invalid" },
	{ VHOST_BLK_A_QUEUE_STATS_BYTES_READ, "bytes_read" },
	{ VHOST_BLK_A_QUEUE_STATS_BYTES_WRITTEN, "bytes_written" },
	{ VHOST_BLK_A_QUEUE_STATS_IN_FLIGHT, "in_flight" },
	{ VHOST_BLK_A_QUEUE_STATS_STATUS_OK, "status_ok" },
	{ VHOST_BLK_A_QUEUE_STATS_STATUS_IOERR, "status_ioerr" },
	{ VHOST_BLK_A_QUEUE_STATS_STATUS_UNSUPP, "status_unsupp" },
	{ VHOST_BLK_A_QUEUE_STATS_FLUSHES, "flushes" },
	{ VHOST_BLK_A_QUEUE_STATS_FLUSHES_SENT, "flushes_sent" },
	{ VHOST_BLK_A_QUEUE_STATS_FUA_WRITES, "fua_writes" },
	{ VHOST_BLK_A_QUEUE_STATS_FUA_EMULATED, "fua_emulated" },
	{ VHOST_BLK_A_QUEUE_STATS_KICKS, "kicks" },
	{ VHOST_BLK_A_QUEUE_STATS_SIGNALS, "signals" },
	{ VHOST_BLK_A_QUEUE_STATS_SIGNALLED, "signalled" },
};

#define VBC_NR_FIELDS (sizeof(vbc_stats_fields) / sizeof(vbc_stats_fields[0]))

struct vbc_stats_ctx {
	const struct vbc_opts *opts;
	struct vbc_json *json;
};

static void vbc_stats_queue_json(struct vbc_json *j, struct nlattr **q)
{
	uint64_t signals = vbc_nla_u64(q[VHOST_BLK_A_QUEUE_STATS_SIGNALS]);
	uint64_t done = vbc_nla_u64(q[VHOST_BLK_A_QUEUE_STATS_SIGNALLED]);
	size_t i;

	vbc_json_open_object(j, NULL);
	vbc_json_u64(j, "index", vbc_nla_u32(q[VHOST_BLK_A_QUEUE_STATS_INDEX]));
	for (i = 0; i < VBC_NR_FIELDS; i++)
		vbc_json_u64(j, vbc_stats_fields[i].key,
			     vbc_nla_u64(q[vbc_stats_fields[i].attr]));
	vbc_json_double(j, "completions_per_signal",
			signals ? (double)done / signals : 0);
	vbc_json_close_object(j);
}

#define Q(name) ((unsigned long long)vbc_nla_u64(q[VHOST_BLK_A_QUEUE_STATS_##name]))

static void vbc_stats_queue_plain(struct nlattr **q)
{
	unsigned long long signals = Q(SIGNALS);

	printf("  queue %u: kicks %llu in_flight %llu signals %llu "
	       "completions/signal %.2f\n",
	       vbc_nla_u32(q[VHOST_BLK_A_QUEUE_STATS_INDEX]), Q(KICKS),
	       Q(IN_FLIGHT), signals,
	       signals ? (double)Q(SIGNALLED) / signals : 0);
	printf("    requests: in %llu out %llu flush %llu get_id %llu discard %llu "
	       "write_zeroes %llu unsupported %llu invalid %llu\n",
	       Q(REQ_IN), Q(REQ_OUT), Q(REQ_FLUSH), Q(REQ_GET_ID),
	       Q(REQ_DISCARD), Q(REQ_WRITE_ZEROES), Q(REQ_UNSUPPORTED),
	       Q(REQ_INVALID));
	printf("    bytes: read %llu written %llu\n", Q(BYTES_READ),
	       Q(BYTES_WRITTEN));
	printf("    status: ok %llu ioerr %llu unsupp %llu  flushes %llu\n",
	       Q(STATUS_OK), Q(STATUS_IOERR), Q(STATUS_UNSUPP), Q(FLUSHES));
	printf("    cache: flushes_sent %llu fua_writes %llu fua_emulated %llu\n",
	       Q(FLUSHES_SENT), Q(FUA_WRITES), Q(FUA_EMULATED));
}

#undef Q

static int vbc_stats_reply(struct nlattr **tb, struct nlattr *attrs, int len,
			   void *arg)
{
	struct nlattr *a, *q[VHOST_BLK_A_QUEUE_STATS_MAX + 1];
	struct vbc_stats_ctx *c = arg;
	uint32_t id = vbc_nla_u32(tb[VHOST_BLK_A_STATS_ID]);
	int rem;

	if (c->opts->json) {
		vbc_json_open_object(c->json, NULL);
		vbc_json_u64(c->json, "id", id);
		vbc_json_open_array(c->json, "queues");
	} else {
		printf("dev %u:\n", id);
	}
	nla_for_each_attr(a, attrs, len, rem) {
		if (nla_type(a) != VHOST_BLK_A_STATS_QUEUE ||
		    nla_parse_nested(q, VHOST_BLK_A_QUEUE_STATS_MAX, a, NULL) < 0)
			continue;
		if (c->opts->json)
			vbc_stats_queue_json(c->json, q);
		else
			vbc_stats_queue_plain(q);
	}
	if (c->opts->json) {
		vbc_json_close_array(c->json);
		vbc_json_close_object(c->json);
	}
	return 0;
}

static int vbc_stats_once(struct vbc_nl *nl, struct vbc_stats_ctx *c,
			  bool have_id, uint32_t id)
{
	int ret;

	if (c->opts->json) {
		vbc_json_open_object(c->json, NULL);
		vbc_json_u64(c->json, "time", (uint64_t)time(NULL));
		vbc_json_open_array(c->json, "stats");
	}
	ret = vbc_nl_get(nl, VHOST_BLK_CMD_STATS_GET, VHOST_BLK_A_STATS_MAX,
			 VHOST_BLK_A_STATS_ID, have_id, id, vbc_stats_reply, c);
	if (c->opts->json) {
		vbc_json_close_array(c->json);
		vbc_json_close_object(c->json);
		vbc_json_end(c->json);
	}
	fflush(stdout);
	return ret;
}

static void vbc_stats_usage(FILE *f)
{
	fprintf(f, "usage: %s [ -j ] [ -p ] stats [ ID ] [ --watch SECONDS ]\n"
		"  Per-queue counters of device ID, or of every device you may see.\n"
		"  --watch repeats every SECONDS (1..3600) until interrupted.\n",
		vbc_progname);
}

/* Parse [ID] [--watch SECONDS] in any order. */
static int vbc_stats_args(int argc, char **argv, bool *have_id, uint32_t *id,
			  unsigned long *watch)
{
	char *end;
	int i;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--watch") || !strcmp(argv[i], "-w")) {
			if (++i == argc) {
				fprintf(stderr, "%s: --watch needs a number of seconds\n",
					vbc_progname);
				return -1;
			}
			errno = 0;
			*watch = strtoul(argv[i], &end, 10);
			if (!*argv[i] || *end || errno || !*watch || *watch > 3600) {
				fprintf(stderr, "%s: --watch %s: give whole seconds, "
					"1 to 3600\n", vbc_progname, argv[i]);
				return -1;
			}
		} else if (!*have_id && argv[i][0] != '-') {
			if (vbc_parse_id(argv[i], id))
				return -1;
			*have_id = true;
		} else {
			fprintf(stderr, "%s: stats: unexpected \"%s\"\n",
				vbc_progname, argv[i]);
			vbc_stats_usage(stderr);
			return -1;
		}
	}
	return 0;
}

int vbc_cmd_stats(const struct vbc_opts *opts, int argc, char **argv)
{
	struct vbc_json json;
	struct vbc_stats_ctx c = { .opts = opts, .json = &json };
	unsigned long watch = 0;
	bool have_id = false;
	struct vbc_nl nl;
	uint32_t id = 0;
	int ret;

	if (argc && !strcmp(argv[0], "help")) {
		vbc_stats_usage(stdout);
		return 0;
	}
	if (argc && !strcmp(argv[0], "show")) {
		argc--;
		argv++;
	}
	if (vbc_stats_args(argc, argv, &have_id, &id, &watch))
		return 2;
	if (vbc_nl_open(&nl))
		return 1;
	vbc_json_init(&json, stdout, opts->pretty);
	for (;;) {
		ret = vbc_stats_once(&nl, &c, have_id, id);
		if (ret || !watch)
			break;
		sleep(watch);
		if (!opts->json)
			printf("\n");
	}
	vbc_nl_close(&nl);
	return ret ? 1 : 0;
}

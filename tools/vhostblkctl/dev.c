// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl dev show [ID]: the devices of the vhost-blk module, from the
 * family's DEV_GET (one device, or a dump of every device the caller may
 * see).
 */
#include <stdio.h>
#include <string.h>
#include <linux/vhost_blk_nl.h>

#include "json.h"
#include "nl.h"
#include "vhostblkctl.h"

static const char *const vbc_dev_states[] = {
	[VHOST_BLK_STATE_NO_OWNER] = "no-owner",
	[VHOST_BLK_STATE_IDLE] = "idle",
	[VHOST_BLK_STATE_ATTACHED] = "attached",
	[VHOST_BLK_STATE_BUSY] = "busy",
};

struct vbc_dev_ctx {
	const struct vbc_opts *opts;
	struct vbc_json *json;
};

static const char *vbc_dev_state(struct nlattr *a)
{
	uint32_t s = vbc_nla_u32(a);

	if (a && s < sizeof(vbc_dev_states) / sizeof(vbc_dev_states[0]))
		return vbc_dev_states[s];
	return "unknown";
}

/* The serial as text: printable bytes as they are, others as \xNN. */
static void vbc_dev_serial(struct nlattr *a, char *buf, size_t size)
{
	const unsigned char *p = a ? nla_data(a) : NULL;
	int i, n = a ? nla_len(a) : 0;
	size_t len = 0;

	buf[0] = 0;
	for (i = 0; i < n && len + 5 < size; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"')
			buf[len++] = p[i];
		else
			len += snprintf(buf + len, size - len, "\\x%02x", p[i]);
		buf[len] = 0;
	}
}

static void vbc_dev_queues(struct vbc_dev_ctx *c, struct nlattr *attrs,
			   int len)
{
	struct nlattr *a, *qtb[VHOST_BLK_A_QUEUE_MAX + 1];
	int rem;

	if (c->opts->json)
		vbc_json_open_array(c->json, "queues");
	else
		printf("  queues:");
	nla_for_each_attr(a, attrs, len, rem) {
		if (nla_type(a) != VHOST_BLK_A_DEV_QUEUE ||
		    nla_parse_nested(qtb, VHOST_BLK_A_QUEUE_MAX, a, NULL) < 0)
			continue;
		if (c->opts->json) {
			vbc_json_open_object(c->json, NULL);
			vbc_json_u64(c->json, "index",
				     vbc_nla_u32(qtb[VHOST_BLK_A_QUEUE_INDEX]));
			vbc_json_bool(c->json, "started",
				      qtb[VHOST_BLK_A_QUEUE_STARTED]);
			vbc_json_close_object(c->json);
		} else {
			printf(" %u:%s", vbc_nla_u32(qtb[VHOST_BLK_A_QUEUE_INDEX]),
			       qtb[VHOST_BLK_A_QUEUE_STARTED] ? "started" : "stopped");
		}
	}
	if (c->opts->json)
		vbc_json_close_array(c->json);
	else
		printf("\n");
}

static void vbc_dev_json(struct vbc_dev_ctx *c, struct nlattr **tb,
			 const char *serial)
{
	struct vbc_json *j = c->json;
	char buf[64];

	vbc_json_u64(j, "id", vbc_nla_u32(tb[VHOST_BLK_A_DEV_ID]));
	vbc_json_string(j, "state", vbc_dev_state(tb[VHOST_BLK_A_DEV_STATE]));
	if (tb[VHOST_BLK_A_DEV_OWNER_PID])
		vbc_json_u64(j, "owner_pid",
			     vbc_nla_u32(tb[VHOST_BLK_A_DEV_OWNER_PID]));
	if (tb[VHOST_BLK_A_DEV_BACKING_NAME]) {
		vbc_json_open_object(j, "backing");
		vbc_json_string(j, "name",
				nla_get_string(tb[VHOST_BLK_A_DEV_BACKING_NAME]));
		snprintf(buf, sizeof(buf), "%u:%u",
			 vbc_nla_u32(tb[VHOST_BLK_A_DEV_BACKING_MAJOR]),
			 vbc_nla_u32(tb[VHOST_BLK_A_DEV_BACKING_MINOR]));
		vbc_json_string(j, "dev", buf);
		vbc_json_u64(j, "capacity",
			     vbc_nla_u64(tb[VHOST_BLK_A_DEV_CAPACITY]));
		vbc_json_bool(j, "read_only", tb[VHOST_BLK_A_DEV_READ_ONLY]);
		vbc_json_close_object(j);
	}
	snprintf(buf, sizeof(buf), "%#llx", (unsigned long long)
		 vbc_nla_u64(tb[VHOST_BLK_A_DEV_FEATURES]));
	vbc_json_string(j, "features", buf);
	vbc_json_u64(j, "num_queues", vbc_nla_u32(tb[VHOST_BLK_A_DEV_NUM_QUEUES]));
	vbc_json_string(j, "serial", serial);
}

static void vbc_dev_plain(struct nlattr **tb, const char *serial)
{
	printf("dev %u: state %s", vbc_nla_u32(tb[VHOST_BLK_A_DEV_ID]),
	       vbc_dev_state(tb[VHOST_BLK_A_DEV_STATE]));
	if (tb[VHOST_BLK_A_DEV_OWNER_PID])
		printf(" owner %u", vbc_nla_u32(tb[VHOST_BLK_A_DEV_OWNER_PID]));
	printf(" features %#llx num_queues %u serial \"%s\"\n",
	       (unsigned long long)vbc_nla_u64(tb[VHOST_BLK_A_DEV_FEATURES]),
	       vbc_nla_u32(tb[VHOST_BLK_A_DEV_NUM_QUEUES]), serial);
	if (tb[VHOST_BLK_A_DEV_BACKING_NAME])
		printf("  backing %s (%u:%u) capacity %llu sectors%s\n",
		       nla_get_string(tb[VHOST_BLK_A_DEV_BACKING_NAME]),
		       vbc_nla_u32(tb[VHOST_BLK_A_DEV_BACKING_MAJOR]),
		       vbc_nla_u32(tb[VHOST_BLK_A_DEV_BACKING_MINOR]),
		       (unsigned long long)vbc_nla_u64(tb[VHOST_BLK_A_DEV_CAPACITY]),
		       tb[VHOST_BLK_A_DEV_READ_ONLY] ? " read-only" : "");
}

static int vbc_dev_reply(struct nlattr **tb, struct nlattr *attrs, int len,
			 void *arg)
{
	struct vbc_dev_ctx *c = arg;
	char serial[4 * 20 + 1];

	vbc_dev_serial(tb[VHOST_BLK_A_DEV_SERIAL], serial, sizeof(serial));
	if (c->opts->json) {
		vbc_json_open_object(c->json, NULL);
		vbc_dev_json(c, tb, serial);
	} else {
		vbc_dev_plain(tb, serial);
	}
	vbc_dev_queues(c, attrs, len);
	if (c->opts->json)
		vbc_json_close_object(c->json);
	return 0;
}

static void vbc_dev_usage(FILE *f)
{
	fprintf(f, "usage: %s [ -j ] [ -p ] dev show [ ID ]\n"
		"  Without ID, every device you may see: those whose /dev/vhost-blk\n"
		"  you opened, or all of them with CAP_NET_ADMIN.\n", vbc_progname);
}

int vbc_cmd_dev(const struct vbc_opts *opts, int argc, char **argv)
{
	struct vbc_json json;
	struct vbc_dev_ctx c = { .opts = opts, .json = &json };
	bool have_id = false;
	struct vbc_nl nl;
	uint32_t id = 0;
	int ret;

	if (!argc || !strcmp(argv[0], "help")) {
		vbc_dev_usage(argc ? stdout : stderr);
		return argc ? 0 : 2;
	}
	if (strcmp(argv[0], "show") && strcmp(argv[0], "list")) {
		fprintf(stderr, "%s: unknown dev command \"%s\"\n", vbc_progname,
			argv[0]);
		vbc_dev_usage(stderr);
		return 2;
	}
	if (argc > 2 || (argc == 2 && vbc_parse_id(argv[1], &id)))
		return 2;
	have_id = argc == 2;

	if (vbc_nl_open(&nl))
		return 1;
	vbc_json_init(&json, stdout, opts->pretty);
	if (opts->json) {
		vbc_json_open_object(&json, NULL);
		vbc_json_open_array(&json, "dev");
	}
	ret = vbc_nl_get(&nl, VHOST_BLK_CMD_DEV_GET, VHOST_BLK_A_DEV_MAX,
			 VHOST_BLK_A_DEV_ID, have_id, id, vbc_dev_reply, &c);
	if (opts->json) {
		vbc_json_close_array(&json);
		vbc_json_close_object(&json);
		vbc_json_end(&json);
	}
	vbc_nl_close(&nl);
	return ret ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The vhost-blk generic netlink family, over raw netlink sockets (no libnl,
 * so the kernel side is checked independently of vhostblkctl): the family
 * and its group, DEV_GET of a device in each state, STATS_GET after a known
 * sequence of requests (exact counts), visibility for an unprivileged user,
 * errors with their extack, the capacity-changed event on a grown loop
 * device, and vhostblkctl's -j output.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/loop.h>
#include <linux/netlink.h>
#include <linux/vhost_blk_nl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MEM_SIZE	(4 << 20)
#define NL_BUF		(64 << 10)
#define MAX_DEVS	32

/* A netlink socket and what the controller told us about the family. */
struct nlc {
	int fd;
	uint16_t family;
	uint32_t monitor;	/* multicast group id */
	uint32_t version;
	uint32_t seq;
	char extack[256];	/* NLMSGERR_ATTR_MSG of the last error */
	int miss_type;		/* NLMSGERR_ATTR_MISS_TYPE, or -1 */
};

struct dev_info {
	uint32_t id, owner_pid, major, minor, num_queues, state;
	bool has_owner, has_backing, read_only;
	char name[32];
	char serial[21];
	uint64_t features, capacity;
	unsigned int nq_started, nq_listed;
};

struct queue_stats {
	uint64_t v[VHOST_BLK_A_QUEUE_STATS_MAX + 1];
};

struct stats_info {
	uint32_t id;
	unsigned int nq;
	struct queue_stats q[VHOST_BLK_MAX_QUEUES];
};

#define nla_ok(a, rem) ((rem) >= (int)sizeof(struct nlattr) && \
			(a)->nla_len >= sizeof(struct nlattr) && (a)->nla_len <= (rem))
#define nla_next(a, rem) ((rem) -= NLA_ALIGN((a)->nla_len), \
			  (struct nlattr *)((char *)(a) + NLA_ALIGN((a)->nla_len)))
#define nla_kind(a) ((a)->nla_type & NLA_TYPE_MASK)
#define nla_data(a) ((void *)((char *)(a) + NLA_HDRLEN))
#define nla_for_each(a, start, len, rem) \
	for ((a) = (start), (rem) = (len); nla_ok(a, rem); (a) = nla_next(a, rem))

static uint32_t nla_u32(const struct nlattr *a) { return *(uint32_t *)nla_data(a); }
static uint64_t nla_u64(const struct nlattr *a)
{
	uint64_t v;

	memcpy(&v, nla_data(a), sizeof(v));
	return v;
}

static int nla_put(char *buf, size_t *off, uint16_t type, const void *data,
		   size_t len)
{
	struct nlattr *a = (struct nlattr *)(buf + *off);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy(nla_data(a), data, len);
	*off += NLA_ALIGN(a->nla_len);
	return 0;
}

/* Handle one reply message; returns 0 or -errno. */
typedef void (*nl_msg_fn)(struct nlattr *attrs, int len, void *arg);

static void nl_parse_err(struct nlc *nl, struct nlmsghdr *h)
{
	struct nlmsgerr *e = NLMSG_DATA(h);
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	struct nlattr *a;
	int rem;

	nl->extack[0] = 0;
	nl->miss_type = -1;
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	nla_for_each(a, (struct nlattr *)((char *)h + off),
		     (int)h->nlmsg_len - (int)off, rem) {
		if (nla_kind(a) == NLMSGERR_ATTR_MSG)
			snprintf(nl->extack, sizeof(nl->extack), "%s",
				 (char *)nla_data(a));
		if (nla_kind(a) == NLMSGERR_ATTR_MISS_TYPE)
			nl->miss_type = nla_u32(a);
	}
}

/*
 * Send a request of @cmd (a dump without @id) and feed every reply to @fn.
 * Returns 0 or the kernel's -errno.
 */
static int nl_request(struct nlc *nl, uint16_t family, uint8_t cmd,
		      uint16_t id_attr, const uint32_t *id, const char *name,
		      nl_msg_fn fn, void *arg)
{
	char *buf = malloc(NL_BUF);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g = NLMSG_DATA(h);
	size_t off = NLMSG_HDRLEN + GENL_HDRLEN;
	bool done = false;
	int ret = 0;

	memset(buf, 0, 256);
	if (id)
		nla_put(buf, &off, id_attr, id, sizeof(*id));
	if (name)
		nla_put(buf, &off, id_attr, name, strlen(name) + 1);
	h->nlmsg_len = off;
	h->nlmsg_type = family;
	h->nlmsg_flags = NLM_F_REQUEST | (id || name ? 0 : NLM_F_DUMP);
	h->nlmsg_seq = ++nl->seq;
	g->cmd = cmd;
	g->version = 1;
	if (send(nl->fd, buf, off, 0) != (ssize_t)off) {
		free(buf);
		return -errno;
	}
	while (!done) {
		ssize_t n = recv(nl->fd, buf, NL_BUF, 0);

		if (n < 0) {
			ret = -errno;
			break;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != nl->seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				nl_parse_err(nl, h);
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			g = NLMSG_DATA(h);
			fn((struct nlattr *)((char *)g + GENL_HDRLEN),
			   h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN, arg);
			if (!(h->nlmsg_flags & NLM_F_MULTI))
				done = true;
		}
	}
	free(buf);
	return ret;
}

static void nl_family_msg(struct nlattr *attrs, int len, void *arg)
{
	struct nlc *nl = arg;
	struct nlattr *a, *grp, *ga;
	int rem, rem2, rem3;

	nla_for_each(a, attrs, len, rem) {
		if (nla_kind(a) == CTRL_ATTR_FAMILY_ID)
			nl->family = *(uint16_t *)nla_data(a);
		if (nla_kind(a) == CTRL_ATTR_VERSION)
			nl->version = nla_u32(a);
		if (nla_kind(a) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		nla_for_each(grp, (struct nlattr *)nla_data(a),
			     a->nla_len - NLA_HDRLEN, rem2) {
			uint32_t gid = 0;
			bool monitor = false;

			nla_for_each(ga, (struct nlattr *)nla_data(grp),
				     grp->nla_len - NLA_HDRLEN, rem3) {
				if (nla_kind(ga) == CTRL_ATTR_MCAST_GRP_ID)
					gid = nla_u32(ga);
				if (nla_kind(ga) == CTRL_ATTR_MCAST_GRP_NAME &&
				    !strcmp(nla_data(ga), VHOST_BLK_MCGRP_MONITOR))
					monitor = true;
			}
			if (monitor)
				nl->monitor = gid;
		}
	}
}

/* Open a socket with extack and resolve the family. 0 or -errno. */
static int nl_open(struct nlc *nl)
{
	int one = 1;
	int ret;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	ret = nl_request(nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
			 CTRL_ATTR_FAMILY_NAME, NULL, VHOST_BLK_FAMILY_NAME,
			 nl_family_msg, nl);
	if (ret) {
		close(nl->fd);
		return ret;
	}
	return nl->family ? 0 : -ENOENT;
}

/* DEV_GET replies, collected. */
struct dev_list {
	unsigned int n;
	struct dev_info d[MAX_DEVS];
};

static void dev_msg(struct nlattr *attrs, int len, void *arg)
{
	struct dev_list *l = arg;
	struct dev_info *d;
	struct nlattr *a, *q;
	int rem, rem2;

	if (l->n == MAX_DEVS)
		return;
	d = &l->d[l->n++];
	memset(d, 0, sizeof(*d));
	nla_for_each(a, attrs, len, rem) {
		switch (nla_kind(a)) {
		case VHOST_BLK_A_DEV_ID: d->id = nla_u32(a); break;
		case VHOST_BLK_A_DEV_OWNER_PID:
			d->owner_pid = nla_u32(a);
			d->has_owner = true;
			break;
		case VHOST_BLK_A_DEV_BACKING_MAJOR: d->major = nla_u32(a); break;
		case VHOST_BLK_A_DEV_BACKING_MINOR: d->minor = nla_u32(a); break;
		case VHOST_BLK_A_DEV_BACKING_NAME:
			snprintf(d->name, sizeof(d->name), "%s", (char *)nla_data(a));
			d->has_backing = true;
			break;
		case VHOST_BLK_A_DEV_READ_ONLY: d->read_only = true; break;
		case VHOST_BLK_A_DEV_FEATURES: d->features = nla_u64(a); break;
		case VHOST_BLK_A_DEV_NUM_QUEUES: d->num_queues = nla_u32(a); break;
		case VHOST_BLK_A_DEV_STATE: d->state = nla_u32(a); break;
		case VHOST_BLK_A_DEV_CAPACITY: d->capacity = nla_u64(a); break;
		case VHOST_BLK_A_DEV_SERIAL:
			memcpy(d->serial, nla_data(a),
			       a->nla_len - NLA_HDRLEN < 20 ? a->nla_len - NLA_HDRLEN : 20);
			break;
		case VHOST_BLK_A_DEV_QUEUE:
			d->nq_listed++;
			nla_for_each(q, (struct nlattr *)nla_data(a),
				     a->nla_len - NLA_HDRLEN, rem2)
				if (nla_kind(q) == VHOST_BLK_A_QUEUE_STARTED)
					d->nq_started++;
			break;
		}
	}
}

static void stats_msg(struct nlattr *attrs, int len, void *arg)
{
	struct stats_info *s = arg;
	struct nlattr *a, *q;
	int rem, rem2;

	nla_for_each(a, attrs, len, rem) {
		if (nla_kind(a) == VHOST_BLK_A_STATS_ID)
			s->id = nla_u32(a);
		if (nla_kind(a) != VHOST_BLK_A_STATS_QUEUE || s->nq == VHOST_BLK_MAX_QUEUES)
			continue;
		nla_for_each(q, (struct nlattr *)nla_data(a),
			     a->nla_len - NLA_HDRLEN, rem2) {
			if (nla_kind(q) > VHOST_BLK_A_QUEUE_STATS_MAX)
				continue;
			s->q[s->nq].v[nla_kind(q)] =
				nla_kind(q) == VHOST_BLK_A_QUEUE_STATS_INDEX ?
				nla_u32(q) : nla_u64(q);
		}
		s->nq++;
	}
}

static int dev_dump(struct nlc *nl, struct dev_list *l)
{
	l->n = 0;
	return nl_request(nl, nl->family, VHOST_BLK_CMD_DEV_GET, 0, NULL, NULL,
			  dev_msg, l);
}

static int dev_get(struct nlc *nl, uint32_t id, struct dev_info *d)
{
	struct dev_list l = { 0 };
	int ret;

	ret = nl_request(nl, nl->family, VHOST_BLK_CMD_DEV_GET,
			 VHOST_BLK_A_DEV_ID, &id, NULL, dev_msg, &l);
	if (!ret && l.n != 1)
		return -EPROTO;
	if (!ret)
		*d = l.d[0];
	return ret;
}

static int stats_get(struct nlc *nl, uint32_t id, struct stats_info *s)
{
	memset(s, 0, sizeof(*s));
	return nl_request(nl, nl->family, VHOST_BLK_CMD_STATS_GET,
			  VHOST_BLK_A_STATS_ID, &id, NULL, stats_msg, s);
}

/* The id of the one device whose owner is @pid (our devices), or -1. */
static int64_t find_dev(struct nlc *nl, pid_t pid, const char *backing)
{
	struct dev_list l;
	unsigned int i;

	if (dev_dump(nl, &l))
		return -1;
	for (i = 0; i < l.n; i++)
		if (l.d[i].has_owner && l.d[i].owner_pid == (uint32_t)pid &&
		    (!backing || !strcmp(l.d[i].name, backing)))
			return l.d[i].id;
	return -1;
}

FIXTURE(nl) {
	struct nlc nl;
	struct vdrv d;
	int bdev;
	uint32_t id;
};

FIXTURE_SETUP(nl)
{
	int64_t id;
	int ret;

	self->bdev = -1;
	ret = nl_open(&self->nl);
	if (ret == -ENOENT)
		SKIP(return, "no vhost-blk netlink family: module not loaded");
	ASSERT_EQ(0, ret);
	self->bdev = vdrv_open_on(&self->d, "/dev/ram0", O_RDWR, MEM_SIZE, 2, 64);
	if (self->bdev == -ENOENT || self->bdev == -ENODEV)
		SKIP(return, "no brd ram disk (modprobe brd)");
	ASSERT_LE(0, self->bdev);
	id = find_dev(&self->nl, getpid(), "ram0");
	ASSERT_LE(0, id);
	self->id = id;
}

FIXTURE_TEARDOWN(nl)
{
	if (self->bdev >= 0) {
		vdrv_close(&self->d);
		close(self->bdev);
	}
	if (self->nl.fd > 0)
		close(self->nl.fd);
}

TEST_F(nl, family)
{
	ASSERT_EQ(VHOST_BLK_FAMILY_VERSION, self->nl.version);
	ASSERT_NE(0, self->nl.monitor);
}

TEST_F(nl, dev_attached)
{
	struct dev_info d;
	struct stat st;

	ASSERT_EQ(0, dev_get(&self->nl, self->id, &d));
	ASSERT_EQ(0, fstat(self->bdev, &st));
	EXPECT_EQ(self->id, d.id);
	EXPECT_TRUE(d.has_owner);
	EXPECT_EQ((uint32_t)getpid(), d.owner_pid);
	EXPECT_TRUE(d.has_backing);
	EXPECT_STREQ("ram0", d.name);
	EXPECT_EQ(major(st.st_rdev), d.major);
	EXPECT_EQ(minor(st.st_rdev), d.minor);
	EXPECT_FALSE(d.read_only);
	EXPECT_EQ(VHOST_BLK_FEATURES, d.features);
	EXPECT_EQ(2, d.num_queues);
	EXPECT_EQ(2, d.nq_listed);
	EXPECT_EQ(2, d.nq_started);
	EXPECT_EQ(VHOST_BLK_STATE_ATTACHED, d.state);
	EXPECT_EQ(16384ULL * 1024 / 512, d.capacity);	/* rd_size=16384 KiB */
}

/* A fresh device: no owner, then owned with other features, no backend. */
TEST_F(nl, dev_states)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_FLUSH);
	struct dev_list before, after;
	struct dev_info d;
	int fd, i;
	int64_t id = -1;

	ASSERT_EQ(0, dev_dump(&self->nl, &before));
	fd = open("/dev/vhost-blk", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, dev_dump(&self->nl, &after));
	ASSERT_EQ(before.n + 1, after.n);
	for (i = after.n - 1; i >= 0 && id < 0; i--)
		if (after.d[i].state == VHOST_BLK_STATE_NO_OWNER &&
		    after.d[i].id != self->id)
			id = after.d[i].id;
	ASSERT_LE(0, id);
	ASSERT_EQ(0, dev_get(&self->nl, id, &d));
	EXPECT_FALSE(d.has_owner);
	EXPECT_FALSE(d.has_backing);
	EXPECT_EQ(1, d.num_queues);

	ASSERT_EQ(0, ioctl(fd, VHOST_SET_OWNER));
	ASSERT_EQ(0, ioctl(fd, VHOST_SET_FEATURES, &f));
	ASSERT_EQ(0, dev_get(&self->nl, id, &d));
	EXPECT_EQ(VHOST_BLK_STATE_IDLE, d.state);
	EXPECT_EQ((uint32_t)getpid(), d.owner_pid);
	EXPECT_EQ(f, d.features);
	EXPECT_EQ(0, d.nq_started);

	{
		struct vhost_blk_params p = {
			.size = sizeof(p),
			.mask = VHOST_BLK_PARAM_SERIAL,
			.serial = "nl-test-serial",
		};

		ASSERT_EQ(0, ioctl(fd, VHOST_BLK_SET_PARAMS, &p));
		ASSERT_EQ(0, dev_get(&self->nl, id, &d));
		EXPECT_STREQ("nl-test-serial", d.serial);
	}

	ASSERT_EQ(0, ioctl(fd, VHOST_RESET_OWNER));
	ASSERT_EQ(0, dev_get(&self->nl, id, &d));
	EXPECT_EQ(VHOST_BLK_STATE_NO_OWNER, d.state);
	EXPECT_FALSE(d.has_owner);

	close(fd);
	/* Gone with its file. */
	EXPECT_EQ(-ENOENT, dev_get(&self->nl, id, &d));
}

TEST_F(nl, unknown_id)
{
	struct dev_info d;
	struct stats_info s;

	EXPECT_EQ(-ENOENT, dev_get(&self->nl, 0x7ffffff0, &d));
	EXPECT_NE(NULL, strstr(self->nl.extack, "no vhost-blk device with this id"));
	EXPECT_EQ(-ENOENT, stats_get(&self->nl, 0x7ffffff0, &s));
	EXPECT_NE(NULL, strstr(self->nl.extack, "no vhost-blk device with this id"));
}

/* A do without the id: EINVAL, and the ack names the missing attribute. */
TEST_F(nl, missing_id)
{
	char buf[256] = { 0 };
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g = NLMSG_DATA(h);

	h->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN;
	h->nlmsg_type = self->nl.family;
	h->nlmsg_flags = NLM_F_REQUEST;		/* a do, not a dump */
	h->nlmsg_seq = ++self->nl.seq;
	g->cmd = VHOST_BLK_CMD_STATS_GET;
	g->version = 1;
	ASSERT_EQ((ssize_t)h->nlmsg_len, send(self->nl.fd, buf, h->nlmsg_len, 0));
	ASSERT_LT(0, recv(self->nl.fd, buf, sizeof(buf), 0));
	ASSERT_EQ(NLMSG_ERROR, h->nlmsg_type);
	EXPECT_EQ(-EINVAL, ((struct nlmsgerr *)NLMSG_DATA(h))->error);
	nl_parse_err(&self->nl, h);
	EXPECT_EQ(VHOST_BLK_A_STATS_ID, self->nl.miss_type);
}

/*
 * A known sequence on queue 1, one request at a time: every counter but
 * the kicks is exact. Kicks: each request is one, plus the one the start
 * of the queue queues to pick up buffers already there.
 */
TEST_F(nl, stats_exact)
{
	struct vdrv_queue *q = &self->d.q[1];
	struct stats_info s;
	struct vreq r;
	struct queue_stats *qs;
	uint64_t sectors = 16384ULL * 1024 / 512;
	uint8_t *hdr_only;
	struct vseg seg;
	uint32_t head, len;
	int i;

	for (i = 0; i < 3; i++) {
		r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_IN, i * 8, 4096);
		ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, q, &r, 1, false, NULL));
	}
	for (i = 0; i < 2; i++) {
		r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_OUT, 64 + i * 16, 8192);
		ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, q, &r, 2, false, NULL));
	}
	r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_FLUSH, 0, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, q, &r, 0, false, NULL));
	r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_GET_ID, 0, 20);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, q, &r, 1, false, NULL));
	r = vdrv_req_alloc(&self->d, 0x7777, 0, 0);
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, vdrv_do(&self->d, q, &r, 0, false, NULL));
	/* Past the end: IOERR, no data moved. */
	r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_IN, sectors, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vdrv_do(&self->d, q, &r, 1, false, NULL));
	/* A chain with no writable byte: returned unwritten. */
	hdr_only = vdrv_alloc(&self->d, 16, 16);
	memset(hdr_only, 0, 16);
	seg = (struct vseg){ .addr = hdr_only, .len = 16, .in = false };
	ASSERT_LE(0, vdrv_add(&self->d, q, &seg, 1, false));
	vdrv_kick(q);
	ASSERT_EQ(0, vdrv_get_used(&self->d, q, &head, &len, 5000));
	EXPECT_EQ(0, len);

	ASSERT_EQ(0, stats_get(&self->nl, self->id, &s));
	EXPECT_EQ(self->id, s.id);
	ASSERT_EQ(2, s.nq);
	qs = &s.q[1];
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_INDEX]);
	EXPECT_EQ(4, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_IN]);
	EXPECT_EQ(2, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_OUT]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_FLUSH]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_GET_ID]);
	EXPECT_EQ(0, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_DISCARD]);
	EXPECT_EQ(0, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_WRITE_ZEROES]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_UNSUPPORTED]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_REQ_INVALID]);
	EXPECT_EQ(3 * 4096, qs->v[VHOST_BLK_A_QUEUE_STATS_BYTES_READ]);
	EXPECT_EQ(2 * 8192, qs->v[VHOST_BLK_A_QUEUE_STATS_BYTES_WRITTEN]);
	EXPECT_EQ(0, qs->v[VHOST_BLK_A_QUEUE_STATS_IN_FLIGHT]);
	/* 3 reads, 2 writes, flush, get-id, and the unwritten chain. */
	EXPECT_EQ(8, qs->v[VHOST_BLK_A_QUEUE_STATS_STATUS_OK]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_STATUS_IOERR]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_STATUS_UNSUPP]);
	EXPECT_EQ(1, qs->v[VHOST_BLK_A_QUEUE_STATS_FLUSHES]);
	EXPECT_EQ(10, qs->v[VHOST_BLK_A_QUEUE_STATS_SIGNALS]);
	EXPECT_EQ(10, qs->v[VHOST_BLK_A_QUEUE_STATS_SIGNALLED]);
	EXPECT_LE(10, qs->v[VHOST_BLK_A_QUEUE_STATS_KICKS]);
	EXPECT_GE(11, qs->v[VHOST_BLK_A_QUEUE_STATS_KICKS]);
	/* Queue 0 did nothing. */
	for (i = VHOST_BLK_A_QUEUE_STATS_REQ_IN; i <= VHOST_BLK_A_QUEUE_STATS_SIGNALLED; i++)
		EXPECT_EQ(0, s.q[0].v[i]);
}

/*
 * The cache counters for a known sequence in every mode: two writes and a
 * flush (then a second flush in the toggle cases). Exact counts.
 */
struct cache_case {
	const char *name;
	unsigned int mode;
	int wce;			/* -1: the mode's default */
	int wce_after;			/* -1: unchanged before the flushes */
	unsigned int flushes;		/* guest flushes at the end */
	uint64_t sent, fua;		/* flushes-sent, fua-writes */
};

static const struct cache_case cache_cases[] = {
	{ "none", VHOST_BLK_CACHE_NONE, -1, -1, 1, 1, 0 },
	/* The guest turned its cache off: writes FUA, flushes still sent. */
	{ "none wce=0", VHOST_BLK_CACHE_NONE, 0, -1, 1, 1, 2 },
	{ "writeback", VHOST_BLK_CACHE_WRITEBACK, -1, -1, 1, 1, 0 },
	/* Every write was stable: nothing left to flush. */
	{ "writethrough", VHOST_BLK_CACHE_WRITETHROUGH, -1, -1, 1, 0, 2 },
	{ "writethrough wce=1", VHOST_BLK_CACHE_WRITETHROUGH, 1, -1, 1, 1, 0 },
	/*
	 * Written with the cache on, then turned off: the first flush must
	 * cover those writes, the second has nothing left (QEMU's
	 * flushed_gen).
	 */
	{ "writethrough wce=1 then 0", VHOST_BLK_CACHE_WRITETHROUGH, 1, 0, 2,
	  1, 0 },
	{ "directsync", VHOST_BLK_CACHE_DIRECTSYNC, -1, -1, 2, 0, 2 },
	{ "directsync wce=1 then 0", VHOST_BLK_CACHE_DIRECTSYNC, 1, 0, 2, 1,
	  0 },
	{ "unsafe", VHOST_BLK_CACHE_UNSAFE, -1, -1, 1, 0, 0 },
	{ "unsafe wce=0", VHOST_BLK_CACHE_UNSAFE, 0, -1, 1, 0, 0 },
};

static int set_wce(struct vdrv *d, int wce)
{
	struct vhost_blk_params p = {
		.size = sizeof(p), .mask = VHOST_BLK_PARAM_WCE, .wce = wce,
	};

	return wce < 0 || !ioctl(d->fd, VHOST_BLK_SET_PARAMS, &p) ? 0 : -errno;
}

enum cache_dev { DEV_NO_CACHE, DEV_CACHE_FUA, DEV_CACHE_NO_FUA };

/*
 * How many of @c's FUA writes reach @dev as a write and a cache flush:
 * none without a volatile cache; all where the device has no FUA; in the
 * cached modes all (O_DSYNC through the page cache is write, then flush).
 */
static uint64_t cache_emulated(const struct cache_case *c, enum cache_dev dev)
{
	bool direct = c->mode == VHOST_BLK_CACHE_NONE ||
		      c->mode == VHOST_BLK_CACHE_DIRECTSYNC;

	if (dev == DEV_NO_CACHE)
		return 0;
	return dev == DEV_CACHE_NO_FUA || !direct ? c->fua : 0;
}

/* Run every case on @path, a device of kind @dev. */
static void cache_counters(struct __test_metadata *_metadata,
			   const char *path, enum cache_dev dev)
{
	const char *name = strrchr(path, '/') + 1;
	struct stats_info s;
	struct nlc nl;
	unsigned int i, k;
	int ret;

	ret = nl_open(&nl);
	if (ret == -ENOENT)
		SKIP(return, "no vhost-blk netlink family: module not loaded");
	ASSERT_EQ(0, ret);
	for (i = 0; i < sizeof(cache_cases) / sizeof(cache_cases[0]); i++) {
		const struct cache_case *c = &cache_cases[i];
		struct vhost_blk_backend b = {
			.size = sizeof(b), .cache_mode = c->mode,
		};
		struct queue_stats *qs;
		struct vdrv d;
		struct vreq r;
		int64_t id;

		b.fd = open(path, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, b.fd);
		ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
		ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
		ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_SET_BACKEND, &b));
		ASSERT_EQ(0, set_wce(&d, c->wce));
		for (k = 0; k < 2; k++) {
			r = vdrv_req_alloc(&d, VIRTIO_BLK_T_OUT, k * 64, 4096);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
		}
		ASSERT_EQ(0, set_wce(&d, c->wce_after));
		for (k = 0; k < c->flushes; k++) {
			r = vdrv_req_alloc(&d, VIRTIO_BLK_T_FLUSH, 0, 0);
			ASSERT_EQ(VIRTIO_BLK_S_OK,
				  vdrv_do(&d, &d.q[0], &r, 0, false, NULL));
		}
		id = find_dev(&nl, getpid(), name);
		ASSERT_LE(0, id);
		ASSERT_EQ(0, stats_get(&nl, id, &s));
		qs = &s.q[0];
		TH_LOG("%s on %s: flushes %llu sent %llu, fua %llu emulated %llu",
		       c->name, name,
		       (unsigned long long)qs->v[VHOST_BLK_A_QUEUE_STATS_FLUSHES],
		       (unsigned long long)qs->v[VHOST_BLK_A_QUEUE_STATS_FLUSHES_SENT],
		       (unsigned long long)qs->v[VHOST_BLK_A_QUEUE_STATS_FUA_WRITES],
		       (unsigned long long)qs->v[VHOST_BLK_A_QUEUE_STATS_FUA_EMULATED]);
		EXPECT_EQ(c->flushes, qs->v[VHOST_BLK_A_QUEUE_STATS_FLUSHES]);
		EXPECT_EQ(c->sent, qs->v[VHOST_BLK_A_QUEUE_STATS_FLUSHES_SENT]);
		EXPECT_EQ(c->fua, qs->v[VHOST_BLK_A_QUEUE_STATS_FUA_WRITES]);
		EXPECT_EQ(cache_emulated(c, dev),
			  qs->v[VHOST_BLK_A_QUEUE_STATS_FUA_EMULATED]);
		vdrv_close(&d);
		close(b.fd);
	}
	close(nl.fd);
}

/* A volatile cache with FUA: only the cached modes' O_DSYNC is emulated. */
TEST_F_TIMEOUT(nl, cache_counters_fua, 120)
{
	char path[64];
	int ret;

	ret = vblk_null_blk("vblknlc", 16, 512, true, path, sizeof(path));
	if (ret)
		SKIP(return, "no null_blk with a cache: %s", strerror(-ret));
	cache_counters(_metadata, path, DEV_CACHE_FUA);
	vblk_null_blk_remove("vblknlc");
}

/* No volatile cache (brd): FUA writes are counted, none emulated. */
TEST_F_TIMEOUT(nl, cache_counters_no_cache, 120)
{
	cache_counters(_metadata, "/dev/ram1", DEV_NO_CACHE);
}

/*
 * A volatile cache without FUA: null_blk's fua=0 (6.12; 6.1's null_blk
 * always has FUA with a cache, and refuses "write back" on a device
 * without one).
 */
TEST_F_TIMEOUT(nl, cache_counters_emulated, 120)
{
	static const char *const attrs[][2] = {
		{ "size", "16" }, { "blocksize", "512" },
		{ "memory_backed", "1" }, { "cache_size", "16" },
		{ "fua", "0" }, { "power", "1" },
	};
	const char *dir = "/sys/kernel/config/nullb/vblknle";
	unsigned int i;

	if (vblk_sh("modprobe null_blk nr_devices=0 2>/dev/null"))
		SKIP(return, "no null_blk module");
	vblk_sh("mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config");
	if (vblk_sh("grep -qw fua /sys/kernel/config/nullb/features"))
		SKIP(return, "null_blk has no fua attribute on this kernel");
	ASSERT_EQ(0, mkdir(dir, 0755));
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		ASSERT_EQ(0, vblk_write_attr(dir, attrs[i][0], attrs[i][1]));
	for (i = 0; i < 100 && access("/dev/vblknle", F_OK); i++)
		usleep(10000);
	cache_counters(_metadata, "/dev/vblknle", DEV_CACHE_NO_FUA);
	vblk_null_blk_remove("vblknle");
}

/* Requests submitted together: in flight until completed, then 0. */
TEST_F(nl, stats_in_flight)
{
	struct vdrv_queue *q = &self->d.q[0];
	struct stats_info s;
	struct vreq r[8];
	uint32_t head, len;
	int i;

	for (i = 0; i < 8; i++) {
		r[i] = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_OUT, i * 256, 65536);
		ASSERT_LE(0, vdrv_start(&self->d, q, &r[i], 4, false));
	}
	vdrv_kick(q);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, vdrv_get_used(&self->d, q, &head, &len, 5000));
	ASSERT_EQ(0, stats_get(&self->nl, self->id, &s));
	EXPECT_EQ(8, s.q[0].v[VHOST_BLK_A_QUEUE_STATS_REQ_OUT]);
	EXPECT_EQ(8 * 65536, s.q[0].v[VHOST_BLK_A_QUEUE_STATS_BYTES_WRITTEN]);
	EXPECT_EQ(8, s.q[0].v[VHOST_BLK_A_QUEUE_STATS_SIGNALLED]);
	EXPECT_LE(1, s.q[0].v[VHOST_BLK_A_QUEUE_STATS_SIGNALS]);
	EXPECT_GE(8, s.q[0].v[VHOST_BLK_A_QUEUE_STATS_SIGNALS]);
	EXPECT_EQ(0, s.q[0].v[VHOST_BLK_A_QUEUE_STATS_IN_FLIGHT]);
}

/*
 * As nobody, without capabilities: root's device is invisible (an empty
 * dump, ENOENT by id, as for no device at all), joining the monitor group
 * is EPERM; a device nobody opened is visible to nobody, with its owner pid.
 */
TEST_F(nl, unprivileged)
{
	struct stat st;
	pid_t pid;
	int status;

	ASSERT_EQ(0, stat("/dev/vhost-blk", &st));
	ASSERT_EQ(0, chmod("/dev/vhost-blk", 0666));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct dev_list l;
		struct dev_info d;
		struct stats_info s;
		struct nlc nl;
		int fd, rc = 0;

		/* A uid change from root clears every capability. */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(10);
		if (nl_open(&nl))
			_exit(11);
		if (dev_dump(&nl, &l) || l.n != 0)
			_exit(12);
		if (dev_get(&nl, self->id, &d) != -ENOENT ||
		    !strstr(nl.extack, "no vhost-blk device"))
			_exit(13);
		if (stats_get(&nl, self->id, &s) != -ENOENT)
			_exit(14);
		/* Events name everyone's devices: the group is for admins. */
		if (!setsockopt(nl.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
				&nl.monitor, sizeof(nl.monitor)) ||
		    errno != EPERM)
			_exit(18);
		fd = open("/dev/vhost-blk", O_RDWR);
		if (fd < 0)
			_exit(15);
		if (ioctl(fd, VHOST_SET_OWNER))
			_exit(16);
		if (dev_dump(&nl, &l) || l.n != 1 || l.d[0].id == self->id ||
		    l.d[0].owner_pid != (uint32_t)getpid())
			rc = 17;
		close(fd);
		_exit(rc);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	chmod("/dev/vhost-blk", st.st_mode & 07777);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* A read-only attach shows as such. */
TEST_F(nl, dev_read_only)
{
	struct dev_info di;
	struct vdrv d;
	int64_t id;
	int fd;

	fd = vdrv_open_on(&d, "/dev/ram1", O_RDONLY, MEM_SIZE, 1, 64);
	ASSERT_LE(0, fd);
	id = find_dev(&self->nl, getpid(), "ram1");
	ASSERT_LE(0, id);
	ASSERT_EQ(0, dev_get(&self->nl, id, &di));
	EXPECT_TRUE(di.read_only);
	EXPECT_EQ(1, di.minor);
	EXPECT_EQ(1, di.num_queues);
	vdrv_close(&d);
	close(fd);
}

/* Wait for DEV_CAPACITY_CHANGED of @id; returns the capacity, or 0. */
static uint64_t wait_capacity_event(struct nlc *mon, uint32_t id, int ms)
{
	char buf[4096];
	struct pollfd p = { .fd = mon->fd, .events = POLLIN };

	while (poll(&p, 1, ms) == 1) {
		ssize_t n = recv(mon->fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		for (h = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			struct genlmsghdr *g = NLMSG_DATA(h);
			struct nlattr *a;
			uint64_t cap = 0;
			uint32_t got = ~0u;
			int rem;

			if (h->nlmsg_type != mon->family ||
			    g->cmd != VHOST_BLK_CMD_DEV_CAPACITY_CHANGED)
				continue;
			nla_for_each(a, (struct nlattr *)((char *)g + GENL_HDRLEN),
				     (int)(h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN), rem) {
				if (nla_kind(a) == VHOST_BLK_A_EVENT_ID)
					got = nla_u32(a);
				if (nla_kind(a) == VHOST_BLK_A_EVENT_CAPACITY)
					cap = nla_u64(a);
			}
			if (got == id)
				return cap;
		}
	}
	return 0;
}

static int grow(const char *file, int loopfd, size_t bytes)
{
	if (truncate(file, bytes))
		return -errno;
	return ioctl(loopfd, LOOP_SET_CAPACITY, 0) ? -errno : 0;
}

/*
 * A loop device grows (truncate + LOOP_SET_CAPACITY): the monitor group
 * hears about it once GET_CONFIG or a request sees the new size; nothing
 * is sent before.
 */
TEST_F_TIMEOUT(nl, capacity_event, 120)
{
	const char *file = "/tmp/vblk-nl-loop.img";
	struct vhost_blk_config *c = calloc(1, sizeof(*c));
	struct vdrv d;
	struct nlc mon;
	struct vreq r;
	char path[64];
	int64_t id;
	int fd, loopfd;

	if (vblk_loop(file, 8 << 20, path, sizeof(path)))
		SKIP(return, "no loop device (modprobe loop, losetup)");
	fd = vdrv_open_on(&d, path, O_RDWR, MEM_SIZE, 1, 64);
	ASSERT_LE(0, fd);
	id = find_dev(&self->nl, getpid(), strrchr(path, '/') + 1);
	ASSERT_LE(0, id);
	ASSERT_EQ(0, nl_open(&mon));
	ASSERT_EQ(0, setsockopt(mon.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
				&mon.monitor, sizeof(mon.monitor)));
	loopfd = open(path, O_RDONLY);
	ASSERT_LE(0, loopfd);

	/* Same size: nothing. */
	c->size = sizeof(*c);
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, c));
	EXPECT_EQ(0, wait_capacity_event(&mon, id, 300));

	/* Noticed by GET_CONFIG. */
	ASSERT_EQ(0, grow(file, loopfd, 16 << 20));
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, c));
	EXPECT_EQ(32768, wait_capacity_event(&mon, id, 5000));

	/* Noticed by a request. */
	ASSERT_EQ(0, grow(file, loopfd, 24 << 20));
	r = vdrv_req_alloc(&d, VIRTIO_BLK_T_IN, 40000, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&d, &d.q[0], &r, 1, false, NULL));
	EXPECT_EQ(49152, wait_capacity_event(&mon, id, 5000));
	/* Reported once. */
	ASSERT_EQ(0, ioctl(d.fd, VHOST_BLK_GET_CONFIG, c));
	EXPECT_EQ(0, wait_capacity_event(&mon, id, 300));

	close(loopfd);
	close(mon.fd);
	vdrv_close(&d);
	close(fd);
	vblk_loop_remove(path);
	unlink(file);
	free(c);
}

/* Run a command, capture stdout+stderr; returns the exit status. */
static int run(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	size_t n;

	if (!p)
		return -1;
	n = fread(out, 1, size - 1, p);
	out[n] = 0;
	return WEXITSTATUS(pclose(p));
}

/* Starts vhostblkctl seven times and watches two rounds: slow under TCG. */
TEST_F_TIMEOUT(nl, vhostblkctl_json, 180)
{
	char ctl[512], cmd[2048], want[128];
	char *out = malloc(1 << 16);
	struct vreq r;
	int i;

	if (!vblk_find_ctl(ctl, sizeof(ctl)))
		SKIP(return, "no vhostblkctl binary (make tools, or set VHOSTBLKCTL)");
	for (i = 0; i < 5; i++) {
		r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_OUT, i * 8, 4096);
		ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, &self->d.q[0], &r, 1, false, NULL));
	}
	r = vdrv_req_alloc(&self->d, VIRTIO_BLK_T_IN, 0, 512);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vdrv_do(&self->d, &self->d.q[0], &r, 1, false, NULL));

	snprintf(cmd, sizeof(cmd), "%s -j stats %u 2>&1", ctl, self->id);
	ASSERT_EQ(0, run(cmd, out, 1 << 16));
	TH_LOG("%s", out);
	snprintf(want, sizeof(want), "{\"id\":%u,\"queues\":[{\"index\":0,", self->id);
	EXPECT_NE(NULL, strstr(out, want));
	EXPECT_NE(NULL, strstr(out, "\"req_in\":1,\"req_out\":5,"));
	EXPECT_NE(NULL, strstr(out, "\"bytes_read\":512,\"bytes_written\":20480,\"in_flight\":0,"));
	EXPECT_NE(NULL, strstr(out, "\"status_ok\":6,\"status_ioerr\":0,"));
	EXPECT_NE(NULL, strstr(out, "\"flushes\":0,\"flushes_sent\":0,"
			       "\"fua_writes\":0,\"fua_emulated\":0,"));

	snprintf(cmd, sizeof(cmd), "%s -j dev show %u 2>&1", ctl, self->id);
	ASSERT_EQ(0, run(cmd, out, 1 << 16));
	TH_LOG("%s", out);
	snprintf(want, sizeof(want), "\"owner_pid\":%d,\"backing\":{\"name\":\"ram0\",", getpid());
	EXPECT_NE(NULL, strstr(out, want));
	EXPECT_NE(NULL, strstr(out, "\"state\":\"attached\""));
	EXPECT_NE(NULL, strstr(out, "\"num_queues\":2,"));

	/* A dump (several messages per device of 16 queues fit). */
	snprintf(cmd, sizeof(cmd), "%s -j stats 2>&1", ctl);
	ASSERT_EQ(0, run(cmd, out, 1 << 16));
	snprintf(want, sizeof(want), "{\"id\":%u,\"queues\":[", self->id);
	EXPECT_NE(NULL, strstr(out, want));

	/* The plain forms, for the log. */
	snprintf(cmd, sizeof(cmd), "%s stats %u 2>&1; %s dev show 2>&1; %s -j -p dev show %u",
		 ctl, self->id, ctl, ctl, self->id);
	ASSERT_EQ(0, run(cmd, out, 1 << 16));
	TH_LOG("%s", out);
	snprintf(want, sizeof(want), "dev %u: state attached owner %d", self->id, getpid());
	EXPECT_NE(NULL, strstr(out, want));
	EXPECT_NE(NULL, strstr(out, "    cache: flushes_sent 0 fua_writes 0 fua_emulated 0\n"));
	EXPECT_NE(NULL, strstr(out, "    requests: in 1 out 5 flush 0"));
	EXPECT_NE(NULL, strstr(out, "  backing ram0 (1:0) capacity 32768 sectors\n"));

	/* --watch: one whole JSON object per round. */
	snprintf(cmd, sizeof(cmd),
		 "timeout 60 %s -j stats %u --watch 1 | head -n 2 | grep -c '^{\"time\":'",
		 ctl, self->id);
	run(cmd, out, 1 << 16);
	EXPECT_EQ(2, atoi(out));

	/* The kernel's message for an unknown id reaches the user. */
	snprintf(cmd, sizeof(cmd), "%s stats 2147483000 2>&1", ctl);
	EXPECT_EQ(1, run(cmd, out, 1 << 16));
	EXPECT_NE(NULL, strstr(out, "kernel reports: no vhost-blk device with this id"));
	free(out);
}

TEST_HARNESS_MAIN

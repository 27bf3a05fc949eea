// SPDX-License-Identifier: GPL-2.0
/*
 * vu_test [SEED] [ITERATIONS]: seeded in-process fuzzer of `vhostblkctl
 * serve`'s vhost-user parser, and the real message handling driven over a
 * socketpair with the kernel side mocked (no /dev/vhost-blk needed).
 *
 *  1. checker: valid messages of every request type pass; one mutation each
 *     (version, reply flag, request number, size, fd count, index, region
 *     count, config window, vring-file bits) fails with its exact errno;
 *     random headers and payloads never crash and only fail with the
 *     documented errnos.
 *  2. reader: random, truncated, oversized and fd-laden byte streams through
 *     a socketpair: the documented errno, and no fd leaks.
 *  3. handler: QEMU 7.2's start/stop flow against a mock device, checking
 *     replies and the ioctls (translated ring addresses, backend attach on
 *     SET_VRING_ENABLE, drain on GET_VRING_BASE); then out-of-order and
 *     malformed sequences and random message streams: a protocol-correct
 *     failure or a disconnect, never a crash.
 *
 * TAP output; exit 0 when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../serve.h"
#include "../serve_dev.h"
#include "../vu_msg.h"

static unsigned long long rng_state;
static int failures, checks;

static uint64_t rnd(void)
{
	/* splitmix64: seeded, reproducible, good enough for a fuzzer */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rnd_below(unsigned int n)
{
	return n ? rnd() % n : 0;
}

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		printf("# FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ */
/* 1. The checker                                                     */

#define NQ 4
static const struct vu_limits lim = { .num_queues = NQ };

/* Requests with a real rule, and how to build a valid one. */
static const uint32_t valid_reqs[] = {
	VHOST_USER_GET_FEATURES, VHOST_USER_SET_FEATURES,
	VHOST_USER_SET_OWNER, VHOST_USER_RESET_OWNER,
	VHOST_USER_SET_MEM_TABLE, VHOST_USER_SET_VRING_NUM,
	VHOST_USER_SET_VRING_ADDR, VHOST_USER_SET_VRING_BASE,
	VHOST_USER_GET_VRING_BASE, VHOST_USER_SET_VRING_KICK,
	VHOST_USER_SET_VRING_CALL, VHOST_USER_SET_VRING_ERR,
	VHOST_USER_GET_PROTOCOL_FEATURES, VHOST_USER_SET_PROTOCOL_FEATURES,
	VHOST_USER_GET_QUEUE_NUM, VHOST_USER_SET_VRING_ENABLE,
	VHOST_USER_SET_BACKEND_REQ_FD, VHOST_USER_GET_CONFIG,
	VHOST_USER_SET_CONFIG, VHOST_USER_GET_MAX_MEM_SLOTS,
	VHOST_USER_ADD_MEM_REG, VHOST_USER_SET_STATUS, VHOST_USER_GET_STATUS,
};
#define NVALID (sizeof(valid_reqs) / sizeof(valid_reqs[0]))

static void make_region(struct vhost_user_mem_region *r)
{
	r->guest_phys_addr = rnd_below(16) << 30;
	r->memory_size = (1 + rnd_below(64)) << 20;
	r->userspace_addr = 0x7f0000000000ULL + (rnd_below(64) << 30);
	r->mmap_offset = rnd_below(4) << 20;
}

static void make_valid(struct vu_msg *m, uint32_t req)
{
	unsigned int i, n;

	memset(m, 0, sizeof(*m));
	m->hdr.request = req;
	m->hdr.flags = VHOST_USER_VERSION |
		       (rnd_below(2) ? VHOST_USER_NEED_REPLY : 0);
	switch (req) {
	case VHOST_USER_SET_FEATURES:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
	case VHOST_USER_SET_STATUS:
		m->hdr.size = 8;
		m->payload.u64 = rnd();
		break;
	case VHOST_USER_SET_MEM_TABLE:
		n = 1 + rnd_below(VHOST_USER_MAX_REGIONS);
		m->payload.memory.nregions = n;
		for (i = 0; i < n; i++)
			make_region(&m->payload.memory.regions[i]);
		m->hdr.size = 8 + n * sizeof(struct vhost_user_mem_region);
		m->nfds = n;
		break;
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		m->hdr.size = 8;
		m->payload.state.index = rnd_below(NQ);
		m->payload.state.num = rnd_below(2);
		break;
	case VHOST_USER_SET_VRING_ADDR:
		m->hdr.size = sizeof(struct vhost_user_vring_addr);
		m->payload.addr.index = rnd_below(NQ);
		m->payload.addr.desc_user_addr = rnd();
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		m->hdr.size = 8;
		m->payload.u64 = rnd_below(NQ);
		if (rnd_below(3))
			m->nfds = 1;
		else
			m->payload.u64 |= VHOST_USER_VRING_NOFD;
		break;
	case VHOST_USER_SET_BACKEND_REQ_FD:
		m->nfds = 1;
		break;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		m->payload.config.offset = rnd_below(VHOST_USER_MAX_CONFIG_SIZE);
		m->payload.config.size = rnd_below(VHOST_USER_MAX_CONFIG_SIZE -
				m->payload.config.offset + 1);
		m->hdr.size = VHOST_USER_CONFIG_HDR_SIZE + m->payload.config.size;
		break;
	case VHOST_USER_ADD_MEM_REG:
		m->hdr.size = sizeof(struct vhost_user_mem_reg);
		make_region(&m->payload.mem_reg.region);
		m->nfds = 1;
		break;
	}
	for (i = 0; i < m->nfds; i++)
		m->fds[i] = 100 + i;	/* never opened: the checker must not use them */
}

/* One mutation of a valid message and the errno it must produce, or 0. */
static int mutate(struct vu_msg *m)
{
	uint32_t req = m->hdr.request;
	int idx = vu_msg_vring_index(m);

	switch (rnd_below(9)) {
	case 0:
		m->hdr.flags = (m->hdr.flags & ~VHOST_USER_VERSION_MASK) |
			       (rnd_below(2) ? 0 : 2 + rnd_below(2));
		return -EPROTO;
	case 1:
		m->hdr.flags |= VHOST_USER_REPLY;
		return -EPROTO;
	case 2:
		m->hdr.request = rnd_below(2) ? 0 :
				 VHOST_USER_REQUEST_MAX + rnd_below(1000000);
		return -ENOSYS;
	case 3:
		if (req == VHOST_USER_SET_MEM_TABLE || req == VHOST_USER_GET_CONFIG ||
		    req == VHOST_USER_SET_CONFIG) {
			m->hdr.size += 1 + rnd_below(3);
			if (m->hdr.size > VU_MAX_PAYLOAD)
				m->hdr.size = VU_MAX_PAYLOAD;
			return -EMSGSIZE;
		}
		m->hdr.size = m->hdr.size ? m->hdr.size - 1 - rnd_below(m->hdr.size) :
					    1 + rnd_below(VU_MAX_PAYLOAD);
		return -EMSGSIZE;
	case 4:
		if (m->nfds >= VHOST_USER_MAX_FDS)
			return 0;
		m->fds[m->nfds] = 200;
		m->nfds++;
		return -EBADF;
	case 5:
		if (!m->nfds)
			return 0;
		m->nfds--;
		return -EBADF;
	case 6:
		if (idx < 0)
			return 0;
		idx = NQ + rnd_below(250);
		if (req == VHOST_USER_SET_VRING_ADDR)
			m->payload.addr.index = idx;
		else if (req == VHOST_USER_SET_VRING_KICK ||
			 req == VHOST_USER_SET_VRING_CALL ||
			 req == VHOST_USER_SET_VRING_ERR)
			m->payload.u64 = (m->payload.u64 & ~0xffULL) | idx;
		else
			m->payload.state.index = idx;
		return -ERANGE;
	case 7:
		if (req == VHOST_USER_SET_MEM_TABLE) {
			m->payload.memory.nregions = rnd_below(2) ? 0 :
				VHOST_USER_MAX_REGIONS + 1 + rnd_below(100);
			return -EINVAL;
		}
		if (req == VHOST_USER_GET_CONFIG || req == VHOST_USER_SET_CONFIG) {
			m->payload.config.offset = VHOST_USER_MAX_CONFIG_SIZE -
				m->payload.config.size + 1 + rnd_below(1000);
			return -EINVAL;
		}
		return 0;
	default:
		if (req == VHOST_USER_SET_VRING_KICK || req == VHOST_USER_SET_VRING_CALL ||
		    req == VHOST_USER_SET_VRING_ERR) {
			m->payload.u64 |= 1ULL << (9 + rnd_below(55));
			return -EINVAL;
		}
		if (req == VHOST_USER_SET_MEM_TABLE) {
			m->payload.memory.regions[0].memory_size = 0;
			return -EINVAL;
		}
		return 0;
	}
}

static bool errno_allowed(int ret)
{
	return ret == 0 || ret == -EPROTO || ret == -ENOSYS ||
	       ret == -EMSGSIZE || ret == -EBADF || ret == -ERANGE ||
	       ret == -EINVAL;
}

/* A message the checker accepted must really be well formed. */
static void check_accepted(const struct vu_msg *m)
{
	int idx = vu_msg_vring_index(m);

	CHECK(m->hdr.size <= VU_MAX_PAYLOAD, "accepted size %u", m->hdr.size);
	CHECK(idx < NQ, "accepted index %d", idx);
	if (m->hdr.request == VHOST_USER_SET_MEM_TABLE)
		CHECK(m->payload.memory.nregions == m->nfds &&
		      m->nfds >= 1 && m->nfds <= VHOST_USER_MAX_REGIONS,
		      "accepted mem table %u regions %u fds",
		      m->payload.memory.nregions, m->nfds);
	if (m->hdr.request == VHOST_USER_GET_CONFIG)
		CHECK(m->payload.config.offset + m->payload.config.size <=
		      VHOST_USER_MAX_CONFIG_SIZE, "accepted config window");
}

static void test_checker(unsigned long iters)
{
	unsigned long i, mutated = 0, random_ok = 0;
	const char *why;
	struct vu_msg m;
	int want, ret;

	for (i = 0; i < iters; i++) {
		make_valid(&m, valid_reqs[rnd_below(NVALID)]);
		ret = vu_msg_check(&m, &lim, &why);
		CHECK(ret == 0, "valid %s rejected: %d %s",
		      vu_request_name(m.hdr.request), ret, why);
		want = mutate(&m);
		if (want) {
			mutated++;
			ret = vu_msg_check(&m, &lim, &why);
			CHECK(ret == want, "mutated %s (size %u fds %u): want %d got %d (%s)",
			      vu_request_name(m.hdr.request), m.hdr.size, m.nfds,
			      want, ret, why);
			CHECK(*why, "rejection without a reason");
		}
		/* Fully random header and payload. */
		m.hdr.request = rnd_below(4) ? rnd_below(VHOST_USER_REQUEST_MAX + 2) :
					       (uint32_t)rnd();
		m.hdr.flags = rnd_below(4) ? VHOST_USER_VERSION : (uint32_t)rnd();
		m.hdr.size = rnd_below(3) ? rnd_below(VU_MAX_PAYLOAD + 1) :
			     rnd_below(16);
		m.nfds = rnd_below(VHOST_USER_MAX_FDS + 1);
		for (unsigned int b = 0; b < sizeof(m.payload); b += 8) {
			uint64_t v = rnd();

			memcpy((char *)&m.payload + b, &v, 8);
		}
		if (rnd_below(2))
			m.payload.u64 &= 0x1ff;
		ret = vu_msg_check(&m, &lim, &why);
		CHECK(errno_allowed(ret), "random message: errno %d", ret);
		if (!ret) {
			random_ok++;
			check_accepted(&m);
		}
	}
	printf("# checker: %lu messages, %lu single mutations rejected with the exact errno, %lu random messages accepted\n",
	       iters, mutated, random_ok);
}

/* ------------------------------------------------------------------ */
/* 2. The reader                                                      */

static int send_raw(int s, const void *buf, size_t len, const int *fds,
		    unsigned int nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static void test_reader(unsigned long iters)
{
	int base = count_fds(), sv[2], fds[16], nullfd, ret;
	unsigned long i, ok = 0, bad = 0;
	struct vu_msg m;
	char buf[512];

	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < iters; i++) {
		struct vhost_user_header h = {
			.request = rnd_below(45),
			.flags = VHOST_USER_VERSION,
			.size = rnd_below(3) ? rnd_below(VU_MAX_PAYLOAD + 1) :
				(uint32_t)rnd_below(100000),
		};
		unsigned int nfds = rnd_below(4) ? rnd_below(3) : rnd_below(13);
		unsigned int k, kind = rnd_below(5);
		size_t len;
		int want;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			break;
		for (k = 0; k < nfds; k++)
			fds[k] = nullfd;
		memcpy(buf, &h, sizeof(h));
		for (k = sizeof(h); k < sizeof(buf); k++)
			buf[k] = rnd();
		len = sizeof(h) + (h.size <= VU_MAX_PAYLOAD ? h.size : 0);
		switch (kind) {
		case 0:		/* the peer closes between messages */
			want = -ENOTCONN;
			nfds = 0;
			len = 0;
			break;
		case 1:		/* truncated header, then gone */
			len = 1 + rnd_below(sizeof(h) - 1);
			want = nfds > VHOST_USER_MAX_FDS ? -E2BIG : -ECONNRESET;
			break;
		case 2:		/* truncated payload, then gone */
			if (h.size > VU_MAX_PAYLOAD || !h.size) {
				want = h.size > VU_MAX_PAYLOAD ? -EMSGSIZE : 0;
			} else {
				len = sizeof(h) + rnd_below(h.size);
				want = -ECONNRESET;
			}
			if (nfds > VHOST_USER_MAX_FDS)
				want = -E2BIG;
			break;
		default:	/* whole message */
			want = h.size > VU_MAX_PAYLOAD ? -EMSGSIZE : 0;
			if (nfds > VHOST_USER_MAX_FDS)
				want = -E2BIG;
		}
		if (len)
			send_raw(sv[1], buf, len, fds, nfds);
		close(sv[1]);
		ret = vu_msg_recv(sv[0], &m);
		CHECK(ret == want, "reader case %u (size %u, %u fds, %zu bytes): want %d got %d",
		      kind, h.size, nfds, len, want, ret);
		if (!ret) {
			ok++;
			CHECK(m.nfds == nfds && m.hdr.size == h.size &&
			      !memcmp(&m.payload, buf + sizeof(h), h.size),
			      "reader lost bytes or fds");
			vu_msg_close_fds(&m);
		} else {
			bad++;
			CHECK(m.nfds == 0, "fds kept on error");
		}
		close(sv[0]);
	}
	close(nullfd);
	CHECK(count_fds() == base, "fd leak in the reader: %d -> %d", base,
	      count_fds());
	printf("# reader: %lu streams, %lu messages read whole, %lu rejected\n",
	       iters, ok, bad);
}

/* ------------------------------------------------------------------ */
/* 3. The handler, with the kernel mocked                             */

#define MOCK_CAPACITY	(64ULL << 11)	/* 64 MiB in sectors */

struct mock_vq {
	bool running;
	uint64_t desc;
	unsigned int num, base;
	unsigned int poll_us;	/* VHOST_SET_VRING_BUSYLOOP_TIMEOUT */
};

static struct mock {
	int owner, backend_attached, set_backends, mem_tables, get_bases;
	uint64_t mem_base[8];	/* userspace_addr of region i */
	unsigned int nregions;
	struct mock_vq vq[VHOST_BLK_MAX_QUEUES];
	int fail_ioctl;		/* fail every ioctl with this errno */
} mock;

static int mock_open(void)
{
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}

static void mock_start(void)
{
	for (int i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		mock.vq[i].running = mock.vq[i].desc != 0;
}

static int mock_ioctl(int fd, unsigned long req, void *arg)
{
	(void)fd;
	if (mock.fail_ioctl)
		return -mock.fail_ioctl;
	if (req == VHOST_SET_OWNER) {
		mock.owner++;
	} else if (req == VHOST_BLK_SET_BACKEND) {
		mock.set_backends++;
		mock.backend_attached = ((struct vhost_blk_backend *)arg)->fd >= 0;
		mock_start();
	} else if (req == VHOST_BLK_GET_CONFIG) {
		struct vhost_blk_config *c = arg;
		uint64_t cap = MOCK_CAPACITY;

		c->len = 60;
		c->features = VHOST_BLK_FEATURES & ~(1ULL << VIRTIO_BLK_F_RO);
		memcpy(c->config, &cap, 8);
		c->config[32] = 1;
	} else if (req == VHOST_SET_MEM_TABLE) {
		struct vhost_memory *m = arg;

		mock.mem_tables++;
		mock.nregions = m->nregions;
		for (unsigned int i = 0; i < m->nregions && i < 8; i++)
			mock.mem_base[i] = m->regions[i].userspace_addr;
	} else if (req == VHOST_SET_VRING_ADDR) {
		struct vhost_vring_addr *a = arg;

		mock.vq[a->index].desc = a->desc_user_addr;
	} else if (req == VHOST_SET_VRING_NUM || req == VHOST_SET_VRING_BASE) {
		struct vhost_vring_state *s = arg;

		if (mock.vq[s->index].running)
			return -EBUSY;	/* as the vhost core */
		if (req == VHOST_SET_VRING_BASE)
			mock.vq[s->index].base = s->num;
		else
			mock.vq[s->index].num = s->num;
	} else if (req == VHOST_SET_VRING_BUSYLOOP_TIMEOUT) {
		struct vhost_vring_state *s = arg;

		mock.vq[s->index].poll_us = s->num;
	} else if (req == VHOST_GET_VRING_BASE) {
		struct vhost_vring_state *s = arg;

		mock.get_bases++;
		mock.vq[s->index].running = false;
		s->num = mock.vq[s->index].base + 7;
	}
	return 0;
}

static const struct serve_ops mock_ops = {
	.open_dev = mock_open,
	.ioctl = mock_ioctl,
};

struct fe {
	int sock;			/* the front-end's end */
	struct serve_conn c;
	struct serve_cfg cfg;
};

static int fe_send(struct fe *f, uint32_t req, uint32_t flags,
		   const void *p, uint32_t size, const int *fds, unsigned int nfds)
{
	return vu_msg_send(f->sock, req, VHOST_USER_VERSION | flags, p, size,
			   fds, nfds);
}

/* Send one message, run the handler once; its return value. */
static int fe_do(struct fe *f, uint32_t req, uint32_t flags, const void *p,
		 uint32_t size, const int *fds, unsigned int nfds)
{
	if (fe_send(f, req, flags, p, size, fds, nfds))
		return -EPIPE;
	return serve_conn_handle(&f->c);
}

/* Read a reply if there is one: its size, or -1. */
static int fe_reply(struct fe *f, struct vu_msg *r)
{
	int ret = vu_msg_recv(f->sock, r);

	if (ret)
		return -1;
	vu_msg_close_fds(r);
	return r->hdr.size;
}

static int fe_open(struct fe *f, unsigned int nq)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	f->cfg.disk_path = "/dev/mock";
	f->cfg.disk_fd = 99;
	f->cfg.num_queues = nq;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	f->sock = sv[1];
	memset(&mock, 0, sizeof(mock));
	return serve_conn_init(&f->c, &f->cfg, &mock_ops, sv[0]);
}

static void fe_close(struct fe *f)
{
	serve_conn_close(&f->c);
	close(f->sock);
}

static uint64_t u64_of(const struct vu_msg *r)
{
	return r->payload.u64;
}

#define QVA	0x7f1200000000ULL	/* QEMU's address of guest RAM */
#define RAM	(4ULL << 20)

/*
 * QEMU 7.2's connect, start (2 queues), hotplug and stop, with the failures
 * a confused front-end can cause along the way. Long, but one linear
 * scenario read top to bottom, as the daemon's -v log of a real QEMU.
 */
static void test_qemu_flow(void)
{
	struct vhost_user_vring_state st;
	struct vhost_user_vring_addr a;
	struct vhost_user_memory mem = { .nregions = 1 };
	struct vhost_user_config cfg = { .offset = 0, .size = 57 };
	struct fe f;
	struct vu_msg r;
	uint64_t v;
	int memfd, efd, ret;
	unsigned int i;

	CHECK(fe_open(&f, 2) == 0, "serve_conn_init with the mock");
	f.cfg.poll_us = 50;	/* --poll-us 50 */
	CHECK(mock.owner == 1 && mock.set_backends == 1, "owner and backend at connect");

	CHECK(fe_do(&f, VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0) == 0, "GET_FEATURES");
	CHECK(fe_reply(&f, &r) == 8, "GET_FEATURES reply");
	v = u64_of(&r);
	CHECK(v & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES), "bit 30 offered");
	CHECK(!(v & (1ULL << VIRTIO_F_RING_PACKED)) && !(v & (1ULL << VHOST_F_LOG_ALL)),
	      "packed/log never offered");
	CHECK(fe_do(&f, VHOST_USER_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0) == 0 &&
	      fe_reply(&f, &r) == 8 && u64_of(&r) == SERVE_PROTOCOL_FEATURES,
	      "GET_PROTOCOL_FEATURES");
	v = SERVE_PROTOCOL_FEATURES;
	CHECK(fe_do(&f, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0) == 0,
	      "SET_PROTOCOL_FEATURES");
	CHECK(fe_do(&f, VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, NULL, 0) == 0 &&
	      fe_reply(&f, &r) == 8 && u64_of(&r) == 2, "GET_QUEUE_NUM");
	CHECK(fe_do(&f, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0) == 0, "SET_OWNER");
	CHECK(fe_do(&f, VHOST_USER_GET_CONFIG, 0, &cfg, 12 + 57, NULL, 0) == 0 &&
	      fe_reply(&f, &r) == 12 + 57, "GET_CONFIG 57 bytes, exact reply size");
	memcpy(&v, r.payload.config.region, 8);
	CHECK(v == MOCK_CAPACITY, "capacity in GET_CONFIG");

	efd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	v = 1 | VHOST_USER_VRING_NOFD;
	CHECK(fe_do(&f, VHOST_USER_SET_VRING_CALL, 0, &v, 8, NULL, 0) == 0, "CALL nofd");
	v = 0;
	CHECK(fe_do(&f, VHOST_USER_SET_VRING_CALL, 0, &v, 8, &efd, 1) == 0, "CALL fd");
	v = VHOST_BLK_FEATURES & ~(1ULL << VIRTIO_BLK_F_RO) & ~(1ULL << VIRTIO_BLK_F_DISCARD);
	v |= 1ULL << VHOST_USER_F_PROTOCOL_FEATURES;
	CHECK(fe_do(&f, VHOST_USER_SET_FEATURES, 0, &v, 8, NULL, 0) == 0, "SET_FEATURES");

	/* SET_VRING_ADDR before SET_MEM_TABLE: acked as a failure. */
	memset(&a, 0, sizeof(a));
	a.desc_user_addr = QVA + 0x1000;
	a.avail_user_addr = QVA + 0x2000;
	a.used_user_addr = QVA + 0x3000;
	CHECK(fe_do(&f, VHOST_USER_SET_VRING_ADDR, VHOST_USER_NEED_REPLY, &a,
		    sizeof(a), NULL, 0) == 0 && fe_reply(&f, &r) == 8 && u64_of(&r),
	      "SET_VRING_ADDR before the memory table is refused with an ack");

	memfd = memfd_create("vu_test", MFD_CLOEXEC);
	CHECK(memfd >= 0 && !ftruncate(memfd, RAM + 0x10000), "memfd");
	mem.regions[0].guest_phys_addr = 0;
	mem.regions[0].memory_size = RAM;
	mem.regions[0].userspace_addr = QVA;
	mem.regions[0].mmap_offset = 0x10000;
	CHECK(fe_do(&f, VHOST_USER_SET_MEM_TABLE, VHOST_USER_NEED_REPLY, &mem,
		    8 + sizeof(mem.regions[0]), &memfd, 1) == 0 &&
	      fe_reply(&f, &r) == 8 && u64_of(&r) == 0, "SET_MEM_TABLE acked");
	CHECK(mock.nregions == 1 && mock.mem_base[0] ==
	      (uint64_t)(uintptr_t)f.c.regions[0].base + 0x10000,
	      "kernel gets our address + mmap_offset");

	for (i = 0; i < 2; i++) {
		st.index = i;
		st.num = 128;
		CHECK(fe_do(&f, VHOST_USER_SET_VRING_NUM, 0, &st, 8, NULL, 0) == 0, "NUM");
		st.num = 5;
		CHECK(fe_do(&f, VHOST_USER_SET_VRING_BASE, 0, &st, 8, NULL, 0) == 0, "BASE");
		a.index = i;
		CHECK(fe_do(&f, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0) == 0,
		      "ADDR");
		CHECK(mock.vq[i].desc == mock.mem_base[0] + 0x1000,
		      "ring address translated: 0x%llx",
		      (unsigned long long)mock.vq[i].desc);
		v = i;
		CHECK(fe_do(&f, VHOST_USER_SET_VRING_KICK, 0, &v, 8, &efd, 1) == 0, "KICK");
	}
	/* An address outside every region: a clear failure, acked. */
	a.index = 1;
	a.used_user_addr = QVA + RAM;
	CHECK(fe_do(&f, VHOST_USER_SET_VRING_ADDR, VHOST_USER_NEED_REPLY, &a,
		    sizeof(a), NULL, 0) == 0 && fe_reply(&f, &r) == 8 && u64_of(&r),
	      "ring address outside memory refused");
	a.used_user_addr = QVA + 0x3000;

	ret = mock.set_backends;
	for (i = 0; i < 2; i++) {
		st.index = i;
		st.num = 1;
		CHECK(fe_do(&f, VHOST_USER_SET_VRING_ENABLE, 0, &st, 8, NULL, 0) == 0,
		      "ENABLE");
	}
	CHECK(mock.set_backends == ret + 1 && mock.vq[0].running && mock.vq[1].running,
	      "one SET_BACKEND starts both rings");
	CHECK(mock.vq[0].poll_us == 50 && mock.vq[1].poll_us == 50 &&
	      !mock.vq[2].poll_us, "--poll-us set on the rings started");
	/* SET_VRING_NUM on a running ring: EBUSY, acked. */
	st.index = 0;
	st.num = 256;
	CHECK(fe_do(&f, VHOST_USER_SET_VRING_NUM, VHOST_USER_NEED_REPLY, &st, 8,
		    NULL, 0) == 0 && fe_reply(&f, &r) == 8 && u64_of(&r) == EBUSY,
	      "NUM on a running ring refused with EBUSY");

	/* Memory hotplug as a full table: rings move to the new mapping. */
	mem.nregions = 1;
	CHECK(fe_do(&f, VHOST_USER_SET_MEM_TABLE, VHOST_USER_NEED_REPLY, &mem,
		    8 + sizeof(mem.regions[0]), &memfd, 1) == 0 &&
	      fe_reply(&f, &r) == 8 && u64_of(&r) == 0, "second SET_MEM_TABLE");
	CHECK(mock.vq[0].desc == mock.mem_base[0] + 0x1000 &&
	      mock.vq[1].desc == mock.mem_base[0] + 0x1000,
	      "running rings re-addressed after a new table");

	/* Stop: ENABLE 0 then GET_VRING_BASE, which drains and forgets. */
	for (i = 0; i < 2; i++) {
		st.index = i;
		st.num = 0;
		CHECK(fe_do(&f, VHOST_USER_SET_VRING_ENABLE, 0, &st, 8, NULL, 0) == 0,
		      "DISABLE");
	}
	for (i = 0; i < 2; i++) {
		st.index = i;
		st.num = 0;
		CHECK(fe_do(&f, VHOST_USER_GET_VRING_BASE, 0, &st, 8, NULL, 0) == 0 &&
		      fe_reply(&f, &r) == 8 && r.payload.state.num == 5 + 7 &&
		      r.payload.state.index == i, "GET_VRING_BASE reply");
		CHECK(!mock.vq[i].running && !mock.vq[i].desc, "ring stopped and forgotten");
	}
	/* SET_CONFIG: the wce byte only. */
	cfg.offset = 32;
	cfg.size = 1;
	cfg.region[0] = 0;
	CHECK(fe_do(&f, VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY, &cfg, 13,
		    NULL, 0) == 0 && fe_reply(&f, &r) == 8 && u64_of(&r) == 0, "SET_CONFIG wce");
	cfg.offset = 0;
	cfg.size = 57;
	CHECK(fe_do(&f, VHOST_USER_GET_CONFIG, 0, &cfg, 12 + 57, NULL, 0) == 0 &&
	      fe_reply(&f, &r) == 12 + 57 && r.payload.config.region[32] == 0,
	      "GET_CONFIG reports the stored wce");
	cfg.offset = 0;
	cfg.size = 8;
	CHECK(fe_do(&f, VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY, &cfg, 20,
		    NULL, 0) == 0 && fe_reply(&f, &r) == 8 && u64_of(&r),
	      "SET_CONFIG of the capacity refused");
	/* Not negotiated / not implemented: refused, connection kept. */
	CHECK(fe_do(&f, VHOST_USER_SET_LOG_FD, VHOST_USER_NEED_REPLY, NULL, 0,
		    &efd, 1) == 0 && fe_reply(&f, &r) == 8 && u64_of(&r),
	      "SET_LOG_FD refused");
	/* Malformed: disconnect. */
	v = 7;
	CHECK(fe_do(&f, VHOST_USER_SET_VRING_KICK, 0, &v, 8, &efd, 1) == -ERANGE,
	      "index beyond num-queues disconnects");
	fe_close(&f);
	close(memfd);
	close(efd);
}

/* Read every reply waiting on the front-end's end. */
static void drain_replies(struct fe *f)
{
	int fl = fcntl(f->sock, F_GETFL);
	struct vu_msg r;

	fcntl(f->sock, F_SETFL, fl | O_NONBLOCK);
	while (!vu_msg_recv(f->sock, &r)) {
		CHECK(r.hdr.flags & VHOST_USER_REPLY, "reply flag on replies");
		vu_msg_close_fds(&r);
	}
	fcntl(f->sock, F_SETFL, fl);
}

/* A live front-end sends random and mutated messages; nothing crashes. */
static void test_handler_fuzz(unsigned long iters)
{
	unsigned long i, disconnects = 0, handled = 0;
	int base = count_fds(), nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int memfd = memfd_create("vu_fuzz", MFD_CLOEXEC);
	struct fe f;
	bool open_ok = false;

	CHECK(memfd >= 0 && !ftruncate(memfd, 1 << 20), "memfd");
	for (i = 0; i < iters; i++) {
		struct vu_msg m;
		int fds[VHOST_USER_MAX_FDS], ret;
		unsigned int k;

		if (!open_ok) {
			CHECK(fe_open(&f, NQ) == 0, "fe_open");
			open_ok = true;
			f.c.protocol = rnd_below(2) ? SERVE_PROTOCOL_FEATURES : 0;
		}
		make_valid(&m, valid_reqs[rnd_below(NVALID)]);
		if (m.hdr.request == VHOST_USER_SET_MEM_TABLE) {
			for (k = 0; k < m.payload.memory.nregions; k++) {
				m.payload.memory.regions[k].memory_size &= (1 << 19) - 1;
				m.payload.memory.regions[k].memory_size |= 4096;
				m.payload.memory.regions[k].mmap_offset = 0;
			}
		}
		if (m.hdr.request == VHOST_USER_SET_VRING_ADDR && rnd_below(2)) {
			m.payload.addr.desc_user_addr = 0x7f0000000000ULL;
			m.payload.addr.avail_user_addr = 0x7f0000001000ULL;
			m.payload.addr.used_user_addr = 0x7f0000002000ULL;
		}
		if (rnd_below(3) == 0)
			mutate(&m);
		if (rnd_below(20) == 0)
			mock.fail_ioctl = 1 + rnd_below(40);
		for (k = 0; k < m.nfds; k++)
			fds[k] = m.hdr.request == VHOST_USER_SET_MEM_TABLE ? memfd : nullfd;
		if (m.hdr.size > VU_MAX_PAYLOAD)
			m.hdr.size = VU_MAX_PAYLOAD;
		ret = vu_msg_send(f.sock, m.hdr.request, m.hdr.flags, &m.payload,
				  m.hdr.size, fds, m.nfds);
		CHECK(ret == 0, "send: %d", ret);
		ret = serve_conn_handle(&f.c);
		mock.fail_ioctl = 0;
		handled++;
		drain_replies(&f);
		if (ret) {
			disconnects++;
			fe_close(&f);
			open_ok = false;
		}
	}
	if (open_ok)
		fe_close(&f);
	close(memfd);
	close(nullfd);
	CHECK(count_fds() == base, "fd leak in the handler: %d -> %d", base,
	      count_fds());
	printf("# handler: %lu messages through the real handler, %lu disconnects\n",
	       handled, disconnects);
}

static void test_uevent(void)
{
	static const char ev[] = "change@/devices/virtual/block/dm-0\0ACTION=change\0"
		"DEVPATH=/devices/virtual/block/dm-0\0SUBSYSTEM=block\0MAJOR=253\0"
		"MINOR=0\0DEVNAME=dm-0\0DEVTYPE=disk\0RESIZE=1";

	CHECK(serve_uevent_is_change(ev, sizeof(ev), makedev(253, 0)),
	      "dm change uevent matches");
	CHECK(!serve_uevent_is_change(ev, sizeof(ev), makedev(253, 1)),
	      "other minor does not");
	CHECK(!serve_uevent_is_change(ev, 20, makedev(253, 0)), "truncated event");
}

const char *vbc_progname = "vu_test";

int main(int argc, char **argv)
{
	unsigned long long seed = argc > 1 ? strtoull(argv[1], NULL, 0) :
				  (unsigned long long)time(NULL);
	unsigned long iters = argc > 2 ? strtoul(argv[2], NULL, 0) : 200000;
	int err = open("/dev/null", O_WRONLY);

	printf("TAP version 13\n1..5\n# seed %llu (rerun: %s %llu %lu)\n",
	       seed, argv[0], seed, iters);
	rng_state = seed;
	/* The handler logs every refusal; keep the output readable. */
	if (!getenv("VU_TEST_LOG") && err >= 0)
		dup2(err, 2);

#define RUN(n, name, call) do {					\
	int f0 = failures;						\
	call;								\
	printf("%s %d %s\n", failures == f0 ? "ok" : "not ok", n, name);	\
} while (0)
	RUN(1, "checker", test_checker(iters));
	RUN(2, "reader", test_reader(iters / 20));
	RUN(3, "qemu flow against a mock device", test_qemu_flow());
	RUN(4, "handler fuzz", test_handler_fuzz(iters / 10));
	RUN(5, "uevent matching", test_uevent());
	printf("# %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-user front-end: see vu_frontend.h. Messages follow QEMU's
 * docs/interop/vhost-user.rst; the flow is the one QEMU 7.2 uses for
 * vhost-user-blk (/work/shared/notes/vhost-user.md in the project notes).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/virtio_config.h>

#include "vhost_user.h"
#include "vu_frontend.h"
#include "vu_msg.h"

static __thread char vu_err[256];

const char *vu_strerror(void)
{
	return vu_err;
}

#define vu_fail(ret, ...) ({						\
	snprintf(vu_err, sizeof(vu_err), __VA_ARGS__);			\
	(ret);								\
})

/* Send through vhostblkctl's own sender, so both ends share one wire codec. */
static int vu_send(struct vu_frontend *f, struct vhost_user_msg *m,
		   const int *fds, unsigned int nfds)
{
	int ret = vu_msg_send(f->sock, m->hdr.request, m->hdr.flags,
			      &m->payload, m->hdr.size, fds, nfds);

	return ret ? vu_fail(ret, "sending %s: %s",
			     vu_request_name(m->hdr.request), strerror(-ret)) : 0;
}

static int vu_read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		got += n;
	}
	return 0;
}

/* Read the reply to @req into @m; its payload must be @size bytes. */
static int vu_reply(struct vu_frontend *f, uint32_t req,
		    struct vhost_user_msg *m, uint32_t size)
{
	int ret;

	ret = vu_read_all(f->sock, &m->hdr, sizeof(m->hdr));
	if (ret)
		return vu_fail(ret, "reading the reply to %s: %s",
			       vu_request_name(req), strerror(-ret));
	if (m->hdr.request != req || !(m->hdr.flags & VHOST_USER_REPLY) ||
	    m->hdr.size != size)
		return vu_fail(-EPROTO,
			       "bad reply to %s: request %u flags %#x size %u (want size %u)",
			       vu_request_name(req), m->hdr.request, m->hdr.flags,
			       m->hdr.size, size);
	ret = vu_read_all(f->sock, &m->payload, size);
	return ret ? vu_fail(ret, "reading the reply to %s: %s", vu_request_name(req),
			     strerror(-ret)) : 0;
}

static void vu_init_msg(struct vhost_user_msg *m, uint32_t req, uint32_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr.request = req;
	m->hdr.flags = VHOST_USER_VERSION;
	m->hdr.size = size;
}

/*
 * Send a message that has no reply of its own; with REPLY_ACK, ask for the
 * ack so a back-end's refusal is seen here and not as a hang later.
 */
static int vu_call(struct vu_frontend *f, struct vhost_user_msg *m,
		   const int *fds, unsigned int nfds)
{
	uint32_t req = m->hdr.request;
	bool ack = f->protocol_features &
		   (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
	int ret;

	if (ack)
		m->hdr.flags |= VHOST_USER_NEED_REPLY;
	ret = vu_send(f, m, fds, nfds);
	if (ret || !ack)
		return ret;
	ret = vu_reply(f, req, m, sizeof(m->payload.u64));
	if (ret)
		return ret;
	return m->payload.u64 ? vu_fail(-EIO, "back-end refused %s (ack %llu)",
					vu_request_name(req),
					(unsigned long long)m->payload.u64) : 0;
}

static int vu_get_u64(struct vu_frontend *f, uint32_t req, uint64_t *val)
{
	struct vhost_user_msg m;
	int ret;

	vu_init_msg(&m, req, 0);
	ret = vu_send(f, &m, NULL, 0);
	if (!ret)
		ret = vu_reply(f, req, &m, sizeof(m.payload.u64));
	if (!ret)
		*val = m.payload.u64;
	return ret;
}

static int vu_set_u64(struct vu_frontend *f, uint32_t req, uint64_t val)
{
	struct vhost_user_msg m;

	vu_init_msg(&m, req, sizeof(m.payload.u64));
	m.payload.u64 = val;
	return vu_call(f, &m, NULL, 0);
}

static int vu_set_state(struct vu_frontend *f, uint32_t req,
			unsigned int index, unsigned int num)
{
	struct vhost_user_msg m;

	vu_init_msg(&m, req, sizeof(m.payload.state));
	m.payload.state.index = index;
	m.payload.state.num = num;
	return vu_call(f, &m, NULL, 0);
}

static int vu_set_file(struct vu_frontend *f, uint32_t req,
		       unsigned int index, int fd)
{
	struct vhost_user_msg m;

	vu_init_msg(&m, req, sizeof(m.payload.u64));
	m.payload.u64 = index;
	return vu_call(f, &m, &fd, 1);
}

int vu_connect(struct vu_frontend *f, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const uint64_t want_proto =
		(1ULL << VHOST_USER_PROTOCOL_F_MQ) |
		(1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		(1ULL << VHOST_USER_PROTOCOL_F_CONFIG);
	uint64_t proto;
	int ret;

	memset(f, 0, sizeof(*f));
	if (strlen(path) >= sizeof(sa.sun_path))
		return vu_fail(-ENAMETOOLONG, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->sock < 0)
		return vu_fail(-errno, "socket: %s", strerror(errno));
	if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(f->sock);
		return vu_fail(ret, "connecting to %s: %s (is the back-end listening?)",
			       path, strerror(-ret));
	}
	ret = vu_get_u64(f, VHOST_USER_GET_FEATURES, &f->features);
	if (ret || !(f->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)))
		goto out;
	ret = vu_get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES, &proto);
	if (ret)
		goto out;
	/* Not yet negotiated: SET_PROTOCOL_FEATURES gets no ack. */
	ret = vu_set_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES, proto & want_proto);
	if (ret)
		goto out;
	f->protocol_features = proto & want_proto;
	if (f->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_MQ)) {
		uint64_t n;

		ret = vu_get_u64(f, VHOST_USER_GET_QUEUE_NUM, &n);
		f->queue_num = n;
	}
out:
	if (ret)
		close(f->sock);
	return ret;
}

static int vu_start_queue(struct vu_frontend *f, struct vdrv *d,
			  unsigned int i, unsigned int num)
{
	struct vdrv_queue *q = &d->q[i];
	struct vhost_user_msg m;
	int ret;

	ret = vdrv_queue_init(d, i, num);
	if (ret)
		return vu_fail(ret, "queue %u: %s", i, strerror(-ret));
	ret = vu_set_file(f, VHOST_USER_SET_VRING_CALL, i, q->call);
	if (!ret)
		ret = vu_set_state(f, VHOST_USER_SET_VRING_NUM, i, num);
	if (!ret)
		ret = vu_set_state(f, VHOST_USER_SET_VRING_BASE, i, 0);
	if (ret)
		return ret;
	vu_init_msg(&m, VHOST_USER_SET_VRING_ADDR, sizeof(m.payload.addr));
	m.payload.addr.index = i;
	m.payload.addr.desc_user_addr = (uintptr_t)q->desc;
	m.payload.addr.avail_user_addr = (uintptr_t)q->avail;
	m.payload.addr.used_user_addr = (uintptr_t)q->used;
	ret = vu_call(f, &m, NULL, 0);
	if (!ret)
		ret = vu_set_file(f, VHOST_USER_SET_VRING_KICK, i, q->kick);
	return ret;
}

int vu_start(struct vu_frontend *f, struct vdrv *d, unsigned int nq,
	     unsigned int num, uint64_t want)
{
	bool proto = f->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES);
	struct vhost_user_msg m;
	unsigned int i;
	int ret;

	if (nq > 1 && f->queue_num < nq)
		return vu_fail(-EINVAL, "back-end has %u queues, %u wanted (start it with num-queues=%u)",
			       f->queue_num, nq, nq);
	vu_init_msg(&m, VHOST_USER_SET_OWNER, 0);
	ret = vu_send(f, &m, NULL, 0);
	if (ret)
		return ret;
	d->features = f->features & want;
	ret = vu_set_u64(f, VHOST_USER_SET_FEATURES, d->features |
			 (proto ? 1ULL << VHOST_USER_F_PROTOCOL_FEATURES : 0));
	if (ret)
		return ret;

	vu_init_msg(&m, VHOST_USER_SET_MEM_TABLE,
		    8 + sizeof(m.payload.memory.regions[0]));
	m.payload.memory.nregions = 1;
	m.payload.memory.regions[0].guest_phys_addr = VDRV_GPA_BASE;
	m.payload.memory.regions[0].memory_size = d->mem_size;
	m.payload.memory.regions[0].userspace_addr = (uintptr_t)d->mem;
	m.payload.memory.regions[0].mmap_offset = 0;
	ret = vu_call(f, &m, &d->memfd, 1);
	if (ret)
		return ret;

	d->nq = nq;
	for (i = 0; i < nq; i++) {
		ret = vu_start_queue(f, d, i, num);
		if (ret)
			return ret;
	}
	for (i = 0; proto && i < nq; i++) {
		ret = vu_set_state(f, VHOST_USER_SET_VRING_ENABLE, i, 1);
		if (ret)
			return ret;
	}
	return 0;
}

void vu_close(struct vu_frontend *f, struct vdrv *d)
{
	struct vhost_user_msg m;
	unsigned int i;

	for (i = 0; i < d->nq; i++) {
		vu_init_msg(&m, VHOST_USER_GET_VRING_BASE, sizeof(m.payload.state));
		m.payload.state.index = i;
		if (vu_send(f, &m, NULL, 0) ||
		    vu_reply(f, VHOST_USER_GET_VRING_BASE, &m,
			     sizeof(m.payload.state)))
			break;
	}
	close(f->sock);
	f->sock = -1;
}

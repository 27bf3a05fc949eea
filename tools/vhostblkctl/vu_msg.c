// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-user messages as untrusted input. The front-end (QEMU) is trusted to
 * run the guest, not to send well-formed messages: every size, fd count and
 * index is checked here against one table of rules per request type before
 * serve_dev.c acts on anything.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vhost_blk.h>

#include "vu_msg.h"

/* How long the rest of a started message may take to arrive. */
#define VU_MSG_TIMEOUT_MS	5000

enum vu_size {
	SZ_ZERO,	/* no payload */
	SZ_U64,
	SZ_STATE,	/* struct vhost_user_vring_state */
	SZ_ADDR,	/* struct vhost_user_vring_addr */
	SZ_LOG,		/* struct vhost_user_log */
	SZ_MEM,		/* struct vhost_user_memory, nregions entries */
	SZ_CONFIG,	/* config header + config.size bytes */
	SZ_MEM_REG,	/* struct vhost_user_mem_reg */
	SZ_ANY,		/* not implemented here: any size up to the maximum */
};

enum vu_fds {
	FD_NONE,
	FD_ONE,
	FD_VRING,	/* one, unless the payload's NOFD bit is set */
	FD_REGIONS,	/* one per memory region */
	FD_ANY,		/* not implemented here: 0..VHOST_USER_MAX_FDS */
};

enum vu_idx {
	IDX_NONE,
	IDX_STATE,	/* payload.state.index */
	IDX_ADDR,	/* payload.addr.index */
	IDX_FILE,	/* payload.u64 bits 0-7 */
};

struct vu_rule {
	const char *name;
	unsigned char size;
	unsigned char fds;
	unsigned char idx;
	bool reply;		/* the front-end always waits for a reply */
};

#define RULE(req, sz, fd, ix, rep) \
	[VHOST_USER_##req] = { #req, SZ_##sz, FD_##fd, IDX_##ix, rep }

static const struct vu_rule vu_rules[VHOST_USER_REQUEST_MAX] = {
	RULE(GET_FEATURES,		ZERO,	NONE,	NONE,	true),
	RULE(SET_FEATURES,		U64,	NONE,	NONE,	false),
	RULE(SET_OWNER,			ZERO,	NONE,	NONE,	false),
	RULE(RESET_OWNER,		ZERO,	NONE,	NONE,	false),
	RULE(SET_MEM_TABLE,		MEM,	REGIONS, NONE,	false),
	RULE(SET_LOG_BASE,		ANY,	ANY,	NONE,	false),
	RULE(SET_LOG_FD,		ANY,	ANY,	NONE,	false),
	RULE(SET_VRING_NUM,		STATE,	NONE,	STATE,	false),
	RULE(SET_VRING_ADDR,		ADDR,	NONE,	ADDR,	false),
	RULE(SET_VRING_BASE,		STATE,	NONE,	STATE,	false),
	RULE(GET_VRING_BASE,		STATE,	NONE,	STATE,	true),
	RULE(SET_VRING_KICK,		U64,	VRING,	FILE,	false),
	RULE(SET_VRING_CALL,		U64,	VRING,	FILE,	false),
	RULE(SET_VRING_ERR,		U64,	VRING,	FILE,	false),
	RULE(GET_PROTOCOL_FEATURES,	ZERO,	NONE,	NONE,	true),
	RULE(SET_PROTOCOL_FEATURES,	U64,	NONE,	NONE,	false),
	RULE(GET_QUEUE_NUM,		ZERO,	NONE,	NONE,	true),
	RULE(SET_VRING_ENABLE,		STATE,	NONE,	STATE,	false),
	RULE(SEND_RARP,			ANY,	ANY,	NONE,	false),
	RULE(NET_SET_MTU,		ANY,	ANY,	NONE,	false),
	RULE(SET_BACKEND_REQ_FD,	ZERO,	ONE,	NONE,	false),
	RULE(IOTLB_MSG,			ANY,	ANY,	NONE,	false),
	RULE(SET_VRING_ENDIAN,		ANY,	ANY,	NONE,	false),
	RULE(GET_CONFIG,		CONFIG,	NONE,	NONE,	true),
	RULE(SET_CONFIG,		CONFIG,	NONE,	NONE,	false),
	RULE(CREATE_CRYPTO_SESSION,	ANY,	ANY,	NONE,	true),
	RULE(CLOSE_CRYPTO_SESSION,	ANY,	ANY,	NONE,	false),
	RULE(POSTCOPY_ADVISE,		ANY,	ANY,	NONE,	true),
	RULE(POSTCOPY_LISTEN,		ANY,	ANY,	NONE,	false),
	RULE(POSTCOPY_END,		ANY,	ANY,	NONE,	true),
	RULE(GET_INFLIGHT_FD,		ANY,	ANY,	NONE,	true),
	RULE(SET_INFLIGHT_FD,		ANY,	ANY,	NONE,	false),
	RULE(GPU_SET_SOCKET,		ANY,	ANY,	NONE,	false),
	RULE(RESET_DEVICE,		ZERO,	NONE,	NONE,	false),
	RULE(VRING_KICK,		STATE,	NONE,	STATE,	false),
	RULE(GET_MAX_MEM_SLOTS,		ZERO,	NONE,	NONE,	true),
	RULE(ADD_MEM_REG,		MEM_REG, ONE,	NONE,	false),
	RULE(REM_MEM_REG,		MEM_REG, ANY,	NONE,	false),
	RULE(SET_STATUS,		U64,	NONE,	NONE,	false),
	RULE(GET_STATUS,		ZERO,	NONE,	NONE,	true),
};

static const struct vu_rule *vu_rule(uint32_t request)
{
	if (request >= VHOST_USER_REQUEST_MAX || !vu_rules[request].name)
		return NULL;
	return &vu_rules[request];
}

const char *vu_request_name(uint32_t request)
{
	const struct vu_rule *r = vu_rule(request);

	return r ? r->name : "UNKNOWN";
}

bool vu_msg_has_reply(uint32_t request)
{
	const struct vu_rule *r = vu_rule(request);

	return r && r->reply;
}

int vu_msg_vring_index(const struct vu_msg *m)
{
	const struct vu_rule *r = vu_rule(m->hdr.request);

	switch (r ? r->idx : IDX_NONE) {
	case IDX_STATE:
		return m->payload.state.index;
	case IDX_ADDR:
		return m->payload.addr.index;
	case IDX_FILE:
		return m->payload.u64 & VHOST_USER_VRING_IDX_MASK;
	}
	return -1;
}

/* Is the payload size right for the request? (memory and config vary) */
static bool vu_size_ok(const struct vu_msg *m, enum vu_size rule)
{
	uint32_t size = m->hdr.size;

	switch (rule) {
	case SZ_ZERO:
		return size == 0;
	case SZ_U64:
		return size == sizeof(uint64_t);
	case SZ_STATE:
		return size == sizeof(struct vhost_user_vring_state);
	case SZ_ADDR:
		return size == sizeof(struct vhost_user_vring_addr);
	case SZ_LOG:
		return size == sizeof(struct vhost_user_log);
	case SZ_MEM_REG:
		return size == sizeof(struct vhost_user_mem_reg);
	case SZ_MEM:
		return size >= 8 && size <= sizeof(struct vhost_user_memory) &&
		       (size - 8) % sizeof(struct vhost_user_mem_region) == 0;
	case SZ_CONFIG:
		return size >= VHOST_USER_CONFIG_HDR_SIZE &&
		       size <= VHOST_USER_CONFIG_HDR_SIZE +
			       VHOST_USER_MAX_CONFIG_SIZE;
	case SZ_ANY:
		return size <= VU_MAX_PAYLOAD;
	}
	return false;
}

static bool vu_region_ok(const struct vhost_user_mem_region *r)
{
	return r->memory_size &&
	       r->guest_phys_addr + r->memory_size > r->guest_phys_addr &&
	       r->userspace_addr + r->memory_size > r->userspace_addr &&
	       r->mmap_offset + r->memory_size > r->mmap_offset;
}

/* Field checks after size and fds: 0 or -EINVAL with *why set. */
static int vu_fields_check(const struct vu_msg *m, const char **why)
{
	const struct vhost_user_memory *mem = &m->payload.memory;
	const struct vhost_user_config *cfg = &m->payload.config;
	uint32_t i;

	switch (m->hdr.request) {
	case VHOST_USER_SET_MEM_TABLE:
		for (i = 0; i < mem->nregions; i++) {
			if (!vu_region_ok(&mem->regions[i])) {
				*why = "a memory region is empty or wraps around";
				return -EINVAL;
			}
		}
		break;
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		if (!vu_region_ok(&m->payload.mem_reg.region)) {
			*why = "the memory region is empty or wraps around";
			return -EINVAL;
		}
		break;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		if (cfg->offset >= VHOST_USER_MAX_CONFIG_SIZE ||
		    cfg->size > VHOST_USER_MAX_CONFIG_SIZE - cfg->offset) {
			*why = "config window beyond the config space";
			return -EINVAL;
		}
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		if (m->payload.u64 & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK |
						  VHOST_USER_VRING_NOFD)) {
			*why = "unknown bits in the vring file payload";
			return -EINVAL;
		}
		break;
	}
	return 0;
}

/* Sizes that depend on the payload itself (regions, config bytes). */
static int vu_size_check_inner(const struct vu_msg *m, const char **why)
{
	uint32_t n;

	switch (m->hdr.request) {
	case VHOST_USER_SET_MEM_TABLE:
		n = m->payload.memory.nregions;
		if (!n || n > VHOST_USER_MAX_REGIONS) {
			*why = "region count not within 1..8";
			return -EINVAL;
		}
		if (m->hdr.size != 8 + n * sizeof(struct vhost_user_mem_region)) {
			*why = "payload size does not match the region count";
			return -EMSGSIZE;
		}
		break;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		if (m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE +
				   m->payload.config.size) {
			*why = "payload size does not match the config size";
			return -EMSGSIZE;
		}
		break;
	}
	return 0;
}

static int vu_fds_check(const struct vu_msg *m, enum vu_fds rule,
			const char **why)
{
	unsigned int want;

	switch (rule) {
	case FD_NONE:
		want = 0;
		break;
	case FD_ONE:
		want = 1;
		break;
	case FD_VRING:
		want = m->payload.u64 & VHOST_USER_VRING_NOFD ? 0 : 1;
		break;
	case FD_REGIONS:
		want = m->payload.memory.nregions;
		break;
	default:
		return 0;
	}
	if (m->nfds == want)
		return 0;
	if (m->hdr.request == VHOST_USER_SET_MEM_TABLE && m->nfds < want)
		*why = "memory regions without fds: QEMU needs a shared memory backend (-object memory-backend-memfd,id=mem,size=SIZE,share=on -machine memory-backend=mem)";
	else if (m->nfds > want)
		*why = "more fds attached than the request takes";
	else
		*why = "fd missing";
	return -EBADF;
}

int vu_msg_check(const struct vu_msg *m, const struct vu_limits *lim,
		 const char **why)
{
	const struct vu_rule *r;
	int idx, ret;

	*why = "";
	if ((m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (m->hdr.flags & VHOST_USER_REPLY)) {
		*why = "bad version or reply flag in the header";
		return -EPROTO;
	}
	r = vu_rule(m->hdr.request);
	if (!r) {
		*why = "unknown request number";
		return -ENOSYS;
	}
	if (!vu_size_ok(m, r->size)) {
		*why = "payload size wrong for the request";
		return -EMSGSIZE;
	}
	ret = vu_size_check_inner(m, why);
	if (ret)
		return ret;
	ret = vu_fds_check(m, r->fds, why);
	if (ret)
		return ret;
	ret = vu_fields_check(m, why);
	if (ret)
		return ret;
	idx = vu_msg_vring_index(m);
	if (idx >= 0 && ((unsigned int)idx >= lim->num_queues ||
			 idx >= VHOST_BLK_MAX_QUEUES)) {
		*why = "vring index beyond the device's queues";
		return -ERANGE;
	}
	return 0;
}

void vu_msg_close_fds(struct vu_msg *m)
{
	unsigned int i;

	for (i = 0; i < m->nfds; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
}

/* Wait for more of a started message; 0, -ETIMEDOUT or -errno. */
static int vu_wait_readable(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int n;

	do {
		n = poll(&p, 1, VU_MSG_TIMEOUT_MS);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/* Read exactly @len bytes of a message whose first bytes were read. */
static int vu_read_rest(int sock, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;
	int ret;

	while (len) {
		ret = vu_wait_readable(sock);
		if (ret)
			return ret;
		n = recv(sock, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ECONNRESET;
		p += n;
		len -= n;
	}
	return 0;
}

/* Take the fds of every SCM_RIGHTS block; -E2BIG if there were too many. */
static int vu_take_fds(struct msghdr *mh, struct vu_msg *m)
{
	struct cmsghdr *c;
	int ret = 0;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t i, n;
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (m->nfds < VHOST_USER_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else {
				close(fd);
				ret = -E2BIG;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		ret = -E2BIG;
	return ret;
}

int vu_msg_recv(int sock, struct vu_msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = &m->hdr, .iov_len = sizeof(m->hdr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;
	int ret;

	memset(&m->hdr, 0, sizeof(m->hdr));
	memset(&m->payload, 0, sizeof(m->payload));
	m->nfds = 0;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (!n)
		return -ENOTCONN;
	ret = vu_take_fds(&mh, m);
	if (!ret && (size_t)n < sizeof(m->hdr))
		ret = vu_read_rest(sock, (char *)&m->hdr + n,
				   sizeof(m->hdr) - n);
	if (!ret && m->hdr.size > VU_MAX_PAYLOAD)
		ret = -EMSGSIZE;
	if (!ret)
		ret = vu_read_rest(sock, &m->payload, m->hdr.size);
	if (ret)
		vu_msg_close_fds(m);
	return ret;
}

int vu_msg_send(int sock, uint32_t request, uint32_t flags,
		const void *payload, uint32_t size, const int *fds,
		unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct vhost_user_header hdr = {
		.request = request, .flags = flags, .size = size,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	size_t left = sizeof(hdr) + size;
	ssize_t n;

	if (nfds > VHOST_USER_MAX_FDS)
		return -E2BIG;
	if (size > VU_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* A short write on a stream socket: send the rest without fds. */
	while ((size_t)n < left) {
		char all[sizeof(hdr) + VU_MAX_PAYLOAD];
		size_t done = n;
		ssize_t w;

		memcpy(all, &hdr, sizeof(hdr));
		if (size)
			memcpy(all + sizeof(hdr), payload, size);
		w = send(sock, all + done, left - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		n += w;
	}
	return 0;
}

int vu_msg_reply(int sock, const struct vu_msg *req, const void *payload,
		 uint32_t size)
{
	return vu_msg_send(sock, req->hdr.request,
			   VHOST_USER_VERSION | VHOST_USER_REPLY, payload, size,
			   NULL, 0);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-user messages as untrusted input: reading one message (header,
 * payload, SCM_RIGHTS fds) from a socket, checking it against the rules of
 * its request type, and writing replies. Nothing here knows what a message
 * does; serve_dev.c does.
 */
#ifndef VU_MSG_H
#define VU_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost_user.h"

/* One message as received, with the fds that came with it. */
struct vu_msg {
	struct vhost_user_header hdr;
	union vhost_user_payload payload;
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nfds;
};

/* Largest payload a message may carry (the union above). */
#define VU_MAX_PAYLOAD	sizeof(union vhost_user_payload)

/* What the checker needs to know about the connection. */
struct vu_limits {
	unsigned int num_queues;	/* vring indexes must be below this */
};

/*
 * vu_msg_recv - read one message from @sock into @m.
 *
 * Returns 0, or a negative errno with every received fd closed:
 *   -ENOTCONN   the peer closed the connection between messages
 *   -ECONNRESET the peer vanished in the middle of a message
 *   -EMSGSIZE   header size larger than any payload (cannot resync)
 *   -E2BIG      more than VHOST_USER_MAX_FDS fds were attached
 *   -ETIMEDOUT  the rest of a started message did not arrive in time
 *   other       recvmsg()'s errno
 */
int vu_msg_recv(int sock, struct vu_msg *m);

/*
 * vu_msg_check - is @m well formed for its request type?
 *
 * Pure: no I/O, no state, usable without a socket (the fuzzer calls it).
 * Returns 0 or a negative errno, and sets *@why to a reason for the log:
 *   -EPROTO     version bits are not 1, or the reply flag is set
 *   -ENOSYS     unknown request number
 *   -EMSGSIZE   payload size wrong for the request type
 *   -EBADF      fds attached where none belong, or missing where needed
 *   -ERANGE     vring index at or above @lim->num_queues
 *   -EINVAL     a field out of range (region count, config window,
 *               unknown bits in a KICK/CALL/ERR payload)
 */
int vu_msg_check(const struct vu_msg *m, const struct vu_limits *lim,
		 const char **why);

/* Does a request of this type always get a reply (GET_*)? */
bool vu_msg_has_reply(uint32_t request);

/* Name of a request for logs ("SET_VRING_KICK"), "UNKNOWN" otherwise. */
const char *vu_request_name(uint32_t request);

/* The vring index a request carries, or -1 for requests without one. */
int vu_msg_vring_index(const struct vu_msg *m);

/* Close every fd of @m that is still open and forget them. */
void vu_msg_close_fds(struct vu_msg *m);

/*
 * vu_msg_send - write header + @size bytes of payload (and @nfds fds).
 * Returns 0 or a negative errno (-EPIPE when the peer is gone).
 */
int vu_msg_send(int sock, uint32_t request, uint32_t flags,
		const void *payload, uint32_t size, const int *fds,
		unsigned int nfds);

/* Reply to @req: the reply flag set, version 1, @size bytes of payload. */
int vu_msg_reply(int sock, const struct vu_msg *req, const void *payload,
		 uint32_t size);

#endif /* VU_MSG_H */

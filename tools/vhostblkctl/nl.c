// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl: talking to the "vhost-blk" generic netlink family.
 *
 * libnl 3.7 has no helper for extended acks, so this file asks for them
 * (NETLINK_EXT_ACK) and reads NLMSGERR_ATTR_MSG from the error message
 * itself: the attributes follow struct nlmsgerr and, unless the kernel
 * capped the ack (NLM_F_CAPPED), a copy of the request.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/vhost_blk_nl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>

#include "nl.h"
#include "vhostblkctl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* The state of one request while its replies are read. */
struct vbc_nl_req {
	int status;		/* 1 while waiting, 0 done, -errno */
	int maxattr;
	vbc_nl_reply_fn fn;
	void *arg;
	char msg[256];		/* the kernel's extack message, if any */
};

int vbc_nl_open(struct vbc_nl *nl)
{
	int one = 1;
	int ret;

	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		fprintf(stderr, "%s: out of memory\n", vbc_progname);
		return -1;
	}
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		fprintf(stderr, "%s: cannot open a generic netlink socket: %s\n",
			vbc_progname, nl_geterror(ret));
		goto err_free;
	}
	/*
	 * A do is answered by its reply or an error, a dump ends with DONE:
	 * no acks, which would otherwise be left over for the next request.
	 */
	nl_socket_disable_auto_ack(nl->sk);
	/* Without extack we only lose the messages: not fatal. */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));

	nl->family = genl_ctrl_resolve(nl->sk, VHOST_BLK_FAMILY_NAME);
	if (nl->family < 0) {
		if (nl->family == -NLE_OBJ_NOTFOUND)
			fprintf(stderr, "%s: the kernel has no \"%s\" netlink family: "
				"the vhost_blk module is not loaded (modprobe vhost_blk, "
				"or insmod vhost_blk.ko from the build)\n",
				vbc_progname, VHOST_BLK_FAMILY_NAME);
		else
			fprintf(stderr, "%s: cannot resolve the \"%s\" netlink family: %s\n",
				vbc_progname, VHOST_BLK_FAMILY_NAME,
				nl_geterror(nl->family));
		goto err_free;
	}
	return 0;

err_free:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return -1;
}

void vbc_nl_close(struct vbc_nl *nl)
{
	nl_socket_free(nl->sk);
	nl->sk = NULL;
}

/* Copy NLMSGERR_ATTR_MSG out of an extended ack, if there is one. */
static void vbc_nl_extack(struct nlmsgerr *e, struct vbc_nl_req *req)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	const char *m;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	/* Not capped: the whole request follows the header copy in @e. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	if (nlh->nlmsg_len <= off)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)nlh + off),
		      nlh->nlmsg_len - off, NULL) < 0)
		return;
	if (!tb[NLMSGERR_ATTR_MSG])
		return;
	m = nla_get_string(tb[NLMSGERR_ATTR_MSG]);
	snprintf(req->msg, sizeof(req->msg), "%.*s",
		 (int)strnlen(m, nla_len(tb[NLMSGERR_ATTR_MSG])), m);
}

static int vbc_nl_on_error(struct sockaddr_nl *who, struct nlmsgerr *e,
			   void *arg)
{
	struct vbc_nl_req *req = arg;

	(void)who;
	vbc_nl_extack(e, req);
	req->status = e->error ? e->error : 0;
	return NL_STOP;
}

static int vbc_nl_on_done(struct nl_msg *msg, void *arg)
{
	struct vbc_nl_req *req = arg;

	(void)msg;
	if (req->status > 0)
		req->status = 0;
	return NL_STOP;
}

static int vbc_nl_on_valid(struct nl_msg *msg, void *arg)
{
	struct vbc_nl_req *req = arg;
	struct nlattr *tb[req->maxattr + 1];
	int ret;

	ret = genlmsg_parse(nlmsg_hdr(msg), 0, tb, req->maxattr, NULL);
	if (ret < 0) {
		fprintf(stderr, "%s: malformed reply from the kernel: %s\n",
			vbc_progname, nl_geterror(ret));
		req->status = -EPROTO;
		return NL_STOP;
	}
	ret = req->fn(tb, genlmsg_attrdata(nlmsg_data(nlmsg_hdr(msg)), 0),
		      genlmsg_attrlen(nlmsg_data(nlmsg_hdr(msg)), 0), req->arg);
	if (ret < 0) {
		req->status = ret;
		return NL_STOP;
	}
	/* A do has one reply and no ack (auto-ack is off). */
	if (!(nlmsg_hdr(msg)->nlmsg_flags & NLM_F_MULTI))
		req->status = 0;
	return NL_OK;
}

static void vbc_nl_print_error(const struct vbc_nl_req *req, bool have_id,
			       uint32_t id)
{
	int err = -req->status;

	if (req->msg[0])
		fprintf(stderr, "%s: kernel reports: %s\n", vbc_progname, req->msg);
	if (err == ENOENT && have_id)
		fprintf(stderr, "%s: no device %u: see \"%s dev show\" for the "
			"devices you may see (others' devices need CAP_NET_ADMIN)\n",
			vbc_progname, id, vbc_progname);
	else if (err == EPERM || err == EACCES)
		fprintf(stderr, "%s: %s: this needs CAP_NET_ADMIN (run as root)\n",
			vbc_progname, strerror(err));
	else
		fprintf(stderr, "%s: netlink request failed: %s\n",
			vbc_progname, strerror(err));
}

int vbc_nl_get(struct vbc_nl *nl, uint8_t cmd, int maxattr, int id_attr,
	       bool have_id, uint32_t id, vbc_nl_reply_fn fn, void *arg)
{
	struct vbc_nl_req req = { .status = 1, .maxattr = maxattr, .fn = fn,
				  .arg = arg };
	struct nl_msg *msg;
	struct nl_cb *cb;
	int ret;

	msg = nlmsg_alloc();
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!msg || !cb) {
		ret = -ENOMEM;
		fprintf(stderr, "%s: out of memory\n", vbc_progname);
		goto out;
	}
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 have_id ? 0 : NLM_F_DUMP, cmd, VHOST_BLK_FAMILY_VERSION) ||
	    (have_id && nla_put_u32(msg, id_attr, id) < 0)) {
		ret = -ENOMEM;
		fprintf(stderr, "%s: cannot build the request\n", vbc_progname);
		goto out;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, vbc_nl_on_valid, &req);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, vbc_nl_on_done, &req);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, vbc_nl_on_done, &req);
	nl_cb_err(cb, NL_CB_CUSTOM, vbc_nl_on_error, &req);

	ret = nl_send_auto(nl->sk, msg);
	if (ret < 0) {
		fprintf(stderr, "%s: cannot send to the kernel: %s\n",
			vbc_progname, nl_geterror(ret));
		ret = -EIO;
		goto out;
	}
	while (req.status > 0) {
		ret = nl_recvmsgs(nl->sk, cb);
		if (ret < 0 && req.status > 0) {
			fprintf(stderr, "%s: reading the kernel's answer: %s\n",
				vbc_progname, nl_geterror(ret));
			req.status = -EIO;
		}
	}
	ret = req.status;
	if (ret < 0 && ret != -EPROTO)
		vbc_nl_print_error(&req, have_id, id);
out:
	nl_cb_put(cb);
	nlmsg_free(msg);
	return ret;
}

uint64_t vbc_nla_u64(struct nlattr *a)
{
	return a ? nla_get_u64(a) : 0;
}

uint32_t vbc_nla_u32(struct nlattr *a)
{
	return a ? nla_get_u32(a) : 0;
}

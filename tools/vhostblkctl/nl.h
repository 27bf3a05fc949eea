/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhostblkctl: requests to the vhost-blk generic netlink family (libnl-genl-3).
 * Errors are printed here, with the kernel's extack message when it sent one.
 */
#ifndef VBC_NL_H
#define VBC_NL_H

#include <stdbool.h>
#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/netlink.h>

struct vbc_nl {
	struct nl_sock *sk;
	int family;
};

/*
 * Called for each reply message with its attributes parsed into @tb
 * (indexed up to @maxattr of vbc_nl_get()), and all of them in @attrs/@len
 * for repeated ones (tb keeps only the last). Returns 0 or a negative errno.
 */
typedef int (*vbc_nl_reply_fn)(struct nlattr **tb, struct nlattr *attrs,
			       int len, void *arg);

/* Connect and resolve the family; prints why not. 0 or -1. */
int vbc_nl_open(struct vbc_nl *nl);
void vbc_nl_close(struct vbc_nl *nl);

/*
 * Send @cmd: a do with attribute @id_attr = @id when @have_id, else a dump.
 * Returns 0, or a negative errno after printing the error.
 */
int vbc_nl_get(struct vbc_nl *nl, uint8_t cmd, int maxattr, int id_attr,
	       bool have_id, uint32_t id, vbc_nl_reply_fn fn, void *arg);

/* Attribute getters that tolerate absence. */
uint64_t vbc_nla_u64(struct nlattr *a);
uint32_t vbc_nla_u32(struct nlattr *a);

#endif /* VBC_NL_H */

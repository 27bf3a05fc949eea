/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The front-end side of vhost-user (what QEMU does for vhost-user-blk-pci),
 * for a vblk_driver "guest": its memfd memory goes to the back-end in
 * SET_MEM_TABLE, its rings' addresses and eventfds in the SET_VRING_*
 * messages. After vu_start() the rings are driven exactly as with
 * /dev/vhost-blk (vdrv_start, vdrv_kick, vdrv_get_used).
 */
#ifndef VU_FRONTEND_H
#define VU_FRONTEND_H

#include <stdint.h>
#include "vblk_driver.h"

struct vu_frontend {
	int sock;
	uint64_t features;		/* offered by the back-end */
	uint64_t protocol_features;	/* negotiated */
	unsigned int queue_num;		/* back-end's maximum, if MQ */
};

/* Connect to @path and negotiate features. Returns 0 or -errno. */
int vu_connect(struct vu_frontend *f, const char *path);
/*
 * Bring up @nq queues of @num entries of @d (opened with vdrv_open_memfd)
 * with the virtio features @want & what the back-end offers; the
 * negotiated set ends up in d->features. Returns 0 or -errno.
 */
int vu_start(struct vu_frontend *f, struct vdrv *d, unsigned int nq,
	     unsigned int num, uint64_t want);
/* Stop every ring (GET_VRING_BASE) and close the connection. */
void vu_close(struct vu_frontend *f, struct vdrv *d);
/* The last error's words, for messages. */
const char *vu_strerror(void);

#endif /* VU_FRONTEND_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `vhostblkctl serve`: one vhost-user connection mapped onto one
 * /dev/vhost-blk device. serve.c owns the sockets and the event loop;
 * serve_dev.c turns each checked message into ioctls.
 */
#ifndef SERVE_DEV_H
#define SERVE_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/vhost_blk.h>

#include "vu_msg.h"

/* What the daemon serves: fixed for its lifetime. */
struct serve_cfg {
	const char *disk_path;
	int disk_fd;			/* open O_RDWR, or O_RDONLY with --read-only */
	bool read_only;
	unsigned int num_queues;
	unsigned int cache_mode;	/* VHOST_BLK_CACHE_*, --cache */
	unsigned int poll_us;		/* busyloop timeout, --poll-us */
	char serial[VIRTIO_BLK_ID_BYTES];
};

/*
 * The kernel side, behind a table so the tests can run the real message
 * handling without /dev/vhost-blk. Both return >= 0 or a negative errno.
 */
struct serve_ops {
	int (*open_dev)(void);
	int (*ioctl)(int fd, unsigned long request, void *arg);
};

extern const struct serve_ops serve_kernel_ops;

/* A guest memory region as QEMU gave it and as we mapped it. */
struct serve_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t qva;			/* QEMU's virtual address */
	uint64_t mmap_offset;
	void *base;			/* our mapping of the fd, from offset 0 */
	size_t len;			/* mmap_offset + size */
};

struct serve_vq {
	bool addr_set;		/* ring addresses given to the kernel */
	bool running;		/* the kernel processes it */
	bool enabled;		/* SET_VRING_ENABLE 1 seen */
	struct vhost_user_vring_addr addr;	/* as QEMU sent it */
};

/* Protocol features this back-end implements and offers. */
#define SERVE_PROTOCOL_FEATURES					\
	((1ULL << VHOST_USER_PROTOCOL_F_MQ) |			\
	 (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |		\
	 (1ULL << VHOST_USER_PROTOCOL_F_BACKEND_REQ) |		\
	 (1ULL << VHOST_USER_PROTOCOL_F_CONFIG))

/* One front-end connection and the /dev/vhost-blk device behind it. */
struct serve_conn {
	const struct serve_cfg *cfg;
	const struct serve_ops *ops;
	int sock;
	int vfd;			/* /dev/vhost-blk */
	int backend_fd;			/* SET_BACKEND_REQ_FD channel, or -1 */
	unsigned int acks_pending;	/* config-change acks not yet read */
	uint64_t features;		/* offered: this disk's | bit 30 */
	uint64_t protocol;		/* negotiated protocol features */
	bool wce_set;			/* SET_CONFIG wrote the wce byte */
	uint8_t wce;
	uint64_t capacity;		/* sectors, as last told to QEMU */
	unsigned int nregions;
	struct serve_region regions[VHOST_USER_MAX_REGIONS];
	struct serve_vq vqs[VHOST_BLK_MAX_QUEUES];
	unsigned long msgs;		/* messages handled, for logs */
};

/* Log to stderr with the "vhostblkctl serve: " prefix. */
extern int serve_verbose;	/* 1: -v, one line per message */
void serve_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void serve_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Open a device for @cfg: owner, params, backend (no ring runs yet), config.
 * Returns the device fd or a negative errno (logged with the fix).
 */
int serve_dev_open(const struct serve_cfg *cfg, const struct serve_ops *ops,
		   struct vhost_blk_config *config);

/* Start serving front-end socket @sock: 0 or a negative errno. */
int serve_conn_init(struct serve_conn *c, const struct serve_cfg *cfg,
		    const struct serve_ops *ops, int sock);

/*
 * Read and handle one message. 0: keep the connection; negative errno:
 * disconnect (logged), then call serve_conn_close().
 */
int serve_conn_handle(struct serve_conn *c);

/* The backend channel is readable: read an ack. Negative: channel closed. */
int serve_conn_backend_event(struct serve_conn *c);

/* The disk may have changed size: tell QEMU if it did. */
void serve_conn_check_resize(struct serve_conn *c);

/* Close the device (the kernel drains and releases), unmap, close fds. */
void serve_conn_close(struct serve_conn *c);

#endif /* SERVE_DEV_H */

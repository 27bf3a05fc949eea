// SPDX-License-Identifier: GPL-2.0
/*
 * `vhostblkctl serve`: each checked vhost-user message mapped onto
 * /dev/vhost-blk. One handler per request number (vu_handlers[]); the
 * dispatcher answers, acks or disconnects by one rule for all of them.
 *
 * The daemon is the vhost owner: guest memory is mapped here from QEMU's fds
 * and the kernel gets our addresses; rings, eventfds and the disk go to the
 * kernel, which then serves the guest without us.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "serve_dev.h"

int serve_verbose;

static void serve_vlog(const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "vhostblkctl serve: %s\n", line);
}

void serve_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	serve_vlog(fmt, ap);
	va_end(ap);
}

void serve_dbg(const char *fmt, ...)
{
	va_list ap;

	if (!serve_verbose)
		return;
	va_start(ap, fmt);
	serve_vlog(fmt, ap);
	va_end(ap);
}

static int kernel_open_dev(void)
{
	int fd = open("/dev/vhost-blk", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int kernel_ioctl(int fd, unsigned long request, void *arg)
{
	int ret = ioctl(fd, request, arg);

	return ret < 0 ? -errno : ret;
}

const struct serve_ops serve_kernel_ops = {
	.open_dev = kernel_open_dev,
	.ioctl = kernel_ioctl,
};

/* Virtio features never offered: the kernel vhost core lacks them. */
#define SERVE_FEATURES_NEVER						\
	((1ULL << VIRTIO_F_RING_PACKED) |				\
	 (1ULL << VIRTIO_F_ACCESS_PLATFORM) |				\
	 (1ULL << VHOST_F_LOG_ALL))

/* Offset of the writeback byte in struct virtio_blk_config. */
#define SERVE_WCE_OFFSET	32

static const char *serve_open_hint(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENODEV:
	case -ENXIO:
		return "/dev/vhost-blk is missing: load the module (modprobe vhost && insmod vhost_blk.ko, or modprobe vhost_blk when installed)";
	case -EACCES:
	case -EPERM:
		return "no permission on /dev/vhost-blk: run as root or give the daemon's user access to /dev/vhost-blk";
	}
	return "cannot open /dev/vhost-blk";
}

static const char *serve_backend_hint(int err)
{
	switch (err) {
	case -EBUSY:
		return "the disk is in use (mounted, or claimed by another vhost-blk device or exclusive opener): unmount it or stop the other user";
	case -EACCES:
		return "the disk fd is not readable";
	case -ENOTBLK:
		return "--disk must be a block device or a raw image file";
	case -EINVAL:
		return "the image cannot be used in this --cache mode (no O_DIRECT on its filesystem, e.g. tmpfs before Linux 6.6: use --cache writeback) or is empty";
	}
	return "VHOST_BLK_SET_BACKEND failed";
}

int serve_dev_open(const struct serve_cfg *cfg, const struct serve_ops *ops,
		   struct vhost_blk_config *config)
{
	struct vhost_blk_params params = {
		.size = sizeof(params),
		/*
		 * Not VHOST_BLK_PARAM_ALL: that includes the write cache, and a
		 * zero there would show a guest in a write-back mode a
		 * write-through disk. Attaching sets the mode's default.
		 */
		.mask = VHOST_BLK_PARAM_NUM_QUEUES | VHOST_BLK_PARAM_SERIAL,
		.num_queues = cfg->num_queues,
	};
	struct vhost_blk_backend be = {
		.size = sizeof(be), .fd = cfg->disk_fd,
		.cache_mode = cfg->cache_mode,
	};
	int fd, ret;

	fd = ops->open_dev();
	if (fd < 0) {
		serve_err("%s (%s)", serve_open_hint(fd), strerror(-fd));
		return fd;
	}
	memcpy(params.serial, cfg->serial, sizeof(params.serial));
	ret = ops->ioctl(fd, VHOST_SET_OWNER, NULL);
	if (ret) {
		serve_err("VHOST_SET_OWNER: %s", strerror(-ret));
		goto err_close;
	}
	ret = ops->ioctl(fd, VHOST_BLK_SET_PARAMS, &params);
	if (ret) {
		serve_err("VHOST_BLK_SET_PARAMS (num_queues %u): %s",
			  cfg->num_queues, strerror(-ret));
		goto err_close;
	}
	/* No ring is set up: this only claims the disk and sizes the config. */
	ret = ops->ioctl(fd, VHOST_BLK_SET_BACKEND, &be);
	if (ret) {
		serve_err("%s: %s (%s)", cfg->disk_path,
			  serve_backend_hint(ret), strerror(-ret));
		goto err_close;
	}
	memset(config, 0, sizeof(*config));
	config->size = sizeof(*config);
	ret = ops->ioctl(fd, VHOST_BLK_GET_CONFIG, config);
	if (ret) {
		serve_err("VHOST_BLK_GET_CONFIG: %s", strerror(-ret));
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return ret;
}

static uint64_t serve_config_capacity(const struct vhost_blk_config *config)
{
	uint64_t cap;

	memcpy(&cap, config->config, sizeof(cap));	/* le64 on x86 */
	return cap;
}

int serve_conn_init(struct serve_conn *c, const struct serve_cfg *cfg,
		    const struct serve_ops *ops, int sock)
{
	struct vhost_blk_config config;
	int fd;

	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->ops = ops;
	c->sock = sock;
	c->vfd = -1;
	c->backend_fd = -1;
	fd = serve_dev_open(cfg, ops, &config);
	if (fd < 0)
		return fd;
	c->vfd = fd;
	c->features = (config.features & ~SERVE_FEATURES_NEVER) |
		      (1ULL << VHOST_USER_F_PROTOCOL_FEATURES);
	c->capacity = serve_config_capacity(&config);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Rings                                                              */

/* Stop a running ring: the module drains it (nothing fetched is lost). */
static int serve_vq_stop(struct serve_conn *c, unsigned int i)
{
	struct vhost_vring_state s = { .index = i };
	int ret;

	if (!c->vqs[i].running)
		return 0;
	ret = c->ops->ioctl(c->vfd, VHOST_GET_VRING_BASE, &s);
	if (ret)
		return ret;
	c->vqs[i].running = false;
	return 0;
}

static int serve_vqs_stop(struct serve_conn *c)
{
	unsigned int i;
	int ret;

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		ret = serve_vq_stop(c, i);
		if (ret)
			return ret;
	}
	return 0;
}

static int serve_set_wce(struct serve_conn *c);

/*
 * --poll-us: vhost-user has no message for it, so the daemon sets it on
 * every ring it is about to start (a VHOST_RESET_OWNER would clear it).
 */
static int serve_vqs_set_poll(struct serve_conn *c)
{
	struct vhost_vring_state s = { .num = c->cfg->poll_us };
	int ret;

	for (s.index = 0; s.index < c->cfg->num_queues; s.index++) {
		if (!c->vqs[s.index].addr_set)
			continue;
		ret = c->ops->ioctl(c->vfd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &s);
		if (ret) {
			serve_err("vring %u: VHOST_SET_VRING_BUSYLOOP_TIMEOUT %u us: %s",
				  s.index, s.num, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/*
 * (Re)attach the disk: the module starts every ring whose addresses are set
 * (and drains and restarts the ones already running).
 */
static int serve_vqs_start(struct serve_conn *c)
{
	struct vhost_blk_backend be = {
		.size = sizeof(be), .fd = c->cfg->disk_fd,
		.cache_mode = c->cfg->cache_mode,
	};
	unsigned int i;
	int ret;

	ret = serve_vqs_set_poll(c);
	if (!ret)
		ret = c->ops->ioctl(c->vfd, VHOST_BLK_SET_BACKEND, &be);
	/*
	 * The module keeps the write cache across attaches in one mode; set
	 * it anyway so a daemon and a module of different versions agree.
	 */
	if (!ret && c->wce_set)
		ret = serve_set_wce(c);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		c->vqs[i].running = !ret && c->vqs[i].addr_set &&
				    i < c->cfg->num_queues;
	if (ret)
		serve_err("starting the rings: %s (%s)",
			  serve_backend_hint(ret), strerror(-ret));
	return ret;
}

/* Our address for QEMU virtual address @qva, or 0 if no region has it. */
static uint64_t serve_translate(const struct serve_conn *c, uint64_t qva)
{
	unsigned int i;

	for (i = 0; i < c->nregions; i++) {
		const struct serve_region *r = &c->regions[i];

		if (qva >= r->qva && qva - r->qva < r->size)
			return (uint64_t)(uintptr_t)r->base + r->mmap_offset +
			       (qva - r->qva);
	}
	return 0;
}

/* Give the kernel ring @i's addresses, translated through our mappings. */
static int serve_vq_set_addr(struct serve_conn *c, unsigned int i,
			     const struct vhost_user_vring_addr *a)
{
	struct vhost_vring_addr k = {
		.index = i,
		.desc_user_addr = serve_translate(c, a->desc_user_addr),
		.avail_user_addr = serve_translate(c, a->avail_user_addr),
		.used_user_addr = serve_translate(c, a->used_user_addr),
		.log_guest_addr = a->log_guest_addr,
	};

	if (!k.desc_user_addr || !k.avail_user_addr || !k.used_user_addr) {
		serve_err("vring %u: ring address outside every memory region%s",
			  i, c->nregions ? "" : " (SET_VRING_ADDR before SET_MEM_TABLE)");
		return -EFAULT;
	}
	return c->ops->ioctl(c->vfd, VHOST_SET_VRING_ADDR, &k);
}

/* Make the kernel forget ring @i's addresses so no later start uses them. */
static int serve_vq_forget(struct serve_conn *c, unsigned int i)
{
	struct vhost_vring_addr k = { .index = i };
	int ret;

	if (!c->vqs[i].addr_set)
		return 0;
	ret = c->ops->ioctl(c->vfd, VHOST_SET_VRING_ADDR, &k);
	if (!ret)
		c->vqs[i].addr_set = false;
	return ret;
}

/* ------------------------------------------------------------------ */
/* Memory table                                                       */

static void serve_regions_unmap(struct serve_region *r, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (r[i].base)
			munmap(r[i].base, r[i].len);
}

static int serve_region_map(struct serve_region *r,
			    const struct vhost_user_mem_region *u, int fd)
{
	void *p;

	r->gpa = u->guest_phys_addr;
	r->size = u->memory_size;
	r->qva = u->userspace_addr;
	r->mmap_offset = u->mmap_offset;
	r->len = u->mmap_offset + u->memory_size;	/* vu_msg_check: no wrap */
	p = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		serve_err("cannot map guest memory region gpa 0x%llx size 0x%llx (%s): QEMU needs a shared memory backend: -object memory-backend-memfd,id=mem,size=SIZE,share=on -machine memory-backend=mem",
			  (unsigned long long)r->gpa,
			  (unsigned long long)r->size, strerror(-err));
		return err;
	}
	r->base = p;
	return 0;
}

/* Re-issue the addresses of every set-up ring after the mappings moved. */
static int serve_vqs_readdr(struct serve_conn *c)
{
	unsigned int i;
	int ret;

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		if (!c->vqs[i].addr_set)
			continue;
		ret = serve_vq_set_addr(c, i, &c->vqs[i].addr);
		if (ret)
			return ret;
	}
	return 0;
}

static int vu_set_mem_table(struct serve_conn *c, struct vu_msg *m, void *out,
			    uint32_t *out_size)
{
	const struct vhost_user_memory *um = &m->payload.memory;
	struct serve_region new[VHOST_USER_MAX_REGIONS] = { 0 };
	struct serve_region old[VHOST_USER_MAX_REGIONS];
	struct {
		struct vhost_memory hdr;
		struct vhost_memory_region r[VHOST_USER_MAX_REGIONS];
	} km = { .hdr.nregions = um->nregions };
	unsigned int i, oldn = c->nregions;
	int ret = 0;

	(void)out, (void)out_size;
	for (i = 0; i < um->nregions && !ret; i++) {
		ret = serve_region_map(&new[i], &um->regions[i], m->fds[i]);
		km.r[i].guest_phys_addr = new[i].gpa;
		km.r[i].memory_size = new[i].size;
		km.r[i].userspace_addr = (uintptr_t)new[i].base +
					 new[i].mmap_offset;
	}
	if (!ret)
		ret = c->ops->ioctl(c->vfd, VHOST_SET_MEM_TABLE, &km);
	if (ret) {
		serve_regions_unmap(new, um->nregions);
		return ret;
	}
	memcpy(old, c->regions, sizeof(old));
	memcpy(c->regions, new, sizeof(new));
	c->nregions = um->nregions;
	/* Set-up rings point into the old mappings: move them first. */
	ret = serve_vqs_readdr(c);
	serve_regions_unmap(old, oldn);
	for (i = 0; i < c->nregions; i++)
		serve_dbg("  region %u: gpa 0x%llx size 0x%llx qva 0x%llx offset 0x%llx -> %p",
			  i, (unsigned long long)new[i].gpa,
			  (unsigned long long)new[i].size,
			  (unsigned long long)new[i].qva,
			  (unsigned long long)new[i].mmap_offset, new[i].base);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Handlers, one per request. @out/@out_size: the reply payload.      */

typedef int (*vu_handler)(struct serve_conn *c, struct vu_msg *m, void *out,
			  uint32_t *out_size);

static int vu_reply_u64(void *out, uint32_t *out_size, uint64_t v)
{
	memcpy(out, &v, sizeof(v));
	*out_size = sizeof(v);
	return 0;
}

static int vu_get_features(struct serve_conn *c, struct vu_msg *m, void *out,
			   uint32_t *out_size)
{
	(void)m;
	return vu_reply_u64(out, out_size, c->features);
}

static int vu_set_features(struct serve_conn *c, struct vu_msg *m, void *out,
			   uint32_t *out_size)
{
	struct vhost_blk_backend detach = { .size = sizeof(detach), .fd = -1 };
	uint64_t f = m->payload.u64;
	int ret, ret2;

	(void)out, (void)out_size;
	if (f & ~c->features) {
		serve_err("SET_FEATURES 0x%llx has bits never offered (0x%llx)",
			  (unsigned long long)f,
			  (unsigned long long)(f & ~c->features));
		return -EINVAL;
	}
	f &= ~(1ULL << VHOST_USER_F_PROTOCOL_FEATURES);
	/*
	 * Features change only on stopped rings, and the module refuses them
	 * while a disk is attached (EBUSY): stop, detach, set, then attach
	 * again, which restarts the rings that are still set up (none in
	 * QEMU's start sequence, where SET_FEATURES precedes the rings).
	 */
	ret = serve_vqs_stop(c);
	if (ret)
		return ret;
	ret = c->ops->ioctl(c->vfd, VHOST_BLK_SET_BACKEND, &detach);
	if (ret) {
		serve_err("detaching the disk to change features: %s",
			  strerror(-ret));
		return ret;
	}
	ret = c->ops->ioctl(c->vfd, VHOST_SET_FEATURES, &f);
	if (ret)
		serve_err("VHOST_SET_FEATURES 0x%llx: %s",
			  (unsigned long long)f, strerror(-ret));
	ret2 = serve_vqs_start(c);
	return ret ? ret : ret2;
}

static int vu_set_owner(struct serve_conn *c, struct vu_msg *m, void *out,
			uint32_t *out_size)
{
	/* The daemon became the kernel device's owner at connect time. */
	(void)c, (void)m, (void)out, (void)out_size;
	return 0;
}

static int vu_reset_owner(struct serve_conn *c, struct vu_msg *m, void *out,
			  uint32_t *out_size)
{
	unsigned int i;
	int ret;

	(void)m, (void)out, (void)out_size;
	ret = serve_vqs_stop(c);
	for (i = 0; !ret && i < VHOST_BLK_MAX_QUEUES; i++) {
		ret = serve_vq_forget(c, i);
		c->vqs[i].enabled = false;
	}
	return ret;
}

static int vu_set_vring_num_base(struct serve_conn *c, struct vu_msg *m,
				 void *out, uint32_t *out_size)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vhost_vring_state k = { .index = s->index, .num = s->num };
	bool num = m->hdr.request == VHOST_USER_SET_VRING_NUM;

	(void)out, (void)out_size;
	if (c->vqs[s->index].running) {
		serve_err("vring %u: %s while the ring runs (no GET_VRING_BASE first)",
			  s->index, num ? "SET_VRING_NUM" : "SET_VRING_BASE");
		return -EBUSY;
	}
	return c->ops->ioctl(c->vfd, num ? VHOST_SET_VRING_NUM :
				     VHOST_SET_VRING_BASE, &k);
}

static int vu_set_vring_addr(struct serve_conn *c, struct vu_msg *m,
			     void *out, uint32_t *out_size)
{
	const struct vhost_user_vring_addr *a = &m->payload.addr;
	int ret;

	(void)out, (void)out_size;
	if (a->flags) {
		serve_err("vring %u: used-ring logging asked for, but dirty logging (LOG_ALL) is not offered",
			  a->index);
		return -EOPNOTSUPP;
	}
	ret = serve_vq_set_addr(c, a->index, a);
	if (ret)
		return ret;
	c->vqs[a->index].addr = *a;
	c->vqs[a->index].addr_set = true;
	return 0;
}

static int vu_get_vring_base(struct serve_conn *c, struct vu_msg *m,
			     void *out, uint32_t *out_size)
{
	struct vhost_vring_state k = { .index = m->payload.state.index };
	struct vhost_user_vring_state r;
	int ret;

	/* Stops and drains the ring, then reads last_avail_idx. */
	ret = c->ops->ioctl(c->vfd, VHOST_GET_VRING_BASE, &k);
	if (ret)
		return ret;
	c->vqs[k.index].running = false;
	c->vqs[k.index].enabled = false;
	ret = serve_vq_forget(c, k.index);
	if (ret)
		return ret;
	r.index = k.index;
	r.num = k.num;
	memcpy(out, &r, sizeof(r));
	*out_size = sizeof(r);
	return 0;
}

static int vu_set_vring_file(struct serve_conn *c, struct vu_msg *m,
			     void *out, uint32_t *out_size)
{
	struct vhost_vring_file k = {
		.index = m->payload.u64 & VHOST_USER_VRING_IDX_MASK,
		.fd = m->nfds ? m->fds[0] : VHOST_FILE_UNBIND,
	};
	unsigned long req;

	(void)out, (void)out_size;
	switch (m->hdr.request) {
	case VHOST_USER_SET_VRING_KICK:
		req = VHOST_SET_VRING_KICK;
		if (!m->nfds)
			serve_err("vring %u: no kick fd (polling asked for): the kernel only processes the ring when kicked",
				  k.index);
		break;
	case VHOST_USER_SET_VRING_CALL:
		req = VHOST_SET_VRING_CALL;
		break;
	default:
		req = VHOST_SET_VRING_ERR;
		break;
	}
	/* The kernel takes its own reference; ours is closed after. */
	return c->ops->ioctl(c->vfd, req, &k);
}

static int vu_get_protocol_features(struct serve_conn *c, struct vu_msg *m,
				    void *out, uint32_t *out_size)
{
	(void)c, (void)m;
	return vu_reply_u64(out, out_size, SERVE_PROTOCOL_FEATURES);
}

static int vu_set_protocol_features(struct serve_conn *c, struct vu_msg *m,
				    void *out, uint32_t *out_size)
{
	uint64_t f = m->payload.u64;

	(void)out, (void)out_size;
	if (f & ~SERVE_PROTOCOL_FEATURES)
		serve_err("SET_PROTOCOL_FEATURES: ignoring bits never offered (0x%llx)",
			  (unsigned long long)(f & ~SERVE_PROTOCOL_FEATURES));
	c->protocol = f & SERVE_PROTOCOL_FEATURES;
	return 0;
}

static int vu_get_queue_num(struct serve_conn *c, struct vu_msg *m,
			    void *out, uint32_t *out_size)
{
	(void)m;
	return vu_reply_u64(out, out_size, c->cfg->num_queues);
}

static int vu_set_vring_enable(struct serve_conn *c, struct vu_msg *m,
			       void *out, uint32_t *out_size)
{
	unsigned int i = m->payload.state.index;
	struct serve_vq *vq = &c->vqs[i];

	(void)out, (void)out_size;
	if (m->payload.state.num > 1)
		return -EINVAL;
	vq->enabled = m->payload.state.num;
	if (!vq->enabled)
		return serve_vq_stop(c, i);
	/* QEMU enables every vq, set up or not (SeaBIOS sets up vq0 only). */
	if (vq->addr_set && !vq->running)
		return serve_vqs_start(c);
	return 0;
}

static int vu_set_backend_req_fd(struct serve_conn *c, struct vu_msg *m,
				 void *out, uint32_t *out_size)
{
	(void)out, (void)out_size;
	if (!(c->protocol & (1ULL << VHOST_USER_PROTOCOL_F_BACKEND_REQ)))
		return -EOPNOTSUPP;
	if (c->backend_fd >= 0)
		close(c->backend_fd);
	c->backend_fd = m->fds[0];
	c->acks_pending = 0;
	m->fds[0] = -1;
	return 0;
}

static int serve_read_config(struct serve_conn *c,
			     struct vhost_blk_config *config)
{
	memset(config, 0, sizeof(*config));
	config->size = sizeof(*config);
	return c->ops->ioctl(c->vfd, VHOST_BLK_GET_CONFIG, config);
}

static int vu_get_config(struct serve_conn *c, struct vu_msg *m, void *out,
			 uint32_t *out_size)
{
	struct vhost_user_config *req = &m->payload.config;
	struct vhost_user_config *r = out;
	struct vhost_blk_config config;
	int ret;

	if (!(c->protocol & (1ULL << VHOST_USER_PROTOCOL_F_CONFIG)))
		return -EOPNOTSUPP;
	ret = serve_read_config(c, &config);
	if (ret)
		return ret;
	if (c->wce_set)
		config.config[SERVE_WCE_OFFSET] = c->wce;
	c->capacity = serve_config_capacity(&config);
	r->offset = req->offset;
	r->size = req->size;
	r->flags = req->flags;
	memcpy(r->region, config.config + req->offset, req->size);
	*out_size = VHOST_USER_CONFIG_HDR_SIZE + req->size;
	return 0;
}

/* The guest's write cache byte, as the module must follow it. */
static int serve_set_wce(struct serve_conn *c)
{
	struct vhost_blk_params p = {
		.size = sizeof(p), .mask = VHOST_BLK_PARAM_WCE, .wce = c->wce,
	};
	int ret;

	ret = c->ops->ioctl(c->vfd, VHOST_BLK_SET_PARAMS, &p);
	if (ret)
		serve_err("VHOST_BLK_SET_PARAMS (write cache %u): %s", c->wce,
			  strerror(-ret));
	return ret;
}

static int vu_set_config(struct serve_conn *c, struct vu_msg *m, void *out,
			 uint32_t *out_size)
{
	const struct vhost_user_config *req = &m->payload.config;

	(void)out, (void)out_size;
	if (!(c->protocol & (1ULL << VHOST_USER_PROTOCOL_F_CONFIG)))
		return -EOPNOTSUPP;
	if (req->offset != SERVE_WCE_OFFSET || req->size != 1) {
		serve_err("SET_CONFIG offset %u size %u: only the writeback byte (offset 32, size 1) is writable",
			  req->offset, req->size);
		return -EPERM;
	}
	c->wce = req->region[0] ? 1 : 0;
	c->wce_set = true;
	serve_dbg("  guest set the write cache to %s", c->wce ? "writeback" : "writethrough");
	return serve_set_wce(c);
}

static int vu_refuse(struct serve_conn *c, struct vu_msg *m, void *out,
		     uint32_t *out_size)
{
	(void)c, (void)out, (void)out_size;
	serve_err("%s is not implemented (never offered): refusing it",
		  vu_request_name(m->hdr.request));
	return -EOPNOTSUPP;
}

static const vu_handler vu_handlers[VHOST_USER_REQUEST_MAX] = {
	[VHOST_USER_GET_FEATURES] = vu_get_features,
	[VHOST_USER_SET_FEATURES] = vu_set_features,
	[VHOST_USER_SET_OWNER] = vu_set_owner,
	[VHOST_USER_RESET_OWNER] = vu_reset_owner,
	[VHOST_USER_SET_MEM_TABLE] = vu_set_mem_table,
	[VHOST_USER_SET_VRING_NUM] = vu_set_vring_num_base,
	[VHOST_USER_SET_VRING_ADDR] = vu_set_vring_addr,
	[VHOST_USER_SET_VRING_BASE] = vu_set_vring_num_base,
	[VHOST_USER_GET_VRING_BASE] = vu_get_vring_base,
	[VHOST_USER_SET_VRING_KICK] = vu_set_vring_file,
	[VHOST_USER_SET_VRING_CALL] = vu_set_vring_file,
	[VHOST_USER_SET_VRING_ERR] = vu_set_vring_file,
	[VHOST_USER_GET_PROTOCOL_FEATURES] = vu_get_protocol_features,
	[VHOST_USER_SET_PROTOCOL_FEATURES] = vu_set_protocol_features,
	[VHOST_USER_GET_QUEUE_NUM] = vu_get_queue_num,
	[VHOST_USER_SET_VRING_ENABLE] = vu_set_vring_enable,
	[VHOST_USER_SET_BACKEND_REQ_FD] = vu_set_backend_req_fd,
	[VHOST_USER_GET_CONFIG] = vu_get_config,
	[VHOST_USER_SET_CONFIG] = vu_set_config,
};

/* ------------------------------------------------------------------ */
/* Dispatch                                                           */

static void serve_log_msg(const struct serve_conn *c, const struct vu_msg *m)
{
	const union vhost_user_payload *p = &m->payload;
	const char *nr = m->hdr.flags & VHOST_USER_NEED_REPLY ? "[NR]" : "";
	const char *name = vu_request_name(m->hdr.request);
	char what[160] = "";

	if (!serve_verbose)
		return;
	switch (m->hdr.request) {
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		snprintf(what, sizeof(what), " vq %u num %u", p->state.index,
			 p->state.num);
		break;
	case VHOST_USER_SET_VRING_ADDR:
		snprintf(what, sizeof(what), " vq %u flags %u desc 0x%llx avail 0x%llx used 0x%llx",
			 p->addr.index, p->addr.flags,
			 (unsigned long long)p->addr.desc_user_addr,
			 (unsigned long long)p->addr.avail_user_addr,
			 (unsigned long long)p->addr.used_user_addr);
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		snprintf(what, sizeof(what), " vq %llu %s",
			 (unsigned long long)(p->u64 & VHOST_USER_VRING_IDX_MASK),
			 p->u64 & VHOST_USER_VRING_NOFD ? "no fd" : "fd");
		break;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		snprintf(what, sizeof(what), " offset %u size %u",
			 p->config.offset, p->config.size);
		break;
	case VHOST_USER_SET_MEM_TABLE:
		snprintf(what, sizeof(what), " %u regions", p->memory.nregions);
		break;
	default:
		if (m->hdr.size == sizeof(uint64_t))
			snprintf(what, sizeof(what), " 0x%llx",
				 (unsigned long long)p->u64);
	}
	serve_dbg("msg %lu: %s%s%s (size %u, %u fds)", c->msgs, name, nr, what,
		  m->hdr.size, m->nfds);
}

/* Answer a handled message: its reply, an ack, silence or a disconnect. */
static int serve_answer(struct serve_conn *c, const struct vu_msg *m,
			int ret, const void *out, uint32_t out_size)
{
	const char *name = vu_request_name(m->hdr.request);
	uint64_t ack;

	if (vu_msg_has_reply(m->hdr.request)) {
		if (!ret)
			return vu_msg_reply(c->sock, m, out, out_size);
		serve_err("%s failed: %s", name, strerror(-ret));
		/* A failed GET_CONFIG is an empty reply (the protocol's way). */
		if (m->hdr.request == VHOST_USER_GET_CONFIG)
			return vu_msg_reply(c->sock, m, NULL, 0);
		return ret;
	}
	if ((m->hdr.flags & VHOST_USER_NEED_REPLY) &&
	    (c->protocol & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK))) {
		if (ret)
			serve_err("%s failed: %s (acked as a failure)", name,
				  strerror(-ret));
		ack = ret ? (uint64_t)-ret : 0;
		return vu_msg_reply(c->sock, m, &ack, sizeof(ack));
	}
	if (!ret)
		return 0;
	/* Not implemented and nothing waits: refusing is enough. */
	if (ret == -EOPNOTSUPP)
		return 0;
	serve_err("%s failed: %s; QEMU cannot be told (no reply asked for): disconnecting",
		  name, strerror(-ret));
	return ret;
}

int serve_conn_handle(struct serve_conn *c)
{
	struct vu_limits lim = { .num_queues = c->cfg->num_queues };
	union {
		union vhost_user_payload p;
		char buf[VU_MAX_PAYLOAD];
	} out;
	uint32_t out_size = 0;
	const char *why;
	struct vu_msg m;
	vu_handler h;
	int ret;

	ret = vu_msg_recv(c->sock, &m);
	if (ret == -EAGAIN)
		return 0;
	if (ret == -ENOTCONN) {
		serve_err("front-end disconnected after %lu messages", c->msgs);
		return ret;
	}
	if (ret) {
		serve_err("reading a message: %s; disconnecting",
			  ret == -ECONNRESET ? "the front-end vanished mid-message" :
			  strerror(-ret));
		return ret;
	}
	c->msgs++;
	serve_log_msg(c, &m);
	ret = vu_msg_check(&m, &lim, &why);
	if (ret) {
		serve_err("malformed %s (request %u, size %u, %u fds): %s; disconnecting",
			  vu_request_name(m.hdr.request), m.hdr.request,
			  m.hdr.size, m.nfds, why);
		vu_msg_close_fds(&m);
		return ret;
	}
	h = vu_handlers[m.hdr.request] ?: vu_refuse;
	memset(&out, 0, sizeof(out));
	ret = h(c, &m, &out, &out_size);
	vu_msg_close_fds(&m);
	return serve_answer(c, &m, ret, &out, out_size);
}

int serve_conn_backend_event(struct serve_conn *c)
{
	struct vu_msg m;
	int ret;

	ret = vu_msg_recv(c->backend_fd, &m);
	if (ret == -EAGAIN)
		return 0;
	if (ret) {
		serve_err("backend channel closed (%s)", strerror(-ret));
		close(c->backend_fd);
		c->backend_fd = -1;
		return ret;
	}
	vu_msg_close_fds(&m);
	if (!(m.hdr.flags & VHOST_USER_REPLY) || m.hdr.size != sizeof(uint64_t) ||
	    !c->acks_pending) {
		serve_err("unexpected message %u on the backend channel: ignored",
			  m.hdr.request);
		return 0;
	}
	c->acks_pending--;
	if (m.payload.u64)
		serve_err("QEMU failed the config-change notice (%llu)",
			  (unsigned long long)m.payload.u64);
	else
		serve_dbg("QEMU acked the config-change notice");
	return 0;
}

void serve_conn_check_resize(struct serve_conn *c)
{
	struct vhost_blk_config config;
	uint32_t flags = VHOST_USER_VERSION;
	uint64_t cap;
	int ret;

	if (c->vfd < 0 || serve_read_config(c, &config))
		return;
	cap = serve_config_capacity(&config);
	if (cap == c->capacity)
		return;
	serve_err("%s: capacity changed from %llu to %llu sectors",
		  c->cfg->disk_path, (unsigned long long)c->capacity,
		  (unsigned long long)cap);
	c->capacity = cap;
	if (c->backend_fd < 0) {
		serve_err("no backend channel (BACKEND_REQ not negotiated): the guest sees the new size after a restart");
		return;
	}
	/*
	 * QEMU answers with GET_CONFIG on the main socket before it acks here:
	 * the ack is read from the event loop, never waited for.
	 */
	if (c->protocol & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK))
		flags |= VHOST_USER_NEED_REPLY;
	ret = vu_msg_send(c->backend_fd, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
			  flags, NULL, 0, NULL, 0);
	if (ret)
		serve_err("sending the config-change notice: %s", strerror(-ret));
	else if (flags & VHOST_USER_NEED_REPLY)
		c->acks_pending++;
}

void serve_conn_close(struct serve_conn *c)
{
	if (c->vfd >= 0)
		close(c->vfd);
	c->vfd = -1;
	serve_regions_unmap(c->regions, c->nregions);
	c->nregions = 0;
	if (c->backend_fd >= 0)
		close(c->backend_fd);
	c->backend_fd = -1;
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The selftests' guest side: see vblk_driver.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>

#include "vblk_driver.h"

/* Descriptor bookkeeping per queue: free stack and chain lengths. */
struct vdrv_ring_state {
	uint16_t free[32768];
	unsigned int nfree;
	uint16_t chain_len[32768];
	struct vring_desc *indirect[32768];	/* per head, reused */
};

#define VDRV_MAX_INDIRECT	512

/* Every descriptor free again; indirect tables stay for reuse. */
static void vdrv_state_reset(struct vdrv_queue *q)
{
	struct vdrv_ring_state *s = q->state;
	unsigned int i;

	s->nfree = 0;
	for (i = q->num; i > 0; i--)
		s->free[s->nfree++] = i - 1;
}

int vdrv_open(struct vdrv *d, size_t mem_size)
{
	memset(d, 0, sizeof(*d));
	d->memfd = -1;
	d->fd = open("/dev/vhost-blk", O_RDWR);
	if (d->fd < 0)
		return -errno;
	d->mem_size = mem_size;
	d->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->mem == MAP_FAILED) {
		close(d->fd);
		return -ENOMEM;
	}
	return 0;
}

int vdrv_open_memfd(struct vdrv *d, size_t mem_size)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->memfd = memfd_create("vdrv-guest-mem", MFD_CLOEXEC);
	if (d->memfd < 0)
		return -errno;
	if (ftruncate(d->memfd, mem_size)) {
		close(d->memfd);
		return -errno;
	}
	d->mem_size = mem_size;
	d->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      d->memfd, 0);
	if (d->mem == MAP_FAILED) {
		close(d->memfd);
		return -ENOMEM;
	}
	return 0;
}

/* Threads of one test share the allocator (indirect tables). */
static pthread_mutex_t vdrv_alloc_lock = PTHREAD_MUTEX_INITIALIZER;

void *vdrv_alloc(struct vdrv *d, size_t len, size_t align)
{
	size_t off;

	pthread_mutex_lock(&vdrv_alloc_lock);
	off = (d->mem_used + align - 1) & ~(align - 1);
	if (off + len > d->mem_size) {
		fprintf(stderr, "vdrv_alloc: guest memory of %zu bytes exhausted\n",
			d->mem_size);
		abort();
	}
	d->mem_used = off + len;
	pthread_mutex_unlock(&vdrv_alloc_lock);
	memset(d->mem + off, 0, len);
	return d->mem + off;
}

uint64_t vdrv_gpa(struct vdrv *d, const void *p)
{
	return VDRV_GPA_BASE + ((const uint8_t *)p - d->mem);
}

int vdrv_queue_init(struct vdrv *d, unsigned int i, unsigned int num)
{
	struct vdrv_queue *q = &d->q[i];

	q->index = i;
	q->num = num;
	q->desc = vdrv_alloc(d, 16 * num, 4096);
	q->avail = vdrv_alloc(d, 6 + 2 * num, 2);
	q->used = vdrv_alloc(d, 6 + 8 * num, 4096);
	q->avail_idx = 0;
	q->last_used = 0;
	if (!q->state)
		q->state = calloc(1, sizeof(*q->state));
	if (!q->state)
		return -ENOMEM;
	vdrv_state_reset(q);
	if (q->kick <= 0) {
		q->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		q->err = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->kick < 0 || q->call < 0 || q->err < 0)
			return -errno;
	}
	return 0;
}

int vdrv_setup_queue(struct vdrv *d, unsigned int i, unsigned int num)
{
	struct vdrv_queue *q = &d->q[i];
	struct vhost_vring_state st = { .index = i, .num = num };
	struct vhost_vring_addr addr = { .index = i };
	struct vhost_vring_file f = { .index = i };
	int ret;

	ret = vdrv_queue_init(d, i, num);
	if (ret)
		return ret;
	if (ioctl(d->fd, VHOST_SET_VRING_NUM, &st))
		return -errno;
	st.num = 0;
	if (ioctl(d->fd, VHOST_SET_VRING_BASE, &st))
		return -errno;
	addr.desc_user_addr = (uintptr_t)q->desc;
	addr.avail_user_addr = (uintptr_t)q->avail;
	addr.used_user_addr = (uintptr_t)q->used;
	if (ioctl(d->fd, VHOST_SET_VRING_ADDR, &addr))
		return -errno;
	f.fd = q->kick;
	if (ioctl(d->fd, VHOST_SET_VRING_KICK, &f))
		return -errno;
	f.fd = q->call;
	if (ioctl(d->fd, VHOST_SET_VRING_CALL, &f))
		return -errno;
	f.fd = q->err;
	if (ioctl(d->fd, VHOST_SET_VRING_ERR, &f))
		return -errno;
	return 0;
}

/*
 * Reset a queue the way a VMM does after DEVICE_NEEDS_RESET: the backend
 * must be detached; the same ring memory is cleared and set up at base 0.
 */
int vdrv_reset_queue(struct vdrv *d, unsigned int i)
{
	struct vdrv_queue *q = &d->q[i];
	struct vhost_vring_state st = { .index = i, .num = 0 };

	memset(q->desc, 0, 16 * q->num);
	memset(q->avail, 0, 6 + 2 * q->num);
	memset(q->used, 0, 6 + 8 * q->num);
	q->avail_idx = 0;
	q->last_used = 0;
	vdrv_state_reset(q);
	return ioctl(d->fd, VHOST_SET_VRING_BASE, &st) ? -errno : 0;
}

int vdrv_setup(struct vdrv *d, unsigned int nq, unsigned int num,
	       uint64_t features)
{
	struct vhost_memory *m;
	struct vhost_blk_params p = {
		.size = sizeof(p),
		.mask = VHOST_BLK_PARAM_NUM_QUEUES,
		.num_queues = nq,
	};
	unsigned int i;
	int ret;

	if (ioctl(d->fd, VHOST_SET_OWNER))
		return -errno;
	d->features = features;
	if (ioctl(d->fd, VHOST_SET_FEATURES, &features))
		return -errno;

	m = calloc(1, sizeof(*m) + sizeof(m->regions[0]));
	m->nregions = 1;
	m->regions[0].guest_phys_addr = VDRV_GPA_BASE;
	m->regions[0].memory_size = d->mem_size;
	m->regions[0].userspace_addr = (uintptr_t)d->mem;
	ret = ioctl(d->fd, VHOST_SET_MEM_TABLE, m) ? -errno : 0;
	free(m);
	if (ret)
		return ret;
	if (ioctl(d->fd, VHOST_BLK_SET_PARAMS, &p))
		return -errno;

	d->nq = nq;
	for (i = 0; i < nq; i++) {
		ret = vdrv_setup_queue(d, i, num);
		if (ret)
			return ret;
	}
	return 0;
}

int vdrv_attach(struct vdrv *d, int bdev_fd)
{
	struct vhost_blk_backend b = { .size = sizeof(b), .fd = bdev_fd };

	return ioctl(d->fd, VHOST_BLK_SET_BACKEND, &b) ? -errno : 0;
}

int vdrv_open_on(struct vdrv *d, const char *disk, int flags,
		 size_t mem_size, unsigned int nq, unsigned int num)
{
	int fd, ret;

	fd = open(disk, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = vdrv_open(d, mem_size);
	if (ret) {
		close(fd);
		return ret;
	}
	ret = vdrv_setup(d, nq, num, VHOST_BLK_FEATURES);
	if (!ret)
		ret = vdrv_attach(d, fd);
	if (ret) {
		vdrv_close(d);
		close(fd);
		return ret;
	}
	return fd;
}

void vdrv_close(struct vdrv *d)
{
	unsigned int i;

	if (d->fd >= 0)
		close(d->fd);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		if (d->q[i].kick > 0) {
			close(d->q[i].kick);
			close(d->q[i].call);
			close(d->q[i].err);
		}
		free(d->q[i].state);
		d->q[i].state = NULL;
	}
	munmap(d->mem, d->mem_size);
	if (d->memfd >= 0)
		close(d->memfd);
	d->fd = -1;
	d->memfd = -1;
}

static void vdrv_publish(struct vdrv_queue *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->num] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

int vdrv_add(struct vdrv *d, struct vdrv_queue *q, const struct vseg *segs,
	     unsigned int n, bool indirect)
{
	struct vdrv_ring_state *s = q->state;
	unsigned int need = indirect ? 1 : n, i;
	uint16_t idx[VDRV_MAX_INDIRECT] = { 0 };
	struct vring_desc *table;

	if (s->nfree < need || n > VDRV_MAX_INDIRECT)
		return -ENOSPC;
	for (i = 0; i < need; i++)
		idx[i] = s->free[--s->nfree];

	if (indirect) {
		/* One table per head, reused: long runs must not run dry. */
		if (!s->indirect[idx[0]])
			s->indirect[idx[0]] = vdrv_alloc(d, 16 * VDRV_MAX_INDIRECT, 16);
		table = s->indirect[idx[0]];
		for (i = 0; i < n; i++) {
			table[i].addr = vdrv_gpa(d, segs[i].addr);
			table[i].len = segs[i].len;
			table[i].flags = (segs[i].in ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VRING_DESC_F_NEXT : 0);
			table[i].next = i + 1;
		}
		q->desc[idx[0]].addr = vdrv_gpa(d, table);
		q->desc[idx[0]].len = 16 * n;
		q->desc[idx[0]].flags = VRING_DESC_F_INDIRECT;
		q->desc[idx[0]].next = 0;
	} else {
		for (i = 0; i < n; i++) {
			struct vring_desc *desc = &q->desc[idx[i]];

			desc->addr = vdrv_gpa(d, segs[i].addr);
			desc->len = segs[i].len;
			desc->flags = (segs[i].in ? VRING_DESC_F_WRITE : 0) |
				      (i + 1 < n ? VRING_DESC_F_NEXT : 0);
			desc->next = i + 1 < n ? idx[i + 1] : 0;
		}
	}
	s->chain_len[idx[0]] = need;
	vdrv_publish(q, idx[0]);
	return idx[0];
}

void vdrv_kick(struct vdrv_queue *q)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (write(q->kick, &one, sizeof(one)) != sizeof(one))
		abort();
}

bool vdrv_kick_needed(struct vdrv *d, struct vdrv_queue *q, uint16_t old)
{
	uint16_t event, new = q->avail_idx;

	if (!(d->features & (1ULL << VIRTIO_RING_F_EVENT_IDX))) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return !(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) &
			 VRING_USED_F_NO_NOTIFY);
	}
	/* Order the avail index store before the avail_event load. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	event = __atomic_load_n((uint16_t *)&q->used->ring[q->num],
				__ATOMIC_ACQUIRE);
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

static void vdrv_free_chain(struct vdrv_queue *q, uint16_t head)
{
	struct vdrv_ring_state *s = q->state;
	unsigned int n = s->chain_len[head], i;
	uint16_t idx = head;

	for (i = 0; i < n; i++) {
		s->free[s->nfree++] = idx;
		idx = q->desc[idx].next;
	}
	s->chain_len[head] = 0;
}

int vdrv_reap(struct vdrv *d, struct vdrv_queue *q, uint32_t *head,
	      uint32_t *len)
{
	uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	struct vring_used_elem *e;

	if (idx == q->last_used)
		return -EAGAIN;
	e = &q->used->ring[q->last_used % q->num];
	*head = e->id;
	*len = e->len;
	q->last_used++;
	if (d->features & (1ULL << VIRTIO_RING_F_EVENT_IDX))
		__atomic_store_n(&q->avail->ring[q->num], q->last_used,
				 __ATOMIC_RELEASE);
	if (*head < q->num)
		vdrv_free_chain(q, *head);
	return 0;
}

int vdrv_get_used(struct vdrv *d, struct vdrv_queue *q, uint32_t *head,
		  uint32_t *len, int ms)
{
	struct pollfd pfd = { .fd = q->call, .events = POLLIN };
	uint64_t cnt;

	for (;;) {
		if (!vdrv_reap(d, q, head, len))
			return 0;
		/* No look after a timeout: a missing interrupt is a bug. */
		if (poll(&pfd, 1, ms) <= 0)
			return -ETIMEDOUT;
		if (read(q->call, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			return -errno;
	}
}

bool vdrv_error_signalled(struct vdrv_queue *q, int ms)
{
	struct pollfd pfd = { .fd = q->err, .events = POLLIN };
	uint64_t cnt;

	if (poll(&pfd, 1, ms) <= 0)
		return false;
	return read(q->err, &cnt, sizeof(cnt)) == sizeof(cnt);
}

struct vreq vdrv_req_alloc(struct vdrv *d, uint32_t type, uint64_t sector,
			   uint32_t len)
{
	struct vreq r;

	r.hdr = vdrv_alloc(d, sizeof(*r.hdr), 16);
	r.hdr->type = type;
	r.hdr->sector = sector;
	r.len = len;
	r.data = len ? vdrv_alloc(d, len, 4096) : NULL;
	r.status = vdrv_alloc(d, 1, 1);
	*r.status = 0xff;
	return r;
}

int vdrv_start(struct vdrv *d, struct vdrv_queue *q, struct vreq *r,
	       unsigned int nsegs, bool indirect)
{
	struct vseg segs[300];
	bool in = r->hdr->type == VIRTIO_BLK_T_IN ||
		  r->hdr->type == VIRTIO_BLK_T_GET_ID;
	unsigned int n = 0, i;
	uint32_t off = 0;

	*r->status = 0xff;
	segs[n++] = (struct vseg){ r->hdr, sizeof(*r->hdr), false };
	if (r->len) {
		if (!nsegs)
			nsegs = 1;
		for (i = 0; i < nsegs; i++) {
			/* Equal pieces, whole sectors where possible. */
			uint32_t piece = i + 1 == nsegs ? r->len - off :
					 (r->len / nsegs) & ~511u;

			if (!piece)
				piece = r->len / nsegs;
			segs[n++] = (struct vseg){ r->data + off, piece, in };
			off += piece;
		}
	}
	segs[n++] = (struct vseg){ r->status, 1, true };
	return vdrv_add(d, q, segs, n, indirect);
}

int vdrv_do(struct vdrv *d, struct vdrv_queue *q, struct vreq *r,
	    unsigned int nsegs, bool indirect, uint32_t *used_len)
{
	uint32_t head, len;
	int h;

	h = vdrv_start(d, q, r, nsegs, indirect);
	if (h < 0)
		return -1;
	vdrv_kick(q);
	if (vdrv_get_used(d, q, &head, &len, 10000))
		return -1;
	if (head != (uint32_t)h)
		return -2;
	if (used_len)
		*used_len = len;
	return *r->status;
}

int vblk_open_dev(const char *path, int flags)
{
	return open(path, flags | O_CLOEXEC);
}

int vblk_brd(unsigned int n, size_t *bytes)
{
	char path[32];
	uint64_t size;
	int fd;

	snprintf(path, sizeof(path), "/dev/ram%u", n);
	if (access(path, F_OK) &&
	    system("modprobe brd rd_nr=4 rd_size=16384 2>/dev/null"))
		return -ENODEV;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (bytes) {
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			close(fd);
			return -errno;
		}
		*bytes = size;
	}
	return fd;
}

int vblk_write_attr(const char *dir, const char *name, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return vblk_write_str(path, val);
}

int vblk_null_blk(const char *name, unsigned int mb, unsigned int bs,
		  bool cache, char *path, size_t pathlen)
{
	char dir[128], val[32];
	int ret;

	if (system("modprobe null_blk nr_devices=0 2>/dev/null"))
		return -ENODEV;
	if (access("/sys/kernel/config/nullb", F_OK))
		system("mount -t configfs none /sys/kernel/config 2>/dev/null");
	snprintf(dir, sizeof(dir), "/sys/kernel/config/nullb/%s", name);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	snprintf(val, sizeof(val), "%u", mb);
	ret = vblk_write_attr(dir, "size", val);
	snprintf(val, sizeof(val), "%u", bs);
	if (!ret)
		ret = vblk_write_attr(dir, "blocksize", val);
	if (!ret)
		ret = vblk_write_attr(dir, "memory_backed", "1");
	if (!ret && cache)
		ret = vblk_write_attr(dir, "cache_size", "16");
	if (!ret)
		ret = vblk_write_attr(dir, "power", "1");
	if (ret)
		return ret;
	snprintf(path, pathlen, "/dev/%s", name);
	/* udev is absent in the test VM: devtmpfs creates the node. */
	for (int i = 0; i < 100 && access(path, F_OK); i++)
		usleep(10000);
	return access(path, F_OK) ? -ENOENT : 0;
}

void vblk_null_blk_remove(const char *name)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "/sys/kernel/config/nullb/%s", name);
	vblk_write_attr(dir, "power", "0");
	rmdir(dir);
}

bool vblk_mounted(const char *dir)
{
	char line[512], path[256];
	bool found = false;
	FILE *f;

	f = fopen("/proc/mounts", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %255s", path) == 1 &&
			!strcmp(path, dir);
	fclose(f);
	return found;
}

void vblk_fs_remove(const char *name, const char *dir)
{
	umount(dir);
	rmdir(dir);
	vblk_null_blk_remove(name);
}

int vblk_fs(const char *name, const char *fstype, bool cache, const char *dir)
{
	bool xfs = !strcmp(fstype, "xfs");
	char dev[64], cmd[256];
	int ret;

	if (vblk_mounted(dir))
		return 0;
	snprintf(cmd, sizeof(cmd), "modprobe %s 2>/dev/null", fstype);
	(void)!system(cmd);
	/* mkfs.xfs wants 300 MiB at least; null_blk allocates on write. */
	ret = vblk_null_blk(name, xfs ? 320 : 64, 512, cache, dev, sizeof(dev));
	if (ret)
		return ret;
	snprintf(cmd, sizeof(cmd), "mkfs.%s -q %s %s >/dev/null 2>&1",
		 fstype, xfs ? "-f" : "-F", dev);
	ret = -ENOEXEC;
	if (!system(cmd)) {
		mkdir(dir, 0755);
		ret = mount(dev, dir, fstype, 0, xfs ? NULL : "commit=60") ?
		      -errno : 0;
	}
	if (ret)
		vblk_fs_remove(name, dir);
	return ret;
}

bool vblk_find_ctl(char *path, size_t size)
{
	char self[256];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (getenv("VHOSTBLKCTL")) {
		snprintf(path, size, "%s", getenv("VHOSTBLKCTL"));
		return !access(path, X_OK);
	}
	if (n <= 0)
		return false;
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(path, size, "%s/../../../tools/vhostblkctl", self);
	return !access(path, X_OK);
}

int vblk_loop(const char *file, size_t bytes, char *path, size_t pathlen)
{
	char cmd[256];
	FILE *p;
	int fd;

	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, bytes)) {
		close(fd);
		return -errno;
	}
	close(fd);
	system("modprobe loop 2>/dev/null");
	snprintf(cmd, sizeof(cmd), "losetup --show -f %s", file);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	if (!fgets(path, pathlen, p)) {
		pclose(p);
		return -ENODEV;
	}
	pclose(p);
	path[strcspn(path, "\n")] = 0;
	return 0;
}

void vblk_loop_remove(const char *path)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "losetup -d %s", path);
	system(cmd);
}

int vblk_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

int vblk_write_str(const char *path, const char *val)
{
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int vblk_read_str(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* The first number in a sysfs file ("12 N0=12 C0=3"), or -1. */
static long vblk_read_long(const char *path)
{
	char buf[512];
	long v;

	if (vblk_read_str(path, buf, sizeof(buf)) || sscanf(buf, "%ld", &v) != 1)
		return -1;
	return v;
}

int vblk_slab_count(const char *pattern, struct vblk_slab *c)
{
	char path[PATH_MAX], seen[16][PATH_MAX];
	int n = 0, ret = 0;
	glob_t g;

	c->objects = 0;
	c->cpu_free = 0;
	snprintf(path, sizeof(path), "/sys/kernel/slab/%s", pattern);
	if (glob(path, 0, NULL, &g))
		return 0;
	for (size_t i = 0; i < g.gl_pathc && n < 16; i++) {
		long objects, cpu_slabs, after, per_slab;
		int j;

		/* Merged caches: one directory, several names. */
		if (!realpath(g.gl_pathv[i], seen[n]))
			continue;
		for (j = 0; j < n && strcmp(seen[j], seen[n]); j++)
			;
		if (j < n)
			continue;
		/*
		 * A slab a CPU takes or gives back between the reads must
		 * not make free objects look used: count the CPUs' slabs
		 * before and after the objects, and take the larger.
		 */
		snprintf(path, sizeof(path), "%s/cpu_slabs", seen[n]);
		cpu_slabs = vblk_read_long(path);
		snprintf(path, sizeof(path), "%s/objects", seen[n]);
		objects = vblk_read_long(path);
		snprintf(path, sizeof(path), "%s/cpu_slabs", seen[n]);
		after = vblk_read_long(path);
		if (after > cpu_slabs)
			cpu_slabs = after;
		snprintf(path, sizeof(path), "%s/objs_per_slab", seen[n]);
		per_slab = vblk_read_long(path);
		if (objects < 0 || cpu_slabs < 0 || per_slab < 0) {
			ret = -ENOENT;
			break;
		}
		c->objects += objects;
		/* Each slab a CPU holds: at most all its objects free. */
		c->cpu_free += cpu_slabs * per_slab;
		n++;
	}
	globfree(&g);
	return ret ? ret : n;
}

void vblk_slab_shrink(const char *pattern)
{
	char path[PATH_MAX];
	glob_t g;

	snprintf(path, sizeof(path), "/sys/kernel/slab/%s", pattern);
	if (glob(path, 0, NULL, &g))
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		int ret;

		snprintf(path, sizeof(path), "%s/shrink", g.gl_pathv[i]);
		ret = vblk_write_str(path, "1");
		/* Best effort: a cache that will not shrink counts as it is. */
		if (ret)
			printf("# cannot shrink %s: %s\n", g.gl_pathv[i],
			       strerror(-ret));
	}
	globfree(&g);
}

bool vblk_kasan(void)
{
	char line[256], sym[128];
	bool kasan = false;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return false;
	while (!kasan && fgets(line, sizeof(line), f))
		kasan = sscanf(line, "%*s %*s %127s", sym) == 1 &&
			!strncmp(sym, "kasan_", 6);
	fclose(f);
	return kasan;
}

#define VBLK_TRACING	"/sys/kernel/tracing"
#define VBLK_BIO_QUEUE	VBLK_TRACING "/events/block/block_bio_queue"

static bool vblk_trace_we_enabled;

/*
 * Writing an event's filter never touches the tracepoint's static key (no
 * text patching, on 6.1 and 6.12): apply_event_filter() swaps the filter
 * under RCU and sets EVENT_FILE_FL_FILTERED, whose first use allocates the
 * per-CPU buffered-event pages (trace_buffered_event_enable()). Removing
 * the last filter ("0") would free them again with an IPI to every CPU, so
 * end leaves a filter in place that matches nothing instead.
 */
/* The buffer is cleared by opening "trace" with O_TRUNC, not by a write. */
static int vblk_trace_clear(void)
{
	int fd = open(VBLK_TRACING "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int vblk_trace_begin(dev_t dev)
{
	char filter[64], on[8] = "";
	int ret;

	if (access(VBLK_TRACING "/events", F_OK))
		vblk_sh("mount -t tracefs nodev %s 2>/dev/null", VBLK_TRACING);
	if (access(VBLK_BIO_QUEUE "/enable", F_OK))
		return -ENOENT;
	/* The kernel's dev_t in a filter: major << 20 | minor. */
	snprintf(filter, sizeof(filter), "dev == %u",
		 (major(dev) << 20) | minor(dev));
	ret = vblk_write_attr(VBLK_BIO_QUEUE, "filter", filter);
	if (ret)
		return ret;
	ret = vblk_read_str(VBLK_BIO_QUEUE "/enable", on, sizeof(on));
	if (ret)
		return ret;
	if (on[0] != '1') {
		fprintf(stderr, "# block:block_bio_queue is off: enabling it at run time (boot with trace_event=block:block_bio_queue to avoid the text patching)\n");
		ret = vblk_write_attr(VBLK_BIO_QUEUE, "enable", "1");
		if (ret)
			return ret;
		vblk_trace_we_enabled = true;
	}
	return vblk_trace_clear();
}

int vblk_trace_take(void (*fn)(void *arg, const char *rwbs, uint64_t sector,
			       unsigned int sectors),
		    void *arg)
{
	unsigned long long sector;
	unsigned int ma, mi, nr;
	char line[512], rwbs[16];
	int n = 0, ret;
	FILE *f;

	f = fopen(VBLK_TRACING "/trace", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "block_bio_queue: ");

		if (!p)
			continue;
		/* "MA,MI RWBS SECTOR + NR [comm]"; a flush has "0 + 0". */
		if (sscanf(p + 17, "%u,%u %15s %llu + %u", &ma, &mi, rwbs,
			   &sector, &nr) != 5)
			continue;
		fn(arg, rwbs, sector, nr);
		n++;
	}
	fclose(f);
	ret = vblk_trace_clear();
	return ret ? ret : n;
}

void vblk_trace_end(void)
{
	if (vblk_trace_we_enabled) {
		vblk_write_attr(VBLK_BIO_QUEUE, "enable", "0");
		vblk_write_attr(VBLK_BIO_QUEUE, "filter", "0");
		vblk_trace_we_enabled = false;
		return;
	}
	/* No device is 0:0. */
	vblk_write_attr(VBLK_BIO_QUEUE, "filter", "dev == 0");
}

/*
 * Suspend, load and resume through the DM ioctls: no process to start while
 * the device is suspended, so a switch under load takes milliseconds.
 * @table: one target, "START LEN TYPE PARAMS", or NULL.
 */
static int vblk_dm_ioctl(unsigned long cmd, const char *name, uint32_t flags,
			 const char *table, uint64_t *dev)
{
	union {
		struct dm_ioctl io;
		char buf[4096];
	} u;
	struct dm_target_spec *sp = (void *)(u.buf + sizeof(u.io));
	unsigned long long start, len;
	int fd, ret = 0, off = 0;

	memset(&u, 0, sizeof(u));
	u.io.version[0] = DM_VERSION_MAJOR;
	u.io.data_size = sizeof(u);
	u.io.data_start = sizeof(u.io);
	u.io.flags = flags;
	snprintf(u.io.name, sizeof(u.io.name), "%s", name);
	if (table) {
		if (sscanf(table, "%llu %llu %15s %n", &start, &len,
			   sp->target_type, &off) != 3 || !off) {
			fprintf(stderr, "dm table '%s': want START LEN TYPE PARAMS\n",
				table);
			return -EINVAL;
		}
		sp->sector_start = start;
		sp->length = len;
		snprintf((char *)(sp + 1), sizeof(u) - sizeof(u.io) - sizeof(*sp),
			 "%s", table + off);
		u.io.target_count = 1;
	}
	fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, cmd, &u.io))
		ret = -errno;
	close(fd);
	if (ret && cmd != DM_DEV_STATUS)
		fprintf(stderr, "dm ioctl %#lx on %s failed: %s\n", cmd, name,
			strerror(-ret));
	if (dev)
		*dev = u.io.dev;
	return ret;
}

int vblk_dm_suspend(const char *name, bool noflush)
{
	return vblk_dm_ioctl(DM_DEV_SUSPEND, name, DM_SUSPEND_FLAG |
			     (noflush ? DM_NOFLUSH_FLAG : 0), NULL, NULL);
}

int vblk_dm_load(const char *name, const char *table)
{
	return vblk_dm_ioctl(DM_TABLE_LOAD, name, 0, table, NULL);
}

int vblk_dm_resume(const char *name)
{
	return vblk_dm_ioctl(DM_DEV_SUSPEND, name, 0, NULL, NULL);
}

int vblk_dm_switch(const char *name, const char *table, bool noflush)
{
	/* Loaded into the inactive slot first: the suspend is short. */
	int ret = vblk_dm_load(name, table);

	if (ret)
		return ret;
	ret = vblk_dm_suspend(name, noflush);
	if (ret)
		return ret;
	return vblk_dm_resume(name);
}

int vblk_dm_create(const char *name, const char *table, char *path,
		   size_t pathlen)
{
	uint64_t dev;
	int ret;

	if ((access("/sys/module/dm_delay", F_OK) ||
	     access("/sys/module/dm_flakey", F_OK)) &&
	    vblk_sh("modprobe -a dm-mod dm-delay dm-flakey"))
		return -ENODEV;
	ret = vblk_dm_ioctl(DM_DEV_CREATE, name, 0, NULL, &dev);
	if (ret)
		return ret;
	ret = vblk_dm_load(name, table) ?: vblk_dm_resume(name);
	if (ret) {
		vblk_dm_remove(name, false);
		return ret;
	}
	/* devtmpfs names the node after the minor. */
	snprintf(path, pathlen, "/dev/dm-%u", minor(dev));
	for (int i = 0; i < 100 && access(path, F_OK); i++)
		usleep(10000);
	return access(path, F_OK) ? -ENOENT : 0;
}

int vblk_dm_remove(const char *name, bool force)
{
	/* What the tests exercise is dmsetup's own --force. */
	if (force) {
		setenv("DM_DISABLE_UDEV", "1", 1);
		return vblk_sh("dmsetup remove --force %s", name);
	}
	return vblk_dm_ioctl(DM_DEV_REMOVE, name, 0, NULL, NULL);
}

bool vblk_dm_exists(const char *name)
{
	return !vblk_dm_ioctl(DM_DEV_STATUS, name, 0, NULL, NULL);
}

#define VBLK_SDEBUG_DISKS \
	"/sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/*"

/* The first disk of a loaded scsi_debug, as /dev/sdX; false if none. */
static bool vblk_scsi_debug_disk(char *path, size_t pathlen)
{
	glob_t g;
	bool found = !glob(VBLK_SDEBUG_DISKS, 0, NULL, &g);

	if (found)
		snprintf(path, pathlen, "/dev/%s",
			 strrchr(g.gl_pathv[0], '/') + 1);
	globfree(&g);
	return found && !access(path, F_OK);
}

int vblk_scsi_debug(const char *params, char *path, size_t pathlen)
{
	int i;

	if (!access("/sys/bus/pseudo/drivers/scsi_debug", F_OK)) {
		fprintf(stderr, "scsi_debug is loaded already: rmmod it first\n");
		return -ENODEV;
	}
	/* No udev in the test VM to load sd for the new disk. */
	if ((access("/sys/module/sd_mod", F_OK) && vblk_sh("modprobe sd_mod")) ||
	    vblk_sh("modprobe scsi_debug %s", params))
		return -ENODEV;
	/* sd probes asynchronously; devtmpfs makes the node. */
	for (i = 0; i < 500; i++) {
		if (vblk_scsi_debug_disk(path, pathlen))
			return 0;
		usleep(20000);
	}
	return -ENOENT;
}

int vblk_scsi_debug_get(const char *params, char *path, size_t pathlen)
{
	if (!access("/sys/bus/pseudo/drivers/scsi_debug", F_OK))
		return vblk_scsi_debug_disk(path, pathlen) ? 0 : -ENOENT;
	return vblk_scsi_debug(params, path, pathlen);
}

int vblk_scsi_debug_remove(void)
{
	if (access("/sys/bus/pseudo/drivers/scsi_debug", F_OK))
		return 0;
	return vblk_sh("rmmod scsi_debug");
}

/* O_DIRECT through an aligned bounce buffer. */
static int vblk_direct(int fd, void *buf, size_t len, uint64_t off, bool wr)
{
	int dfd, ret = 0;
	char path[64];
	void *b;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	dfd = open(path, (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (dfd < 0)
		return -errno;
	if (posix_memalign(&b, 4096, len ? len : 4096)) {
		close(dfd);
		return -ENOMEM;
	}
	if (wr)
		memcpy(b, buf, len);
	if ((wr ? pwrite(dfd, b, len, off) : pread(dfd, b, len, off)) !=
	    (ssize_t)len)
		ret = -EIO;
	else if (!wr)
		memcpy(buf, b, len);
	free(b);
	close(dfd);
	return ret;
}

int vblk_pread(int fd, void *buf, size_t len, uint64_t off)
{
	return vblk_direct(fd, buf, len, off, false);
}

int vblk_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	return vblk_direct(fd, (void *)buf, len, off, true);
}

void vblk_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

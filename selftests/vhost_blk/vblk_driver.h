/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small userspace virtio-blk "driver" that plays the guest for the
 * selftests: guest memory is a mapping of the test's own, rings and buffers
 * live in it, the kick eventfd notifies, the call eventfd completes. Requests
 * are built descriptor by descriptor so tests can lay chains out any way a
 * hostile guest could.
 */
#ifndef VBLK_DRIVER_H
#define VBLK_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/vhost_blk.h>

/* Guest physical base of the test's memory: deliberately not its address. */
#define VDRV_GPA_BASE	0x40000000ULL

struct vdrv_ring_state;

struct vdrv_queue {
	unsigned int index;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	int kick, call, err;
	uint16_t avail_idx;		/* next avail ring slot we fill */
	uint16_t last_used;		/* used entries consumed so far */
	struct vdrv_ring_state *state;	/* the driver's descriptor bookkeeping */
};

struct vdrv {
	int fd;				/* /dev/vhost-blk, or -1 */
	int memfd;			/* guest memory's fd, or -1 */
	uint8_t *mem;
	size_t mem_size;
	size_t mem_used;		/* bump allocator */
	uint64_t features;
	unsigned int nq;
	struct vdrv_queue q[VHOST_BLK_MAX_QUEUES];
};

/* One piece of a request: device-readable (out) or device-writable (in). */
struct vseg {
	void *addr;
	uint32_t len;
	bool in;
};

int vdrv_open(struct vdrv *d, size_t mem_size);
/*
 * Guest memory only, shared from a memfd (d->memfd) as a vhost-user
 * front-end needs it; no /dev/vhost-blk (d->fd is -1).
 */
int vdrv_open_memfd(struct vdrv *d, size_t mem_size);
/* Rings in guest memory, eventfds, bookkeeping: no ioctl. */
int vdrv_queue_init(struct vdrv *d, unsigned int i, unsigned int num);
int vdrv_setup(struct vdrv *d, unsigned int nq, unsigned int num,
	       uint64_t features);
int vdrv_setup_queue(struct vdrv *d, unsigned int i, unsigned int num);
int vdrv_reset_queue(struct vdrv *d, unsigned int i);
/*
 * Open @disk with @flags and a device of @nq queues of @num entries and
 * @mem_size bytes of guest memory attached to it. Returns the disk's fd,
 * or -errno with nothing left open.
 */
int vdrv_open_on(struct vdrv *d, const char *disk, int flags,
		 size_t mem_size, unsigned int nq, unsigned int num);
int vdrv_attach(struct vdrv *d, int bdev_fd);
void vdrv_close(struct vdrv *d);

void *vdrv_alloc(struct vdrv *d, size_t len, size_t align);
uint64_t vdrv_gpa(struct vdrv *d, const void *p);

/* Queue a chain (direct, or one indirect descriptor); returns the head. */
int vdrv_add(struct vdrv *d, struct vdrv_queue *q, const struct vseg *segs,
	     unsigned int n, bool indirect);
void vdrv_kick(struct vdrv_queue *q);
/*
 * Does the device want a kick for the entries published since avail index
 * @old (EVENT_IDX's avail_event, or the used ring's NO_NOTIFY flag)?
 */
bool vdrv_kick_needed(struct vdrv *d, struct vdrv_queue *q, uint16_t old);
/* Wait up to @ms for one used entry. Returns 0, or -ETIMEDOUT. */
int vdrv_get_used(struct vdrv *d, struct vdrv_queue *q, uint32_t *head,
		  uint32_t *len, int ms);
/*
 * Take one used entry if there is one (0), else -EAGAIN; never waits and
 * leaves the call eventfd alone (the caller waits on q->call itself).
 */
int vdrv_reap(struct vdrv *d, struct vdrv_queue *q, uint32_t *head,
	      uint32_t *len);
/* Did the device report a broken queue on its error eventfd? */
bool vdrv_error_signalled(struct vdrv_queue *q, int ms);

/* A request in guest memory: header, data buffer, status byte. */
struct vreq {
	struct virtio_blk_outhdr *hdr;
	uint8_t *data;
	uint32_t len;
	uint8_t *status;
};

struct vreq vdrv_req_alloc(struct vdrv *d, uint32_t type, uint64_t sector,
			   uint32_t len);
/*
 * Build the usual layout (header / data in @nsegs pieces / status), submit,
 * wait. Returns the status byte, or -1 on timeout; *used_len if non-NULL.
 */
int vdrv_do(struct vdrv *d, struct vdrv_queue *q, struct vreq *r,
	    unsigned int nsegs, bool indirect, uint32_t *used_len);
/* Submit without waiting (same layout); returns the head. */
int vdrv_start(struct vdrv *d, struct vdrv_queue *q, struct vreq *r,
	       unsigned int nsegs, bool indirect);

/* Backing devices */
int vblk_brd(unsigned int n, size_t *bytes);	/* /dev/ramN, O_RDWR */
int vblk_open_dev(const char *path, int flags);
int vblk_null_blk(const char *name, unsigned int mb, unsigned int bs,
		  bool cache, char *path, size_t pathlen);
void vblk_null_blk_remove(const char *name);
/* Is a filesystem mounted at @dir (an exact /proc/mounts match)? */
bool vblk_mounted(const char *dir);
/*
 * @fstype (ext4 or xfs) on a null_blk device @name (@cache: volatile write
 * cache) mounted at @dir, or the one an earlier test left there (mkfs is
 * slow under TCG). ext4 commits its journal every 60 s instead of 5, so a
 * commit is the test's own. 0 or -errno; vblk_fs_remove() undoes it.
 */
int vblk_fs(const char *name, const char *fstype, bool cache, const char *dir);
void vblk_fs_remove(const char *name, const char *dir);
/*
 * The vhostblkctl binary: $VHOSTBLKCTL, or the one built beside the tests
 * (build/<kver>/selftests/vhost_blk/../../../tools/vhostblkctl).
 */
bool vblk_find_ctl(char *path, size_t size);
int vblk_loop(const char *file, size_t bytes, char *path, size_t pathlen);
void vblk_loop_remove(const char *path);
/*
 * Device mapper through its ioctls (no udev, no process to start while a
 * device is suspended: a switch under load takes milliseconds). 0 or -errno;
 * a forced remove runs `dmsetup remove --force` and returns its exit status.
 * @table: one target, "START LEN TYPE PARAMS"; the path is /dev/dm-N.
 */
int vblk_dm_create(const char *name, const char *table, char *path,
		   size_t pathlen);
int vblk_dm_suspend(const char *name, bool noflush);
int vblk_dm_load(const char *name, const char *table);
int vblk_dm_resume(const char *name);
/* suspend, load @table, resume: what a resize or a target switch does */
int vblk_dm_switch(const char *name, const char *table, bool noflush);
int vblk_dm_remove(const char *name, bool force);
bool vblk_dm_exists(const char *name);
/*
 * Load scsi_debug with @params (module parameters, "" for none) and find its
 * disk; path gets /dev/sdX. -ENODEV if the module is missing or loaded
 * already (one instance per test), -ENOENT if no disk showed up.
 */
int vblk_scsi_debug(const char *params, char *path, size_t pathlen);
/*
 * The same, but a scsi_debug loaded already is used as it is (its disk in
 * path): loading takes seconds in a TCG VM, so tests share one and change
 * its run-time parameters (opts, delay, medium_error_*).
 */
int vblk_scsi_debug_get(const char *params, char *path, size_t pathlen);
/* rmmod scsi_debug; 0, or the exit status when it is still in use. */
int vblk_scsi_debug_remove(void);
/* Run a shell command; its exit status, or -1 if it could not run. */
int vblk_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write a sysfs/procfs value; 0 or -errno. */
int vblk_write_str(const char *path, const char *val);
/* Write @val to the attribute file @dir/@name (sysfs, configfs). */
int vblk_write_attr(const char *dir, const char *name, const char *val);
/* Read a small sysfs/procfs file into @buf (trailing newline dropped). */
int vblk_read_str(const char *path, char *buf, size_t len);

/*
 * The SLUB caches matching @pattern (a glob under /sys/kernel/slab, e.g.
 * "bio-*"), each counted once however many names alias it. @objects is what
 * /proc/slabinfo calls active: every object of the caches' slabs but the
 * free ones on the node partial lists. So it also counts the free objects
 * of the slabs each CPU holds (its active slab and its partial slabs), at
 * most @cpu_free of them: @objects - @cpu_free <= objects in use <=
 * @objects (on KASAN, after vblk_slab_shrink(): see there). Returns the
 * number of caches (0: none, or not SLUB), or -errno.
 */
struct vblk_slab {
	long objects;
	long cpu_free;
};
int vblk_slab_count(const char *pattern, struct vblk_slab *c);
/*
 * Shrink the caches matching @pattern: their per-CPU slabs go back to the
 * node lists (so @cpu_free drops to about 0 for a moment), and a KASAN
 * kernel's quarantine releases the freed objects it still counts.
 */
void vblk_slab_shrink(const char *pattern);
/* Is the kernel built with KASAN (kasan_* symbols in /proc/kallsyms)? */
bool vblk_kasan(void);

/*
 * What reaches a block device, from the block:block_bio_queue event.
 *
 * The VM runner enables the event on the kernel command line
 * (trace_event=), before the other CPUs start: enabling a tracepoint at
 * run time patches kernel text, and under multi-threaded TCG that
 * sometimes stalls the VM. So begin only sets the event's filter to @dev
 * and clears the buffer; take reads the bios queued since and clears
 * again; end sets a filter no device matches. Only when the event is off
 * (a run outside the runner) does begin enable it, with a note on stderr,
 * and end disable it again.
 * begin: 0, -ENOENT when the kernel has no such event, or -errno.
 */
int vblk_trace_begin(dev_t dev);
/*
 * Call @fn for each bio queued to the device since begin or the last take
 * (@rwbs as blktrace prints it: "WS", "FWFS", ...; @sectors may be 0),
 * then clear the buffer. Returns the number of bios, or -errno.
 */
int vblk_trace_take(void (*fn)(void *arg, const char *rwbs, uint64_t sector,
			       unsigned int sectors),
		    void *arg);
void vblk_trace_end(void);

/* Direct I/O on the backing device, to check data without vhost. */
int vblk_pread(int fd, void *buf, size_t len, uint64_t off);
int vblk_pwrite(int fd, const void *buf, size_t len, uint64_t off);

void vblk_fill(void *buf, size_t len, uint64_t seed);

#endif /* VBLK_DRIVER_H */

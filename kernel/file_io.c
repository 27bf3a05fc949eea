// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: backend ops for a file: a raw image on a filesystem, or a block
 * device in the cached modes (its page cache). Reads and writes are kiocbs
 * on the file, as loop.c's aio path does: O_DIRECT in the direct modes,
 * buffered otherwise, O_DSYNC when the write must be stable. Flush is
 * fsync, discard and write zeroes are fallocate. A guest buffer that direct
 * I/O cannot take (virtio allows any alignment) moves through bounce pages
 * (bounce.c), each window a kiocb on them.
 *
 * Buffered I/O, fsync and fallocate block, and even direct I/O may (block
 * allocation, i_rwsem), so none of it runs on the vhost worker, which
 * serves every queue of the device: each request is a work item on the
 * device's own unbound workqueue that acts for the attacher and enters the
 * owner's address space to reach the guest's buffers. The cost is a wakeup
 * and a context switch per request and, for buffered I/O, the copy through
 * the page cache that the mode asks for; direct I/O still completes
 * asynchronously (ki_complete).
 */
#include "vhost_blk.h"

#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/falloc.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

enum {
	VHOST_BLK_FILE_RW,
	VHOST_BLK_FILE_FLUSH,
	VHOST_BLK_FILE_DISCARD,
	VHOST_BLK_FILE_WRITE_ZEROES,
};

/*
 * Work items of one device that may run at once. Each blocks a kworker
 * while the filesystem works (buffered I/O, fsync, fallocate; direct I/O
 * returns once submitted): enough to keep a fast device busy, and one
 * guest cannot take more kworkers than this, nor delay another device's
 * items, which are on that device's own workqueue.
 */
#define VHOST_BLK_FILE_MAX_ACTIVE	16

static struct vhost_blk_req *vhost_blk_file_req(struct vhost_blk_file_cmd *cmd)
{
	return container_of(cmd, struct vhost_blk_req, fcmd);
}

/* The request's file I/O is over; end the request if nothing else holds it. */
static void vhost_blk_file_end(struct vhost_blk_file_cmd *cmd, long ret)
{
	struct vhost_blk_req *req = vhost_blk_file_req(cmd);

	if (ret < 0)
		vhost_blk_req_error(req, vhost_blk_errno_status(ret));
	kfree(cmd->iov);
	cmd->iov = NULL;
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_ended(req);
}

/*
 * A write to an image holds its filesystem's freeze protection, as aio and
 * io_uring take it: only for regular files. A block device's inode is on
 * the bdev pseudo filesystem, which is never frozen.
 */
static bool vhost_blk_file_freeze_protected(struct vhost_blk_file_cmd *cmd)
{
	return (cmd->flags & VHOST_BLK_IO_WRITE) && !cmd->disk->bdev;
}

/*
 * Two references, as loop's lo_rw_aio: the submitter's and the completion's.
 * The kiocb is done with only when both the call has returned and the I/O
 * has completed, in whichever order that happens.
 */
static void vhost_blk_file_rw_put(struct vhost_blk_file_cmd *cmd)
{
	long ret;

	/* Fully ordered: the completion's @ret is visible past this. */
	if (!atomic_dec_and_test(&cmd->ref))
		return;
	ret = cmd->ret;
	if (vhost_blk_file_freeze_protected(cmd))
		kiocb_end_write(&cmd->iocb);
	/* A short transfer (the image shrank under us) is an error. */
	if (ret >= 0)
		ret = ret == cmd->len ? 0 : -EIO;
	vhost_blk_file_end(cmd, ret);
}

/* ki_complete: any context. */
static void vhost_blk_file_rw_complete(struct kiocb *iocb, long ret)
{
	struct vhost_blk_file_cmd *cmd = container_of(iocb,
						      struct vhost_blk_file_cmd,
						      iocb);

	cmd->ret = ret;
	vhost_blk_file_rw_put(cmd);
}

/* Context: a work item that has entered the owner's mm. */
static void vhost_blk_file_do_rw(struct vhost_blk_file_cmd *cmd)
{
	struct vhost_blk_req *req = vhost_blk_file_req(cmd);
	struct vhost_blk_disk *disk = cmd->disk;
	bool write = cmd->flags & VHOST_BLK_IO_WRITE;
	struct file *file = disk->file;
	struct kiocb *iocb = &cmd->iocb;
	struct iov_iter iter;
	ssize_t ret;

	/* A bounced request's window is in its pages, the rest in the guest. */
	if (req->bounce)
		iov_iter_bvec(&iter, write ? ITER_SOURCE : ITER_DEST,
			      req->bounce->bvecs, req->bounce->nr_pages,
			      cmd->len);
	else
		iov_iter_init(&iter, write ? ITER_SOURCE : ITER_DEST,
			      cmd->iov, cmd->nr_iov, cmd->len);
	atomic_set(&cmd->ref, 2);
	/* The file's own flags (O_DSYNC, O_DIRECT), as a write(2) has. */
	init_sync_kiocb(iocb, file);
	iocb->ki_pos = cmd->pos;
	iocb->ki_ioprio = req->ioprio;
	iocb->ki_complete = vhost_blk_file_rw_complete;
	if (disk->direct)
		iocb->ki_flags |= IOCB_DIRECT;
	if (write) {
		iocb->ki_flags |= IOCB_WRITE;
		if (cmd->flags & VHOST_BLK_IO_STABLE)
			iocb->ki_flags |= IOCB_DSYNC;
		if (vhost_blk_file_freeze_protected(cmd))
			kiocb_start_write(iocb);
		ret = file->f_op->write_iter(iocb, &iter);
	} else {
		ret = file->f_op->read_iter(iocb, &iter);
	}
	if (ret != -EIOCBQUEUED)
		vhost_blk_file_rw_complete(iocb, ret);
	vhost_blk_file_rw_put(cmd);
}

/*
 * Write zeroes the way asked (punch a hole when @unmap, else zero the range
 * keeping it allocated), falling back to the other when the filesystem or
 * device cannot: tmpfs has no ZERO_RANGE, a block device without write
 * zeroes no hole punching. Both read back as zeroes.
 */
static int vhost_blk_file_zero(struct file *file, loff_t pos, loff_t len,
			       bool unmap)
{
	int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int zero = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	int ret;

	ret = vfs_fallocate(file, unmap ? punch : zero, pos, len);
	if (ret == -EOPNOTSUPP)
		ret = vfs_fallocate(file, unmap ? zero : punch, pos, len);
	return ret;
}

/*
 * Discard or write zeroes on a block device used through its page cache.
 * Its own fallocate refuses a device someone (we) claimed exclusively, so
 * do what it does: write back and drop the cached range under the
 * invalidate lock, then send the request to the device.
 */
static int vhost_blk_file_bdev_zero(struct vhost_blk_file_cmd *cmd)
{
	struct address_space *mapping = cmd->disk->file->f_mapping;
	struct block_device *bdev = cmd->disk->bdev;
	sector_t sector = cmd->pos >> SECTOR_SHIFT;
	sector_t nr = cmd->len >> SECTOR_SHIFT;
	loff_t end = cmd->pos + cmd->len - 1;
	int ret;

	filemap_invalidate_lock(mapping);
	ret = filemap_write_and_wait_range(mapping, cmd->pos, end);
	if (ret)
		goto out;
	truncate_inode_pages_range(mapping, cmd->pos, end);
	if (cmd->op == VHOST_BLK_FILE_DISCARD)
		ret = blkdev_issue_discard(bdev, sector, nr, GFP_KERNEL);
	else
		ret = blkdev_issue_zeroout(bdev, sector, nr, GFP_KERNEL,
					   cmd->flags & VHOST_BLK_IO_UNMAP ?
					   0 : BLKDEV_ZERO_NOUNMAP);
out:
	filemap_invalidate_unlock(mapping);
	return ret;
}

/* Discard and write zeroes on an image: hole punching, zeroing a range. */
static int vhost_blk_file_zero_range(struct vhost_blk_file_cmd *cmd)
{
	if (cmd->disk->bdev)
		return vhost_blk_file_bdev_zero(cmd);
	/* A hole reads back as zeroes, which discard allows. */
	if (cmd->op == VHOST_BLK_FILE_DISCARD)
		return vfs_fallocate(cmd->disk->file, FALLOC_FL_PUNCH_HOLE |
				     FALLOC_FL_KEEP_SIZE, cmd->pos, cmd->len);
	return vhost_blk_file_zero(cmd->disk->file, cmd->pos, cmd->len,
				   cmd->flags & VHOST_BLK_IO_UNMAP);
}

/*
 * Make written zeroes stable, as O_DSYNC makes a write: the image's range
 * (its fallocate changed metadata), or the device's cache (zeroes go to a
 * block device past its page cache).
 */
static int vhost_blk_file_zero_sync(struct vhost_blk_file_cmd *cmd)
{
	if (cmd->disk->bdev)
		return blkdev_issue_flush(cmd->disk->bdev);
	return vfs_fsync_range(cmd->disk->file, cmd->pos,
			       cmd->pos + cmd->len - 1, 1);
}

/* What a work item changed about itself to act for the attacher. */
struct vhost_blk_file_scope {
	const struct cred *cred;
	struct mem_cgroup *memcg;
};

/*
 * Act as the attacher: its quota and reserved-blocks limits, setuid
 * stripped on write unless it may keep it, its LSM context; its io
 * cgroup for the bios the filesystem sends, its memory cgroup for the
 * page cache and whatever else is allocated, as loop_process_work() does.
 */
static void vhost_blk_file_enter(struct vhost_blk_disk *disk,
				 struct vhost_blk_file_scope *scope)
{
	scope->cred = override_creds(disk->cred);
	kthread_associate_blkcg(disk->blkcg_css);
	scope->memcg = set_active_memcg(disk->memcg_css ?
					mem_cgroup_from_css(disk->memcg_css) :
					NULL);
}

static void vhost_blk_file_leave(struct vhost_blk_file_scope *scope)
{
	set_active_memcg(scope->memcg);
	kthread_associate_blkcg(NULL);
	revert_creds(scope->cred);
}

static void vhost_blk_file_work(struct work_struct *work)
{
	struct vhost_blk_file_cmd *cmd = container_of(work,
						      struct vhost_blk_file_cmd,
						      work);
	struct mm_struct *mm = vhost_blk_file_req(cmd)->bvq->vq.dev->mm;
	struct vhost_blk_file_scope scope;
	int ret;

	vhost_blk_file_enter(cmd->disk, &scope);
	if (cmd->op == VHOST_BLK_FILE_RW) {
		/* The device holds the mm until every request completed. */
		kthread_use_mm(mm);
		vhost_blk_file_do_rw(cmd);
		kthread_unuse_mm(mm);
		vhost_blk_file_leave(&scope);
		return;
	}
	ret = vhost_blk_file_zero_range(cmd);
	if (!ret && cmd->op == VHOST_BLK_FILE_WRITE_ZEROES &&
	    (cmd->flags & VHOST_BLK_IO_STABLE))
		ret = vhost_blk_file_zero_sync(cmd);
	vhost_blk_file_leave(&scope);
	vhost_blk_file_end(cmd, ret);
}

/*
 * The device's guest flushes, coalesced: one fsync covers every flush
 * queued before it started. A flush queued while it runs queued the work
 * again, and waits for the next fsync: it may cover writes completed after
 * this one started. So flushes cost one kworker per device whatever the
 * guest sends, and hold nothing but their request entry.
 */
static void vhost_blk_file_flush_work(struct work_struct *work)
{
	struct vhost_blk_disk *disk = container_of(work, struct vhost_blk_disk,
						   flush_work);
	struct vhost_blk_file_cmd *cmd, *tmp;
	struct vhost_blk_file_scope scope;
	struct llist_node *list;
	int ret;

	list = llist_del_all(&disk->flushes);
	if (!list)
		return;
	vhost_blk_file_enter(disk, &scope);
	ret = vfs_fsync(disk->file, 0);
	vhost_blk_file_leave(&scope);
	llist_for_each_entry_safe(cmd, tmp, list, flush_node)
		vhost_blk_file_end(cmd, ret);
}

/*
 * Once, where the request table is allocated: initialising a work item
 * that may still be running (its request ended from inside it) would break
 * the workqueue's guarantee that an item never runs twice at once.
 */
void vhost_blk_file_req_init(struct vhost_blk_req *req)
{
	INIT_WORK(&req->fcmd.work, vhost_blk_file_work);
}

static u8 vhost_blk_file_queue(struct vhost_blk_req *req,
			       struct vhost_blk_disk *disk, u8 op, u64 sector,
			       u64 len, unsigned int flags)
{
	struct vhost_blk_file_cmd *cmd = &req->fcmd;

	cmd->disk = disk;
	cmd->op = op;
	cmd->pos = sector << SECTOR_SHIFT;
	cmd->len = len;
	cmd->flags = flags;
	atomic_inc(&req->pending);
	queue_work(disk->wq, &cmd->work);
	return VIRTIO_BLK_S_OK;
}

/*
 * Copy the iovecs covering @len bytes after @skip: the chain's array is the
 * virtqueue's, reused for the next request before this one runs.
 */
static struct iovec *vhost_blk_file_iov_dup(const struct iovec *iov,
					    unsigned int nr, size_t skip,
					    size_t len, unsigned int *nr_out)
{
	struct iovec *copy;

	copy = kmalloc_array(nr, sizeof(*copy), GFP_KERNEL_ACCOUNT);
	if (copy)
		*nr_out = vhost_blk_iov_window(iov, nr, skip, len, copy, NULL);
	return copy;
}

/*
 * Can the filesystem's direct I/O take the guest's buffer as it is? It
 * needs each segment's address and length aligned as statx's
 * STATX_DIOALIGN says (else EINVAL); like the bio path, addresses are also
 * held to whole logical blocks, so that no block of the image is split
 * across two of the guest's pages in the bios the filesystem builds.
 * Buffered I/O takes anything.
 */
static bool vhost_blk_file_in_place_ok(const struct vhost_blk_disk *disk,
				       struct iov_iter *iter)
{
	return !disk->direct ||
	       iov_iter_is_aligned(iter, disk->dio_addr_align - 1,
				   disk->lbs - 1);
}

static u8 vhost_blk_file_rw(struct vhost_blk_req *req,
			    struct vhost_blk_disk *disk, struct iov_iter *iter,
			    u64 sector, unsigned int flags,
			    const struct vhost_blk_layout *l, bool *retry)
{
	struct vhost_blk_file_cmd *cmd = &req->fcmd;
	size_t len = iov_iter_count(iter);
	unsigned int pages = 0;
	bool bounce;

	bounce = len && !vhost_blk_file_in_place_ok(disk, iter);
	if (!vhost_blk_rw_charge(req, len, bounce, &pages)) {
		*retry = true;
		return VIRTIO_BLK_S_OK;
	}
	if (!len)
		return VIRTIO_BLK_S_OK;
	/*
	 * O_DSYNC through a block device's page cache writes the range back,
	 * then flushes the device's whole cache (blkdev_fsync()), never FUA.
	 */
	if ((flags & VHOST_BLK_IO_STABLE) && disk->bdev &&
	    bdev_write_cache(disk->bdev))
		req->stat.cache |= VHOST_BLK_STAT_FUA_EMULATED;
	cmd->iov = NULL;
	if (bounce)
		return vhost_blk_bounce_start(req, disk, len, pages, sector,
					      flags, l);
	if (flags & VHOST_BLK_IO_WRITE)
		cmd->iov = vhost_blk_file_iov_dup(l->out_iov, l->out_nr,
						  sizeof(struct virtio_blk_outhdr),
						  len, &cmd->nr_iov);
	else
		cmd->iov = vhost_blk_file_iov_dup(l->in_iov, l->in_nr, 0, len,
						  &cmd->nr_iov);
	if (!cmd->iov)
		return VIRTIO_BLK_S_IOERR;
	return vhost_blk_file_queue(req, disk, VHOST_BLK_FILE_RW, sector, len,
				    flags);
}

/* The current window of a bounced read or write: a kiocb on its pages. */
static void vhost_blk_file_rw_window(struct vhost_blk_req *req,
				     struct vhost_blk_bounce *b)
{
	req->fcmd.iov = NULL;
	vhost_blk_file_queue(req, b->disk, VHOST_BLK_FILE_RW,
			     b->sector + (b->done >> SECTOR_SHIFT), b->window,
			     b->flags);
}

static u8 vhost_blk_file_flush(struct vhost_blk_req *req,
			       struct vhost_blk_disk *disk)
{
	struct vhost_blk_file_cmd *cmd = &req->fcmd;

	cmd->iov = NULL;
	cmd->disk = disk;
	cmd->op = VHOST_BLK_FILE_FLUSH;
	atomic_inc(&req->pending);
	llist_add(&cmd->flush_node, &disk->flushes);
	queue_work(disk->wq, &disk->flush_work);
	return VIRTIO_BLK_S_OK;
}

static u8 vhost_blk_file_discard(struct vhost_blk_req *req,
				 struct vhost_blk_disk *disk, u64 sector,
				 u32 nr)
{
	req->fcmd.iov = NULL;
	return vhost_blk_file_queue(req, disk, VHOST_BLK_FILE_DISCARD, sector,
				    (u64)nr << SECTOR_SHIFT, 0);
}

static u8 vhost_blk_file_write_zeroes(struct vhost_blk_req *req,
				      struct vhost_blk_disk *disk, u64 sector,
				      u32 nr, unsigned int flags)
{
	req->fcmd.iov = NULL;
	return vhost_blk_file_queue(req, disk, VHOST_BLK_FILE_WRITE_ZEROES,
				    sector, (u64)nr << SECTOR_SHIFT, flags);
}

const struct vhost_blk_backend_ops vhost_blk_file_ops = {
	.rw		= vhost_blk_file_rw,
	.flush		= vhost_blk_file_flush,
	.discard	= vhost_blk_file_discard,
	.write_zeroes	= vhost_blk_file_write_zeroes,
	.rw_window	= vhost_blk_file_rw_window,
};

/* The caller's css of cgroup subsystem @id, held; NULL if not built. */
static struct cgroup_subsys_state *vhost_blk_file_css(int id)
{
	return id < 0 ? NULL : task_get_css(current, id);
}

#ifdef CONFIG_BLK_CGROUP
#define VHOST_BLK_IO_CGRP	io_cgrp_id
#else
#define VHOST_BLK_IO_CGRP	(-1)
#endif
#ifdef CONFIG_MEMCG
#define VHOST_BLK_MEMORY_CGRP	memory_cgrp_id
#else
#define VHOST_BLK_MEMORY_CGRP	(-1)
#endif

/**
 * vhost_blk_file_attach - what a file backend's work items need
 * @disk: a disk whose ops are vhost_blk_file_ops
 *
 * The work items act for the process attaching the backend, as its own
 * write(2) would: they run with its credentials, in its io and memory
 * cgroups (not the kworker's, the root's). Not checked per request,
 * as loop does not either: rw_verify_area() (the range is checked against
 * the size at attach, LSM and fanotify permission events were answered
 * when the file was opened; a permission event per guest request would
 * put a listener's latency on every I/O).
 *
 * Each device has its own workqueue, at most VHOST_BLK_FILE_MAX_ACTIVE
 * items running: no WQ_MEM_RECLAIM, as loop's, since nothing the host
 * reclaims waits for a guest's I/O.
 *
 * Context: process context, the attacher.
 * Return: 0, or -ENOMEM.
 */
int vhost_blk_file_attach(struct vhost_blk_disk *disk)
{
	disk->wq = alloc_workqueue("vhost-blk-file", WQ_UNBOUND,
				   VHOST_BLK_FILE_MAX_ACTIVE);
	if (!disk->wq)
		return -ENOMEM;
	init_llist_head(&disk->flushes);
	INIT_WORK(&disk->flush_work, vhost_blk_file_flush_work);
	disk->cred = get_current_cred();
	disk->blkcg_css = vhost_blk_file_css(VHOST_BLK_IO_CGRP);
	disk->memcg_css = vhost_blk_file_css(VHOST_BLK_MEMORY_CGRP);
	return 0;
}

/* Undo vhost_blk_file_attach(); every request has completed. */
void vhost_blk_file_detach(struct vhost_blk_disk *disk)
{
	if (disk->wq)
		destroy_workqueue(disk->wq);
	disk->wq = NULL;
	put_cred(disk->cred);
	disk->cred = NULL;
	if (disk->blkcg_css)
		css_put(disk->blkcg_css);
	disk->blkcg_css = NULL;
	if (disk->memcg_css)
		css_put(disk->memcg_css);
	disk->memcg_css = NULL;
}

/*
 * Discard and write zeroes are offered when the image's filesystem has
 * fallocate, as loop decides; one that then refuses a mode answers
 * EOPNOTSUPP, and the guest UNSUPP. Nothing is tried here: fallocate may
 * change the image even where nothing is stored (xfs updates mtime and
 * strips setuid past the end of the file), and attaching must not.
 */
void vhost_blk_file_probe(struct vhost_blk_disk *disk)
{
	struct file *file = disk->file;
	u32 max = VHOST_BLK_INFLIGHT_BYTES >> SECTOR_SHIFT;

	if (disk->read_only || !file->f_op->fallocate)
		return;
	disk->discard_max = max;
	disk->write_zeroes_max = max;
	disk->discard_granularity = i_blocksize(file_inode(file));
}

// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: the backend, a block device or a raw image file. Claiming or
 * opening it for the chosen cache mode, describing it to the guest
 * (virtio-blk config space), and starting, stopping and draining the
 * virtqueues around it.
 */
#include "vhost_blk.h"

#include <linux/file.h>
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/virtio_byteorder.h>

/* The config space we present is little endian (VIRTIO_F_VERSION_1, x86). */
#define cfg_le16(v)	__cpu_to_virtio16(true, v)
#define cfg_le32(v)	__cpu_to_virtio32(true, v)
#define cfg_le64(v)	__cpu_to_virtio64(true, v)

/*
 * Claim the block device behind @f. Direct modes use bios on it; cached
 * modes read and write @f itself, the block device's page cache.
 */
static int vhost_blk_disk_open_bdev(struct vhost_blk *blk,
				    struct vhost_blk_disk *disk,
				    struct file *f, bool write)
{
	struct block_device *bdev;
	int ret;

	/* Our own exclusive claim: fails with EBUSY when mounted or in use. */
	ret = vhost_blk_bdev_open(&disk->handle, file_inode(f)->i_rdev, write,
				  blk);
	if (ret)
		return ret;
	bdev = disk->handle.bdev;
	disk->bdev = bdev;
	/*
	 * Zoned devices fail writes that are not at a zone's write pointer;
	 * presenting one needs VIRTIO_BLK_F_ZONED, which is not implemented.
	 */
	if (bdev_is_zoned(bdev)) {
		vhost_blk_bdev_close(&disk->handle);
		return -EOPNOTSUPP;
	}

	disk->read_only = !write || bdev_read_only(bdev);
	disk->nr_sectors = bdev_nr_sectors(bdev);
	disk->lbs = bdev_logical_block_size(bdev);
	disk->write_zeroes_max = vhost_blk_write_zeroes_max(bdev);
	disk->discard_max = min_t(unsigned long, bdev_max_discard_sectors(bdev),
				  U32_MAX);
	disk->discard_granularity = bdev_discard_granularity(bdev);
	if (disk->direct) {
		disk->ops = &vhost_blk_bio_ops;
	} else {
		disk->ops = &vhost_blk_file_ops;
		disk->file = get_file(f);
	}
	return 0;
}

/*
 * The block size a direct-I/O image needs: the filesystem's own answer
 * (statx STATX_DIOALIGN), else its device's logical block size, else 512
 * (tmpfs, whose O_DIRECT copies). At least 512, a power of two. And the
 * alignment of guest buffers its direct I/O takes in place (file_io.c):
 * the memory alignment it asks for (its device's DMA alignment), and
 * whole logical blocks.
 */
static int vhost_blk_file_dio_align(struct file *f, unsigned int *lbs,
				    unsigned int *addr_align)
{
	struct super_block *sb = file_inode(f)->i_sb;
	unsigned int align = SECTOR_SIZE, mem_align = 1;
	struct kstat st = {};
	int ret;

	if (!(f->f_mode & FMODE_CAN_ODIRECT))
		return -EINVAL;
	ret = vfs_getattr(&f->f_path, &st, STATX_DIOALIGN,
			  AT_STATX_SYNC_AS_STAT);
	if (ret)
		return ret;
	if (st.result_mask & STATX_DIOALIGN) {
		if (!st.dio_offset_align)
			return -EINVAL;	/* "no direct I/O on this file" */
		align = st.dio_offset_align;
		mem_align = st.dio_mem_align;
	} else if (sb->s_bdev) {
		align = bdev_logical_block_size(sb->s_bdev);
		mem_align = bdev_dma_alignment(sb->s_bdev) + 1;
	}
	*lbs = max_t(unsigned int, align, SECTOR_SIZE);
	*addr_align = max(*lbs, mem_align);
	return is_power_of_2(*lbs) && *lbs <= PAGE_SIZE &&
	       is_power_of_2(*addr_align) && *addr_align <= PAGE_SIZE ?
	       0 : -EINVAL;
}

/* A raw image in a regular file: kiocbs on @f, O_DIRECT in direct modes. */
static int vhost_blk_disk_open_file(struct vhost_blk_disk *disk,
				    struct file *f, bool write)
{
	struct inode *inode = file_inode(f);
	unsigned int lbs = SECTOR_SIZE;
	int ret;

	if (IS_SWAPFILE(inode))
		return -ETXTBSY;
	if (!f->f_op->read_iter || !f->f_op->write_iter)
		return -EINVAL;
	if (disk->direct) {
		ret = vhost_blk_file_dio_align(f, &lbs, &disk->dio_addr_align);
		if (ret)
			return ret;
	}
	disk->lbs = lbs;
	disk->nr_sectors = round_down(i_size_read(inode), lbs) >> SECTOR_SHIFT;
	if (!disk->nr_sectors)
		return -EINVAL;
	disk->read_only = !write;
	disk->ops = &vhost_blk_file_ops;
	disk->file = get_file(f);
	vhost_blk_file_probe(disk);
	return 0;
}

static void vhost_blk_disk_close(struct vhost_blk_disk *disk)
{
	if (disk->ops == &vhost_blk_file_ops)
		vhost_blk_file_detach(disk);
	if (disk->file)
		fput(disk->file);
	if (disk->bdev)
		vhost_blk_bdev_close(&disk->handle);
	kfree(disk);
}

static struct vhost_blk_disk *vhost_blk_disk_open(struct vhost_blk *blk,
						  int fd, u32 cache_mode)
{
	struct vhost_blk_disk *disk;
	struct inode *inode;
	struct file *f;
	bool write;
	int ret;

	f = fget(fd);
	if (!f)
		return ERR_PTR(-EBADF);

	inode = file_inode(f);
	ret = -ENOTBLK;
	if (!S_ISBLK(inode->i_mode) && !S_ISREG(inode->i_mode))
		goto err_put_file;
	ret = -EACCES;
	if (!(f->f_mode & FMODE_READ))
		goto err_put_file;
	write = f->f_mode & FMODE_WRITE;
	/*
	 * Guest writes land at offsets. An append-only file may only grow
	 * (EPERM, as open(2) without O_APPEND); any other file opened
	 * O_APPEND is a mistake (EINVAL): its writes would all go to the end.
	 */
	ret = -EPERM;
	if (write && IS_APPEND(inode))
		goto err_put_file;
	ret = -EINVAL;
	if (write && (f->f_flags & O_APPEND))
		goto err_put_file;

	ret = -ENOMEM;
	disk = kzalloc(sizeof(*disk), GFP_KERNEL_ACCOUNT);
	if (!disk)
		goto err_put_file;
	disk->cache_mode = cache_mode;
	disk->direct = vhost_blk_cache_direct(cache_mode);

	if (S_ISBLK(inode->i_mode))
		ret = vhost_blk_disk_open_bdev(blk, disk, f, write);
	else
		ret = vhost_blk_disk_open_file(disk, f, write);
	if (ret)
		goto err_free_disk;
	if (disk->ops == &vhost_blk_file_ops) {
		ret = vhost_blk_file_attach(disk);
		if (ret) {
			vhost_blk_disk_close(disk);
			goto err_put_file;
		}
	}
	fput(f);
	return disk;

err_free_disk:
	if (disk->file)
		fput(disk->file);
	kfree(disk);
err_put_file:
	fput(f);
	return ERR_PTR(ret);
}

/* No request is fetched from @bvq once this returns. */
static void vhost_blk_vq_clear_backend(struct vhost_blk_vq *bvq)
{
	mutex_lock(&bvq->vq.mutex);
	vhost_vq_set_backend(&bvq->vq, NULL);
	mutex_unlock(&bvq->vq.mutex);
}

/*
 * Stop one queue: no new requests are fetched once this returns, and every
 * request already fetched has been completed to the guest (or, when the
 * caller cannot reach the guest's memory, released).
 *
 * Context: process context, dev.mutex held.
 */
void vhost_blk_stop_vq(struct vhost_blk *blk, struct vhost_blk_vq *bvq)
{
	lockdep_assert_held(&blk->dev.mutex);

	vhost_blk_vq_clear_backend(bvq);
	vhost_blk_vq_drain(blk, bvq);
}

/*
 * Stop every queue in two passes, as vhost-net and vsock do: first no queue
 * fetches anything new, then the requests in flight drain. Stopping and
 * draining queue by queue would let the queues not yet stopped keep adding
 * work while the first one waits.
 *
 * Context: dev.mutex held.
 */
void vhost_blk_stop(struct vhost_blk *blk)
{
	int i;

	lockdep_assert_held(&blk->dev.mutex);

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_vq_clear_backend(&blk->vqs[i]);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_vq_drain(blk, &blk->vqs[i]);
}

/*
 * Hold every queue still until vhost_blk_resume(), backends attached: nothing
 * is fetched, and every request already fetched has been completed. Requests
 * keep guest addresses as host virtual addresses translated through the
 * memory table they were fetched under (the status byte, a bounced read's
 * buffer), so a new table must not take effect while any is in flight: the
 * VMM may already have unmapped the old region and put something else there.
 * Stop every queue first, then drain: no queue fetches while another drains.
 *
 * Context: dev.mutex held.
 */
void vhost_blk_pause(struct vhost_blk *blk)
{
	int i;

	lockdep_assert_held(&blk->dev.mutex);

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_virtqueue *vq = &blk->vqs[i].vq;

		mutex_lock(&vq->mutex);
		blk->vqs[i].paused = true;
		mutex_unlock(&vq->mutex);
	}
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_vq_drain(blk, &blk->vqs[i]);
}

/* Let paused queues fetch again. Context: dev.mutex held. */
void vhost_blk_resume(struct vhost_blk *blk)
{
	int i;

	lockdep_assert_held(&blk->dev.mutex);

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_virtqueue *vq = &blk->vqs[i].vq;
		bool running;

		mutex_lock(&vq->mutex);
		blk->vqs[i].paused = false;
		running = vhost_vq_get_backend(vq);
		mutex_unlock(&vq->mutex);
		/* Kicks that came while paused were dropped. */
		if (running)
			vhost_poll_queue(&vq->poll);
	}
}

/* Stop all queues and drop the backend. Context: dev.mutex held. */
void vhost_blk_detach(struct vhost_blk *blk)
{
	vhost_blk_stop(blk);
	if (blk->disk) {
		vhost_blk_disk_close(blk->disk);
		blk->disk = NULL;
	}
}

/*
 * Start every set-up queue below num_queues on @disk. A queue whose rings are
 * not set up stays stopped. On error every queue is stopped again.
 */
static int vhost_blk_start(struct vhost_blk *blk, struct vhost_blk_disk *disk)
{
	struct vhost_virtqueue *vq;
	int i, ret = 0;

	for (i = 0; i < blk->num_queues; i++) {
		struct vhost_blk_vq *bvq = &blk->vqs[i];

		vq = &bvq->vq;
		mutex_lock(&vq->mutex);
		if (!vq->desc || !vq->avail || !vq->used) {
			mutex_unlock(&vq->mutex);
			continue;
		}
		/* Also false without a memory table: set-up out of order. */
		ret = -EFAULT;
		if (!vhost_vq_access_ok(vq))
			goto err_unlock;
		ret = vhost_blk_vq_alloc_reqs(bvq);
		if (ret)
			goto err_unlock;
		vhost_vq_set_backend(vq, disk);
		ret = vhost_vq_init_access(vq);
		if (ret) {
			vhost_vq_set_backend(vq, NULL);
			goto err_unlock;
		}
		mutex_unlock(&vq->mutex);
		/* Requests may have been queued while stopped. */
		vhost_poll_queue(&vq->poll);
	}
	return 0;

err_unlock:
	mutex_unlock(&vq->mutex);
	vhost_blk_stop(blk);
	return ret;
}

/*
 * Attach, swap (drain, swap, resume) or detach (@fd == -1) the backend.
 * A new device is claimed before the old one is touched, so a failed
 * attach leaves the old backend attached but its queues stopped only
 * if starting them failed.
 *
 * Context: dev.mutex held, caller is the owner.
 */
long vhost_blk_set_backend(struct vhost_blk *blk, int fd, u32 cache_mode)
{
	struct vhost_blk_disk *disk = NULL;
	int ret;

	lockdep_assert_held(&blk->dev.mutex);

	if (fd != -1) {
		disk = vhost_blk_disk_open(blk, fd, cache_mode);
		if (IS_ERR(disk))
			return PTR_ERR(disk);
	}

	vhost_blk_detach(blk);
	if (!disk)
		return 0;

	blk->disk = disk;
	/*
	 * Keep the guest's write-cache choice across a re-attach in the same
	 * mode (a VMM detaches around SET_FEATURES and memory changes): were it
	 * reset here, requests fetched before the VMM restored it would run
	 * with the wrong one. A new mode starts from its own default.
	 */
	if (cache_mode != blk->wce_mode) {
		blk->wce_mode = cache_mode;
		WRITE_ONCE(blk->wce, vhost_blk_cache_default_wce(cache_mode));
	}
	atomic64_set(&blk->write_gen, 0);
	atomic64_set(&blk->flushed_gen, 0);
	ret = vhost_blk_start(blk, disk);
	if (ret)
		vhost_blk_detach(blk);
	return ret;
}

/*
 * Without hardware write-zeroes the block layer writes zero pages, and a
 * device that offers it may still refuse and leave zero pages to us
 * (vhost_blk_req_retry_zeroes()): bound one request so a guest cannot tie
 * the device up for long.
 */
unsigned int vhost_blk_write_zeroes_max(struct block_device *bdev)
{
	return min_t(unsigned int, bdev_write_zeroes_sectors(bdev) ?: U32_MAX,
		     (32U << 20) >> SECTOR_SHIFT);
}

/*
 * The offset of the first physically aligned block, in logical blocks. A
 * stack whose legs disagree (bdev_alignment_offset() < 0) has no such
 * offset, and one that does not fit the field is no use: both report 0.
 */
static u8 vhost_blk_alignment_offset(struct block_device *bdev,
				     unsigned int lbs)
{
	int offset = bdev_alignment_offset(bdev);

	if (offset <= 0 || offset / lbs > U8_MAX)
		return 0;
	return offset / lbs;
}

/*
 * Fill @buf with the virtio-blk config space (little endian) and return its
 * length. Context: dev.mutex held.
 */
size_t vhost_blk_fill_config(struct vhost_blk *blk, u8 *buf, size_t len,
			     u64 *features)
{
	struct virtio_blk_config *cfg = (struct virtio_blk_config *)buf;
	size_t cfg_len = offsetofend(struct virtio_blk_config,
				     write_zeroes_may_unmap);
	struct vhost_blk_disk *disk;
	struct block_device *bdev;
	unsigned int lbs, pbs, io_min, discard_max, wz_max;

	BUILD_BUG_ON(sizeof(*cfg) > VHOST_BLK_CONFIG_SPACE);
	if (WARN_ON_ONCE(len < sizeof(*cfg)))
		return 0;
	memset(buf, 0, len);
	*features = VHOST_BLK_FEATURES & ~(1ULL << VIRTIO_BLK_F_RO);

	cfg->size_max = cfg_le32(VHOST_BLK_SIZE_MAX);
	cfg->seg_max = cfg_le32(VHOST_BLK_SEG_MAX);
	cfg->blk_size = cfg_le32(SECTOR_SIZE);
	cfg->num_queues = cfg_le16(blk->num_queues);
	/* The cache mode's default, or what the guest set since. */
	cfg->wce = READ_ONCE(blk->wce);
	cfg->max_discard_seg = cfg_le32(1);
	cfg->max_write_zeroes_seg = cfg_le32(1);

	if (!blk->disk)
		return cfg_len;

	disk = blk->disk;
	lbs = disk->lbs;
	cfg->capacity = cfg_le64(vhost_blk_disk_sectors(disk));
	cfg->blk_size = cfg_le32(lbs);
	if (disk->bdev && disk->direct) {
		bdev = disk->bdev;
		pbs = bdev_physical_block_size(bdev);
		cfg->physical_block_exp = pbs > lbs ? ilog2(pbs / lbs) : 0;
		cfg->alignment_offset = vhost_blk_alignment_offset(bdev, lbs);
		io_min = min_t(unsigned int, bdev_io_min(bdev) / lbs, U16_MAX);
		cfg->min_io_size = cfg_le16(io_min);
		cfg->opt_io_size = cfg_le32(bdev_io_opt(bdev) / lbs);
	}

	if (disk->read_only)
		*features |= 1ULL << VIRTIO_BLK_F_RO;
	discard_max = disk->read_only ? 0 : disk->discard_max;
	if (!discard_max)
		*features &= ~(1ULL << VIRTIO_BLK_F_DISCARD);
	cfg->max_discard_sectors = cfg_le32(discard_max);
	if (discard_max)
		cfg->discard_sector_alignment =
			cfg_le32(disk->discard_granularity >> SECTOR_SHIFT);

	wz_max = disk->read_only ? 0 : disk->write_zeroes_max;
	if (!disk->write_zeroes_max)
		*features &= ~(1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	cfg->max_write_zeroes_sectors = cfg_le32(wz_max);
	cfg->write_zeroes_may_unmap = discard_max ? 1 : 0;
	return cfg_len;
}

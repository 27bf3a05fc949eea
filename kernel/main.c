// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: an in-kernel virtio-blk device on the vhost core.
 *
 * /dev/vhost-blk gives one device per open file. Userspace (a VMM, or
 * vhostblkctl serving QEMU's vhost-user-blk) sets the owner, features, memory
 * table and vrings with the generic vhost ioctls, then attaches a block device
 * with VHOST_BLK_SET_BACKEND. From then on the guest's requests go from the
 * virtqueues to bios and back without entering userspace.
 */
#include "vhost_blk.h"

#include <linux/file.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

static_assert(!(VHOST_BLK_FEATURES & (1ULL << VHOST_F_LOG_ALL)),
	      "dirty logging is not implemented: never offer VHOST_F_LOG_ALL");
static_assert(!(VHOST_BLK_FEATURES & (1ULL << VIRTIO_F_ACCESS_PLATFORM)),
	      "device IOTLB is not implemented");

static int vhost_blk_open(struct inode *inode, struct file *f)
{
	struct vhost_virtqueue **vqs;
	struct vhost_blk *blk;
	int i, ret;

	/*
	 * Large (one struct vhost_virtqueue per queue): allow vmalloc. Like
	 * everything a device allocates for its owner (request tables, bounce
	 * pages), charged to the owner's memory cgroup.
	 */
	blk = kvzalloc(sizeof(*blk),
		       GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);
	if (!blk)
		return -ENOMEM;

	vqs = kmalloc_array(VHOST_BLK_MAX_QUEUES, sizeof(*vqs),
			    GFP_KERNEL_ACCOUNT);
	if (!vqs) {
		kvfree(blk);
		return -ENOMEM;
	}

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		vqs[i] = &blk->vqs[i].vq;
		blk->vqs[i].vq.handle_kick = vhost_blk_handle_kick;
		vhost_blk_vq_init(&blk->vqs[i]);
	}
	blk->num_queues = 1;
	blk->wce_mode = VHOST_BLK_CACHE_NONE;
	blk->wce = vhost_blk_cache_default_wce(blk->wce_mode);
	spin_lock_init(&blk->serial_lock);

	vhost_dev_init(&blk->dev, vqs, VHOST_BLK_MAX_QUEUES, UIO_MAXIOV,
		       VHOST_BLK_WEIGHT_REQS, VHOST_BLK_WEIGHT_BYTES, true,
		       NULL);
	ret = vhost_blk_nl_register(blk, f);
	if (ret) {
		vhost_dev_cleanup(&blk->dev);
		kfree(vqs);
		kvfree(blk);
		return ret;
	}

	f->private_data = blk;
	return 0;
}

static int vhost_blk_release(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk = f->private_data;
	int i;

	mutex_lock(&blk->dev.mutex);
	vhost_blk_detach(blk);
	mutex_unlock(&blk->dev.mutex);

	vhost_dev_stop(&blk->dev);
	vhost_dev_cleanup(&blk->dev);
	vhost_blk_nl_unregister(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_vq_free_reqs(&blk->vqs[i]);
	kfree(blk->dev.vqs);
	kvfree(blk);
	return 0;
}

/*
 * Features are the owner's to set, and only while no backend is attached:
 * the kick and completion paths read acked_features (EVENT_IDX, endianness)
 * without expecting them to change under a running ring.
 */
static int vhost_blk_set_features(struct vhost_blk *blk, u64 features)
{
	int i, ret;

	if (features & ~VHOST_BLK_FEATURES)
		return -EOPNOTSUPP;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto out;
	ret = -EBUSY;
	if (blk->disk)
		goto out;
	ret = 0;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_virtqueue *vq = &blk->vqs[i].vq;

		mutex_lock(&vq->mutex);
		vq->acked_features = features;
		mutex_unlock(&vq->mutex);
	}
out:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

/*
 * Copy a size-versioned struct from userspace: @usize must cover at least
 * @min bytes; bytes past what we know must be zero and, as in openat2(),
 * there may be at most a page of them.
 */
static int vhost_blk_copy_arg(void *dst, size_t ksize, size_t min,
			      const void __user *src)
{
	u32 usize;

	if (get_user(usize, (const u32 __user *)src))
		return -EFAULT;
	if (usize < min)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	return copy_struct_from_user(dst, ksize, src, usize);
}

static long vhost_blk_ioctl_set_backend(struct vhost_blk *blk,
					void __user *argp)
{
	struct vhost_blk_backend arg;
	long ret;

	BUILD_BUG_ON(offsetof(struct vhost_blk_backend, cache_mode) !=
		     VHOST_BLK_BACKEND_SIZE_VER0);
	/* A first-version caller's struct ends here: cache_mode is none. */
	ret = vhost_blk_copy_arg(&arg, sizeof(arg), VHOST_BLK_BACKEND_SIZE_VER0,
				 argp);
	if (ret)
		return ret;
	if (arg.flags || arg.__reserved || arg.__reserved2 ||
	    arg.cache_mode > VHOST_BLK_CACHE_MAX)
		return -EINVAL;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (!ret)
		ret = vhost_blk_set_backend(blk, arg.fd, arg.cache_mode);
	vhost_blk_nl_observe(blk, !ret);
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static long vhost_blk_ioctl_get_config(struct vhost_blk *blk,
				       void __user *argp)
{
	struct vhost_blk_config *arg;
	long ret;

	arg = kzalloc(sizeof(*arg), GFP_KERNEL);
	if (!arg)
		return -ENOMEM;
	ret = vhost_blk_copy_arg(arg, sizeof(*arg), sizeof(*arg), argp);
	if (ret)
		goto out;

	mutex_lock(&blk->dev.mutex);
	arg->len = vhost_blk_fill_config(blk, arg->config,
					 sizeof(arg->config), &arg->features);
	vhost_blk_nl_observe(blk, false);
	mutex_unlock(&blk->dev.mutex);

	if (copy_to_user(argp, arg, sizeof(*arg)))
		ret = -EFAULT;
out:
	kfree(arg);
	return ret;
}

static long vhost_blk_ioctl_params(struct vhost_blk *blk, unsigned int ioctl,
				   void __user *argp)
{
	struct vhost_blk_params arg;
	long ret;

	BUILD_BUG_ON(offsetof(struct vhost_blk_params, wce) !=
		     VHOST_BLK_PARAMS_SIZE_VER0);
	ret = vhost_blk_copy_arg(&arg, sizeof(arg), VHOST_BLK_PARAMS_SIZE_VER0,
				 argp);
	if (ret)
		return ret;
	if (arg.__pad || arg.__reserved2 ||
	    memchr_inv(arg.__reserved, 0, sizeof(arg.__reserved)))
		return -EINVAL;

	mutex_lock(&blk->dev.mutex);
	if (ioctl == VHOST_BLK_GET_PARAMS) {
		arg.mask = VHOST_BLK_PARAM_ALL;
		arg.num_queues = blk->num_queues;
		arg.wce = READ_ONCE(blk->wce);
		spin_lock(&blk->serial_lock);
		memcpy(arg.serial, blk->serial, sizeof(arg.serial));
		spin_unlock(&blk->serial_lock);
		mutex_unlock(&blk->dev.mutex);
		/* A first-version caller gets the first version's fields. */
		return copy_to_user(argp, &arg, min_t(size_t, arg.size,
						      sizeof(arg))) ?
		       -EFAULT : 0;
	}

	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto out;
	ret = -EINVAL;
	if (arg.mask & ~VHOST_BLK_PARAM_ALL)
		goto out;
	if ((arg.mask & VHOST_BLK_PARAM_WCE) && arg.wce > 1)
		goto out;
	if (arg.mask & VHOST_BLK_PARAM_NUM_QUEUES) {
		if (!arg.num_queues || arg.num_queues > VHOST_BLK_MAX_QUEUES)
			goto out;
		ret = -EBUSY;
		if (blk->disk && arg.num_queues != blk->num_queues)
			goto out;
		blk->num_queues = arg.num_queues;
	}
	if (arg.mask & VHOST_BLK_PARAM_SERIAL) {
		spin_lock(&blk->serial_lock);
		memcpy(blk->serial, arg.serial, sizeof(blk->serial));
		spin_unlock(&blk->serial_lock);
	}
	/* Requests fetched from now on follow it; see request.c. */
	if (arg.mask & VHOST_BLK_PARAM_WCE)
		WRITE_ONCE(blk->wce, arg.wce);
	ret = 0;
out:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static bool vhost_blk_ranges_overlap(u64 a, u64 b, u64 size_a, u64 size_b)
{
	return a <= b + size_b - 1 && b <= a + size_a - 1;
}

/* -EINVAL if region @i overlaps an earlier one in either address space. */
static int vhost_blk_region_overlaps(const struct vhost_memory_region *r,
				     u32 i)
{
	u32 j;

	for (j = 0; j < i; j++) {
		if (vhost_blk_ranges_overlap(r[i].guest_phys_addr,
					     r[j].guest_phys_addr,
					     r[i].memory_size,
					     r[j].memory_size) ||
		    vhost_blk_ranges_overlap(r[i].userspace_addr,
					     r[j].userspace_addr,
					     r[i].memory_size,
					     r[j].memory_size))
			return -EINVAL;
	}
	return 0;
}

/*
 * The vhost core checks region addresses only for rings that are running,
 * so a table naming kernel addresses or wrapping around would be accepted
 * while the device is idle. Refuse it up front (the data path stays safe
 * regardless: every access to guest memory goes through uaccess or GUP).
 * Headers the core rejects itself (padding, too many regions) pass through.
 * Overlapping regions, which the core does not check either, are refused
 * with EINVAL: one guest address must translate to one host address and
 * back.
 */
int vhost_blk_check_mem_table(const struct vhost_memory __user *m)
{
	struct vhost_memory_region *r;
	struct vhost_memory mem;
	u32 i;
	int ret;

	if (copy_from_user(&mem, m, sizeof(mem)))
		return -EFAULT;
	if (mem.padding || mem.nregions > VHOST_BLK_MEM_REGIONS_MAX)
		return 0;
	r = memdup_array_user(m->regions, mem.nregions, sizeof(*r));
	if (IS_ERR(r))
		return PTR_ERR(r);
	ret = 0;
	for (i = 0; i < mem.nregions && !ret; i++) {
		if (!r[i].memory_size ||
		    r[i].guest_phys_addr + r[i].memory_size - 1 <
		    r[i].guest_phys_addr ||
		    r[i].userspace_addr + r[i].memory_size - 1 <
		    r[i].userspace_addr ||
		    !access_ok((void __user *)(uintptr_t)r[i].userspace_addr,
			       r[i].memory_size))
			ret = -EFAULT;
	}
	for (i = 0; i < mem.nregions && !ret; i++)
		ret = vhost_blk_region_overlaps(r, i);
	kfree(r);
	return ret;
}

/*
 * The vhost core swaps the table without waiting for requests in flight,
 * which hold addresses translated through the old one: hold the queues still
 * around the swap (see vhost_blk_pause()). Tables change rarely (memory
 * hotplug), so the drain costs nothing in the data path.
 */
static long vhost_blk_ioctl_set_mem_table(struct vhost_blk *blk,
					  void __user *argp)
{
	long ret;

	ret = vhost_blk_check_mem_table(argp);
	if (ret)
		return ret;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (!ret) {
		vhost_blk_pause(blk);
		ret = vhost_dev_ioctl(&blk->dev, VHOST_SET_MEM_TABLE, argp);
		vhost_blk_resume(blk);
	}
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

/*
 * The vhost core's VHOST_GET_VRING_BASE only reads last_avail_idx. Requests
 * fetched but not completed would be lost to a VMM that restarts the ring
 * from that index, so stop and drain the ring first (vhost-user semantics).
 */
static long vhost_blk_ioctl_get_vring_base(struct vhost_blk *blk,
					   void __user *argp)
{
	struct vhost_vring_state s;
	unsigned int idx;
	long ret;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto out;
	if (s.index < VHOST_BLK_MAX_QUEUES) {
		idx = array_index_nospec(s.index, VHOST_BLK_MAX_QUEUES);
		vhost_blk_stop_vq(blk, &blk->vqs[idx]);
	}
	ret = vhost_vring_ioctl(&blk->dev, VHOST_GET_VRING_BASE, argp);
out:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static long vhost_blk_reset_owner(struct vhost_blk *blk)
{
	struct vhost_iotlb *umem;
	long ret;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto out;
	umem = vhost_dev_reset_owner_prepare();
	if (!umem) {
		ret = -ENOMEM;
		goto out;
	}
	vhost_blk_detach(blk);
	vhost_dev_stop(&blk->dev);
	vhost_dev_reset_owner(&blk->dev, umem);
out:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static long vhost_blk_ioctl(struct file *f, unsigned int ioctl,
			    unsigned long arg)
{
	struct vhost_blk *blk = f->private_data;
	void __user *argp = (void __user *)arg;
	u64 features;
	long ret;

	switch (ioctl) {
	case VHOST_BLK_SET_BACKEND:
		return vhost_blk_ioctl_set_backend(blk, argp);
	case VHOST_BLK_GET_CONFIG:
		return vhost_blk_ioctl_get_config(blk, argp);
	case VHOST_BLK_SET_PARAMS:
	case VHOST_BLK_GET_PARAMS:
		return vhost_blk_ioctl_params(blk, ioctl, argp);
	case VHOST_GET_FEATURES:
		features = VHOST_BLK_FEATURES;
		if (copy_to_user(argp, &features, sizeof(features)))
			return -EFAULT;
		return 0;
	case VHOST_SET_FEATURES:
		if (copy_from_user(&features, argp, sizeof(features)))
			return -EFAULT;
		return vhost_blk_set_features(blk, features);
	case VHOST_GET_VRING_BASE:
		return vhost_blk_ioctl_get_vring_base(blk, argp);
	case VHOST_RESET_OWNER:
		return vhost_blk_reset_owner(blk);
#ifdef VHOST_BLK_WORKER_IOCTLS
	case VHOST_NEW_WORKER:
	case VHOST_FREE_WORKER:
	case VHOST_ATTACH_VRING_WORKER:
	case VHOST_GET_VRING_WORKER:
		mutex_lock(&blk->dev.mutex);
		ret = vhost_worker_ioctl(&blk->dev, ioctl, argp);
		mutex_unlock(&blk->dev.mutex);
		return ret;
#endif
	case VHOST_SET_MEM_TABLE:
		return vhost_blk_ioctl_set_mem_table(blk, argp);
	case VHOST_SET_OWNER:
	case VHOST_SET_LOG_BASE:
	case VHOST_SET_LOG_FD:
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_ADDR:
	case VHOST_SET_VRING_BASE:
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_SET_VRING_ERR:
	case VHOST_SET_VRING_ENDIAN:
	case VHOST_GET_VRING_ENDIAN:
	case VHOST_SET_VRING_BUSYLOOP_TIMEOUT:
	case VHOST_GET_VRING_BUSYLOOP_TIMEOUT:
		/* The core checks the owner in vhost_dev_ioctl(). */
		mutex_lock(&blk->dev.mutex);
		ret = vhost_dev_ioctl(&blk->dev, ioctl, argp);
		vhost_blk_nl_ioctl_done(blk, ioctl, ret);
		if (ret == -ENOIOCTLCMD)
			ret = vhost_vring_ioctl(&blk->dev, ioctl, argp);
		else
			vhost_dev_flush(&blk->dev);
		mutex_unlock(&blk->dev.mutex);
		return ret;
	default:
		/*
		 * Not the core's dispatch: its vring ioctls read a ring index
		 * from any command first and answer ENOBUFS or EFAULT for
		 * commands they do not know. A VMM probes with ENOTTY.
		 */
		return -ENOTTY;
	}
}

static const struct file_operations vhost_blk_fops = {
	.owner		= THIS_MODULE,
	.open		= vhost_blk_open,
	.release	= vhost_blk_release,
	.llseek		= noop_llseek,
	.unlocked_ioctl	= vhost_blk_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice vhost_blk_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "vhost-blk",
	.fops	= &vhost_blk_fops,
};

static int __init vhost_blk_init(void)
{
	int ret;

	ret = vhost_blk_request_init();
	if (ret)
		return ret;

	ret = vhost_blk_nl_init();
	if (ret)
		goto err_request_exit;

	ret = misc_register(&vhost_blk_misc);
	if (ret)
		goto err_nl_exit;
	return 0;

err_nl_exit:
	vhost_blk_nl_exit();
err_request_exit:
	vhost_blk_request_exit();
	return ret;
}
module_init(vhost_blk_init);

static void __exit vhost_blk_exit(void)
{
	misc_deregister(&vhost_blk_misc);
	vhost_blk_nl_exit();
	vhost_blk_request_exit();
}
module_exit(vhost_blk_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
MODULE_ALIAS("devname:vhost-blk");

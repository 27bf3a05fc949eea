// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: the "vhost-blk" generic netlink family, for introspection.
 *
 * Every open /dev/vhost-blk file is a device with an id in a registry.
 * DEV_GET and STATS_GET (do by id, or dump) describe devices and their
 * per-queue counters (stats.h); the monitor group carries
 * DEV_CAPACITY_CHANGED when a backing device is seen with a new size.
 *
 * The attributes and commands come from Documentation/netlink/specs/
 * vhost-blk.yaml through the kernel's YNL generator (vhost_blk_nl.h and
 * vhost-blk-nl.h, generated at build time). The policies, op table and
 * family are written here by hand: the generator emits struct
 * genl_split_ops, which 6.1 does not have, while struct genl_ops with
 * per-op policies works on both kernels.
 *
 * Who sees what: a device is visible to the process whose effective uid
 * opened its /dev/vhost-blk file and to CAP_NET_ADMIN. Anything else gets
 * ENOENT, as for an id that does not exist, so ids of other users' devices
 * are not even confirmed. The family works in the initial network
 * namespace only; owner pids are given in the requester's pid namespace.
 * There are no state-changing commands; any added later must be
 * GENL_ADMIN_PERM.
 */
#include "vhost_blk.h"
#include "vhost-blk-nl.h"

#include <linux/cred.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/xarray.h>
#include <net/genetlink.h>

/* A stats reply with VHOST_BLK_MAX_QUEUES queues is about 4.3 KiB. */
#define VHOST_BLK_NL_MSG_SIZE	8192

/*
 * Registry of open devices by id. vhost_blk_nl_lock guards the xarray and
 * is held while a reply is built from a device, so release (which
 * unregisters under it) cannot free the device underneath. Lock order:
 * vhost_blk_nl_lock -> dev.mutex -> vq->mutex (see vhost_blk.h).
 */
static DEFINE_MUTEX(vhost_blk_nl_lock);
static DEFINE_XARRAY_ALLOC(vhost_blk_devs);

/* Context: vhost_blk_nl_lock held. */
static bool vhost_blk_nl_visible(struct vhost_blk *blk,
				 const struct sk_buff *skb)
{
	return uid_eq(blk->euid, current_euid()) ||
	       netlink_capable(skb, CAP_NET_ADMIN);
}

static enum vhost_blk_state vhost_blk_nl_state(struct vhost_blk *blk)
{
	if (!vhost_dev_has_owner(&blk->dev))
		return VHOST_BLK_STATE_NO_OWNER;
	return blk->disk ? VHOST_BLK_STATE_ATTACHED : VHOST_BLK_STATE_IDLE;
}

static int vhost_blk_nl_put_queues(struct sk_buff *msg, struct vhost_blk *blk)
{
	struct nlattr *nest;
	unsigned int i;

	/* Backends are set and cleared with dev.mutex held too. */
	for (i = 0; i < blk->num_queues; i++) {
		bool started = vhost_vq_get_backend(&blk->vqs[i].vq);

		nest = nla_nest_start(msg, VHOST_BLK_A_DEV_QUEUE);
		if (!nest)
			return -EMSGSIZE;
		if (nla_put_u32(msg, VHOST_BLK_A_QUEUE_INDEX, i) ||
		    (started && nla_put_flag(msg, VHOST_BLK_A_QUEUE_STARTED))) {
			nla_nest_cancel(msg, nest);
			return -EMSGSIZE;
		}
		nla_nest_end(msg, nest);
	}
	return 0;
}

/*
 * A block device by its disk name and number; an image by its file name and
 * the number of the filesystem that holds it.
 */
static int vhost_blk_nl_put_disk(struct sk_buff *msg, struct vhost_blk *blk)
{
	struct vhost_blk_disk *disk = blk->disk;
	char name[64];
	dev_t devt;

	if (!disk)
		return 0;
	if (disk->bdev) {
		devt = disk->bdev->bd_dev;
		strscpy(name, disk->bdev->bd_disk->disk_name, sizeof(name));
	} else {
		devt = file_inode(disk->file)->i_sb->s_dev;
		snprintf(name, sizeof(name), "%pD", disk->file);
	}
	if (nla_put_u32(msg, VHOST_BLK_A_DEV_BACKING_MAJOR, MAJOR(devt)) ||
	    nla_put_u32(msg, VHOST_BLK_A_DEV_BACKING_MINOR, MINOR(devt)) ||
	    nla_put_string(msg, VHOST_BLK_A_DEV_BACKING_NAME, name) ||
	    nla_put_u64_64bit(msg, VHOST_BLK_A_DEV_CAPACITY,
			      vhost_blk_disk_sectors(disk), VHOST_BLK_A_DEV_PAD))
		return -EMSGSIZE;
	if (blk->disk->read_only &&
	    nla_put_flag(msg, VHOST_BLK_A_DEV_READ_ONLY))
		return -EMSGSIZE;
	return 0;
}

/* Context: dev.mutex held. */
static int vhost_blk_nl_put_dev_locked(struct sk_buff *msg,
				       struct vhost_blk *blk)
{
	/* Written with dev.mutex held (SET_FEATURES, RESET_OWNER). */
	u64 features = blk->vqs[0].vq.acked_features;
	u8 serial[VIRTIO_BLK_ID_BYTES];
	pid_t pid = 0;

	spin_lock(&blk->serial_lock);
	memcpy(serial, blk->serial, sizeof(serial));
	spin_unlock(&blk->serial_lock);
	if (vhost_dev_has_owner(&blk->dev) && blk->owner)
		pid = pid_vnr(blk->owner);

	if ((pid && nla_put_u32(msg, VHOST_BLK_A_DEV_OWNER_PID, pid)) ||
	    nla_put_u64_64bit(msg, VHOST_BLK_A_DEV_FEATURES, features,
			      VHOST_BLK_A_DEV_PAD) ||
	    nla_put_u32(msg, VHOST_BLK_A_DEV_NUM_QUEUES, blk->num_queues) ||
	    nla_put_u32(msg, VHOST_BLK_A_DEV_STATE, vhost_blk_nl_state(blk)) ||
	    nla_put(msg, VHOST_BLK_A_DEV_SERIAL,
		    strnlen(serial, sizeof(serial)), serial))
		return -EMSGSIZE;
	if (vhost_blk_nl_put_disk(msg, blk))
		return -EMSGSIZE;
	return vhost_blk_nl_put_queues(msg, blk);
}

static int vhost_blk_nl_put_dev(struct sk_buff *msg, struct vhost_blk *blk)
{
	int ret;

	if (nla_put_u32(msg, VHOST_BLK_A_DEV_ID, blk->id))
		return -EMSGSIZE;
	/*
	 * dev.mutex may be held for as long as a drain on a stuck backing
	 * device lasts. Never wait for it here, with the registry locked: such
	 * a device is reported busy, without the details the lock guards.
	 */
	if (!mutex_trylock(&blk->dev.mutex))
		return nla_put_u32(msg, VHOST_BLK_A_DEV_STATE,
				   VHOST_BLK_STATE_BUSY) ? -EMSGSIZE : 0;
	ret = vhost_blk_nl_put_dev_locked(msg, blk);
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static int vhost_blk_nl_put_queue_stats(struct sk_buff *msg,
					const struct vhost_blk_vq_stats *s,
					unsigned int index)
{
	const u64 *reqs = s->reqs;
	u64 completed = 0;
	struct nlattr *nest;
	unsigned int t;
	const struct {
		int attr;
		u64 val;
	} v[] = {
		{ VHOST_BLK_A_QUEUE_STATS_REQ_IN, READ_ONCE(reqs[VHOST_BLK_STAT_IN]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_OUT, READ_ONCE(reqs[VHOST_BLK_STAT_OUT]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_FLUSH, READ_ONCE(reqs[VHOST_BLK_STAT_FLUSH]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_GET_ID, READ_ONCE(reqs[VHOST_BLK_STAT_GET_ID]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_DISCARD, READ_ONCE(reqs[VHOST_BLK_STAT_DISCARD]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_WRITE_ZEROES,
		  READ_ONCE(reqs[VHOST_BLK_STAT_WRITE_ZEROES]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_UNSUPPORTED,
		  READ_ONCE(reqs[VHOST_BLK_STAT_UNSUPPORTED]) },
		{ VHOST_BLK_A_QUEUE_STATS_REQ_INVALID, READ_ONCE(reqs[VHOST_BLK_STAT_INVALID]) },
		{ VHOST_BLK_A_QUEUE_STATS_BYTES_READ, READ_ONCE(s->bytes_read) },
		{ VHOST_BLK_A_QUEUE_STATS_BYTES_WRITTEN, READ_ONCE(s->bytes_written) },
		{ VHOST_BLK_A_QUEUE_STATS_STATUS_OK, READ_ONCE(s->status_ok) },
		{ VHOST_BLK_A_QUEUE_STATS_STATUS_IOERR, READ_ONCE(s->status_ioerr) },
		{ VHOST_BLK_A_QUEUE_STATS_STATUS_UNSUPP, READ_ONCE(s->status_unsupp) },
		{ VHOST_BLK_A_QUEUE_STATS_FLUSHES, READ_ONCE(s->flushes) },
		{ VHOST_BLK_A_QUEUE_STATS_FLUSHES_SENT, READ_ONCE(s->flushes_sent) },
		{ VHOST_BLK_A_QUEUE_STATS_FUA_WRITES, READ_ONCE(s->fua_writes) },
		{ VHOST_BLK_A_QUEUE_STATS_FUA_EMULATED, READ_ONCE(s->fua_emulated) },
		{ VHOST_BLK_A_QUEUE_STATS_SIGNALS, READ_ONCE(s->signals) },
		{ VHOST_BLK_A_QUEUE_STATS_SIGNALLED, READ_ONCE(s->signalled) },
		{ VHOST_BLK_A_QUEUE_STATS_KICKS, READ_ONCE(s->kicks) },
	};
	u64 submitted = READ_ONCE(s->submitted);

	for (t = 0; t < VHOST_BLK_STAT_NR_TYPES; t++)
		completed += READ_ONCE(reqs[t]);

	nest = nla_nest_start(msg, VHOST_BLK_A_STATS_QUEUE);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(msg, VHOST_BLK_A_QUEUE_STATS_INDEX, index))
		goto err_cancel;
	for (t = 0; t < ARRAY_SIZE(v); t++)
		if (nla_put_u64_64bit(msg, v[t].attr, v[t].val,
				      VHOST_BLK_A_QUEUE_STATS_PAD))
			goto err_cancel;
	/* Both counters move under vq->mutex; read apart, clamp at 0. */
	if (nla_put_u64_64bit(msg, VHOST_BLK_A_QUEUE_STATS_IN_FLIGHT,
			      submitted > completed ? submitted - completed : 0,
			      VHOST_BLK_A_QUEUE_STATS_PAD))
		goto err_cancel;
	nla_nest_end(msg, nest);
	return 0;

err_cancel:
	nla_nest_cancel(msg, nest);
	return -EMSGSIZE;
}

static int vhost_blk_nl_put_stats(struct sk_buff *msg, struct vhost_blk *blk)
{
	unsigned int i, n = READ_ONCE(blk->num_queues);
	int ret;

	if (nla_put_u32(msg, VHOST_BLK_A_STATS_ID, blk->id))
		return -EMSGSIZE;
	for (i = 0; i < n; i++) {
		ret = vhost_blk_nl_put_queue_stats(msg, &blk->vqs[i].stats, i);
		if (ret)
			return ret;
	}
	return 0;
}

typedef int (*vhost_blk_nl_fill_t)(struct sk_buff *msg, struct vhost_blk *blk);

/* One message for @blk: header, then @fill's attributes. */
static int vhost_blk_nl_msg(struct sk_buff *msg, struct vhost_blk *blk,
			    u32 portid, u32 seq, int flags, u8 cmd,
			    vhost_blk_nl_fill_t fill)
{
	void *hdr;

	hdr = genlmsg_put(msg, portid, seq, &vhost_blk_nl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (fill(msg, blk)) {
		genlmsg_cancel(msg, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return 0;
}

static int vhost_blk_nl_doit(struct sk_buff *skb, struct genl_info *info,
			     int id_attr, vhost_blk_nl_fill_t fill)
{
	struct vhost_blk *blk;
	struct sk_buff *msg;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, id_attr))
		return -EINVAL;

	msg = genlmsg_new(VHOST_BLK_NL_MSG_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	mutex_lock(&vhost_blk_nl_lock);
	blk = xa_load(&vhost_blk_devs, nla_get_u32(info->attrs[id_attr]));
	if (!blk || !vhost_blk_nl_visible(blk, skb)) {
		mutex_unlock(&vhost_blk_nl_lock);
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[id_attr],
				    "no vhost-blk device with this id (or not yours to see)");
		nlmsg_free(msg);
		return -ENOENT;
	}
	ret = vhost_blk_nl_msg(msg, blk, info->snd_portid, info->snd_seq, 0,
			       info->genlhdr->cmd, fill);
	mutex_unlock(&vhost_blk_nl_lock);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

/* cb->args[0]: the first id not dumped yet. */
static int vhost_blk_nl_dumpit(struct sk_buff *skb, struct netlink_callback *cb,
			       vhost_blk_nl_fill_t fill)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	unsigned long id, next = cb->args[0];
	struct vhost_blk *blk;
	int ret = 0;

	mutex_lock(&vhost_blk_nl_lock);
	xa_for_each_start(&vhost_blk_devs, id, blk, cb->args[0]) {
		if (vhost_blk_nl_visible(blk, cb->skb)) {
			ret = vhost_blk_nl_msg(skb, blk,
					       NETLINK_CB(cb->skb).portid,
					       cb->nlh->nlmsg_seq, NLM_F_MULTI,
					       info->op.cmd, fill);
			if (ret)
				break;
		}
		next = id + 1;
	}
	mutex_unlock(&vhost_blk_nl_lock);
	cb->args[0] = next;
	/* A device that does not fit an empty message is an error. */
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

/* Dump messages large enough for a device with every queue. */
static int vhost_blk_nl_dump_start(struct netlink_callback *cb)
{
	cb->min_dump_alloc = max_t(u32, cb->min_dump_alloc,
				   VHOST_BLK_NL_MSG_SIZE);
	return 0;
}

int vhost_blk_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vhost_blk_nl_doit(skb, info, VHOST_BLK_A_DEV_ID,
				 vhost_blk_nl_put_dev);
}

int vhost_blk_nl_dev_get_dumpit(struct sk_buff *skb,
				struct netlink_callback *cb)
{
	return vhost_blk_nl_dumpit(skb, cb, vhost_blk_nl_put_dev);
}

int vhost_blk_nl_stats_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return vhost_blk_nl_doit(skb, info, VHOST_BLK_A_STATS_ID,
				 vhost_blk_nl_put_stats);
}

int vhost_blk_nl_stats_get_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	return vhost_blk_nl_dumpit(skb, cb, vhost_blk_nl_put_stats);
}

static const struct nla_policy vhost_blk_nl_dev_policy[VHOST_BLK_A_DEV_ID + 1] = {
	[VHOST_BLK_A_DEV_ID] = { .type = NLA_U32 },
};

static const struct nla_policy vhost_blk_nl_stats_policy[VHOST_BLK_A_STATS_ID + 1] = {
	[VHOST_BLK_A_STATS_ID] = { .type = NLA_U32 },
};

static const struct genl_ops vhost_blk_nl_ops[] = {
	{
		.cmd		= VHOST_BLK_CMD_DEV_GET,
		.doit		= vhost_blk_nl_dev_get_doit,
		.start		= vhost_blk_nl_dump_start,
		.dumpit		= vhost_blk_nl_dev_get_dumpit,
		.policy		= vhost_blk_nl_dev_policy,
		.maxattr	= VHOST_BLK_A_DEV_ID,
	},
	{
		.cmd		= VHOST_BLK_CMD_STATS_GET,
		.doit		= vhost_blk_nl_stats_get_doit,
		.start		= vhost_blk_nl_dump_start,
		.dumpit		= vhost_blk_nl_stats_get_dumpit,
		.policy		= vhost_blk_nl_stats_policy,
		.maxattr	= VHOST_BLK_A_STATS_ID,
	},
};

static const struct genl_multicast_group vhost_blk_nl_mcgrps[] = {
	/* Events name other users' devices: admins only. */
	[VHOST_BLK_NLGRP_MONITOR] = { .name = VHOST_BLK_MCGRP_MONITOR,
				      .flags = GENL_MCAST_CAP_NET_ADMIN },
};

struct genl_family vhost_blk_nl_family __ro_after_init = {
	.name		= VHOST_BLK_FAMILY_NAME,
	.version	= VHOST_BLK_FAMILY_VERSION,
	.module		= THIS_MODULE,
	.ops		= vhost_blk_nl_ops,
	.n_ops		= ARRAY_SIZE(vhost_blk_nl_ops),
	/* Strict checks (reserved header fields, unknown attributes). */
	.resv_start_op	= VHOST_BLK_CMD_STATS_GET + 1,
	/* vhost_blk_nl_lock serializes; never hold genl_mutex for a device. */
	.parallel_ops	= true,
	.mcgrps		= vhost_blk_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vhost_blk_nl_mcgrps),
};

static void vhost_blk_nl_capacity_send(struct vhost_blk *blk, u64 sectors)
{
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&vhost_blk_nl_family, &init_net,
				VHOST_BLK_NLGRP_MONITOR))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &vhost_blk_nl_family, 0,
			  VHOST_BLK_CMD_DEV_CAPACITY_CHANGED);
	if (!hdr ||
	    nla_put_u32(msg, VHOST_BLK_A_EVENT_ID, blk->id) ||
	    nla_put_u64_64bit(msg, VHOST_BLK_A_EVENT_CAPACITY, sectors,
			      VHOST_BLK_A_EVENT_PAD)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&vhost_blk_nl_family, msg, 0,
			  VHOST_BLK_NLGRP_MONITOR, GFP_KERNEL);
}

/* Report the attached disk's size if it differs from the last report. */
static void vhost_blk_nl_capacity_work(struct work_struct *work)
{
	struct vhost_blk *blk = container_of(work, struct vhost_blk,
					     capacity.work);
	u64 sectors;

	mutex_lock(&blk->dev.mutex);
	if (blk->disk) {
		sectors = vhost_blk_disk_sectors(blk->disk);
		if (sectors != blk->capacity.reported) {
			blk->capacity.reported = sectors;
			vhost_blk_nl_capacity_send(blk, sectors);
		}
	}
	mutex_unlock(&blk->dev.mutex);
}

/**
 * vhost_blk_nl_observe - note the backing device's size at an ioctl
 * @blk: the device
 * @attach: a backend was just attached (or none is): its size is the new
 *	reference and no event is sent
 *
 * Context: dev.mutex held.
 */
void vhost_blk_nl_observe(struct vhost_blk *blk, bool attach)
{
	u64 sectors;

	lockdep_assert_held(&blk->dev.mutex);
	if (!blk->disk)
		return;
	sectors = vhost_blk_disk_sectors(blk->disk);
	if (attach) {
		WRITE_ONCE(blk->capacity.seen, sectors);
		blk->capacity.reported = sectors;
		return;
	}
	vhost_blk_capacity_check(&blk->capacity, sectors);
}

/**
 * vhost_blk_nl_ioctl_done - follow the vhost core's owner ioctls
 * @blk: the device
 * @ioctl: what vhost_dev_ioctl() ran
 * @ret: its result
 *
 * Records the thread group of a successful VHOST_SET_OWNER caller.
 * Context: dev.mutex held.
 */
void vhost_blk_nl_ioctl_done(struct vhost_blk *blk, unsigned int ioctl,
			     long ret)
{
	lockdep_assert_held(&blk->dev.mutex);
	if (ioctl != VHOST_SET_OWNER || ret)
		return;
	put_pid(blk->owner);
	blk->owner = get_pid(task_tgid(current));
}

/**
 * vhost_blk_nl_register - give a newly opened device an id
 * @blk: the device, its vhost_dev initialized
 * @f: its file, whose opener's euid decides who may see it
 *
 * Return: 0 or -ENOMEM / -EBUSY (ids exhausted).
 */
int vhost_blk_nl_register(struct vhost_blk *blk, struct file *f)
{
	int ret;

	blk->euid = f->f_cred->euid;
	blk->owner = NULL;
	blk->capacity.seen = 0;
	blk->capacity.reported = 0;
	INIT_WORK(&blk->capacity.work, vhost_blk_nl_capacity_work);

	mutex_lock(&vhost_blk_nl_lock);
	ret = xa_alloc(&vhost_blk_devs, &blk->id, blk, xa_limit_31b,
		       GFP_KERNEL);
	mutex_unlock(&vhost_blk_nl_lock);
	return ret;
}

/**
 * vhost_blk_nl_unregister - drop a device from the registry
 * @blk: the device, stopped (nothing can queue the capacity work anymore)
 *
 * Waits for replies being built from @blk. Context: no vhost-blk lock held.
 */
void vhost_blk_nl_unregister(struct vhost_blk *blk)
{
	mutex_lock(&vhost_blk_nl_lock);
	xa_erase(&vhost_blk_devs, blk->id);
	mutex_unlock(&vhost_blk_nl_lock);
	cancel_work_sync(&blk->capacity.work);
	put_pid(blk->owner);
	blk->owner = NULL;
}

int vhost_blk_nl_init(void)
{
	return genl_register_family(&vhost_blk_nl_family);
}

void vhost_blk_nl_exit(void)
{
	genl_unregister_family(&vhost_blk_nl_family);
}

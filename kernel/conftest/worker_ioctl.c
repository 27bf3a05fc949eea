// SPDX-License-Identifier: GPL-2.0
/* 6.5+: VHOST_NEW_WORKER and friends, served by vhost_worker_ioctl(). */
#include <linux/module.h>
#include "vhost.h"

long conftest_worker_ioctl(struct vhost_dev *dev, void __user *argp)
{
	return vhost_worker_ioctl(dev, VHOST_NEW_WORKER, argp);
}

// SPDX-License-Identifier: GPL-2.0
/* 6.5+: per-virtqueue workers; vhost_work_queue(dev) became vhost_vq_work_queue(vq). */
#include <linux/module.h>
#include "vhost.h"

bool conftest_vq_work_queue(struct vhost_virtqueue *vq, struct vhost_work *work)
{
	return vhost_vq_work_queue(vq, work);
}

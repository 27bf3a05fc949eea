// SPDX-License-Identifier: GPL-2.0
/* 6.5+: per-virtqueue workers; vhost_has_work(dev) became vhost_vq_has_work(vq). */
#include <linux/module.h>
#include "vhost.h"

bool conftest_vq_has_work(struct vhost_virtqueue *vq)
{
	return vhost_vq_has_work(vq);
}

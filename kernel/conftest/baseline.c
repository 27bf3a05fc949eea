// SPDX-License-Identifier: GPL-2.0
/* Must always compile: proves the probe environment itself works. */
#include <linux/module.h>
#include "vhost.h"

int conftest_baseline(struct vhost_virtqueue *vq)
{
	return vq->num;
}

// SPDX-License-Identifier: GPL-2.0
/* 6.9+: block devices are opened as files (bdev_file_open_by_dev, bdev_fput). */
#include <linux/module.h>
#include <linux/blkdev.h>
#include <linux/fs.h>

struct file *conftest_bdev_file_open(dev_t dev, void *holder)
{
	struct file *f = bdev_file_open_by_dev(dev, BLK_OPEN_READ, holder, NULL);

	if (!IS_ERR(f))
		bdev_fput(f);
	return f;
}

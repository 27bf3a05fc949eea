/* SPDX-License-Identifier: GPL-2.0 */
/* `vhostblkctl serve` and `vhostblkctl qemu-args`: entry points. */
#ifndef SERVE_H
#define SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vhostblkctl.h"

int cmd_serve(const struct vbc_opts *opts, int argc, char **argv);
int cmd_qemu_args(const struct vbc_opts *opts, int argc, char **argv);

/* Is the uevent in @buf (NUL-separated KEY=VALUE) a change of @disk? */
bool serve_uevent_is_change(const char *buf, size_t len, dev_t disk);

#endif /* SERVE_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhostblkctl: shared declarations of the tool's files.
 *
 *   main.c        global options, OBJECT COMMAND dispatch, help
 *   serve*.c      `serve`: vhost-user-blk backend for QEMU on /dev/vhost-blk
 *   vu_*.c        the vhost-user protocol: message parsing and validation
 *   qemu_args.c   `qemu-args`: the QEMU options that match a daemon
 *   nl.c          requests to the vhost-blk generic netlink family
 *   dev.c         `dev show`: devices, their backing disk and state
 *   stats.c       `stats`: per-queue counters, once or --watch
 *   json.c        JSON output for -j
 */
#ifndef VHOSTBLKCTL_H
#define VHOSTBLKCTL_H

#include <stdbool.h>
#include <stdint.h>

/* Options before OBJECT, shared by every command. */
struct vbc_opts {
	bool json;		/* -j: JSON output */
	bool pretty;		/* -p: indented JSON */
};

/*
 * One OBJECT of the command line. @run gets argv starting after OBJECT and
 * returns the process exit status.
 */
struct vbc_cmd {
	const char *name;
	const char *summary;	/* one line for the usage text */
	int (*run)(const struct vbc_opts *opts, int argc, char **argv);
};

extern const char *vbc_progname;

/* A device id argument; prints the problem and returns -1 if not one. */
int vbc_parse_id(const char *s, uint32_t *id);

/* nl*.c users: the OBJECTs over the vhost-blk netlink family. */
int vbc_cmd_dev(const struct vbc_opts *opts, int argc, char **argv);
int vbc_cmd_stats(const struct vbc_opts *opts, int argc, char **argv);

#endif /* VHOSTBLKCTL_H */

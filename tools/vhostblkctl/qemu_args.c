// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl qemu-args --socket-path P [--num-queues N] [--mem SIZE] [--id NAME]
 *
 * Print the QEMU options that attach a guest to a `vhostblkctl serve`
 * daemon: guest RAM in a shared memfd (the daemon maps it), a chardev that
 * reconnects when the daemon restarts, and the vhost-user-blk-pci device.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/vhost_blk.h>

#include "serve.h"

static void qemu_args_usage(FILE *f)
{
	fprintf(f,
		"usage: %s qemu-args --socket-path PATH [--num-queues N] [--mem SIZE] [--id NAME]\n\n"
		"Print the QEMU options for a guest whose disk is served by\n"
		"`%s serve --socket-path PATH`, one per line.\n\n"
		"  --socket-path PATH  the daemon's socket\n"
		"  --num-queues N      queues (1..%d, default 1; at most the daemon's)\n"
		"  --mem SIZE          guest RAM, as for -m (default 1G); it must be\n"
		"                      the only RAM: drop -m or give the same size\n"
		"  --id NAME           prefix of the object ids (default vhostblk0)\n"
		"  --no-mem            leave out the memory backend (a second disk\n"
		"                      of the same guest)\n",
		vbc_progname, vbc_progname, VHOST_BLK_MAX_QUEUES);
}

static bool qemu_args_word_ok(const char *s)
{
	/* Characters QEMU's option parser and a shell pass through as-is. */
	return *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") == strlen(s);
}

int cmd_qemu_args(const struct vbc_opts *opts, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "num-queues", required_argument, NULL, 'q' },
		{ "mem", required_argument, NULL, 'm' },
		{ "id", required_argument, NULL, 'i' },
		{ "no-mem", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *mem = "1G", *id = "vhostblk0";
	unsigned long queues = 1;
	bool no_mem = false;
	char *end;
	int c;

	(void)opts;
	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'q':
			queues = strtoul(optarg, &end, 10);
			if (*end || !*optarg || queues < 1 ||
			    queues > VHOST_BLK_MAX_QUEUES) {
				fprintf(stderr, "%s qemu-args: --num-queues must be 1..%d\n",
					vbc_progname, VHOST_BLK_MAX_QUEUES);
				return 2;
			}
			break;
		case 'm':
			mem = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		case 'n':
			no_mem = true;
			break;
		case 'h':
			qemu_args_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "see %s qemu-args --help\n", vbc_progname);
			return 2;
		}
	}
	if (!path || optind < argc + 1) {
		qemu_args_usage(stderr);
		return 2;
	}
	if (!qemu_args_word_ok(path) || !qemu_args_word_ok(mem) ||
	    !qemu_args_word_ok(id) || strchr(path, ',')) {
		fprintf(stderr, "%s qemu-args: --socket-path, --mem and --id may hold only letters, digits and _-./ (QEMU splits options at commas)\n",
			vbc_progname);
		return 2;
	}
	if (!no_mem) {
		printf("-object memory-backend-memfd,id=%s-mem,size=%s,share=on\n",
		       id, mem);
		printf("-machine memory-backend=%s-mem\n", id);
		printf("-m %s\n", mem);
	}
	printf("-chardev socket,id=%s-chr,path=%s,reconnect=1\n", id, path);
	printf("-device vhost-user-blk-pci,id=%s,chardev=%s-chr,num-queues=%lu\n",
	       id, id, queues);
	return 0;
}

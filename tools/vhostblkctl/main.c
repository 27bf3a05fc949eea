// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl [ -j ] [ -p ] OBJECT { COMMAND | help }
 *
 * The command line is dispatched as iproute2's vdpa does: global options,
 * then one object whose handler parses the rest.
 */
#include <stdio.h>
#include <string.h>

#include "serve.h"
#include "vhostblkctl.h"

const char *vbc_progname = "vhostblkctl";

static const struct vbc_cmd vbc_cmds[] = {
	{ "serve", "vhost-user-blk back-end for QEMU on /dev/vhost-blk", cmd_serve },
	{ "qemu-args", "print the QEMU options for a serve daemon", cmd_qemu_args },
	{ NULL },
};

static void usage(FILE *f)
{
	const struct vbc_cmd *c;

	fprintf(f, "usage: %s [ -j ] [ -p ] OBJECT { COMMAND | help }\n\n"
		"  -j, --json     JSON output\n"
		"  -p, --pretty   indented JSON (with -j)\n"
		"  -V, --version  print the version\n\n"
		"OBJECT:\n", vbc_progname);
	for (c = vbc_cmds; c->name; c++)
		fprintf(f, "  %-11s %s\n", c->name, c->summary);
	fprintf(f, "\nSee vhostblkctl(8).\n");
}

int main(int argc, char **argv)
{
	struct vbc_opts opts = { 0 };
	const struct vbc_cmd *c;

	for (argc--, argv++; argc && argv[0][0] == '-'; argc--, argv++) {
		const char *a = argv[0];

		if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			opts.json = true;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--pretty")) {
			opts.pretty = true;
		} else if (!strcmp(a, "-jp") || !strcmp(a, "-pj")) {
			opts.json = opts.pretty = true;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("%s %s\n", vbc_progname, VBC_VERSION);
			return 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown option %s; see %s --help\n",
				vbc_progname, a, vbc_progname);
			return 2;
		}
	}
	if (!argc || !strcmp(argv[0], "help")) {
		usage(argc ? stdout : stderr);
		return argc ? 0 : 2;
	}
	for (c = vbc_cmds; c->name; c++)
		if (!strcmp(argv[0], c->name))
			return c->run(&opts, argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown object \"%s\"; see %s help\n",
		vbc_progname, argv[0], vbc_progname);
	return 2;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl serve --socket-path PATH --disk DEV [options]
 *
 * A vhost-user-blk back-end for QEMU that keeps only the control plane: the
 * guest's I/O runs between KVM and /dev/vhost-blk. One disk per daemon (one
 * socket, one front-end at a time); run one daemon per disk.
 *
 * This file: command line, sockets, signals, kernel uevents (disk resize)
 * and the poll loop. Messages are read and checked in vu_msg.c and mapped
 * onto ioctls in serve_dev.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "serve.h"
#include "serve_dev.h"
#include "vhostblkctl.h"

/*
 * The module busy-polls a ring at most 1000 us per kick whatever it is
 * told (kernel/vq.c, VHOST_BLK_BUSYLOOP_MAX_US): refuse what it would cut.
 */
#define SERVE_POLL_US_MAX	1000

struct serve_opts {
	const char *socket_path;
	int fd;				/* --fd, or -1 */
	bool print_caps;
	struct serve_cfg cfg;
};

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: %s serve --socket-path PATH --disk DEV [options]\n"
		"       %s serve --fd N --disk DEV [options]\n"
		"       %s serve --print-capabilities\n\n"
		"A vhost-user-blk back-end for QEMU's -device vhost-user-blk-pci on\n"
		"/dev/vhost-blk: guest I/O runs in the kernel, not in this process.\n"
		"One disk per daemon; run one daemon per disk.\n\n"
		"  --socket-path PATH    listen on this UNIX socket (its directory must exist)\n"
		"  --fd N                use fd N: a listening socket, or one connected to QEMU\n"
		"  --disk DEV            the backing block device or raw image file\n"
		"                        (alias: --blk-file)\n"
		"  --cache MODE          none (default), writeback, writethrough,\n"
		"                        directsync or unsafe, as QEMU's cache modes\n"
		"  --read-only           present a read-only disk\n"
		"  --num-queues N        queues offered (1..%d, default 1); QEMU's num-queues\n"
		"                        must not be larger\n"
		"  --serial STR          the disk's serial (up to %d bytes)\n"
		"  --poll-us N           busy-poll each ring up to N microseconds (0..%d,\n"
		"                        default 0: off) before waiting for the guest's\n"
		"                        kick; costs CPU, saves a wake-up at low queue depth\n"
		"  --print-capabilities  print the back-end's capabilities (JSON) and exit\n"
		"  -v, --verbose         log every vhost-user message\n"
		"  -h, --help            this text\n\n"
		"See vhostblkctl(8) and `%s qemu-args`.\n",
		vbc_progname, vbc_progname, vbc_progname, VHOST_BLK_MAX_QUEUES,
		VIRTIO_BLK_ID_BYTES, SERVE_POLL_US_MAX, vbc_progname);
}

/* docs/interop/vhost-user.rst, "Backend program conventions". */
static void serve_print_caps(void)
{
	printf("{\n  \"type\": \"block\",\n"
	       "  \"features\": [\n    \"read-only\",\n    \"blk-file\"\n  ]\n}\n");
}

static int serve_parse_uint(const char *s, const char *what, unsigned long max,
			    unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || end == s || *end || *out < 1 || *out > max) {
		fprintf(stderr, "%s serve: %s \"%s\" must be a number in 1..%lu\n",
			vbc_progname, what, s, max);
		return -1;
	}
	return 0;
}

static int serve_parse_poll_us(const char *s, unsigned int *us)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || n > SERVE_POLL_US_MAX) {
		fprintf(stderr, "%s serve: --poll-us \"%s\" must be a number of microseconds in 0..%d (0: no polling)\n",
			vbc_progname, s, SERVE_POLL_US_MAX);
		return -1;
	}
	*us = n;
	return 0;
}

static int serve_parse_cache(const char *s, unsigned int *mode)
{
	static const char *const names[] = {
		[VHOST_BLK_CACHE_NONE] = "none",
		[VHOST_BLK_CACHE_WRITEBACK] = "writeback",
		[VHOST_BLK_CACHE_WRITETHROUGH] = "writethrough",
		[VHOST_BLK_CACHE_DIRECTSYNC] = "directsync",
		[VHOST_BLK_CACHE_UNSAFE] = "unsafe",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*mode = i;
			return 0;
		}
	}
	fprintf(stderr, "%s serve: --cache \"%s\" is not a cache mode: use none, writeback, writethrough, directsync or unsafe\n",
		vbc_progname, s);
	return -1;
}

static int serve_parse(struct serve_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "fd", required_argument, NULL, 'f' },
		{ "disk", required_argument, NULL, 'd' },
		{ "blk-file", required_argument, NULL, 'd' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "cache", required_argument, NULL, 'C' },
		{ "num-queues", required_argument, NULL, 'q' },
		{ "serial", required_argument, NULL, 'S' },
		{ "poll-us", required_argument, NULL, 'P' },
		{ "print-capabilities", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long n;
	int c;

	o->fd = -1;
	o->cfg.num_queues = 1;
	o->cfg.disk_fd = -1;
	optind = 0;	/* argv[0] is the first option: parse from index 0 */
	while ((c = getopt_long(argc + 1, argv - 1, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'f':
			if (serve_parse_uint(optarg, "--fd", 1 << 20, &n))
				return 2;
			o->fd = n;
			break;
		case 'd':
			o->cfg.disk_path = optarg;
			break;
		case 'r':
			o->cfg.read_only = true;
			break;
		case 'C':
			if (serve_parse_cache(optarg, &o->cfg.cache_mode))
				return 2;
			break;
		case 'q':
			if (serve_parse_uint(optarg, "--num-queues",
					     VHOST_BLK_MAX_QUEUES, &n))
				return 2;
			o->cfg.num_queues = n;
			break;
		case 'S':
			if (strlen(optarg) > VIRTIO_BLK_ID_BYTES) {
				fprintf(stderr, "%s serve: --serial is longer than %d bytes\n",
					vbc_progname, VIRTIO_BLK_ID_BYTES);
				return 2;
			}
			strncpy(o->cfg.serial, optarg, VIRTIO_BLK_ID_BYTES);
			break;
		case 'P':
			if (serve_parse_poll_us(optarg, &o->cfg.poll_us))
				return 2;
			break;
		case 'c':
			o->print_caps = true;
			break;
		case 'v':
			serve_verbose = 1;
			break;
		case 'h':
			serve_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "see %s serve --help\n", vbc_progname);
			return 2;
		}
	}
	if (optind < argc + 1) {
		fprintf(stderr, "%s serve: unexpected argument \"%s\"; see %s serve --help\n",
			vbc_progname, argv[optind - 1], vbc_progname);
		return 2;
	}
	if (o->print_caps)
		return -1;
	if (!o->socket_path == (o->fd < 0)) {
		fprintf(stderr, "%s serve: give exactly one of --socket-path and --fd\n",
			vbc_progname);
		return 2;
	}
	if (!o->cfg.disk_path) {
		fprintf(stderr, "%s serve: --disk DEV is required (the backing block device)\n",
			vbc_progname);
		return 2;
	}
	return -1;
}

/*
 * QEMU's image locking (block/file-posix.c, locking=auto, the default on
 * Linux): on the open file of an image or a block device node, a shared
 * OFD lock on byte 100 + i for each permission i it holds, and on byte
 * 200 + i for each one it does not share; it refuses a file where another
 * open file holds 200 + i for a permission it wants, or 100 + i for one it
 * does not share. Permissions: 0 consistent read, 1 write, 2 write
 * unchanged, 3 resize. We take what a QEMU virtio-blk disk takes: read,
 * write unless read-only, and write not shared. So QEMU and we refuse each
 * other's images, and readers of a read-only attach (qemu-img info,
 * qemu-io -r, another read-only disk) still can open it. The locks belong
 * to the open file, which the module keeps while attached, so they last
 * as long as the daemon or the device.
 */
#define SERVE_LOCK_PERM		100
#define SERVE_LOCK_SHARED	200
#define SERVE_PERM_READ		0
#define SERVE_PERM_WRITE	1

static int serve_lock_byte(int fd, int cmd, short type, int off)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = off, .l_len = 1,
	};

	if (fcntl(fd, cmd, &fl))
		return -errno;
	return cmd == F_OFD_GETLK && fl.l_type != F_UNLCK ? -EAGAIN : 0;
}

static int serve_lock_image(int fd, bool read_only, const char *path)
{
	static const char *const what[] = { "reads", "writes" };
	struct {
		int off;
		int perm;
		bool held;		/* else not shared */
	} need[] = {
		{ SERVE_LOCK_PERM + SERVE_PERM_READ, SERVE_PERM_READ, true },
		{ SERVE_LOCK_PERM + SERVE_PERM_WRITE, SERVE_PERM_WRITE, true },
		{ SERVE_LOCK_SHARED + SERVE_PERM_WRITE, SERVE_PERM_WRITE, false },
	};
	unsigned int i;
	int ret;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (read_only && need[i].held && need[i].perm == SERVE_PERM_WRITE)
			continue;
		ret = serve_lock_byte(fd, F_OFD_SETLK, F_RDLCK, need[i].off);
		if (ret) {
			serve_err("%s: cannot lock byte %d (%s): another process holds it as QEMU would: stop it, or let only one use the disk",
				  path, need[i].off, strerror(-ret));
			return -1;
		}
	}
	/* Conflicts: a lock others hold that a write lock would not get. */
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int perm = need[i].perm;
		int off = need[i].held ? SERVE_LOCK_SHARED + perm :
			  SERVE_LOCK_PERM + perm;

		if (read_only && need[i].held && perm == SERVE_PERM_WRITE)
			continue;
		ret = serve_lock_byte(fd, F_OFD_GETLK, F_WRLCK, off);
		if (ret == -EAGAIN && need[i].held)
			serve_err("%s is in use: another process (QEMU, qemu-img, a daemon) has it open and lets no one else do %s (byte %d is locked): stop it first",
				  path, what[perm], off);
		else if (ret == -EAGAIN)
			serve_err("%s is in use: another process (QEMU, qemu-img, a daemon) has it open for writing (byte %d is locked): stop it first, or share it only between readers (--read-only here, read-only there)",
				  path, off);
		else if (ret)
			serve_err("%s: cannot test byte %d for locks: %s", path,
				  off, strerror(-ret));
		if (ret)
			return -1;
	}
	return 0;
}

/* Open the disk, saying what is wrong and how to fix it. */
static int serve_open_disk(struct serve_cfg *cfg)
{
	int mode = cfg->read_only ? O_RDONLY : O_RDWR;
	struct stat st;
	int fd;

	fd = open(cfg->disk_path, mode | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		if (err == EROFS || (err == EACCES && !cfg->read_only &&
				     !access(cfg->disk_path, R_OK)))
			serve_err("%s: cannot open for writing (%s): fix its permissions or add --read-only",
				  cfg->disk_path, strerror(err));
		else if (err == EACCES || err == EPERM)
			serve_err("%s: %s: run as root or give the daemon's user access to the disk",
				  cfg->disk_path, strerror(err));
		else
			serve_err("%s: %s", cfg->disk_path, strerror(err));
		return -1;
	}
	if (fstat(fd, &st) || (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))) {
		serve_err("%s: neither a block device nor a raw image file",
			  cfg->disk_path);
		close(fd);
		return -1;
	}
	if (serve_lock_image(fd, cfg->read_only, cfg->disk_path)) {
		close(fd);
		return -1;
	}
	/* An image cannot be claimed: the locks are all there is. */
	if (S_ISREG(st.st_mode)) {
		cfg->disk_fd = fd;
		return 0;
	}
	/* A mounted or claimed disk fails an exclusive open with EBUSY. */
	cfg->disk_fd = open(cfg->disk_path, mode | O_EXCL | O_CLOEXEC);
	if (cfg->disk_fd < 0) {
		serve_err("%s: %s: the disk is in use (mounted, or another daemon or VM has it): unmount it or stop its user",
			  cfg->disk_path, strerror(errno));
		close(fd);
		return -1;
	}
	close(cfg->disk_fd);
	cfg->disk_fd = fd;
	return 0;
}

/* Check the whole kernel path once at start-up, so mistakes show now. */
static int serve_probe(const struct serve_cfg *cfg)
{
	struct vhost_blk_config config;
	uint64_t cap;
	int fd;

	fd = serve_dev_open(cfg, &serve_kernel_ops, &config);
	if (fd < 0)
		return -1;
	close(fd);
	memcpy(&cap, config.config, sizeof(cap));
	serve_err("serving %s: %llu sectors, %s, %u queue%s, features 0x%llx",
		  cfg->disk_path, (unsigned long long)cap,
		  config.features & (1ULL << VIRTIO_BLK_F_RO) ? "read-only" : "read-write",
		  cfg->num_queues, cfg->num_queues > 1 ? "s" : "",
		  (unsigned long long)config.features);
	return 0;
}

/* Remove a socket file left by a daemon that is gone; refuse a live one. */
static int serve_clear_stale(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int s, ret;

	if (lstat(path, &st))
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		serve_err("%s exists and is not a socket: remove it or choose another --socket-path",
			  path);
		return -1;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	strcpy(a.sun_path, path);
	ret = connect(s, (struct sockaddr *)&a, sizeof(a));
	close(s);
	if (!ret) {
		serve_err("another back-end is listening on %s: stop it or choose another --socket-path",
			  path);
		return -1;
	}
	unlink(path);
	return 0;
}

/* Check --socket-path before anything else is set up. */
static int serve_check_socket_path(const char *path)
{
	struct sockaddr_un a;
	char dir[sizeof(a.sun_path)];
	struct stat st;

	if (strlen(path) >= sizeof(a.sun_path)) {
		serve_err("--socket-path is longer than %zu bytes: choose a shorter path",
			  sizeof(a.sun_path) - 1);
		return -1;
	}
	strcpy(dir, path);
	if (stat(dirname(dir), &st) || !S_ISDIR(st.st_mode)) {
		strcpy(dir, path);
		serve_err("socket directory %s does not exist: create it (mkdir -p %s) or choose another --socket-path",
			  dirname(dir), dir);
		return -1;
	}
	return 0;
}

static int serve_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s;

	if (serve_clear_stale(path))
		return -1;
	strcpy(a.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 1)) {
		serve_err("listening on %s: %s", path, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* Kernel uevents, to see the disk grow: -1 (no resize notices) on error. */
static int serve_uevent_open(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int s;

	s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		   NETLINK_KOBJECT_UEVENT);
	if (s >= 0 && !bind(s, (struct sockaddr *)&a, sizeof(a)))
		return s;
	serve_err("cannot listen to kernel uevents (%s): the guest will not see the disk grow without a restart",
		  strerror(errno));
	if (s >= 0)
		close(s);
	return -1;
}

/* Is this uevent a "change" of our disk? */
bool serve_uevent_is_change(const char *buf, size_t len, dev_t disk)
{
	unsigned int maj = ~0u, min = ~0u;
	bool change = false, block = false;
	const char *p = buf, *end = buf + len;

	while (p < end) {
		size_t n = strnlen(p, end - p);

		if (n == 13 && !strncmp(p, "ACTION=change", 13))
			change = true;
		else if (n == 15 && !strncmp(p, "SUBSYSTEM=block", 15))
			block = true;
		else if (!strncmp(p, "MAJOR=", 6) && n < 16)
			sscanf(p + 6, "%u", &maj);
		else if (!strncmp(p, "MINOR=", 6) && n < 16)
			sscanf(p + 6, "%u", &min);
		p += n + 1;
	}
	return change && block && maj == major(disk) && min == minor(disk);
}

static bool serve_uevent_read(int s, dev_t disk)
{
	char buf[8192];
	bool hit = false;
	ssize_t n;

	while ((n = recv(s, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = 0;
		if (serve_uevent_is_change(buf, n, disk))
			hit = true;
	}
	/* Events were dropped (ENOBUFS): ours may be among them. */
	return hit || (n < 0 && errno == ENOBUFS);
}

static int serve_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static bool serve_is_listening(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) && v;
}

enum { P_SIG, P_LISTEN, P_UEVENT, P_CONN, P_BACKEND, P_NUM };

struct serve_loop {
	struct serve_opts *o;
	int listen_fd;
	int sig_fd;
	int uevent_fd;
	dev_t disk_rdev;
	bool connected;
	bool once;		/* --fd was a connected socket: one front-end */
	struct serve_conn conn;
};

static void serve_accept(struct serve_loop *l)
{
	int s = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (s < 0)
		return;
	if (l->connected) {
		serve_err("a second front-end connected while one is served: closing it (one disk per daemon)");
		close(s);
		return;
	}
	if (serve_conn_init(&l->conn, &l->o->cfg, &serve_kernel_ops, s)) {
		serve_err("cannot serve the new front-end: closing its connection");
		close(s);
		return;
	}
	l->connected = true;
	serve_err("front-end connected");
}

static void serve_disconnect(struct serve_loop *l)
{
	serve_conn_close(&l->conn);
	l->connected = false;
	if (!l->once)
		serve_err("device released; waiting for the front-end to reconnect");
}

/* One poll round; false when the daemon should exit. */
static bool serve_loop_once(struct serve_loop *l)
{
	struct pollfd p[P_NUM] = {
		[P_SIG] = { .fd = l->sig_fd, .events = POLLIN },
		[P_LISTEN] = { .fd = l->listen_fd, .events = POLLIN },
		[P_UEVENT] = { .fd = l->uevent_fd, .events = POLLIN },
		[P_CONN] = { .fd = l->connected ? l->conn.sock : -1, .events = POLLIN },
		[P_BACKEND] = { .fd = l->connected ? l->conn.backend_fd : -1,
				.events = POLLIN },
	};
	struct signalfd_siginfo si;

	if (poll(p, P_NUM, -1) < 0)
		return errno == EINTR;
	if (p[P_SIG].revents && read(l->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		serve_err("signal %u: exiting", si.ssi_signo);
		return false;
	}
	if (p[P_CONN].revents && serve_conn_handle(&l->conn)) {
		serve_disconnect(l);
		if (l->once)
			return false;
	}
	if (l->connected && p[P_BACKEND].revents && p[P_BACKEND].fd == l->conn.backend_fd)
		serve_conn_backend_event(&l->conn);
	if (p[P_UEVENT].revents && serve_uevent_read(l->uevent_fd, l->disk_rdev) &&
	    l->connected)
		serve_conn_check_resize(&l->conn);
	if (p[P_LISTEN].revents)
		serve_accept(l);
	return true;
}

static int serve_run(struct serve_opts *o)
{
	struct serve_loop l = { .o = o, .listen_fd = -1 };
	struct stat st;
	int ret = 1;

	if ((o->socket_path && serve_check_socket_path(o->socket_path)) ||
	    serve_open_disk(&o->cfg))
		return 1;
	if (serve_probe(&o->cfg)) {
		close(o->cfg.disk_fd);
		return 1;
	}
	fstat(o->cfg.disk_fd, &st);
	l.disk_rdev = st.st_rdev;
	l.sig_fd = serve_signals();
	if (l.sig_fd < 0) {
		serve_err("signalfd: %s", strerror(errno));
		return 1;
	}
	l.uevent_fd = serve_uevent_open();
	if (o->fd >= 0 && serve_is_listening(o->fd)) {
		l.listen_fd = o->fd;
	} else if (o->fd >= 0) {
		l.once = true;
		if (serve_conn_init(&l.conn, &o->cfg, &serve_kernel_ops, o->fd))
			goto out;
		l.connected = true;
	} else {
		l.listen_fd = serve_listen(o->socket_path);
		if (l.listen_fd < 0)
			goto out;
		serve_err("listening on %s", o->socket_path);
	}
	while (serve_loop_once(&l))
		;
	ret = 0;
	if (l.connected)
		serve_conn_close(&l.conn);
	if (o->socket_path)
		unlink(o->socket_path);
out:
	if (l.listen_fd >= 0)
		close(l.listen_fd);
	if (l.uevent_fd >= 0)
		close(l.uevent_fd);
	close(l.sig_fd);
	close(o->cfg.disk_fd);
	return ret;
}

int cmd_serve(const struct vbc_opts *opts, int argc, char **argv)
{
	struct serve_opts o = { 0 };
	int ret;

	(void)opts;
	ret = serve_parse(&o, argc, argv);
	if (ret >= 0)
		return ret;
	if (o.print_caps) {
		serve_print_caps();
		return 0;
	}
	return serve_run(&o);
}

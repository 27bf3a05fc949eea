// SPDX-License-Identifier: GPL-2.0
/*
 * vhostblkctl serve takes QEMU's image locks: while it serves an image or a
 * block device, QEMU's tools refuse to open it for writing (and readers
 * that do not share writes, like qemu-img convert, while it is written),
 * readers of a read-only attach
 * are not stopped, and serve refuses an image QEMU has open for writing.
 * The refusals fail when serve takes no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define IMG	"/tmp/vblk-lock.img"
#define SOCK	"/tmp/vblk-lock.sock"
#define OUT	"/tmp/vblk-lock.out"

/* Is byte @off of @path locked by anyone (a write lock would not get it)? */
static int byte_locked(const char *path, int off)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off,
		.l_len = 1,
	};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = fcntl(fd, F_OFD_GETLK, &fl) ? -errno : fl.l_type != F_UNLCK;
	close(fd);
	return ret;
}

/* Start a command in the background; its pid, or -errno. */
static pid_t spawn(const char *const argv[])
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int stop(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

/* Wait up to @ms for @path to exist (serve's socket: it is serving). */
static bool wait_for(const char *path, pid_t pid, int ms)
{
	for (; ms > 0; ms -= 50) {
		if (!access(path, F_OK))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(50000);
	}
	return false;
}

/* Run "@cmd @path @tail"; its exit status. Its output goes to the TAP log. */
static int sh3(const char *cmd, const char *path, const char *tail)
{
	char line[512], full[1024];
	FILE *p;
	int st;

	snprintf(full, sizeof(full), "%s '%s' %s 2>&1", cmd, path, tail);
	p = popen(full, "r");
	if (!p)
		return -1;
	printf("#   $ %s\n", full);
	while (fgets(line, sizeof(line), p))
		printf("#   %s", line);
	st = pclose(p);
	fflush(stdout);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int sh(const char *cmd, const char *path)
{
	return sh3(cmd, path, "");
}

/* qemu-img convert reads without sharing writes (unless -U). */
static int convert(const char *path, bool force_share)
{
	return sh3(force_share ? "qemu-img convert -U -f raw -O raw" :
		   "qemu-img convert -f raw -O raw", path, OUT);
}

FIXTURE(lock) {
	char ctl[512];
	pid_t serve;
	pid_t holder;
	char disk[64];
	bool skip;
};

FIXTURE_VARIANT(lock) {
	bool bdev;
};

FIXTURE_VARIANT_ADD(lock, image) { false };
FIXTURE_VARIANT_ADD(lock, bdev) { true };

FIXTURE_SETUP(lock)
{
	int fd;

	self->serve = -1;
	self->holder = -1;
	self->skip = true;
	if (!vblk_find_ctl(self->ctl, sizeof(self->ctl)))
		SKIP(return, "no vhostblkctl binary (make tools, or set VHOSTBLKCTL)");
	if (access("/usr/bin/qemu-img", X_OK) || access("/usr/bin/qemu-io", X_OK))
		SKIP(return, "no qemu-img/qemu-io (Debian package qemu-utils)");
	if (access("/dev/vhost-blk", F_OK))
		SKIP(return, "no /dev/vhost-blk: module not loaded");
	if (variant->bdev) {
		snprintf(self->disk, sizeof(self->disk), "/dev/ram3");
		if (access(self->disk, F_OK))
			SKIP(return, "no brd ram disk %s (modprobe brd)",
			     self->disk);
	} else {
		snprintf(self->disk, sizeof(self->disk), IMG);
		fd = open(IMG, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, 16 << 20));
		close(fd);
	}
	unlink(SOCK);
	self->skip = false;
}

FIXTURE_TEARDOWN(lock)
{
	if (self->serve > 0)
		stop(self->serve);
	if (self->holder > 0)
		stop(self->holder);
	unlink(SOCK);
	if (!variant->bdev)
		unlink(IMG);
}

static void start_serve(struct __test_metadata *_metadata,
			FIXTURE_DATA(lock) *self, bool read_only)
{
	const char *argv[] = {
		self->ctl, "serve", "--socket-path", SOCK, "--disk",
		self->disk, read_only ? "--read-only" : NULL, NULL,
	};

	self->serve = spawn(argv);
	ASSERT_LT(0, self->serve);
	ASSERT_TRUE(wait_for(SOCK, self->serve, 120000));
}

/* Serving read-write: QEMU's tools refuse it; after, they open it. */
TEST_F_TIMEOUT(lock, writer_excludes_qemu, 300)
{
	if (self->skip)
		SKIP(return, "see setup");
	start_serve(_metadata, self, false);
	EXPECT_EQ(1, byte_locked(self->disk, 100));
	EXPECT_EQ(1, byte_locked(self->disk, 101));
	EXPECT_EQ(1, byte_locked(self->disk, 201));
	/* A second writer is refused. */
	EXPECT_NE(0, sh("qemu-io -f raw -c 'write 0 512'", self->disk));
	/* qemu-img convert does not share writes: it refuses a written image. */
	EXPECT_NE(0, convert(self->disk, false));
	/* Forced sharing still opens it: the refusals were the locks. */
	EXPECT_EQ(0, convert(self->disk, true));
	ASSERT_EQ(0, stop(self->serve));
	self->serve = -1;
	EXPECT_EQ(0, byte_locked(self->disk, 101));
	EXPECT_EQ(0, convert(self->disk, false));
	EXPECT_EQ(0, sh("qemu-io -f raw -c 'write 0 512'", self->disk));
	unlink(OUT);
}

/* Serving read-only: readers go on, writers are refused. */
TEST_F_TIMEOUT(lock, reader_shares_with_readers, 300)
{
	if (self->skip)
		SKIP(return, "see setup");
	start_serve(_metadata, self, true);
	EXPECT_EQ(1, byte_locked(self->disk, 100));
	EXPECT_EQ(0, byte_locked(self->disk, 101));
	EXPECT_EQ(1, byte_locked(self->disk, 201));
	EXPECT_EQ(0, convert(self->disk, false));
	EXPECT_EQ(0, sh("qemu-io -r -f raw -c 'read 0 512'", self->disk));
	EXPECT_NE(0, sh("qemu-io -f raw -c 'write 0 512'", self->disk));
	unlink(OUT);
}

/* QEMU has it open for writing: serve refuses, read-write and read-only. */
TEST_F_TIMEOUT(lock, refuses_qemu_writer, 300)
{
	const char *argv[] = {
		"/usr/bin/qemu-io", "-f", "raw", "-c", "sleep 60000",
		self->disk, NULL,
	};
	char cmd[768];
	int i;

	if (self->skip)
		SKIP(return, "see setup");
	self->holder = spawn(argv);
	ASSERT_LT(0, self->holder);
	for (i = 0; i < 2400 && byte_locked(self->disk, 101) != 1; i++)
		usleep(50000);
	ASSERT_EQ(1, byte_locked(self->disk, 101));
	/* A serve that does not refuse would serve on: bound it. */
	snprintf(cmd, sizeof(cmd), "timeout 60 %s serve --socket-path %s --disk",
		 self->ctl, SOCK);
	EXPECT_EQ(1, sh(cmd, self->disk));
	snprintf(cmd, sizeof(cmd),
		 "timeout 60 %s serve --socket-path %s --read-only --disk",
		 self->ctl, SOCK);
	EXPECT_EQ(1, sh(cmd, self->disk));
	EXPECT_NE(0, access(SOCK, F_OK));
}

TEST_HARNESS_MAIN

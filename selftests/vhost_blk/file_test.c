// SPDX-License-Identifier: GPL-2.0
/*
 * Image files as backends: the work items that do a file's I/O act for the
 * process that attached it (credentials, cgroups), attaching does not touch
 * the image, one device cannot hold another's I/O up, what the cache
 * mode promises holds for write zeroes too, and in the direct modes guest
 * buffers the image's O_DIRECT cannot take are read and written correctly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vblk_driver.h"

#define MEM_SIZE	(8 << 20)
#define IMG_SIZE	(8 << 20)
#define TMPFS_DIR	"/tmp/file-tmpfs"
#define EXT4_DIR	"/tmp/file-ext4"
#define EXT4_NAME	"fileext4"
#define XFS_DIR		"/tmp/file-xfs"
#define XFS_NAME	"filexfs"
#define NOBODY		65534

static int attach_mode(struct vdrv *d, int fd, unsigned int mode)
{
	struct vhost_blk_backend b = {
		.size = sizeof(b), .fd = fd, .cache_mode = mode,
	};

	return ioctl(d->fd, VHOST_BLK_SET_BACKEND, &b) ? -errno : 0;
}

static int get_features(struct vdrv *d, uint64_t *features)
{
	struct vhost_blk_config c = { .size = sizeof(c) };

	if (ioctl(d->fd, VHOST_BLK_GET_CONFIG, &c))
		return -errno;
	*features = c.features;
	return 0;
}

/* One request on queue 0 with @len bytes of @buf; returns the status. */
static int io(struct vdrv *d, uint32_t type, uint64_t sector, void *buf,
	      uint32_t len)
{
	size_t mark = d->mem_used;
	struct vreq r = vdrv_req_alloc(d, type, sector, len);
	int st;

	if (type != VIRTIO_BLK_T_IN && len)
		memcpy(r.data, buf, len);
	st = vdrv_do(d, &d->q[0], &r, 1, false, NULL);
	if (st == VIRTIO_BLK_S_OK && type == VIRTIO_BLK_T_IN)
		memcpy(buf, r.data, len);
	d->mem_used = mark;
	return st;
}

static int write_zeroes(struct vdrv *d, uint64_t sector, uint32_t nr)
{
	struct virtio_blk_discard_write_zeroes seg = {
		.sector = sector, .num_sectors = nr,
	};

	return io(d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof(seg));
}

/* A tmpfs of our own: the runner's /tmp may be an overlay. */
static int make_tmpfs(void)
{
	mkdir(TMPFS_DIR, 0755);
	if (vblk_mounted(TMPFS_DIR))
		return 0;
	return mount("tmpfs", TMPFS_DIR, "tmpfs", 0, "size=64m") ? -errno : 0;
}

/* A written (not sparse) image of IMG_SIZE bytes of @byte, synced. */
static int make_image(const char *path, int byte, mode_t mode)
{
	static char buf[1 << 16];
	size_t done;
	int fd;

	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	memset(buf, byte, sizeof(buf));
	for (done = 0; done < IMG_SIZE; done += sizeof(buf)) {
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			close(fd);
			return -EIO;
		}
	}
	fsync(fd);
	return fd;
}

/*
 * @fstype with 4 KiB blocks on a null_blk of @lbs-byte blocks at @dir,
 * made with mkfs options @mkfs_opts and mounted with @data: 0 or -errno.
 */
static int fs_4k(const char *name, const char *fstype, unsigned int lbs,
		 const char *mkfs_opts, const char *data, const char *dir)
{
	bool xfs = !strcmp(fstype, "xfs");
	char dev[64], cmd[256];
	int ret;

	snprintf(cmd, sizeof(cmd), "modprobe %s 2>/dev/null", fstype);
	(void)!system(cmd);
	/* mkfs.xfs wants 300 MiB at least; null_blk allocates on write. */
	ret = vblk_null_blk(name, xfs ? 320 : 64, lbs, false, dev, sizeof(dev));
	if (ret)
		return ret;
	snprintf(cmd, sizeof(cmd), "mkfs.%s -q %s %s %s >/dev/null 2>&1",
		 fstype, xfs ? "-f -b size=4096" : "-F -b 4096", mkfs_opts,
		 dev);
	ret = -ENOEXEC;
	if (!system(cmd)) {
		mkdir(dir, 0755);
		ret = mount(dev, dir, fstype, 0, data) ? -errno : 0;
	}
	if (ret)
		vblk_fs_remove(name, dir);
	return ret;
}

/* No state: the fixture is there for TEST_F_TIMEOUT (mkfs under TCG). */
FIXTURE(file) {
	int unused;
};

FIXTURE_SETUP(file)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(file)
{
}

/*
 * An append-only image cannot be written at offsets: attaching it for
 * writing fails with EPERM, as open(2) without O_APPEND would; read-only
 * it is fine. An O_APPEND file of any other kind is EINVAL.
 */
TEST_F_TIMEOUT(file, append_only_refused, 100)
{
	const char *img = TMPFS_DIR "/append";
	struct vdrv d;
	int fd, flags;

	ASSERT_EQ(0, make_tmpfs());
	fd = make_image(img, 0, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));

	/* O_APPEND on an ordinary file: guest writes would all land at EOF. */
	close(fd);
	fd = open(img, O_RDWR | O_APPEND | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, attach_mode(&d, fd, VHOST_BLK_CACHE_WRITEBACK));

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags)) {
		close(fd);
		vdrv_close(&d);
		SKIP(return, "tmpfs has no FS_IOC_GETFLAGS here: %s",
		     strerror(errno));
	}
	flags |= FS_APPEND_FL;
	ASSERT_EQ(0, ioctl(fd, FS_IOC_SETFLAGS, &flags));
	EXPECT_EQ(-EPERM, attach_mode(&d, fd, VHOST_BLK_CACHE_WRITEBACK));
	EXPECT_EQ(-EPERM, attach_mode(&d, fd, VHOST_BLK_CACHE_NONE));
	close(fd);
	fd = open(img, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_WRITEBACK));

	vdrv_close(&d);
	close(fd);
	fd = open(img, O_RDONLY | O_CLOEXEC);
	flags &= ~FS_APPEND_FL;
	ioctl(fd, FS_IOC_SETFLAGS, &flags);
	close(fd);
	unlink(img);
}

/*
 * A setuid image owned by an unprivileged user who attaches it: a guest
 * write clears the setuid bit, as a write(2) by that user does (it has no
 * CAP_FSETID). The work item must not write with the kworker's (root's)
 * credentials.
 */
TEST_F_TIMEOUT(file, suid_stripped_for_owner, 100)
{
	const char *img = TMPFS_DIR "/suid";
	uint8_t buf[4096];
	struct stat st;
	struct vdrv d;
	int fd;

	ASSERT_EQ(0, make_tmpfs());
	fd = make_image(img, 0, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, chown(img, NOBODY, NOBODY));
	ASSERT_EQ(0, chmod(img, 04755));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));

	/* From here on the owner, without capabilities. */
	ASSERT_EQ(0, setresgid(NOBODY, NOBODY, NOBODY));
	ASSERT_EQ(0, setresuid(NOBODY, NOBODY, NOBODY));
	fd = open(img, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_WRITEBACK));
	ASSERT_EQ(0, stat(img, &st));
	ASSERT_TRUE(st.st_mode & S_ISUID);

	vblk_fill(buf, sizeof(buf), 7);
	ASSERT_EQ(VIRTIO_BLK_S_OK, io(&d, VIRTIO_BLK_T_OUT, 8, buf,
				      sizeof(buf)));
	ASSERT_EQ(0, stat(img, &st));
	EXPECT_FALSE(st.st_mode & S_ISUID);
	EXPECT_EQ(0755, st.st_mode & 07777);

	vdrv_close(&d);
	close(fd);
	unlink(img);
}

/*
 * Quota limits bind the attacher as they bind its own write(2): the image
 * is nobody's, on ext4 with user quota, nobody's hard limit 1 MiB. Root
 * (CAP_SYS_RESOURCE: quota hard limits do not apply) attaches it and its
 * guest fills 2 MiB of holes; once nobody attaches it, a guest write to a
 * hole fails (EDQUOT), a write over allocated blocks does not. Work items
 * acting with the kworker's credentials (root's) would let the write
 * through.
 */
TEST_F_TIMEOUT(file, quota_binds_attacher, 200)
{
	const char *dir = "/tmp/file-quota", *name = "filequota";
	const char *img = "/tmp/file-quota/img";
	static uint8_t buf[2 << 20];
	struct dqblk q = {
		.dqb_bhardlimit = 1024,		/* 1 KiB units: 1 MiB */
		.dqb_valid = QIF_BLIMITS,
	};
	char dev[64];
	struct stat st;
	struct vdrv d;
	int fd, ret, i;

	/* ext4's quota files are in format v2, a module of its own. */
	(void)!system("modprobe quota_v2 2>/dev/null");
	ret = fs_4k(name, "ext4", 512, "-O quota", "usrquota", dir);
	if (ret == -ENOEXEC || ret == -ENODEV || ret == -EINVAL ||
	    ret == -ESRCH)
		SKIP(return, "cannot make ext4 with user quota: mkfs.ext4 -O quota, null_blk, quota support or the quota_v2 module missing (%s)",
		     strerror(-ret));
	ASSERT_EQ(0, ret);
	snprintf(dev, sizeof(dev), "/dev/%s", name);
	ret = quotactl(QCMD(Q_SETQUOTA, USRQUOTA), dev, NOBODY, (void *)&q);
	if (ret && errno == ESRCH)
		SKIP(goto out, "user quota is not enabled on the mount");
	ASSERT_EQ(0, ret);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, IMG_SIZE));
	ASSERT_EQ(0, fchown(fd, NOBODY, NOBODY));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));

	/* Root: over nobody's limit, as root's own write(2) may go. */
	ASSERT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_NONE));
	vblk_fill(buf, sizeof(buf), 21);
	/* In requests of one segment of at most 1 MiB (size_max). */
	for (i = 0; i < 2; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  io(&d, VIRTIO_BLK_T_OUT, i * 2048, buf + i * (1 << 20),
			     1 << 20));
	ASSERT_EQ(0, fstat(fd, &st));
	TH_LOG("root's guest wrote 2 MiB: %lld KiB allocated to nobody",
	       (long long)st.st_blocks / 2);
	ASSERT_LT(1024 * 2, st.st_blocks);
	ASSERT_EQ(0, attach_mode(&d, -1, VHOST_BLK_CACHE_NONE));
	close(fd);

	/* nobody: no more blocks, but its allocated ones may be rewritten. */
	ASSERT_EQ(0, setresgid(NOBODY, NOBODY, NOBODY));
	ASSERT_EQ(0, setresuid(NOBODY, NOBODY, NOBODY));
	fd = open(img, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_NONE));
	EXPECT_EQ(VIRTIO_BLK_S_IOERR, io(&d, VIRTIO_BLK_T_OUT, 8192, buf,
					 64 << 10))
		TH_LOG("a write to a hole went over the attacher's quota");
	vblk_fill(buf, 64 << 10, 22);
	EXPECT_EQ(VIRTIO_BLK_S_OK, io(&d, VIRTIO_BLK_T_OUT, 0, buf, 64 << 10));
	EXPECT_EQ(0, vblk_pread(fd, buf + (1 << 20), 64 << 10, 0));
	EXPECT_EQ(0, memcmp(buf, buf + (1 << 20), 64 << 10));

	vdrv_close(&d);
	close(fd);
out:
	/* Unmounting is root's: the parent removes it (cleanup below). */
	return;
}

/*
 * Attaching only looks: an image's mtime stays as it was (xfs's fallocate
 * updates it even past EOF, and would strip setuid), and discard and write
 * zeroes are still offered where the filesystem has fallocate.
 */
TEST_F_TIMEOUT(file, attach_keeps_image_unchanged, 200)
{
	const char *img = XFS_DIR "/probe";
	struct timespec times[2] = {
		{ .tv_sec = 1000000000 }, { .tv_sec = 1000000000 },
	};
	struct stat before, st;
	uint64_t features;
	struct vdrv d;
	int fd, ret;

	ret = vblk_fs(XFS_NAME, "xfs", false, XFS_DIR);
	if (ret == -ENOEXEC || ret == -ENODEV)
		SKIP(return, "cannot make xfs: mkfs.xfs, null_blk or the xfs module missing (%s)",
		     strerror(-ret));
	ASSERT_EQ(0, ret);
	fd = make_image(img, 0, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, futimens(fd, times));
	ASSERT_EQ(0, fstat(fd, &before));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_WRITEBACK));

	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(1000000000, st.st_mtim.tv_sec);
	EXPECT_EQ(before.st_ctim.tv_sec, st.st_ctim.tv_sec);
	EXPECT_EQ(before.st_ctim.tv_nsec, st.st_ctim.tv_nsec);
	ASSERT_EQ(0, get_features(&d, &features));
	EXPECT_TRUE(features & (1ULL << VIRTIO_BLK_F_DISCARD));
	EXPECT_TRUE(features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));

	vdrv_close(&d);
	close(fd);
	unlink(img);
}

/* More than the 256 a shared workqueue runs; 3 descriptors each. */
#define SLOW_REQS	300

/*
 * One device's file I/O cannot hold another's up: device A's writes all
 * block on a frozen ext4 (more of them than a workqueue runs at once by
 * default), device B's read on tmpfs still completes; A's complete once
 * the filesystem is thawed.
 */
TEST_F_TIMEOUT(file, other_device_progresses, 300)
{
	const char *img_a = EXT4_DIR "/slow", *img_b = TMPFS_DIR "/fast";
	struct vdrv a, b;
	struct vreq rb, ra;
	int fd_a, fd_b, dir, ret, i, done, st_b = -1;
	uint32_t head, len;

	ASSERT_EQ(0, make_tmpfs());
	ret = vblk_fs(EXT4_NAME, "ext4", false, EXT4_DIR);
	if (ret == -ENOEXEC || ret == -ENODEV)
		SKIP(return, "cannot make ext4: mkfs.ext4, null_blk or the ext4 module missing (%s)",
		     strerror(-ret));
	ASSERT_EQ(0, ret);
	fd_a = make_image(img_a, 0, 0600);
	ASSERT_LE(0, fd_a);
	fd_b = make_image(img_b, 0x5a, 0600);
	ASSERT_LE(0, fd_b);
	ASSERT_EQ(0, vdrv_open(&a, 4 * MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&a, 1, 1024, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, attach_mode(&a, fd_a, VHOST_BLK_CACHE_WRITEBACK));
	ASSERT_EQ(0, vdrv_open(&b, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&b, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, attach_mode(&b, fd_b, VHOST_BLK_CACHE_WRITEBACK));
	dir = open(EXT4_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, dir);

	ASSERT_EQ(0, ioctl(dir, FIFREEZE, 0));
	for (i = 0; i < SLOW_REQS; i++) {
		ra = vdrv_req_alloc(&a, VIRTIO_BLK_T_OUT, i * 8, 4096);
		memset(ra.data, i, 4096);
		if (vdrv_start(&a, &a.q[0], &ra, 1, false) < 0)
			break;
	}
	vdrv_kick(&a.q[0]);
	/* Let A's work items reach the frozen filesystem and block. */
	sleep(3);
	rb = vdrv_req_alloc(&b, VIRTIO_BLK_T_IN, 0, 4096);
	if (vdrv_start(&b, &b.q[0], &rb, 1, false) >= 0) {
		vdrv_kick(&b.q[0]);
		if (!vdrv_get_used(&b, &b.q[0], &head, &len, 30000))
			st_b = *rb.status;
	}
	/* Thaw before judging: nothing may stay blocked on failure. */
	ASSERT_EQ(0, ioctl(dir, FITHAW, 0));
	EXPECT_EQ(SLOW_REQS, i);
	EXPECT_EQ(VIRTIO_BLK_S_OK, st_b);
	EXPECT_EQ(0x5a, rb.data[0]);
	EXPECT_EQ(0x5a, rb.data[4095]);

	for (done = 0; done < i; done++)
		if (vdrv_get_used(&a, &a.q[0], &head, &len, 60000))
			break;
	EXPECT_EQ(i, done);

	vdrv_close(&a);
	vdrv_close(&b);
	close(dir);
	close(fd_a);
	close(fd_b);
	unlink(img_a);
	unlink(img_b);
}

/* The cgroup v2 hierarchy: the mounted one, else one of our own. */
static const char *cgroup_root(void)
{
	static const char *own = "/tmp/file-cg";

	if (!access("/sys/fs/cgroup/cgroup.subtree_control", F_OK))
		return "/sys/fs/cgroup";
	mkdir(own, 0755);
	if (!access("/tmp/file-cg/cgroup.subtree_control", F_OK) ||
	    !mount("cgroup2", own, "cgroup2", 0, NULL))
		return own;
	return NULL;
}

/* wbytes of device @dev in @cg's io.stat; 0 when it has no line. */
static unsigned long long io_stat_wbytes(const char *cg, dev_t dev)
{
	unsigned long long wbytes = 0;
	char path[256], line[512];
	unsigned int ma, mi;
	FILE *f;

	snprintf(path, sizeof(path), "%s/io.stat", cg);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *w = strstr(line, "wbytes=");

		if (sscanf(line, "%u:%u", &ma, &mi) == 2 && w &&
		    ma == major(dev) && mi == minor(dev))
			wbytes = strtoull(w + 7, NULL, 10);
	}
	fclose(f);
	return wbytes;
}

/*
 * Direct I/O to an image from the work items is the owner's: it shows in
 * the io.stat of the owner's cgroup, not the root's (the kworker's).
 */
TEST_F_TIMEOUT(file, io_charged_to_owner_cgroup, 200)
{
	const char *img = EXT4_DIR "/cg";
	static uint8_t buf[256 << 10];
	char cg[256], val[32], ctl[256];
	unsigned long long wbytes;
	const char *root;
	struct stat st;
	struct vdrv d;
	int fd, ret, i;

	root = cgroup_root();
	if (!root)
		SKIP(return, "no cgroup v2 hierarchy: cannot mount cgroup2 (%s)",
		     strerror(errno));
	snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", root);
	if (vblk_read_str(ctl, val, sizeof(val)) < 0 || !strstr(val, "io"))
		SKIP(return, "the io controller is not available in cgroup v2 (bound to v1, or CONFIG_BLK_CGROUP off)");
	ASSERT_EQ(0, vblk_write_attr(root, "cgroup.subtree_control", "+io"));
	snprintf(cg, sizeof(cg), "%s/vblk-file", root);
	mkdir(cg, 0755);
	snprintf(val, sizeof(val), "%d", getpid());
	ASSERT_EQ(0, vblk_write_attr(cg, "cgroup.procs", val));

	ret = vblk_fs(EXT4_NAME, "ext4", false, EXT4_DIR);
	if (ret == -ENOEXEC || ret == -ENODEV)
		SKIP(return, "cannot make ext4: mkfs.ext4, null_blk or the ext4 module missing (%s)",
		     strerror(-ret));
	ASSERT_EQ(0, ret);
	fd = make_image(img, 0, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_NONE));

	wbytes = io_stat_wbytes(cg, st.st_dev);
	for (i = 0; i < 4; i++) {
		vblk_fill(buf, sizeof(buf), i);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  io(&d, VIRTIO_BLK_T_OUT, i * (sizeof(buf) >> 9), buf,
			     sizeof(buf)));
	}
	EXPECT_LE(wbytes + 4 * sizeof(buf), io_stat_wbytes(cg, st.st_dev));
	TH_LOG("wbytes in %s: %llu before, %llu after", cg, wbytes,
	       io_stat_wbytes(cg, st.st_dev));

	vdrv_close(&d);
	close(fd);
	unlink(img);
	snprintf(val, sizeof(val), "%d", getpid());
	vblk_write_attr(root, "cgroup.procs", val);
	rmdir(cg);
}

/* Transactions ext4 committed on @name so far, from /proc/fs/jbd2. */
static long jbd2_commits(const char *name)
{
	char path[128], buf[128];

	snprintf(path, sizeof(path), "/proc/fs/jbd2/%s-8/info", name);
	if (vblk_read_str(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtol(buf, NULL, 10);
}

/*
 * With the write cache off (writethrough), a completed write zeroes is on
 * stable storage as a write is: on ext4, whose fallocate changes extents,
 * that is a journal commit (the mount's own commit interval is 60 s).
 */
TEST_F_TIMEOUT(file, write_zeroes_stable, 200)
{
	const char *img = EXT4_DIR "/zeroes";
	long before;
	struct vdrv d;
	int fd, ret;

	ret = vblk_fs(EXT4_NAME, "ext4", false, EXT4_DIR);
	if (ret == -ENOEXEC || ret == -ENODEV)
		SKIP(return, "cannot make ext4: mkfs.ext4, null_blk or the ext4 module missing (%s)",
		     strerror(-ret));
	ASSERT_EQ(0, ret);
	fd = make_image(img, 0x33, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdrv_open(&d, MEM_SIZE));
	ASSERT_EQ(0, vdrv_setup(&d, 1, 64, VHOST_BLK_FEATURES));
	ASSERT_EQ(0, attach_mode(&d, fd, VHOST_BLK_CACHE_WRITETHROUGH));

	before = jbd2_commits(EXT4_NAME);
	if (before < 0)
		SKIP(return, "no /proc/fs/jbd2/%s-8/info to count commits",
		     EXT4_NAME);
	ASSERT_EQ(VIRTIO_BLK_S_OK, write_zeroes(&d, 64, 64));
	EXPECT_LT(before, jbd2_commits(EXT4_NAME));

	vdrv_close(&d);
	close(fd);
	unlink(img);
}

/*
 * Guest buffers an image's O_DIRECT cannot take (virtio allows any address
 * and any split of the data) in the direct modes: each variant is a
 * filesystem with 4 KiB blocks on a null_blk of @lbs-byte logical blocks,
 * so the image's direct I/O alignment is @lbs.
 */
#define UA_IMG_SIZE	(24 << 20)
#define UA_BIG		(9 << 20)	/* more than one window of 4 MiB */
#define UA_LEN		(16 << 10)

FIXTURE(unaligned) {
	char dir[64];
	char name[32];
	char img[96];
	int fd;
	struct vdrv d;
	uint8_t *check;
};

FIXTURE_VARIANT(unaligned) {
	const char *fstype;
	unsigned int lbs;
};

FIXTURE_VARIANT_ADD(unaligned, ext4_512) { "ext4", 512 };
FIXTURE_VARIANT_ADD(unaligned, xfs_512) { "xfs", 512 };
FIXTURE_VARIANT_ADD(unaligned, ext4_4k) { "ext4", 4096 };
FIXTURE_VARIANT_ADD(unaligned, xfs_4k) { "xfs", 4096 };

FIXTURE_SETUP(unaligned)
{
	struct statx stx;
	int ret;

	self->fd = -1;
	self->d.fd = -1;
	self->check = NULL;
	snprintf(self->name, sizeof(self->name), "fileal_%s_%u",
		 variant->fstype, variant->lbs);
	snprintf(self->dir, sizeof(self->dir), "/tmp/%s", self->name);
	snprintf(self->img, sizeof(self->img), "%s/img", self->dir);
	ret = fs_4k(self->name, variant->fstype, variant->lbs, "", NULL,
		    self->dir);
	if (ret == -ENOEXEC || ret == -ENODEV)
		SKIP(return, "cannot make %s: mkfs.%s, null_blk or the module missing (%s)",
		     variant->fstype, variant->fstype, strerror(-ret));
	ASSERT_EQ(0, ret);
	self->fd = open(self->img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, fallocate(self->fd, 0, 0, UA_IMG_SIZE));
	/* The filesystem's answer is what the test is about: check it. */
	ASSERT_EQ(0, statx(self->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx));
	ASSERT_TRUE(stx.stx_mask & STATX_DIOALIGN);
	ASSERT_EQ(variant->lbs, stx.stx_dio_offset_align);
	TH_LOG("%s on %u-byte blocks: dio alignment %u (memory %u)",
	       variant->fstype, variant->lbs, stx.stx_dio_offset_align,
	       stx.stx_dio_mem_align);
	self->check = malloc(UA_BIG);
	ASSERT_NE(NULL, self->check);
	ASSERT_EQ(0, vdrv_open(&self->d, 3 * UA_BIG));
	ASSERT_EQ(0, vdrv_setup(&self->d, 1, 64, VHOST_BLK_FEATURES));
}

FIXTURE_TEARDOWN(unaligned)
{
	if (self->d.fd >= 0)
		vdrv_close(&self->d);
	if (self->fd >= 0)
		close(self->fd);
	free(self->check);
	unlink(self->img);
	vblk_fs_remove(self->name, self->dir);
}

/*
 * One request of @len bytes at @buf in the pieces @pieces (0-terminated;
 * the last piece takes the rest); returns the status. A direct chain: an
 * indirect table would be allocated once per head, in memory ua_check()
 * gives back.
 */
static int ua_io(struct vdrv *d, uint32_t type, uint64_t sector, uint8_t *buf,
		 uint32_t len, const uint32_t *pieces)
{
	struct virtio_blk_outhdr *hdr = vdrv_alloc(d, sizeof(*hdr), 16);
	uint8_t *status = vdrv_alloc(d, 1, 1);
	bool in = type == VIRTIO_BLK_T_IN;
	struct vseg segs[40];
	uint32_t off = 0, head, used;
	unsigned int n = 0;
	int h;

	hdr->type = type;
	hdr->sector = sector;
	*status = 0xff;
	segs[n++] = (struct vseg){ hdr, sizeof(*hdr), false };
	for (; off < len && n < 38; pieces++) {
		uint32_t piece = *pieces && *pieces < len - off ? *pieces :
				 len - off;

		segs[n++] = (struct vseg){ buf + off, piece, in };
		off += piece;
		if (!*pieces)
			break;
	}
	segs[n++] = (struct vseg){ status, 1, true };
	h = vdrv_add(d, &d->q[0], segs, n, false);
	if (h < 0)
		return -1;
	vdrv_kick(&d->q[0]);
	if (vdrv_get_used(d, &d->q[0], &head, &used, 60000) ||
	    head != (uint32_t)h)
		return -1;
	return *status;
}

/* Odd splits of the data: none, odd lengths, many small pieces. */
static const uint32_t ua_whole[] = { 0 };
static const uint32_t ua_odd[] = { 1000, 3, 3093, 4096 + 511, 0 };
static const uint32_t ua_small[] = { 512, 512, 1, 1023, 2048, 1, 0 };
/* Pieces of at most VHOST_BLK_SIZE_MAX (1 MiB); the last is one byte. */
#define MB (1 << 20)
static const uint32_t ua_big[] = { MB - 1, MB, MB, MB, MB, MB, MB, MB, MB, 0 };
#undef MB

/*
 * Write @len bytes through the device from guest memory at +@off (pieces
 * @pieces) and compare with the image; then change the image from the
 * host and read it back the same way.
 */
static void ua_check(struct __test_metadata *_metadata,
		     FIXTURE_DATA(unaligned) *self, uint64_t sector,
		     uint32_t len, uint32_t off, const uint32_t *pieces,
		     uint64_t seed)
{
	size_t mark = self->d.mem_used;
	uint8_t *buf = vdrv_alloc(&self->d, len + 4096, 4096) + off;

	vblk_fill(buf, len, seed);
	EXPECT_EQ(VIRTIO_BLK_S_OK, ua_io(&self->d, VIRTIO_BLK_T_OUT, sector,
					 buf, len, pieces))
		TH_LOG("write of %u bytes at +%u", len, off);
	ASSERT_EQ(0, vblk_pread(self->fd, self->check, len, sector << 9));
	EXPECT_EQ(0, memcmp(self->check, buf, len))
		TH_LOG("the image differs from a write of %u bytes at +%u",
		       len, off);

	vblk_fill(self->check, len, seed + 1);
	ASSERT_EQ(0, vblk_pwrite(self->fd, self->check, len, sector << 9));
	memset(buf, 0xee, len);
	EXPECT_EQ(VIRTIO_BLK_S_OK, ua_io(&self->d, VIRTIO_BLK_T_IN, sector,
					 buf, len, pieces))
		TH_LOG("read of %u bytes at +%u", len, off);
	EXPECT_EQ(0, memcmp(self->check, buf, len))
		TH_LOG("a read of %u bytes at +%u differs from the image",
		       len, off);
	self->d.mem_used = mark;
}

/*
 * In none and directsync: buffers at +1 and +512, split oddly, and one of
 * 9 MiB at +1 (three bounce windows), read and written correctly; a range
 * that is not whole blocks of the dio alignment is still IOERR.
 */
TEST_F_TIMEOUT(unaligned, bounced_data, 600)
{
	static const unsigned int modes[] = {
		VHOST_BLK_CACHE_NONE, VHOST_BLK_CACHE_DIRECTSYNC,
	};
	static const uint32_t *const splits[] = { ua_whole, ua_odd, ua_small };
	uint64_t seed = 100;
	unsigned int m, s;

	for (m = 0; m < 2; m++) {
		ASSERT_EQ(0, attach_mode(&self->d, self->fd, modes[m]));
		/* What stays refused: a range that is not whole blocks. */
		if (variant->lbs > 512) {
			uint8_t *buf = vdrv_alloc(&self->d, 8192, 4096);

			EXPECT_EQ(VIRTIO_BLK_S_IOERR,
				  ua_io(&self->d, VIRTIO_BLK_T_IN, 0, buf, 512,
					ua_whole));
			EXPECT_EQ(VIRTIO_BLK_S_IOERR,
				  ua_io(&self->d, VIRTIO_BLK_T_IN, 1, buf, 4096,
					ua_whole));
		}
		/* The aligned case first: zero-copy, as before. */
		ua_check(_metadata, self, 0, UA_LEN, 0, ua_whole, seed++);
		for (s = 0; s < 3; s++) {
			ua_check(_metadata, self, 64, UA_LEN, 1, splits[s],
				 seed++);
			ua_check(_metadata, self, 128, UA_LEN, 512, splits[s],
				 seed++);
		}
		ua_check(_metadata, self, 1024, UA_BIG, 1, ua_big, seed++);
	}
}

/* Last: remove what the tests above shared. */
TEST_F_TIMEOUT(file, cleanup, 100)
{
	vblk_fs_remove(EXT4_NAME, EXT4_DIR);
	vblk_fs_remove(XFS_NAME, XFS_DIR);
	vblk_fs_remove("filequota", "/tmp/file-quota");
	umount(TMPFS_DIR);
	rmdir(TMPFS_DIR);
	ASSERT_FALSE(vblk_mounted(EXT4_DIR));
	ASSERT_FALSE(vblk_mounted(XFS_DIR));
	ASSERT_FALSE(vblk_mounted(TMPFS_DIR));
}

TEST_HARNESS_MAIN

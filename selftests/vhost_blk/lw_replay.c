// SPDX-License-Identifier: GPL-2.0
/*
 * dm-log-writes log reader and replayer (format: see lw_replay.h).
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#include "lw_replay.h"

/* Byte offsets of the fields: the format is little endian, unpadded. */
#define SUPER_MAGIC	0
#define SUPER_VERSION	8
#define SUPER_ENTRIES	16
#define SUPER_BS	24
#define ENTRY_SECTOR	0
#define ENTRY_NR	8
#define ENTRY_FLAGS	16
#define ENTRY_DATA_LEN	24
#define ENTRY_SIZE	32

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static int read_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
				  off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -EIO;
		done += n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

static int grow(struct lw_log *l, uint64_t len)
{
	uint8_t *p;

	if (len <= l->buf_len)
		return 0;
	p = realloc(l->buf, len);
	if (!p)
		return -ENOMEM;
	l->buf = p;
	l->buf_len = len;
	return 0;
}

static uint64_t fd_size(int fd)
{
	uint64_t size = 0;
	struct stat st;

	if (fstat(fd, &st))
		return 0;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, &size) ? 0 : size;
	return st.st_size;
}

int lw_open(struct lw_log *l, int fd)
{
	uint8_t super[512];
	uint64_t magic, version;
	int ret;

	memset(l, 0, sizeof(*l));
	l->fd = fd;
	ret = read_full(fd, super, sizeof(super), 0);
	if (ret)
		return ret;
	magic = get_le64(super + SUPER_MAGIC);
	version = get_le64(super + SUPER_VERSION);
	l->nr_entries = get_le64(super + SUPER_ENTRIES);
	l->bs = get_le32(super + SUPER_BS);
	if (magic != LW_MAGIC || version != LW_VERSION) {
		fprintf(stderr, "lw_replay: not a dm-log-writes log (magic %#llx version %llu, want %#llx version %d): is the log device the second argument of the log-writes table?\n",
			(unsigned long long)magic, (unsigned long long)version,
			LW_MAGIC, LW_VERSION);
		return -EINVAL;
	}
	if (l->bs < 512 || l->bs > 65536 || (l->bs & (l->bs - 1))) {
		fprintf(stderr, "lw_replay: block size %u in the super is not a power of two from 512 to 65536: the log is damaged\n",
			l->bs);
		return -EINVAL;
	}
	l->off = l->bs;
	l->log_bytes = fd_size(fd);
	return grow(l, l->bs);
}

int lw_next(struct lw_log *l, struct lw_entry *e)
{
	uint64_t data_len, bytes;
	int ret;

	if (l->next >= l->nr_entries)
		return 0;
	if (l->log_bytes && l->off + l->bs > l->log_bytes)
		return -EIO;
	ret = read_full(l->fd, l->buf, l->bs, l->off);
	if (ret)
		return ret;
	memset(e, 0, sizeof(*e));
	e->index = l->next;
	e->sector = get_le64(l->buf + ENTRY_SECTOR);
	e->nr = get_le64(l->buf + ENTRY_NR);
	e->flags = get_le64(l->buf + ENTRY_FLAGS);
	data_len = get_le64(l->buf + ENTRY_DATA_LEN);
	l->off += l->bs;
	l->next++;

	if (e->flags & LW_MARK) {
		if (data_len > l->bs - ENTRY_SIZE) {
			fprintf(stderr, "lw_replay: entry %llu: mark of %llu bytes does not fit its block\n",
				(unsigned long long)e->index,
				(unsigned long long)data_len);
			return -EIO;
		}
		if (data_len >= sizeof(e->mark))
			data_len = sizeof(e->mark) - 1;
		memcpy(e->mark, l->buf + ENTRY_SIZE, data_len);
		e->mark[data_len] = '\0';
		return 1;
	}
	if (e->flags & LW_DISCARD || !e->nr)
		return 1;
	bytes = e->nr * l->bs;
	if (e->nr > (1ULL << 30) / l->bs ||
	    (l->log_bytes && l->off + bytes > l->log_bytes)) {
		fprintf(stderr, "lw_replay: entry %llu: %llu blocks run past the end of the log\n",
			(unsigned long long)e->index,
			(unsigned long long)e->nr);
		return -EIO;
	}
	ret = grow(l, bytes) ?: read_full(l->fd, l->buf, bytes, l->off);
	if (ret)
		return ret;
	l->off += bytes;
	e->data = l->buf;
	return 1;
}

int lw_apply(const struct lw_log *l, const struct lw_entry *e, int fd)
{
	static const uint8_t zero[65536];
	uint64_t off = e->sector * l->bs, i;
	int ret;

	if (e->flags & LW_MARK || !e->nr)
		return 0;
	if (!(e->flags & LW_DISCARD))
		return write_full(fd, e->data, e->nr * l->bs, off);
	for (i = 0; i < e->nr; i++) {
		ret = write_full(fd, zero, l->bs, off + i * l->bs);
		if (ret)
			return ret;
	}
	return 0;
}

void lw_close(struct lw_log *l)
{
	free(l->buf);
	l->buf = NULL;
	l->buf_len = 0;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A reader of dm-log-writes logs, written from the on-disk format described
 * in the kernel's Documentation/admin-guide/device-mapper/log-writes.rst and
 * drivers/md/dm-log-writes.c:
 *
 * - block 0 of the log device is the super: le64 magic, le64 version,
 *   le64 number of entries, le32 block size (the data device's logical
 *   block size); the target rewrites it on every FUA entry, every mark and
 *   when it is removed;
 * - entries follow from block 1 on, in the order the target logged them
 *   (writes only once a flush that followed their completion completed, FUA
 *   writes at their completion, marks when the message arrives): one block
 *   holding le64 sector, le64 number of blocks, le64 flags, le64 length of
 *   the mark text (both sector and count in blocks of the block size),
 *   then the mark text in the same block for a mark, then the written data
 *   (number of blocks times the block size) for a write; a discard and a
 *   flush have no data.
 */
#ifndef LW_REPLAY_H
#define LW_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1

/* Entry flags */
#define LW_FLUSH	(1U << 0)
#define LW_FUA		(1U << 1)
#define LW_DISCARD	(1U << 2)
#define LW_MARK		(1U << 3)
#define LW_METADATA	(1U << 4)

/* The mark the target logs when it is removed. */
#define LW_END_MARK	"dm-log-writes-end"

struct lw_log {
	int fd;
	uint32_t bs;		/* block size of the logged device */
	uint64_t nr_entries;	/* from the super */
	uint64_t next;		/* index of the next entry */
	uint64_t off;		/* byte offset of the next entry */
	uint64_t log_bytes;	/* size of the log device */
	uint8_t *buf;		/* one block, then the entry's data */
	uint64_t buf_len;
};

struct lw_entry {
	uint64_t index;
	uint64_t sector;	/* in blocks of lw_log.bs */
	uint64_t nr;		/* blocks */
	uint64_t flags;
	char mark[256];		/* mark text, NUL-terminated */
	const uint8_t *data;	/* nr * bs bytes, valid until lw_next() */
};

/*
 * Read and check the super of the log on @fd. 0, or -EINVAL (not a
 * dm-log-writes log: bad magic, version or block size, with a message on
 * stderr), or -errno of reading it.
 */
int lw_open(struct lw_log *l, int fd);
/* The next entry: 1, 0 past the last one, or -errno (truncated log: -EIO). */
int lw_next(struct lw_log *l, struct lw_entry *e);
/*
 * Apply a write or discard entry to the replay device @fd (a discard as
 * zeroes); flushes and marks change nothing. 0 or -errno.
 */
int lw_apply(const struct lw_log *l, const struct lw_entry *e, int fd);
void lw_close(struct lw_log *l);

#endif /* LW_REPLAY_H */

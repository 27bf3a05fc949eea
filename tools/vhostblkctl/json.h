/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small JSON writer for -j / -p, in the spirit of iproute2's json_print:
 * open and close objects and arrays, emit key/value pairs; commas,
 * indentation and string escaping are handled here. A key is NULL inside
 * arrays and for the top-level value.
 */
#ifndef VBC_JSON_H
#define VBC_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VBC_JSON_DEPTH 16

struct vbc_json {
	FILE *f;
	bool pretty;
	int depth;
	bool need_comma[VBC_JSON_DEPTH];
};

void vbc_json_init(struct vbc_json *j, FILE *f, bool pretty);
void vbc_json_open_object(struct vbc_json *j, const char *key);
void vbc_json_close_object(struct vbc_json *j);
void vbc_json_open_array(struct vbc_json *j, const char *key);
void vbc_json_close_array(struct vbc_json *j);
void vbc_json_u64(struct vbc_json *j, const char *key, uint64_t v);
void vbc_json_double(struct vbc_json *j, const char *key, double v);
void vbc_json_string(struct vbc_json *j, const char *key, const char *s);
void vbc_json_bool(struct vbc_json *j, const char *key, bool v);
/* Ends the top-level value with a newline and flushes. */
void vbc_json_end(struct vbc_json *j);

#endif /* VBC_JSON_H */

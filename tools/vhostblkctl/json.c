// SPDX-License-Identifier: GPL-2.0
/* vhostblkctl: the JSON writer behind -j and -p (see json.h). */
#include "json.h"

void vbc_json_init(struct vbc_json *j, FILE *f, bool pretty)
{
	j->f = f;
	j->pretty = pretty;
	j->depth = 0;
	j->need_comma[0] = false;
}

static void vbc_json_indent(struct vbc_json *j)
{
	int i;

	if (!j->pretty)
		return;
	fputc('\n', j->f);
	for (i = 0; i < j->depth; i++)
		fputs("    ", j->f);
}

static void vbc_json_quoted(struct vbc_json *j, const char *s)
{
	const unsigned char *p;

	fputc('"', j->f);
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(j->f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(j->f, "\\u%04x", *p);
		else
			fputc(*p, j->f);
	}
	fputc('"', j->f);
}

/* Separator, indentation and "key": before any value. */
static void vbc_json_key(struct vbc_json *j, const char *key)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = true;
	if (j->depth)
		vbc_json_indent(j);
	if (key) {
		vbc_json_quoted(j, key);
		fputs(j->pretty ? ": " : ":", j->f);
	}
}

static void vbc_json_open(struct vbc_json *j, const char *key, char c)
{
	vbc_json_key(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < VBC_JSON_DEPTH)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void vbc_json_close(struct vbc_json *j, char c)
{
	bool empty = !j->need_comma[j->depth];

	if (j->depth)
		j->depth--;
	if (!empty)
		vbc_json_indent(j);
	fputc(c, j->f);
}

void vbc_json_open_object(struct vbc_json *j, const char *key)
{
	vbc_json_open(j, key, '{');
}

void vbc_json_close_object(struct vbc_json *j)
{
	vbc_json_close(j, '}');
}

void vbc_json_open_array(struct vbc_json *j, const char *key)
{
	vbc_json_open(j, key, '[');
}

void vbc_json_close_array(struct vbc_json *j)
{
	vbc_json_close(j, ']');
}

void vbc_json_u64(struct vbc_json *j, const char *key, uint64_t v)
{
	vbc_json_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void vbc_json_double(struct vbc_json *j, const char *key, double v)
{
	vbc_json_key(j, key);
	fprintf(j->f, "%.2f", v);
}

void vbc_json_string(struct vbc_json *j, const char *key, const char *s)
{
	vbc_json_key(j, key);
	vbc_json_quoted(j, s);
}

void vbc_json_bool(struct vbc_json *j, const char *key, bool v)
{
	vbc_json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void vbc_json_end(struct vbc_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
	j->need_comma[0] = false;
}

/*
 * The WebAssembly binary reader (include/prewarm/wasm.h).
 *
 * Module bytes are outside input (policies come from registries and URLs), so
 * this is a strict reader: LEB128 integers are checked for length and unused
 * bits, every read is bounds-checked against the end of its section, sections
 * must come in the order the spec gives and be consumed exactly, and vectors
 * are checked against the bytes left before anything is allocated. It does not
 * type-check code (wasm-validate and wasm2c do that), but it walks every
 * instruction of every function body, decoding immediates, because that is the
 * only honest way to tell which post-MVP features a module uses: the engine
 * refuses SIMD, threads and the like before wasm2c sees them.
 * Errors are PW_EINVALID with the byte offset and what was expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/wasm.h"

#define KW_METADATA_SECTION "io.kubewarden.metadata"

typedef struct rd {
	const uint8_t *b;   /* whole module: offsets in messages are file offsets */
	size_t pos, end;    /* end of the current section (or body) */
	const char *sec;    /* section being read, for messages */
} rd;

typedef struct pstate {
	pw_wasm_module *m;
	uint32_t nglobals_total; /* = m->nglobals_all (types in m->global_valtypes/global_mutable) */
	uint32_t ntables_total, nmems_total, ntags_total;
	uint32_t nfuncs_declared; /* from the function section */
	bool has_datacount;
	uint32_t datacount;
	bool memory64;
} pstate;

static int bad(const rd *r, const char *what)
{
	return pw_error_set(PW_EINVALID, "wasm: %s%sat offset 0x%zx: %s",
	                    r->sec ? r->sec : "", r->sec ? " section, " : "", r->pos, what);
}

static int unsupported(const rd *r, const char *what)
{
	return pw_error_set(PW_EUNSUPPORTED, "wasm: %s%sat offset 0x%zx: %s",
	                    r->sec ? r->sec : "", r->sec ? " section, " : "", r->pos, what);
}

#define TRY(x) do { int _rc = (x); if (_rc < 0) return _rc; } while (0)

static int rd_byte(rd *r, uint8_t *out)
{
	*out = 0;
	if (r->pos >= r->end)
		return bad(r, "unexpected end (truncated section or body)");
	*out = r->b[r->pos++];
	return 0;
}

static int rd_bytes(rd *r, size_t n, const uint8_t **out)
{
	if (n > r->end - r->pos)
		return bad(r, "unexpected end (length runs past the section)");
	if (out)
		*out = r->b + r->pos;
	r->pos += n;
	return 0;
}

/* Unsigned LEB128 of at most `bits` bits: at most ceil(bits/7) bytes, and the
 * bits of the last byte beyond `bits` must be zero. */
static int rd_uleb(rd *r, unsigned bits, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t start = r->pos;
	*out = 0;
	for (;;) {
		uint8_t byte;
		TRY(rd_byte(r, &byte));
		if (shift + 7 >= bits && shift < 64) {
			/* last allowed byte: no continuation, no bits past `bits` */
			unsigned keep = bits - shift;
			if (byte & 0x80) {
				r->pos = start;
				return bad(r, "integer representation too long");
			}
			if (keep < 7 && (byte >> keep) != 0) {
				r->pos = start;
				return bad(r, "integer too large");
			}
		}
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80))
			break;
		shift += 7;
	}
	*out = v;
	return 0;
}

/* Signed LEB128 of at most `bits` bits; unused bits of the last byte must be
 * copies of the sign bit. */
static int rd_sleb(rd *r, unsigned bits, int64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t start = r->pos;
	uint8_t byte;
	*out = 0;
	for (;;) {
		TRY(rd_byte(r, &byte));
		if (shift + 7 >= bits) {
			unsigned keep = bits - shift;   /* 1..7 value bits in this byte */
			if (byte & 0x80) {
				r->pos = start;
				return bad(r, "integer representation too long");
			}
			if (keep < 7) {
				/* bits keep-1 .. 6 must all equal the sign bit */
				uint8_t upper = (uint8_t)((byte & 0x7f) >> (keep - 1));
				uint8_t all = (uint8_t)(0x7f >> (keep - 1));
				if (upper != 0 && upper != all) {
					r->pos = start;
					return bad(r, "integer too large");
				}
			}
		}
		v |= (uint64_t)(byte & 0x7f) << shift;
		shift += 7;
		if (!(byte & 0x80))
			break;
	}
	if (shift < 64 && (byte & 0x40))
		v |= ~(uint64_t)0 << shift;
	*out = (int64_t)v;
	return 0;
}

static int rd_u32(rd *r, uint32_t *out)
{
	uint64_t v;
	*out = 0;
	TRY(rd_uleb(r, 32, &v));
	*out = (uint32_t)v;
	return 0;
}

/* A vector length: each element takes at least `min_elem` bytes, so a count
 * larger than what is left is malformed (and never drives an allocation). */
static int rd_count(rd *r, size_t min_elem, uint32_t *out)
{
	TRY(rd_u32(r, out));
	if (min_elem && *out > (r->end - r->pos) / min_elem)
		return bad(r, "vector length larger than the bytes left");
	return 0;
}

static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) { i++; continue; }
		if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
		else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
		else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
		else return false;
		if (len > n - i)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* A name: UTF-8 checked; copied NUL-terminated when `out` is set. Names with a
 * NUL byte are valid wasm but cannot be C strings: refused as unsupported. */
static int rd_name(rd *r, char **out, const uint8_t **raw, uint32_t *rawlen)
{
	uint32_t n;
	const uint8_t *p = NULL;
	TRY(rd_u32(r, &n));
	TRY(rd_bytes(r, n, &p));
	if (!utf8_ok(p, n)) {
		r->pos -= n;
		return bad(r, "name is not valid UTF-8");
	}
	if (raw) {
		*raw = p;
		*rawlen = n;
	}
	if (out) {
		if (memchr(p, 0, n)) {
			r->pos -= n;
			return unsupported(r, "name contains a NUL byte");
		}
		*out = malloc((size_t)n + 1);
		if (!*out)
			return pw_error_set(PW_ENOMEM, "wasm: out of memory copying a name");
		memcpy(*out, p, n);
		(*out)[n] = 0;
	}
	return 0;
}

static int check_valtype(pstate *st, rd *r, uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: case PW_WASM_I64: case PW_WASM_F32: case PW_WASM_F64:
		return 0;
	case PW_WASM_V128:
		st->m->features |= PW_FEAT_SIMD;
		return 0;
	case PW_WASM_FUNCREF: case PW_WASM_EXTERNREF:
		st->m->features |= PW_FEAT_REFERENCE_TYPES;
		return 0;
	case 0x64: case 0x63: case 0x6e: case 0x6d: case 0x6c: case 0x6b: case 0x6a: case 0x69:
		r->pos--;
		return unsupported(r, "typed function references / GC value type");
	default:
		r->pos--;
		return bad(r, "unknown value type");
	}
}

static int rd_valtype(pstate *st, rd *r, uint8_t *out)
{
	TRY(rd_byte(r, out));
	return check_valtype(st, r, *out);
}

static int rd_reftype(pstate *st, rd *r, uint8_t *out)
{
	TRY(rd_byte(r, out));
	if (*out == PW_WASM_FUNCREF)
		return 0;
	if (*out == PW_WASM_EXTERNREF) {
		st->m->features |= PW_FEAT_REFERENCE_TYPES;
		return 0;
	}
	r->pos--;
	if (*out == 0x64 || *out == 0x63)
		return unsupported(r, "typed function references / GC reference type");
	return bad(r, "expected a reference type (funcref or externref)");
}

/* Limits. For memories flags bit 0 = has max, bit 1 = shared (threads),
 * bit 2 = 64-bit (memory64). Tables: bit 0 only (bit 2 = table64). */
static int rd_limits(pstate *st, rd *r, bool memory, uint64_t *min, uint64_t *max, bool *has_max)
{
	uint8_t flags;
	TRY(rd_byte(r, &flags));
	if (flags & ~(memory ? 0x07 : 0x05)) {
		r->pos--;
		return bad(r, memory ? "bad memory limits flags" : "bad table limits flags");
	}
	if (flags & 0x02)
		st->m->features |= PW_FEAT_THREADS;
	unsigned bits = 32;
	if (flags & 0x04) {
		st->m->features |= PW_FEAT_MEMORY64;
		bits = 64;
		if (memory)
			st->memory64 = true;
	}
	*has_max = flags & 0x01;
	TRY(rd_uleb(r, bits, min));
	*max = 0;
	if (*has_max)
		TRY(rd_uleb(r, bits, max));
	if (*has_max && *max < *min)
		return bad(r, "limits: maximum is smaller than minimum");
	if (memory && bits == 32 && (*min > 65536 || *max > 65536))
		return bad(r, "memory limits above 65536 pages (4 GiB)");
	return 0;
}

/* ---- the instruction walker ------------------------------------------------------------ */

static int rd_blocktype(pstate *st, rd *r)
{
	uint8_t b;
	int64_t idx;
	if (r->pos >= r->end)
		return bad(r, "unexpected end in block type");
	b = r->b[r->pos];
	if (b == 0x40) {
		r->pos++;
		return 0;
	}
	if ((b & 0xc0) == 0x40) {   /* a one-byte negative s33: a value type */
		r->pos++;
		return check_valtype(st, r, b);
	}
	TRY(rd_sleb(r, 33, &idx));
	if (idx < 0 || (uint64_t)idx >= st->m->ntypes)
		return bad(r, "block type index out of range");
	st->m->features |= PW_FEAT_MULTI_VALUE;
	return 0;
}

static int rd_memarg(pstate *st, rd *r)
{
	uint32_t align, memidx;
	uint64_t off;
	TRY(rd_u32(r, &align));
	if (align & 0x40) {
		TRY(rd_u32(r, &memidx));
		if (memidx != 0)
			st->m->features |= PW_FEAT_MULTI_MEMORY;
		align &= ~0x40u;
	}
	if (align >= 32)
		return bad(r, "alignment too large");
	TRY(rd_uleb(r, st->memory64 ? 64 : 32, &off));
	return 0;
}

static int rd_memidx(pstate *st, rd *r)
{
	uint32_t idx;
	TRY(rd_u32(r, &idx));
	if (idx != 0)
		st->m->features |= PW_FEAT_MULTI_MEMORY;
	return 0;
}

static int rd_idx(rd *r, uint32_t limit, const char *what)
{
	uint32_t idx;
	TRY(rd_u32(r, &idx));
	if (idx >= limit) {
		char msg[96];
		snprintf(msg, sizeof msg, "%s index %u out of range (%u)", what, idx, limit);
		return bad(r, msg);
	}
	return 0;
}

static uint32_t total_funcs(const pstate *st)
{
	return st->m->nimported_funcs + st->nfuncs_declared;
}

static int walk_prefix_fc(pstate *st, rd *r)
{
	uint32_t op, x;
	TRY(rd_u32(r, &op));
	switch (op) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
		st->m->features |= PW_FEAT_SAT_FLOAT_TO_INT;
		return 0;
	case 8:   /* memory.init dataidx memidx */
		st->m->features |= PW_FEAT_BULK_MEMORY;
		TRY(rd_u32(r, &x));
		return rd_memidx(st, r);
	case 9:   /* data.drop */
	case 13:  /* elem.drop */
		st->m->features |= PW_FEAT_BULK_MEMORY;
		return rd_u32(r, &x);
	case 10:  /* memory.copy */
		st->m->features |= PW_FEAT_BULK_MEMORY;
		TRY(rd_memidx(st, r));
		return rd_memidx(st, r);
	case 11:  /* memory.fill */
		st->m->features |= PW_FEAT_BULK_MEMORY;
		return rd_memidx(st, r);
	case 12:  /* table.init elemidx tableidx */
	case 14:  /* table.copy */
		st->m->features |= PW_FEAT_BULK_MEMORY;
		TRY(rd_u32(r, &x));
		TRY(rd_u32(r, &x));
		if (x != 0)
			st->m->features |= PW_FEAT_REFERENCE_TYPES;
		return 0;
	case 15: case 16: case 17:   /* table.grow/size/fill */
		st->m->features |= PW_FEAT_REFERENCE_TYPES;
		return rd_idx(r, st->ntables_total, "table");
	default:
		return bad(r, "unknown 0xfc-prefixed instruction");
	}
}

static int walk_prefix_fd(pstate *st, rd *r)
{
	uint32_t op;
	uint8_t lane;
	st->m->features |= PW_FEAT_SIMD;
	TRY(rd_u32(r, &op));
	if (op <= 11 || op == 92 || op == 93)
		return rd_memarg(st, r);
	if (op == 12 || op == 13)   /* v128.const, i8x16.shuffle */
		return rd_bytes(r, 16, NULL);
	if (op >= 21 && op <= 34)   /* extract/replace lane */
		return rd_byte(r, &lane);
	if (op >= 84 && op <= 91) { /* load/store lane */
		TRY(rd_memarg(st, r));
		return rd_byte(r, &lane);
	}
	if (op > 0x113)
		return bad(r, "unknown 0xfd-prefixed (SIMD) instruction");
	return 0;
}

static int walk_prefix_fe(pstate *st, rd *r)
{
	uint32_t op;
	uint8_t zero;
	st->m->features |= PW_FEAT_THREADS;
	TRY(rd_u32(r, &op));
	if (op == 3)   /* atomic.fence */
		return rd_byte(r, &zero);
	if (op <= 2 || (op >= 0x10 && op <= 0x4e))
		return rd_memarg(st, r);
	return bad(r, "unknown 0xfe-prefixed (atomic) instruction");
}

/*
 * Walks an expression up to and including its final `end`, decoding every
 * immediate. In a function body the expression must end exactly at r->end.
 */
static int walk_expr(pstate *st, rd *r)
{
	pw_wasm_module *m = st->m;
	uint64_t depth = 1;
	uint32_t x, n;
	uint8_t b;
	int64_t s;

	while (depth > 0) {
		uint8_t op;
		TRY(rd_byte(r, &op));
		switch (op) {
		case 0x00: case 0x01: case 0x05: case 0x0f: case 0x1a: case 0x1b:
			break;
		case 0x02: case 0x03: case 0x04:
			TRY(rd_blocktype(st, r));
			depth++;
			break;
		case 0x06:   /* try (legacy exceptions) */
			m->features |= PW_FEAT_EXCEPTIONS;
			TRY(rd_blocktype(st, r));
			depth++;
			break;
		case 0x07: case 0x08:   /* catch tag, throw tag */
			m->features |= PW_FEAT_EXCEPTIONS;
			TRY(rd_idx(r, st->ntags_total, "tag"));
			break;
		case 0x09:   /* rethrow label */
			m->features |= PW_FEAT_EXCEPTIONS;
			TRY(rd_u32(r, &x));
			break;
		case 0x0a: case 0x19:   /* throw_ref, catch_all */
			m->features |= PW_FEAT_EXCEPTIONS;
			break;
		case 0x18:   /* delegate label: ends a try */
			m->features |= PW_FEAT_EXCEPTIONS;
			TRY(rd_u32(r, &x));
			depth--;
			break;
		case 0x1f: { /* try_table blocktype vec(catch) */
			m->features |= PW_FEAT_EXCEPTIONS;
			TRY(rd_blocktype(st, r));
			TRY(rd_count(r, 2, &n));
			for (uint32_t i = 0; i < n; i++) {
				TRY(rd_byte(r, &b));
				if (b > 3)
					return bad(r, "bad try_table catch kind");
				if (b <= 1)
					TRY(rd_idx(r, st->ntags_total, "tag"));
				TRY(rd_u32(r, &x));
			}
			depth++;
			break;
		}
		case 0x0b:
			depth--;
			break;
		case 0x0c: case 0x0d:
			TRY(rd_u32(r, &x));
			break;
		case 0x0e:
			TRY(rd_count(r, 1, &n));
			for (uint32_t i = 0; i <= n; i++)
				TRY(rd_u32(r, &x));
			break;
		case 0x10:
			TRY(rd_idx(r, total_funcs(st), "function"));
			break;
		case 0x11: {
			size_t at;
			TRY(rd_idx(r, m->ntypes, "type"));
			at = r->pos;
			TRY(rd_u32(r, &x));
			/* MVP: one reserved 0x00 byte; a LEB table index (even a padded 0,
			 * as LLVM emits for relocations) is the reference-types encoding */
			if (x != 0 || r->pos - at != 1)
				m->features |= PW_FEAT_REFERENCE_TYPES;
			break;
		}
		case 0x12:
			m->features |= PW_FEAT_TAIL_CALL;
			TRY(rd_idx(r, total_funcs(st), "function"));
			break;
		case 0x13:
			m->features |= PW_FEAT_TAIL_CALL;
			TRY(rd_idx(r, m->ntypes, "type"));
			TRY(rd_u32(r, &x));
			break;
		case 0x14: case 0x15: case 0xd3: case 0xd4: case 0xd5: case 0xd6:
			r->pos--;
			return unsupported(r, "typed function references instruction");
		case 0x1c:   /* select t* */
			m->features |= PW_FEAT_REFERENCE_TYPES;
			TRY(rd_count(r, 1, &n));
			for (uint32_t i = 0; i < n; i++)
				TRY(rd_valtype(st, r, &b));
			break;
		case 0x20: case 0x21: case 0x22:
			TRY(rd_u32(r, &x));
			break;
		case 0x23: case 0x24:
			TRY(rd_idx(r, st->nglobals_total, "global"));
			break;
		case 0x25: case 0x26:
			m->features |= PW_FEAT_REFERENCE_TYPES;
			TRY(rd_idx(r, st->ntables_total, "table"));
			break;
		case 0x3f: case 0x40:
			TRY(rd_memidx(st, r));
			break;
		case 0x41:
			TRY(rd_sleb(r, 32, &s));
			break;
		case 0x42:
			TRY(rd_sleb(r, 64, &s));
			break;
		case 0x43:
			TRY(rd_bytes(r, 4, NULL));
			break;
		case 0x44:
			TRY(rd_bytes(r, 8, NULL));
			break;
		case 0xd0:
			m->features |= PW_FEAT_REFERENCE_TYPES;
			TRY(rd_reftype(st, r, &b));
			break;
		case 0xd1:
			m->features |= PW_FEAT_REFERENCE_TYPES;
			break;
		case 0xd2:
			m->features |= PW_FEAT_REFERENCE_TYPES;
			TRY(rd_idx(r, total_funcs(st), "function"));
			break;
		case 0xfb:
			r->pos--;
			return unsupported(r, "GC instruction (0xfb prefix)");
		case 0xfc:
			TRY(walk_prefix_fc(st, r));
			break;
		case 0xfd:
			TRY(walk_prefix_fd(st, r));
			break;
		case 0xfe:
			TRY(walk_prefix_fe(st, r));
			break;
		default:
			if (op >= 0x28 && op <= 0x3e) {
				TRY(rd_memarg(st, r));
			} else if (op >= 0x45 && op <= 0xbf) {
				/* numeric, no immediates */
			} else if (op >= 0xc0 && op <= 0xc4) {
				m->features |= PW_FEAT_SIGN_EXTENSION;
			} else {
				char msg[64];
				r->pos--;
				snprintf(msg, sizeof msg, "unknown opcode 0x%02x", op);
				return bad(r, msg);
			}
		}
	}
	return 0;
}

/* A constant expression (global init, segment offset); same walker, ends at `end`. */
static int walk_const_expr(pstate *st, rd *r)
{
	return walk_expr(st, r);
}

/* ---- sections ------------------------------------------------------------------------- */

static int sec_type(pstate *st, rd *r)
{
	pw_wasm_module *m = st->m;
	uint32_t n;
	TRY(rd_count(r, 3, &n));
	m->types = calloc(n ? n : 1, sizeof *m->types);
	if (!m->types)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (type section)");
	for (uint32_t i = 0; i < n; i++) {
		pw_wasm_functype *t = &m->types[i];
		uint8_t form;
		TRY(rd_byte(r, &form));
		if (form != 0x60) {
			r->pos--;
			if (form == 0x4e || form == 0x4f || form == 0x50 || form == 0x5e || form == 0x5f)
				return unsupported(r, "GC type definition");
			return bad(r, "expected a function type (0x60)");
		}
		m->ntypes = i + 1;
		for (int pass = 0; pass < 2; pass++) {
			uint32_t k;
			uint8_t *v;
			TRY(rd_count(r, 1, &k));
			v = malloc(k ? k : 1);
			if (!v)
				return pw_error_set(PW_ENOMEM, "wasm: out of memory (type section)");
			if (pass == 0) { t->params = v; t->nparams = k; }
			else { t->results = v; t->nresults = k; }
			for (uint32_t j = 0; j < k; j++)
				TRY(rd_valtype(st, r, &v[j]));
		}
		if (t->nresults > 1)
			m->features |= PW_FEAT_MULTI_VALUE;
	}
	return 0;
}

static int add_global(pstate *st, uint8_t valtype, bool mut)
{
	pw_wasm_module *m = st->m;
	uint8_t *t = realloc(m->global_valtypes, (size_t)st->nglobals_total + 1);
	if (t)
		m->global_valtypes = t;
	bool *g = t ? realloc(m->global_mutable, ((size_t)st->nglobals_total + 1) * sizeof *g) : NULL;
	if (!g)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (globals)");
	m->global_mutable = g;
	t[st->nglobals_total] = valtype;
	g[st->nglobals_total++] = mut;
	m->nglobals_all = st->nglobals_total;
	return 0;
}

static int add_table(pstate *st, uint8_t elemtype, uint64_t min, uint64_t max, bool has_max)
{
	pw_wasm_module *m = st->m;
	pw_wasm_table *t = realloc(m->tables, ((size_t)st->ntables_total + 1) * sizeof *t);
	if (!t)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (tables)");
	m->tables = t;
	t[st->ntables_total++] = (pw_wasm_table){ elemtype, min, max, has_max };
	m->ntables_all = st->ntables_total;
	if (st->ntables_total > 1)
		m->features |= PW_FEAT_REFERENCE_TYPES;
	return 0;
}

static void note_memory(pstate *st, uint64_t min, uint64_t max, bool has_max)
{
	if (st->nmems_total == 0) {
		st->m->mem_min = min;
		st->m->mem_max = max;
		st->m->mem_has_max = has_max;
	}
	if (++st->nmems_total > 1)
		st->m->features |= PW_FEAT_MULTI_MEMORY;
}

static int sec_import(pstate *st, rd *r)
{
	pw_wasm_module *m = st->m;
	uint32_t n;
	TRY(rd_count(r, 4, &n));
	m->imports = calloc(n ? n : 1, sizeof *m->imports);
	if (!m->imports)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (import section)");
	for (uint32_t i = 0; i < n; i++) {
		pw_wasm_import *im = &m->imports[i];
		m->nimports = i + 1;
		TRY(rd_name(r, &im->module, NULL, NULL));
		TRY(rd_name(r, &im->name, NULL, NULL));
		TRY(rd_byte(r, &im->kind));
		switch (im->kind) {
		case PW_WASM_FUNC: {
			size_t at = r->pos;
			TRY(rd_u32(r, &im->type_index));
			if (im->type_index >= m->ntypes) {
				r->pos = at;
				return bad(r, "imported function type index out of range");
			}
			break;
		}
		case PW_WASM_TABLE:
			TRY(rd_reftype(st, r, &im->valtype));
			TRY(rd_limits(st, r, false, &im->min, &im->max, &im->has_max));
			TRY(add_table(st, im->valtype, im->min, im->max, im->has_max));
			break;
		case PW_WASM_MEMORY:
			TRY(rd_limits(st, r, true, &im->min, &im->max, &im->has_max));
			note_memory(st, im->min, im->max, im->has_max);
			break;
		case PW_WASM_GLOBAL: {
			uint8_t mut;
			TRY(rd_valtype(st, r, &im->valtype));
			TRY(rd_byte(r, &mut));
			if (mut > 1)
				return bad(r, "bad global mutability");
			im->mutable_ = mut;
			if (mut)
				m->features |= PW_FEAT_MUTABLE_GLOBALS;
			TRY(add_global(st, im->valtype, mut));
			break;
		}
		case PW_WASM_TAG: {
			uint8_t attr;
			m->features |= PW_FEAT_EXCEPTIONS;
			TRY(rd_byte(r, &attr));
			if (attr != 0)
				return bad(r, "bad tag attribute");
			TRY(rd_idx(r, m->ntypes, "type"));
			st->ntags_total++;
			break;
		}
		default:
			r->pos--;
			return bad(r, "unknown import kind");
		}
	}
	return 0;
}

static int sec_function(pstate *st, rd *r)
{
	pw_wasm_module *m = st->m;
	uint32_t n;
	TRY(rd_count(r, 1, &n));
	if ((uint64_t)n + m->nimported_funcs > UINT32_MAX)
		return bad(r, "too many functions");
	m->func_types = calloc(n ? n : 1, sizeof *m->func_types);
	if (!m->func_types)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (function section)");
	for (uint32_t i = 0; i < n; i++) {
		uint32_t t;
		size_t at = r->pos;
		TRY(rd_u32(r, &t));
		if (t >= m->ntypes) {
			r->pos = at;
			return bad(r, "function type index out of range");
		}
		m->func_types[i] = t;
	}
	st->nfuncs_declared = n;
	return 0;
}

static int sec_table(pstate *st, rd *r)
{
	uint32_t n;
	TRY(rd_count(r, 2, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t rt;
		uint64_t min, max;
		bool has_max;
		if (r->pos < r->end && r->b[r->pos] == 0x40) {
			/* table with an initializer expression (function references) */
			return unsupported(r, "table with an initializer expression");
		}
		TRY(rd_reftype(st, r, &rt));
		TRY(rd_limits(st, r, false, &min, &max, &has_max));
		TRY(add_table(st, rt, min, max, has_max));
	}
	st->m->ntables = n;
	return 0;
}

static int sec_memory(pstate *st, rd *r)
{
	uint32_t n;
	TRY(rd_count(r, 2, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint64_t min, max;
		bool has_max;
		TRY(rd_limits(st, r, true, &min, &max, &has_max));
		note_memory(st, min, max, has_max);
	}
	st->m->nmemories = n;
	return 0;
}

static int sec_tag(pstate *st, rd *r)
{
	uint32_t n;
	st->m->features |= PW_FEAT_EXCEPTIONS;
	TRY(rd_count(r, 2, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t attr;
		TRY(rd_byte(r, &attr));
		if (attr != 0)
			return bad(r, "bad tag attribute");
		TRY(rd_idx(r, st->m->ntypes, "type"));
		st->ntags_total++;
	}
	return 0;
}

static int sec_global(pstate *st, rd *r)
{
	uint32_t n;
	TRY(rd_count(r, 3, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t t, mut;
		TRY(rd_valtype(st, r, &t));
		TRY(rd_byte(r, &mut));
		if (mut > 1) {
			r->pos--;
			return bad(r, "bad global mutability");
		}
		TRY(walk_const_expr(st, r));
		TRY(add_global(st, t, mut));
	}
	st->m->nglobals = n;
	return 0;
}

static int cmp_export_name(const void *a, const void *b)
{
	return strcmp((*(const pw_wasm_export *const *)a)->name, (*(const pw_wasm_export *const *)b)->name);
}

/* Export names must be unique (the engine turns them into C symbols). */
static int check_unique_exports(const pw_wasm_module *m, rd *r)
{
	const pw_wasm_export **v;
	int rc = 0;
	if (m->nexports < 2)
		return 0;
	v = malloc(sizeof *v * m->nexports);
	if (!v)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (export section)");
	for (uint32_t i = 0; i < m->nexports; i++)
		v[i] = &m->exports[i];
	qsort(v, m->nexports, sizeof *v, cmp_export_name);
	for (uint32_t i = 1; i < m->nexports && !rc; i++)
		if (!strcmp(v[i - 1]->name, v[i]->name)) {
			char msg[160];
			snprintf(msg, sizeof msg, "duplicate export name \"%.100s\"", v[i]->name);
			rc = bad(r, msg);
		}
	free(v);
	return rc;
}

static int sec_export(pstate *st, rd *r)
{
	pw_wasm_module *m = st->m;
	uint32_t n;
	TRY(rd_count(r, 3, &n));
	m->exports = calloc(n ? n : 1, sizeof *m->exports);
	if (!m->exports)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory (export section)");
	for (uint32_t i = 0; i < n; i++) {
		pw_wasm_export *e = &m->exports[i];
		uint32_t limit = 0;
		size_t at;
		m->nexports = i + 1;
		TRY(rd_name(r, &e->name, NULL, NULL));
		TRY(rd_byte(r, &e->kind));
		at = r->pos;
		TRY(rd_u32(r, &e->index));
		switch (e->kind) {
		case PW_WASM_FUNC: limit = total_funcs(st); break;
		case PW_WASM_TABLE: limit = st->ntables_total; break;
		case PW_WASM_MEMORY: limit = st->nmems_total; break;
		case PW_WASM_GLOBAL: limit = st->nglobals_total; break;
		case PW_WASM_TAG: limit = st->ntags_total; break;
		default:
			r->pos = at - 1;
			return bad(r, "unknown export kind");
		}
		if (e->index >= limit) {
			r->pos = at;
			return bad(r, "export index out of range");
		}
		if (e->kind == PW_WASM_GLOBAL && st->m->global_mutable[e->index])
			m->features |= PW_FEAT_MUTABLE_GLOBALS;
	}
	return check_unique_exports(m, r);
}

static int sec_start(pstate *st, rd *r)
{
	TRY(rd_idx(r, total_funcs(st), "start function"));
	st->m->has_start = true;
	return 0;
}

static int sec_element(pstate *st, rd *r)
{
	uint32_t n;
	TRY(rd_count(r, 1, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t flags, k;
		uint8_t b;
		TRY(rd_u32(r, &flags));
		if (flags > 7)
			return bad(r, "bad element segment flags");
		if (flags != 0)
			st->m->features |= PW_FEAT_BULK_MEMORY | PW_FEAT_REFERENCE_TYPES;
		if (flags == 2 || flags == 6) {
			TRY(rd_idx(r, st->ntables_total, "table"));
		}
		if (!(flags & 1))   /* active: offset expression */
			TRY(walk_const_expr(st, r));
		if (flags & 3) {    /* explicit elemkind / reftype */
			if (flags & 4)
				TRY(rd_reftype(st, r, &b));
			else {
				TRY(rd_byte(r, &b));
				if (b != 0)
					return bad(r, "bad element kind");
			}
		}
		TRY(rd_count(r, 1, &k));
		for (uint32_t j = 0; j < k; j++) {
			if (flags & 4)
				TRY(walk_const_expr(st, r));
			else
				TRY(rd_idx(r, total_funcs(st), "function"));
		}
	}
	return 0;
}

static int sec_datacount(pstate *st, rd *r)
{
	TRY(rd_u32(r, &st->datacount));
	st->has_datacount = true;
	st->m->features |= PW_FEAT_BULK_MEMORY;
	return 0;
}

static int sec_code(pstate *st, rd *r)
{
	pw_wasm_module *m = st->m;
	uint32_t n;
	size_t at = r->pos;
	TRY(rd_count(r, 1, &n));
	if (n != st->nfuncs_declared) {
		r->pos = at;
		return bad(r, "code section count differs from the function section");
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t size, nlocals;
		uint64_t total = 0;
		rd body;
		TRY(rd_u32(r, &size));
		if (size == 0 || size > r->end - r->pos)
			return bad(r, "function body size runs past the section");
		body = *r;
		body.end = r->pos + size;
		TRY(rd_count(&body, 2, &nlocals));
		for (uint32_t j = 0; j < nlocals; j++) {
			uint32_t cnt;
			uint8_t t;
			TRY(rd_u32(&body, &cnt));
			total += cnt;
			if (total > 50000) {
				return bad(&body, "too many locals (more than 50000)");
			}
			TRY(rd_valtype(st, &body, &t));
		}
		TRY(walk_expr(st, &body));
		if (body.pos != body.end)
			return bad(&body, "function body continues after its final end");
		r->pos = body.end;
	}
	m->nfuncs = n;
	return 0;
}

static int sec_data(pstate *st, rd *r)
{
	uint32_t n;
	size_t at = r->pos;
	TRY(rd_count(r, 1, &n));
	if (st->has_datacount && n != st->datacount) {
		r->pos = at;
		return bad(r, "data section count differs from the data count section");
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t flags, len;
		TRY(rd_u32(r, &flags));
		if (flags > 2)
			return bad(r, "bad data segment flags");
		if (flags == 1)
			st->m->features |= PW_FEAT_BULK_MEMORY;
		if (flags == 2)
			TRY(rd_memidx(st, r));
		if (flags != 1)
			TRY(walk_const_expr(st, r));
		TRY(rd_u32(r, &len));
		TRY(rd_bytes(r, len, NULL));
	}
	return 0;
}

static int sec_custom(pstate *st, rd *r)
{
	const uint8_t *name;
	uint32_t namelen;
	TRY(rd_name(r, NULL, &name, &namelen));
	if (namelen == sizeof KW_METADATA_SECTION - 1 &&
	    !memcmp(name, KW_METADATA_SECTION, namelen) && !st->m->kw_metadata) {
		size_t len = r->end - r->pos;
		st->m->kw_metadata = malloc(len ? len : 1);
		if (!st->m->kw_metadata)
			return pw_error_set(PW_ENOMEM, "wasm: out of memory (custom section)");
		memcpy(st->m->kw_metadata, r->b + r->pos, len);
		st->m->kw_metadata_len = len;
	}
	r->pos = r->end;
	return 0;
}

/* Position of each known section id in the required order (0 = unknown). */
static int section_rank(uint8_t id)
{
	static const int rank[14] = {
		[1] = 1, [2] = 2, [3] = 3, [4] = 4, [5] = 5, [13] = 6, [6] = 7,
		[7] = 8, [8] = 9, [9] = 10, [12] = 11, [10] = 12, [11] = 13,
	};
	return id < 14 ? rank[id] : 0;
}

static const char *section_name(uint8_t id)
{
	static const char *names[14] = {
		"custom", "type", "import", "function", "table", "memory", "global",
		"export", "start", "element", "code", "data", "data count", "tag",
	};
	return id < 14 ? names[id] : "unknown";
}

static void guess_abi(pw_wasm_module *m)
{
	if (pw_wasm_find_export(m, "__guest_call", PW_WASM_FUNC))
		m->abi = PW_ABI_WAPC;
	else if (pw_wasm_find_export(m, "opa_eval", PW_WASM_FUNC) ||
	         (pw_wasm_find_export(m, "eval", PW_WASM_FUNC) &&
	          pw_wasm_find_export(m, "opa_malloc", PW_WASM_FUNC)))
		m->abi = PW_ABI_OPA;
	else if (pw_wasm_find_export(m, "_start", PW_WASM_FUNC))
		m->abi = PW_ABI_WASI_COMMAND;
	else
		m->abi = PW_ABI_UNKNOWN;
}

static int parse_sections(pstate *st, rd *r, size_t len)
{
	int last_rank = 0;
	bool seen_code = false;
	while (r->pos < len) {
		uint8_t id;
		uint32_t size;
		size_t start;
		int rank, rc = 0;
		r->end = len;
		r->sec = NULL;
		start = r->pos;
		TRY(rd_byte(r, &id));
		TRY(rd_u32(r, &size));
		if (size > len - r->pos) {
			r->pos = start;
			return bad(r, "section size runs past the end of the file");
		}
		r->end = r->pos + size;
		r->sec = section_name(id);
		if (id != 0) {
			rank = section_rank(id);
			if (rank == 0) {
				r->pos = start;
				return bad(r, "unknown section id");
			}
			if (rank <= last_rank) {
				char msg[96];
				r->pos = start;
				snprintf(msg, sizeof msg, "%s section out of order or repeated", section_name(id));
				return bad(r, msg);
			}
			last_rank = rank;
		}
		switch (id) {
		case 0: rc = sec_custom(st, r); break;
		case 1: rc = sec_type(st, r); break;
		case 2:
			rc = sec_import(st, r);
			if (rc == 0)
				for (uint32_t i = 0; i < st->m->nimports; i++)
					if (st->m->imports[i].kind == PW_WASM_FUNC)
						st->m->nimported_funcs++;
			break;
		case 3: rc = sec_function(st, r); break;
		case 4: rc = sec_table(st, r); break;
		case 5: rc = sec_memory(st, r); break;
		case 6: rc = sec_global(st, r); break;
		case 7: rc = sec_export(st, r); break;
		case 8: rc = sec_start(st, r); break;
		case 9: rc = sec_element(st, r); break;
		case 10: rc = sec_code(st, r); seen_code = true; break;
		case 11: rc = sec_data(st, r); break;
		case 12: rc = sec_datacount(st, r); break;
		case 13: rc = sec_tag(st, r); break;
		}
		if (rc < 0)
			return rc;
		if (r->pos != r->end) {
			char msg[64];
			snprintf(msg, sizeof msg, "%zu bytes left over at the end of the section",
			         r->end - r->pos);
			return bad(r, msg);
		}
		r->sec = NULL;
		if (id == 10)
			st->m->code_size = size;
	}
	if (st->nfuncs_declared > 0 && !seen_code) {
		r->pos = len;
		return bad(r, "function section without a code section");
	}
	return 0;
}

int pw_wasm_parse(pw_wasm_module **out, const uint8_t *bytes, size_t len)
{
	static const uint8_t magic[4] = { 0x00, 'a', 's', 'm' };
	pstate st = { 0 };
	rd r = { bytes, 0, len, NULL };
	int rc;

	*out = NULL;
	if (!bytes || len < 8) {
		if (len >= 4 && memcmp(bytes, magic, 4) == 0)
			return pw_error_set(PW_EINVALID, "wasm: truncated header (%zu bytes, expected at least 8)", len);
		return pw_error_set(PW_EINVALID, "wasm: bad magic: not a WebAssembly binary (%zu bytes)", len);
	}
	if (memcmp(bytes, magic, 4) != 0)
		return pw_error_set(PW_EINVALID, "wasm: bad magic: not a WebAssembly binary (starts with %02x %02x %02x %02x)",
		                    bytes[0], bytes[1], bytes[2], bytes[3]);
	if (bytes[4] == 0x0d && bytes[5] == 0x00 && bytes[6] == 0x01 && bytes[7] == 0x00)
		return pw_error_set(PW_EUNSUPPORTED, "wasm: component-model binary (version 0x0d, layer 1): "
		                    "only core WebAssembly modules are supported");
	if (bytes[4] != 1 || bytes[5] != 0 || bytes[6] != 0 || bytes[7] != 0)
		return pw_error_set(PW_EINVALID, "wasm: at offset 0x4: unsupported binary version %02x %02x %02x %02x",
		                    bytes[4], bytes[5], bytes[6], bytes[7]);
	st.m = calloc(1, sizeof *st.m);
	if (!st.m)
		return pw_error_set(PW_ENOMEM, "wasm: out of memory");
	r.pos = 8;
	rc = parse_sections(&st, &r, len);
	if (rc < 0) {
		pw_wasm_module_free(st.m);
		return rc;
	}
	guess_abi(st.m);
	*out = st.m;
	return 0;
}

void pw_wasm_module_free(pw_wasm_module *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->ntypes; i++) {
		free(m->types[i].params);
		free(m->types[i].results);
	}
	free(m->types);
	for (uint32_t i = 0; i < m->nimports; i++) {
		free(m->imports[i].module);
		free(m->imports[i].name);
	}
	free(m->imports);
	for (uint32_t i = 0; i < m->nexports; i++)
		free(m->exports[i].name);
	free(m->exports);
	free(m->func_types);
	free(m->global_valtypes);
	free(m->global_mutable);
	free(m->tables);
	free(m->kw_metadata);
	free(m);
}

/* ---- helpers -------------------------------------------------------------------------- */

const pw_wasm_functype *pw_wasm_func_type(const pw_wasm_module *m, uint32_t func_index)
{
	uint32_t k = 0;
	if (!m)
		return NULL;
	if (func_index < m->nimported_funcs) {
		for (uint32_t i = 0; i < m->nimports; i++) {
			if (m->imports[i].kind != PW_WASM_FUNC)
				continue;
			if (k++ == func_index)
				return m->imports[i].type_index < m->ntypes ? &m->types[m->imports[i].type_index] : NULL;
		}
		return NULL;
	}
	func_index -= m->nimported_funcs;
	if (func_index >= m->nfuncs)
		return NULL;
	return m->func_types[func_index] < m->ntypes ? &m->types[m->func_types[func_index]] : NULL;
}

static char sig_char(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return 'i';
	case PW_WASM_I64: return 'I';
	case PW_WASM_F32: return 'f';
	case PW_WASM_F64: return 'F';
	case PW_WASM_V128: return 'v';
	case PW_WASM_FUNCREF: return 'r';
	case PW_WASM_EXTERNREF: return 'e';
	default: return '?';
	}
}

void pw_wasm_sig_string(const pw_wasm_functype *t, char *out, size_t n)
{
	size_t k = 0;
	if (!out || n == 0)
		return;
#define PUT(c) do { if (k + 1 < n) out[k++] = (c); } while (0)
	if (t) {
		for (uint32_t i = 0; i < t->nparams; i++)
			PUT(sig_char(t->params[i]));
		PUT(':');
		for (uint32_t i = 0; i < t->nresults; i++)
			PUT(sig_char(t->results[i]));
	}
#undef PUT
	out[k] = 0;
}

const pw_wasm_export *pw_wasm_find_export(const pw_wasm_module *m, const char *name, int kind)
{
	if (!m || !name)
		return NULL;
	for (uint32_t i = 0; i < m->nexports; i++)
		if ((kind < 0 || m->exports[i].kind == kind) && !strcmp(m->exports[i].name, name))
			return &m->exports[i];
	return NULL;
}

const char *pw_wasm_abi_name(pw_wasm_abi abi)
{
	switch (abi) {
	case PW_ABI_WAPC: return "waPC";
	case PW_ABI_WASI_COMMAND: return "WASI command";
	case PW_ABI_OPA: return "OPA";
	default: return "unknown";
	}
}

const char *pw_wasm_valtype_name(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return "i32";
	case PW_WASM_I64: return "i64";
	case PW_WASM_F32: return "f32";
	case PW_WASM_F64: return "f64";
	case PW_WASM_V128: return "v128";
	case PW_WASM_FUNCREF: return "funcref";
	case PW_WASM_EXTERNREF: return "externref";
	default: return "unknown";
	}
}

static const char *const feature_names[] = {
	"simd", "bulk-memory", "reference-types", "multi-value", "sign-extension",
	"saturating-float-to-int", "mutable-globals", "threads", "exceptions", "tail-call",
	"memory64", "multi-memory",
};

const char *pw_wasm_features_str(uint32_t features, char *buf, size_t n)
{
	size_t k = 0;
	if (!buf || n == 0)
		return "";
	buf[0] = 0;
	for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++) {
		if (!(features & (1u << i)))
			continue;
		int w = snprintf(buf + k, n - k, "%s%s", k ? "," : "", feature_names[i]);
		if (w < 0 || (size_t)w >= n - k) {
			buf[k] = 0;
			break;
		}
		k += (size_t)w;
	}
	return buf;
}

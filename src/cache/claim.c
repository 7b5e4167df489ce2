/*
 * Claims for cross-process single flight: the claim record (who builds a key, until when),
 * its JSON, this process's identity, and the judgment a waiter makes of a peer's claim.
 *
 * A claim is stored by the tiers that have claims (local.c: a lease file next to the entry;
 * registry.c: a claim manifest under its own tag), and read back by other processes, so the
 * parser is strict (fuzz/fuzz_cache_claim.c). The judgment (pw_cache_claim_judge) is the
 * one place that decides when a waiter may take a claim over; its clock assumptions are in
 * docs/cache.md ("Single flight across processes").
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "prewarm/cache.h"

#define CLAIM "cache claim"
#define CLAIM_FORMAT 1
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define PIDNS_PATH "/proc/self/ns/pid"

const char *pw_claim_verdict_str(pw_claim_verdict v)
{
	switch (v) {
	case PW_CLAIM_LIVE: return "live";
	case PW_CLAIM_RELEASED: return "released by its owner";
	case PW_CLAIM_OWNER_DEAD: return "its owner's process is gone";
	case PW_CLAIM_PAST_DEADLINE: return "past its deadline";
	case PW_CLAIM_NOT_RENEWED: return "not renewed within its ttl";
	}
	return "?";
}

int pw_cache_claim_to_json(const pw_cache_claim *c, pw_buf *out)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:I, s:I, s:f, s:f, s:s}",
	                      "format", CLAIM_FORMAT, "nonce", c->nonce, "host", c->host,
	                      "pid", (json_int_t)c->pid, "boot_id", c->boot_id,
	                      "pidns", (json_int_t)c->pidns, "seq", (json_int_t)c->seq,
	                      "ttl", c->ttl, "deadline", c->deadline,
	                      "state", c->released ? "released" : "building");
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc;

	json_decref(o);
	if (!text)
		return pw_error_set(PW_ENOMEM, "out of memory building a cache claim");
	rc = pw_buf_append(out, text, strlen(text));
	free(text);
	return rc;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr("0123456789abcdef", s[i]))
			return false;
	return s[n] == '\0';
}

int pw_cache_claim_from_json(pw_cache_claim *out, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *o;
	uint64_t format, pid;
	char state[16];
	int rc;

	memset(out, 0, sizeof *out);
	if (len > PW_CACHE_CLAIM_MAX)
		return pw_error_set(PW_EINVALID, CLAIM ": %zu bytes (limit %u)", len, PW_CACHE_CLAIM_MAX);
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return pw_error_set(PW_EINVALID, CLAIM ": invalid JSON at line %d column %d: %s", jerr.line,
		                    jerr.column, jerr.text);
	if (!json_is_object(o)) {
		rc = pw_error_set(PW_EINVALID, CLAIM ": not a JSON object");
		goto out;
	}
	if ((rc = pw_cache__json_u64(o, CLAIM, "format", &format, true)) < 0)
		goto out;
	if (format != CLAIM_FORMAT) {
		rc = pw_error_set(PW_EINVALID, CLAIM ": format %llu (this prewarm reads %d)",
		                  (unsigned long long)format, CLAIM_FORMAT);
		goto out;
	}
	if ((rc = pw_cache__json_text(o, CLAIM, "nonce", out->nonce, sizeof out->nonce)) < 0 ||
	    (rc = pw_cache__json_text(o, CLAIM, "host", out->host, sizeof out->host)) < 0 ||
	    (rc = pw_cache__json_u64(o, CLAIM, "pid", &pid, true)) < 0 ||
	    (rc = pw_cache__json_text(o, CLAIM, "boot_id", out->boot_id, sizeof out->boot_id)) < 0 ||
	    (rc = pw_cache__json_u64(o, CLAIM, "pidns", &out->pidns, false)) < 0 ||
	    (rc = pw_cache__json_u64(o, CLAIM, "seq", &out->seq, true)) < 0 ||
	    (rc = pw_cache__json_seconds(o, CLAIM, "ttl", &out->ttl)) < 0 ||
	    (rc = pw_cache__json_seconds(o, CLAIM, "deadline", &out->deadline)) < 0 ||
	    (rc = pw_cache__json_text(o, CLAIM, "state", state, sizeof state)) < 0)
		goto out;
	if (!is_hex(out->nonce, PW_CACHE_CLAIM_NONCE_LEN)) {
		rc = pw_error_set(PW_EINVALID, CLAIM ": \"nonce\" is not %d lower-case hex digits",
		                  PW_CACHE_CLAIM_NONCE_LEN);
		goto out;
	}
	if (pid > (uint64_t)INT32_MAX) {
		rc = pw_error_set(PW_EINVALID, CLAIM ": \"pid\" %llu is not a pid", (unsigned long long)pid);
		goto out;
	}
	out->pid = (long)pid;
	if (out->ttl <= 0) {
		rc = pw_error_set(PW_EINVALID, CLAIM ": \"ttl\" missing or zero");
		goto out;
	}
	if (!strcmp(state, "released")) {
		out->released = true;
	} else if (strcmp(state, "building") != 0) {
		rc = pw_error_set(PW_EINVALID, CLAIM ": \"state\" is '%s', not building or released", state);
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* ---- this process's identity --------------------------------------------------------- */

static void read_boot_id(char *out, size_t n)
{
	pw_buf b = PW_BUF_INIT;

	out[0] = '\0';
	if (pw_file_read(BOOT_ID_PATH, 64, &b) < 0) {
		pw_error_clear();
		return;
	}
	for (size_t i = 0, k = 0; i < b.len && k + 1 < n; i++)
		if (strchr("0123456789abcdef-", (char)b.data[i])) {
			out[k++] = (char)b.data[i];
			out[k] = '\0';
		}
	pw_buf_free(&b);
}

void pw_cache__claim_init(pw_cache_claim *mine, double ttl)
{
	uint8_t rnd[PW_CACHE_CLAIM_NONCE_LEN / 2];
	struct stat st;

	memset(mine, 0, sizeof *mine);
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		/* no entropy source: pid and clocks still make two claimers differ */
		double t = pw_wall_now() * 1e6 + pw_now() * 1e3;
		for (size_t i = 0; i < sizeof rnd; i++)
			rnd[i] = (uint8_t)(((uint64_t)t >> (i % 8 * 8)) ^ (uint64_t)getpid() >> (i % 4 * 8) ^ i);
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(mine->nonce + 2 * i, 3, "%02x", rnd[i]);
	if (gethostname(mine->host, sizeof mine->host - 1) < 0)
		snprintf(mine->host, sizeof mine->host, "?");
	mine->host[sizeof mine->host - 1] = '\0';
	for (char *p = mine->host; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	mine->pid = (long)getpid();
	read_boot_id(mine->boot_id, sizeof mine->boot_id);
	if (stat(PIDNS_PATH, &st) == 0)
		mine->pidns = (uint64_t)st.st_ino;
	mine->ttl = ttl;
	mine->deadline = pw_wall_now() + ttl;
}

void pw_cache__claim_describe(const pw_cache_claim *c, char *out, size_t n)
{
	if (c->host[0])
		snprintf(out, n, "%s pid %ld", c->host, c->pid);
	else
		snprintf(out, n, "an unreadable claim");
}

void pw_cache__claim_unreadable(pw_cache_claim *holder, const void *data, size_t len)
{
	char hex[PW_SHA256_HEX_LEN + 1];

	memset(holder, 0, sizeof *holder);
	pw_sha256_hex(data ? data : (const void *)"", len, hex);
	memcpy(holder->nonce, hex, PW_CACHE_CLAIM_NONCE_LEN);
	holder->nonce[PW_CACHE_CLAIM_NONCE_LEN] = '\0';
}

/* ---- judging a peer's claim ---------------------------------------------------------- */

/* The owner's process is gone: only decidable when it shares our boot and pid namespace
 * (pods on one node share a boot id but not a pid namespace). */
static bool owner_gone(const pw_cache_claim *h)
{
	static pw_cache_claim me;
	static bool have_me;

	if (!have_me) {
		pw_cache__claim_init(&me, 1);
		have_me = true;
	}
	if (!h->boot_id[0] || !h->pidns || h->pid <= 0 || strcmp(h->boot_id, me.boot_id) != 0 ||
	    h->pidns != me.pidns || h->pid == me.pid)
		return false;
	return kill((pid_t)h->pid, 0) < 0 && errno == ESRCH;
}

pw_claim_verdict pw_cache_claim_judge(pw_cache_claim_watch *w, const pw_cache_claim *h, double mono,
                                      double wall, double skew, double own_ttl)
{
	double ttl = h->ttl > 0 ? h->ttl : own_ttl;

	if (!(ttl > 0) || ttl > PW_CACHE_CLAIM_TTL_MAX)
		ttl = PW_CACHE_CLAIM_TTL_MAX;
	if (!w->seen || strcmp(w->nonce, h->nonce) != 0 || w->seq != h->seq) {
		snprintf(w->nonce, sizeof w->nonce, "%s", h->nonce);
		w->seq = h->seq;
		w->first_seen = mono;
		w->seen = true;
	}
	if (h->released)
		return PW_CLAIM_RELEASED;
	if (owner_gone(h))
		return PW_CLAIM_OWNER_DEAD;
	if (h->deadline > 0 && isfinite(h->deadline) && wall > h->deadline + skew)
		return PW_CLAIM_PAST_DEADLINE;
	if (mono - w->first_seen > ttl)
		return PW_CLAIM_NOT_RENEWED;
	return PW_CLAIM_LIVE;
}

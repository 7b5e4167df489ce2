/*
 * Answer caches of host capabilities: Kubewarden caches some answers for a while
 * (callback_handler/oci.rs: manifest digests, manifests and configs for 60 s, successes
 * only) so that a policy asking for the same image on every request does not hit the
 * registry each time. Kubewarden's caches have no size bound; these do: at most
 * max_entries answers, and when full the entry closest to expiry is replaced. Keys and
 * answers are copied; one mutex guards a cache (lookups are a linear scan of a small table:
 * the bound keeps it cheap, and a registry round trip costs far more).
 */
#include <stdlib.h>
#include <string.h>

#include "host/hostcap.h"

typedef struct entry {
	char *key;
	uint8_t *data;
	size_t len;
	double expires;
} entry;

struct pw_hostcap_cache {
	pthread_mutex_t mu;
	entry *e;
	size_t n, max;
	double ttl;
};

pw_hostcap_cache *pw_hostcap_cache_new(size_t max_entries, double ttl)
{
	pw_hostcap_cache *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->max = max_entries ? max_entries : 1;
	k->ttl = ttl;
	if (!(k->e = calloc(k->max, sizeof *k->e))) {
		free(k);
		return NULL;
	}
	pthread_mutex_init(&k->mu, NULL);
	return k;
}

void pw_hostcap_cache_free(pw_hostcap_cache *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		free(k->e[i].key);
		free(k->e[i].data);
	}
	free(k->e);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static entry *find(pw_hostcap_cache *k, const char *key)
{
	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->e[i].key, key))
			return &k->e[i];
	return NULL;
}

int pw_hostcap_cache_get(pw_hostcap_cache *k, const char *key, pw_buf *out)
{
	int rc = PW_ENOTFOUND;
	pthread_mutex_lock(&k->mu);
	entry *e = find(k, key);
	if (e && e->expires > pw_now())
		rc = pw_buf_append(out, e->data, e->len) < 0 ? PW_ENOMEM : 0;
	pthread_mutex_unlock(&k->mu);
	return rc;
}

int pw_hostcap_cache_put(pw_hostcap_cache *k, const char *key, const uint8_t *data, size_t len)
{
	char *kc = strdup(key);
	uint8_t *dc = malloc(len ? len : 1);
	if (!kc || !dc) {
		free(kc);
		free(dc);
		return PW_ENOMEM;
	}
	if (len)
		memcpy(dc, data, len);
	double now = pw_now();
	pthread_mutex_lock(&k->mu);
	entry *e = find(k, key);
	if (!e && k->n < k->max)
		e = &k->e[k->n++];
	else if (!e) {
		e = &k->e[0];
		for (size_t i = 1; i < k->n; i++)
			if (k->e[i].expires < e->expires)
				e = &k->e[i];
	}
	free(e->key);
	free(e->data);
	*e = (entry){ .key = kc, .data = dc, .len = len, .expires = now + k->ttl };
	pthread_mutex_unlock(&k->mu);
	return 0;
}

size_t pw_hostcap_cache_count(pw_hostcap_cache *k)
{
	pthread_mutex_lock(&k->mu);
	size_t n = k->n;
	pthread_mutex_unlock(&k->mu);
	return n;
}

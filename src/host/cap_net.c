/*
 * The net family of host capabilities: net/v1/dns_lookup_host.
 *
 * Payload: a JSON string, the host name (policy-sdk-rust host_capabilities/net.rs).
 * Answer: {"ips":["127.0.0.1","::1",...]} (LookupResponse), the addresses getaddrinfo
 * gives for a stream socket, in its order, as text (inet_ntop, the same form as Rust's
 * IpAddr Display). Kubewarden (callback_handler.rs) resolves with the dns_lookup crate,
 * which is getaddrinfo too, and does not cache; neither does Prewarm (the system resolver
 * may, e.g. nscd).
 *
 * getaddrinfo cannot be interrupted, and a resolver that does not answer can hold it for
 * (timeout x attempts x servers) of resolv.conf. So the lookup runs on a detached thread
 * and the host call waits for it at most DNS_TIMEOUT seconds; a lookup that outlives the
 * wait finishes on its own and frees its state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "host/hostcap.h"

/* The longest a host call waits for a DNS answer. */
#define DNS_TIMEOUT 5.0
/* RFC 1035: a host name has at most 253 characters (255 octets on the wire). */
#define DNS_MAX_NAME 255

typedef struct lookup {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;                 /* the waiter and the thread */
	bool done;
	int gai;                  /* getaddrinfo's result */
	int err;                  /* errno after it (EAI_SYSTEM) */
	struct addrinfo *res;
	char host[DNS_MAX_NAME + 1];
} lookup;

static void lookup_unref(lookup *l)
{
	pthread_mutex_lock(&l->mu);
	int left = --l->refs;
	pthread_mutex_unlock(&l->mu);
	if (left)
		return;
	if (l->res)
		freeaddrinfo(l->res);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static void *lookup_run(void *arg)
{
	lookup *l = arg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(l->host, NULL, &hints, &res);
	int err = errno;
	pthread_mutex_lock(&l->mu);
	l->gai = gai;
	l->err = err;
	l->res = gai == 0 ? res : NULL;
	l->done = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	lookup_unref(l);
	return NULL;
}

/* The answer {"ips": [...]} from an addrinfo list. */
static int ips_answer(const struct addrinfo *res, pw_buf *answer)
{
	json_t *ips = json_array();
	json_t *o = json_pack("{s:o}", "ips", ips);
	if (!o)
		return pw_hostcap_answer_json(answer, NULL);
	for (const struct addrinfo *a = res; a; a = a->ai_next) {
		char txt[INET6_ADDRSTRLEN];
		const void *addr = a->ai_family == AF_INET ? (const void *)&((const struct sockaddr_in *)a->ai_addr)->sin_addr
		                 : a->ai_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr
		                 : NULL;
		if (addr && inet_ntop(a->ai_family, addr, txt, sizeof txt))
			json_array_append_new(ips, json_string(txt));
	}
	int rc = pw_hostcap_answer_json(answer, o);
	json_decref(o);
	return rc;
}

static int dns_lookup_host(const pw_hostcap_call *c, pw_buf *answer)
{
	const char *host = pw_hostcap_payload_string(c, answer);
	if (!host)
		return PW_EINVALID;
	size_t n = strlen(host);
	if (n == 0 || n > DNS_MAX_NAME || n != json_string_length(c->json))
		return pw_hostcap_fail(answer, "cannot resolve \"%.*s\": not a host name", (int)(n > 64 ? 64 : n), host);
	lookup *l = calloc(1, sizeof *l);
	if (!l)
		return pw_hostcap_fail(answer, "host out of memory");
	memcpy(l->host, host, n + 1);
	l->refs = 2;
	pthread_mutex_init(&l->mu, NULL);
	pw_cond_init_monotonic(&l->cv);
	int err = pw_thread_start_detached(lookup_run, l);
	if (err) {
		l->refs = 1;
		lookup_unref(l);
		return pw_hostcap_fail(answer, "cannot resolve \"%s\": no thread for the lookup: %s", host, strerror(err));
	}
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)DNS_TIMEOUT;
	pthread_mutex_lock(&l->mu);
	while (!l->done && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
		;
	bool done = l->done;
	pthread_mutex_unlock(&l->mu);
	int rc;
	if (!done)
		rc = pw_hostcap_fail(answer, "cannot resolve \"%s\": no answer within %g s", host, DNS_TIMEOUT);
	else if (l->gai != 0)
		rc = pw_hostcap_fail(answer, "cannot resolve \"%s\": %s", host,
		                     l->gai == EAI_SYSTEM ? strerror(l->err) : gai_strerror(l->gai));
	else
		rc = ips_answer(l->res, answer);
	lookup_unref(l);
	return rc;
}

const pw_hostcap_op pw_hostcap_net_ops[] = {
	{ "net", "v1/dns_lookup_host", dns_lookup_host },
	{ NULL, NULL, NULL },
};

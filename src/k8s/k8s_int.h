/*
 * Internals of the Kubernetes client shared by its files: the connection (config.c,
 * http.c), the decoding of what the API server sends (decode.c, fuzzed by
 * fuzz/fuzz_k8s_decode.c), selectors and field masks (select.c), the list+watch cache
 * (reflector.c), the file backend (objects.c) and the host-call answers (answer.c).
 */
#ifndef PW_K8S_INT_H
#define PW_K8S_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "prewarm/k8s.h"

/* Bounds: the largest body read from one response (a list page, an object, a discovery
 * document), the longest watch event line, objects kept per watched collection, the
 * collections watched at once (more distinct queries are answered by a direct list). */
#define K8S_MAX_BODY (64u << 20)
#define K8S_MAX_EVENT (16u << 20)
#define K8S_MAX_OBJECTS 100000u
#define K8S_MAX_REFLECTORS 64u
/* Items per list page (?limit=), the server-side watch duration (?timeoutSeconds=: the
 * server ends the stream, the client watches again from the last resourceVersion), and
 * the slack the client allows on top of it before it gives the stream up. */
#define K8S_LIST_PAGE 500
#define K8S_WATCH_SECONDS 300
#define K8S_WATCH_SLACK 30.0
/* Backoff between failed attempts of a watched collection: kube-rs's default_backoff
 * (0.8 s doubling to 30 s); reset after a list or watch that worked. */
#define K8S_BACKOFF_FIRST 0.8
#define K8S_BACKOFF_MAX 30.0
/* How long a host call waits for the first list of a new collection. */
#define K8S_READY_WAIT 10.0
/* Request bounds (pw_k8s_opts defaults). */
#define K8S_CONNECT_TIMEOUT 5.0
#define K8S_TIMEOUT 10.0
/* The token file is looked at again (stat) at most this often. */
#define K8S_TOKEN_RECHECK 1.0

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- connection (config.c, http.c) ----------------------------------------------------- */

typedef struct k8s_conn {
	char *server;            /* "https://host:port[/prefix]", no trailing '/' */
	char *origin;            /* where the configuration came from (messages) */
	pw_buf ca;               /* PEM CA bundle (empty: the system's) */
	pw_buf cert, key;        /* client certificate and key, PEM (empty: none) */
	bool insecure;           /* insecure-skip-tls-verify */
	char *token;             /* a fixed bearer token, or NULL */
	char *token_file;        /* a token file re-read when it changes, or NULL */
	char *basic;             /* "user:password", or NULL */
	double connect_timeout, timeout;
	/* the token file's current content, guarded by lock */
	pthread_mutex_t lock;
	char *file_token;
	struct stat token_st;
	double token_checked;
} k8s_conn;

int k8s_config_load(k8s_conn *c, const pw_k8s_opts *o);
void k8s_conn_free(k8s_conn *c);

/* Streams call this per complete line; nonzero stops the transfer. */
typedef int (*k8s_line_fn)(void *arg, const char *line, size_t len);

typedef struct k8s_req {
	const char *method;      /* "GET" (default) or "POST" */
	const char *path;        /* "/api/v1/namespaces/x/pods?limit=500" */
	const char *body;        /* POST body (JSON) */
	k8s_line_fn on_line;     /* stream mode: lines go here, not into out */
	void *arg;
	atomic_bool *stop;       /* set from another thread to abort the transfer */
	double timeout;          /* 0 = the connection's; < 0 = none (streams) */
	double low_speed_time;   /* give up after this long without data (0 = never) */
} k8s_req;

/* Runs one request: 0 with *status (HTTP code) and the body in *out (up to K8S_MAX_BODY),
 * or PW_ENETWORK / PW_ECANCELED / PW_EINVALID (body too large) with a message naming the
 * server. An HTTP error status is not a failure here: the caller reads *status. */
int k8s_http(k8s_conn *c, const k8s_req *r, long *status, pw_buf *out);

/* ---- decoding (decode.c) ---------------------------------------------------------------- */

typedef enum k8s_event_type {
	K8S_EV_ADDED = 1, K8S_EV_MODIFIED, K8S_EV_DELETED, K8S_EV_BOOKMARK, K8S_EV_ERROR,
} k8s_event_type;

typedef struct k8s_event {
	k8s_event_type type;
	json_t *object;          /* owned */
	const char *rv;          /* borrowed from object: metadata.resourceVersion, or NULL */
	int code;                /* ERROR: the Status code (410 = Gone), 0 if none */
	const char *message;     /* ERROR: the Status message (borrowed), or NULL */
} k8s_event;

/* One line of a watch stream. PW_EINVALID naming what is wrong. */
int k8s_decode_event(const char *line, size_t len, k8s_event *ev);
void k8s_event_free(k8s_event *ev);

/* A list response: *items (new reference, an array of objects), *rv (malloc'd, "" if none)
 * and *cont (malloc'd continue token, NULL when the list is complete). */
int k8s_decode_list(const char *body, size_t len, json_t **items, char **rv, char **cont);

/* An APIResourceList: the first top-level resource (no '/' in its name) of `kind`:
 * *plural malloc'd, *namespaced. PW_ENOTFOUND when the kind is not there. */
int k8s_decode_discovery(const char *body, size_t len, const char *kind, char **plural,
                         bool *namespaced);

/* The message of a Status body ("" when it is none), malloc'd; never NULL except ENOMEM. */
char *k8s_status_text(const char *body, size_t len);

/* "namespace/name" (or "/name") of an object, malloc'd; PW_EINVALID without metadata.name. */
int k8s_object_key(const json_t *obj, char **key);

/* ---- selectors and field masks (select.c) ---------------------------------------------- */

typedef struct k8s_selector k8s_selector;
/* Label selector syntax (key, !key, key=v, key==v, key!=v, key in (a,b), key notin (a,b),
 * comma-separated). NULL or "" selects everything. PW_EINVALID naming the problem. */
int k8s_label_selector_parse(k8s_selector **out, const char *s);
/* Field selector syntax (path=v, path==v, path!=v, comma-separated; path a dotted field
 * such as metadata.name or status.phase). */
int k8s_field_selector_parse(k8s_selector **out, const char *s);
bool k8s_selector_matches(const k8s_selector *sel, const json_t *obj);
void k8s_selector_free(k8s_selector *sel);

/* A field mask tree (Kubewarden's FieldMaskNode): a JSON object of children, built from
 * dotted paths. NULL when there are no masks. */
json_t *k8s_masks_tree(const json_t *masks);
/* Kubewarden's modify_object: managedFields emptied, the last-applied-configuration
 * annotation dropped (an absent annotations map becomes {}), then, with masks, every
 * field other than apiVersion, kind and metadata pruned to the mask tree. In place. */
void k8s_object_trim(json_t *obj, const json_t *masks, bool strip);

/* ---- the client (client.c, reflector.c, objects.c) ------------------------------------- */

typedef struct k8s_resource {
	char *api_version, *kind;
	char *plural;
	bool namespaced;
} k8s_resource;

typedef struct k8s_reflector k8s_reflector;

/* A cached get_resource / can_i answer (answer.c). */
typedef struct k8s_answer_entry {
	char *key;
	char *text;
	double expires;
} k8s_answer_entry;

struct pw_k8s {
	bool file_mode;
	k8s_conn conn;
	pthread_mutex_t lock;     /* resources, reflectors */
	k8s_resource **resources; /* discovery answers, kept for the client's life */
	size_t nresources;
	k8s_reflector **reflectors;
	size_t nreflectors;
	/* file mode */
	json_t *objects;          /* array of objects (trimmed) */
	json_t *reviews;          /* array of SubjectAccessReview objects */
	/* get_resource / can_i answers (answer.c) */
	pthread_mutex_t answers_lock;
	k8s_answer_entry *answers;
	size_t nanswers;
	/* counters */
	atomic_uint_fast64_t n_lists, n_watches, n_gets, n_reviews, n_discoveries, n_relists,
		n_events, n_errors;
};

/* The resource (plural, scope) of apiVersion/kind: from memory, else discovery. Kubewarden's
 * messages on failure. The returned pointer lives as long as k. */
int k8s_resource_find(pw_k8s *k, const char *api_version, const char *kind,
                      const k8s_resource **out);
/* "/api/v1" or "/apis/G/V", then "/namespaces/NS" when ns, then "/PLURAL" (malloc'd). */
char *k8s_collection_path(const k8s_resource *r, const char *ns);
/* Appends "name=urlencoded(value)" with a leading '?' or '&'. */
int k8s_query_add(pw_buf *b, const char *name, const char *value);

/* GET one object (the namespace is used when the resource is namespaced): 0 with *obj (new
 * reference), PW_ENOTFOUND on 404 (no message set), else an error naming the request. */
int k8s_get_object(pw_k8s *k, const k8s_resource *r, const char *name, const char *ns, json_t **obj);
/* POSTs a SubjectAccessReview with `spec`: 0 with *status (new reference: its status). */
int k8s_review(pw_k8s *k, const json_t *spec, json_t **status);

/* A list answer for the collection: {"apiVersion", "kind": KIND"List", "metadata": {},
 * "items": [...]} as JSON text in *answer. Uses (and starts) the collection's watch. */
int k8s_list(pw_k8s *k, const k8s_resource *r, const char *ns, const char *label_sel,
             const char *field_sel, const json_t *masks, pw_buf *answer);
/* Stops and frees every reflector (pw_k8s_free). */
void k8s_reflectors_free(pw_k8s *k);

/* Frees the cached answers (pw_k8s_free). */
void k8s_answers_free(pw_k8s *k);

/* File mode (objects.c). */
int k8s_file_list(pw_k8s *k, const char *api_version, const char *kind, const char *ns,
                  const char *label_sel, const char *field_sel, const json_t *masks,
                  pw_buf *answer);
int k8s_file_get(pw_k8s *k, const char *api_version, const char *kind, const char *name,
                 const char *ns, json_t **out);
int k8s_file_can_i(pw_k8s *k, const json_t *spec, json_t **status);

/* The "Some(\"x\")" / "None" of Rust's {:?} on Option<&str>, into b. */
void k8s_rust_option(pw_buf *b, const char *s);

#endif

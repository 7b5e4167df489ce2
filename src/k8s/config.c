/*
 * Where the Kubernetes client connects and how it authenticates: a kubeconfig or the
 * in-cluster configuration, in kube-rs's order (Config::infer: an explicit kubeconfig,
 * $KUBECONFIG, ~/.kube/config, then in-cluster).
 *
 * Kubeconfig: the current-context (or the one asked for) names a cluster (server,
 * certificate-authority or certificate-authority-data, insecure-skip-tls-verify) and a user
 * (token, tokenFile, client-certificate[-data] + client-key[-data], username + password).
 * A ':'-separated $KUBECONFIG is read like kubectl merges it: the first file that sets
 * current-context wins, and each named cluster/context/user is taken from the first file
 * that has it. Relative paths are relative to the file naming them. exec and auth-provider
 * users need programs Prewarm does not run: a clear error.
 *
 * In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the service
 * account's ca.crt, and its token file, re-read when it changes (projected tokens rotate;
 * http.c looks at the file again at most every K8S_TOKEN_RECHECK seconds).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s/k8s_int.h"

#define KUBECONFIG_MAX (4u << 20)
#define CRED_MAX (1u << 20)
#define MAX_KUBECONFIGS 16

typedef struct kc_file {
	char *path;
	char *dir;
	json_t *doc;
} kc_file;

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static char *resolve(const char *dir, const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	pw_buf b = PW_BUF_INIT;
	pw_buf_printf(&b, "%s/%s", dir, p);
	return (char *)pw_buf_detach(&b, NULL);
}

/* The `field` object of the entry named `name` in list `list` of the first file having it. */
static const json_t *kc_lookup(kc_file *f, size_t n, const char *list, const char *name,
                               const char *field, const kc_file **from)
{
	for (size_t i = 0; i < n; i++) {
		json_t *arr = json_object_get(f[i].doc, list);
		size_t j;
		json_t *e;
		json_array_foreach(arr, j, e) {
			const char *en = json_string_value(json_object_get(e, "name"));
			if (en && !strcmp(en, name)) {
				*from = &f[i];
				json_t *v = json_object_get(e, field);
				return json_is_object(v) ? v : NULL;
			}
		}
	}
	return NULL;
}

static const char *str_field(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A credential either inline (base64 in `data_key`) or in a file (`file_key`). */
static int load_cred(pw_buf *out, const json_t *o, const kc_file *f, const char *file_key,
                     const char *data_key)
{
	const char *data = str_field(o, data_key);
	const char *file = str_field(o, file_key);
	if (data) {
		uint8_t *bytes = NULL;
		size_t n = 0;
		if (pw_base64_decode(data, &bytes, &n) < 0)
			return pw_error_set(PW_EINVALID, "%s: %s is not valid base64", f->path, data_key);
		pw_buf_clear(out);
		int rc = pw_buf_append(out, bytes, n);
		free(bytes);
		return rc;
	}
	if (file) {
		char *p = resolve(f->dir, file);
		if (!p)
			return pw_error_set(PW_ENOMEM, "out of memory");
		int rc = pw_file_read(p, CRED_MAX, out);
		if (rc < 0)
			pw_error_prefix("%s: %s", f->path, file_key);
		free(p);
		return rc;
	}
	return 0;
}

static int from_kubeconfig(k8s_conn *c, const char *paths, const char *want_ctx)
{
	kc_file files[MAX_KUBECONFIGS];
	size_t n = 0;
	int rc = 0;
	char *list = strdup(paths);
	if (!list)
		return pw_error_set(PW_ENOMEM, "out of memory");
	char *save = NULL;
	for (char *p = strtok_r(list, ":", &save); p && n < MAX_KUBECONFIGS; p = strtok_r(NULL, ":", &save)) {
		if (!*p)
			continue;
		pw_buf b = PW_BUF_INIT;
		rc = pw_file_read(p, KUBECONFIG_MAX, &b);
		if (rc == PW_ENOTFOUND || (rc < 0 && !pw_path_exists(p))) {
			pw_error_clear();
			rc = 0;
			pw_buf_free(&b);
			continue;   /* kubectl skips missing files of the list */
		}
		if (rc < 0) {
			pw_error_prefix("kubeconfig");
			pw_buf_free(&b);
			goto out;
		}
		void *doc = NULL;
		rc = pw_yaml_to_json(&doc, b.data ? (const char *)b.data : "", b.len, p);
		pw_buf_free(&b);
		if (rc == PW_ENOTFOUND) {   /* empty file */
			pw_error_clear();
			rc = 0;
			continue;
		}
		if (rc < 0) {
			pw_error_prefix("kubeconfig");
			goto out;
		}
		if (!json_is_object((json_t *)doc)) {
			json_decref(doc);
			rc = pw_error_set(PW_EINVALID, "kubeconfig %s: not a mapping", p);
			goto out;
		}
		files[n].path = strdup(p);
		files[n].dir = dir_of(p);
		files[n].doc = doc;
		n++;
	}
	if (n == 0) {
		rc = pw_error_set(PW_ENOTFOUND, "kubeconfig %s: no such file", paths);
		goto out;
	}
	const char *ctx_name = want_ctx;
	for (size_t i = 0; i < n && !ctx_name; i++) {
		const char *cc = str_field(files[i].doc, "current-context");
		if (cc && *cc)
			ctx_name = cc;
	}
	if (!ctx_name) {
		rc = pw_error_set(PW_EINVALID, "kubeconfig %s: no current-context set", files[0].path);
		goto out;
	}
	const kc_file *cf = NULL, *clf = NULL, *uf = NULL;
	const json_t *ctx = kc_lookup(files, n, "contexts", ctx_name, "context", &cf);
	if (!ctx) {
		rc = pw_error_set(PW_EINVALID, "kubeconfig %s: context \"%s\" not found", files[0].path, ctx_name);
		goto out;
	}
	const char *cluster_name = str_field(ctx, "cluster");
	const char *user_name = str_field(ctx, "user");
	const json_t *cluster = cluster_name ? kc_lookup(files, n, "clusters", cluster_name, "cluster", &clf) : NULL;
	if (!cluster) {
		rc = pw_error_set(PW_EINVALID, "kubeconfig %s: context \"%s\": cluster \"%s\" not found",
		                  cf->path, ctx_name, cluster_name ? cluster_name : "");
		goto out;
	}
	const char *server = str_field(cluster, "server");
	if (!server || !*server) {
		rc = pw_error_set(PW_EINVALID, "kubeconfig %s: cluster \"%s\" has no server", clf->path, cluster_name);
		goto out;
	}
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
		rc = pw_error_set(PW_EINVALID, "kubeconfig %s: cluster \"%s\": server \"%s\" is not an http(s) URL",
		                  clf->path, cluster_name, server);
		goto out;
	}
	c->server = strdup(server);
	size_t sl = strlen(c->server);
	while (sl > 0 && c->server[sl - 1] == '/')
		c->server[--sl] = '\0';
	c->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
	if ((rc = load_cred(&c->ca, cluster, clf, "certificate-authority", "certificate-authority-data")) < 0)
		goto out;
	const json_t *user = user_name ? kc_lookup(files, n, "users", user_name, "user", &uf) : NULL;
	if (user_name && !user) {
		rc = pw_error_set(PW_EINVALID, "kubeconfig %s: context \"%s\": user \"%s\" not found", cf->path,
		                  ctx_name, user_name);
		goto out;
	}
	if (user) {
		if (json_object_get(user, "exec") || json_object_get(user, "auth-provider")) {
			rc = pw_error_set(PW_EUNSUPPORTED,
			                  "kubeconfig %s: user \"%s\" authenticates with %s, which Prewarm does not run; "
			                  "use a token, tokenFile or a client certificate",
			                  uf->path, user_name, json_object_get(user, "exec") ? "exec" : "auth-provider");
			goto out;
		}
		const char *tok = str_field(user, "token");
		const char *tokf = str_field(user, "tokenFile");
		if (tok && *tok)
			c->token = strdup(tok);
		else if (tokf && *tokf)
			c->token_file = resolve(uf->dir, tokf);
		if ((rc = load_cred(&c->cert, user, uf, "client-certificate", "client-certificate-data")) < 0 ||
		    (rc = load_cred(&c->key, user, uf, "client-key", "client-key-data")) < 0)
			goto out;
		if ((c->cert.len > 0) != (c->key.len > 0)) {
			rc = pw_error_set(PW_EINVALID, "kubeconfig %s: user \"%s\": a client certificate needs both "
			                  "client-certificate and client-key", uf->path, user_name);
			goto out;
		}
		const char *u = str_field(user, "username"), *pw = str_field(user, "password");
		if (u && pw) {
			pw_buf b = PW_BUF_INIT;
			pw_buf_printf(&b, "%s:%s", u, pw);
			c->basic = (char *)pw_buf_detach(&b, NULL);
		}
	}
	pw_buf o = PW_BUF_INIT;
	pw_buf_printf(&o, "kubeconfig %s (context %s)", cf->path, ctx_name);
	c->origin = (char *)pw_buf_detach(&o, NULL);
out:
	for (size_t i = 0; i < n; i++) {
		free(files[i].path);
		free(files[i].dir);
		json_decref(files[i].doc);
	}
	free(list);
	return rc;
}

static int in_cluster(k8s_conn *c, const char *sa_dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (!host || !*host || !port || !*port)
		return pw_error_set(PW_ENOTFOUND,
		                    "no Kubernetes configuration: no kubeconfig (--kubeconfig, $KUBECONFIG, "
		                    "~/.kube/config) and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
	const char *dir = sa_dir ? sa_dir : K8S_SA_DIR;
	pw_buf b = PW_BUF_INIT;
	if (strchr(host, ':'))
		pw_buf_printf(&b, "https://[%s]:%s", host, port);
	else
		pw_buf_printf(&b, "https://%s:%s", host, port);
	c->server = (char *)pw_buf_detach(&b, NULL);
	pw_buf_printf(&b, "%s/token", dir);
	c->token_file = (char *)pw_buf_detach(&b, NULL);
	pw_buf_printf(&b, "%s/ca.crt", dir);
	char *ca = (char *)pw_buf_detach(&b, NULL);
	int rc = pw_file_read(ca, CRED_MAX, &c->ca);
	if (rc < 0)
		pw_error_prefix("in-cluster configuration: service account CA");
	free(ca);
	if (rc < 0)
		return rc;
	if (!pw_path_exists(c->token_file))
		return pw_error_set(PW_ENOTFOUND, "in-cluster configuration: service account token %s: no such file",
		                    c->token_file);
	pw_buf_printf(&b, "in-cluster configuration (%s)", dir);
	c->origin = (char *)pw_buf_detach(&b, NULL);
	return 0;
}

int k8s_config_load(k8s_conn *c, const pw_k8s_opts *o)
{
	c->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : K8S_CONNECT_TIMEOUT;
	c->timeout = o->timeout > 0 ? o->timeout : K8S_TIMEOUT;
	pthread_mutex_init(&c->lock, NULL);
	if (o->in_cluster)
		return in_cluster(c, o->serviceaccount_dir);
	if (o->kubeconfig && *o->kubeconfig)
		return from_kubeconfig(c, o->kubeconfig, o->context);
	const char *env = getenv("KUBECONFIG");
	if (env && *env)
		return from_kubeconfig(c, env, o->context);
	const char *home = getenv("HOME");
	if (home && *home) {
		pw_buf b = PW_BUF_INIT;
		pw_buf_printf(&b, "%s/.kube/config", home);
		int rc = 1;
		if (b.data && pw_path_exists((const char *)b.data))
			rc = from_kubeconfig(c, (const char *)b.data, o->context);
		pw_buf_free(&b);
		if (rc <= 0)
			return rc;
	}
	return in_cluster(c, o->serviceaccount_dir);
}

void k8s_conn_free(k8s_conn *c)
{
	free(c->server);
	free(c->origin);
	pw_buf_free(&c->ca);
	pw_buf_free(&c->cert);
	if (c->key.data)
		memset(c->key.data, 0, c->key.len);
	pw_buf_free(&c->key);
	free(c->token);
	free(c->token_file);
	free(c->basic);
	free(c->file_token);
	pthread_mutex_destroy(&c->lock);
}

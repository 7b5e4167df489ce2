/*
 * Tests of the Kubernetes client (src/k8s) against tests/k8s/apiserver.py: a real HTTPS server
 * (python3 ssl, certificates made by openssl in the test) that answers like a kube-apiserver
 * with the recorded responses of tests/k8s/fixtures (see its README). Every answer checked is
 * the text pw_k8s_answer() hands a policy. Skips (77) when python3 or openssl is missing.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "prewarm/k8s.h"
#include "prewarm/util.h"

/* How long a test waits for the cache to show what the watch stream sent (a liveness bound,
 * not a timing assertion), and for the test server to listen. */
#define EVENTUALLY_SECONDS 30.0
#define SERVER_START_SECONDS 20.0

static char g_certs[4096];
static bool g_have_tools;

typedef struct server {
	pid_t pid;
	int port;
	char dir[4096];       /* run dir: scenario, log, trigger files */
	char log[4200];
} server;

/* Servers still running, stopped at exit when a failed CHECK returned early. */
static pid_t g_servers[32];

static void stop_all_servers(void)
{
	for (size_t i = 0; i < sizeof g_servers / sizeof g_servers[0]; i++) {
		if (g_servers[i] > 0) {
			kill(g_servers[i], SIGTERM);
			waitpid(g_servers[i], NULL, 0);
			g_servers[i] = 0;
		}
	}
}

static void remember_server(pid_t pid, bool add)
{
	for (size_t i = 0; i < sizeof g_servers / sizeof g_servers[0]; i++) {
		if (add ? g_servers[i] == 0 : g_servers[i] == pid) {
			g_servers[i] = add ? pid : 0;
			return;
		}
	}
}

static const char *src_dir(void)
{
	return pw_test_env("PREWARM_SOURCE_DIR", ".");
}

static bool setup_certs(void)
{
	if (g_certs[0])
		return g_have_tools;
	snprintf(g_certs, sizeof g_certs, "%s/certs", pw_test_tmpdir());
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "command -v python3 >/dev/null && command -v openssl >/dev/null && "
	         "bash %s/tests/k8s/make_certs.sh %s", src_dir(), g_certs);
	g_have_tools = system(cmd) == 0;
	return g_have_tools;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Starts the server on `scenario` (JSON text); with client_ca it asks for client certs. */
static bool server_start(server *s, const char *scenario, bool client_ca)
{
	memset(s, 0, sizeof *s);
	if (!setup_certs())
		return false;
	snprintf(s->dir, sizeof s->dir, "%s", pw_test_tmpdir());
	char scen[4200], portf[4200];
	snprintf(scen, sizeof scen, "%s/scenario.json", s->dir);
	snprintf(portf, sizeof portf, "%s/port", s->dir);
	snprintf(s->log, sizeof s->log, "%s/requests.log", s->dir);
	write_file(scen, scenario);
	char fixtures[4200], script[4200], cert[4200], key[4200], ca[4200];
	snprintf(fixtures, sizeof fixtures, "%s/tests/k8s/fixtures", src_dir());
	snprintf(script, sizeof script, "%s/tests/k8s/apiserver.py", src_dir());
	snprintf(cert, sizeof cert, "%s/server.crt", g_certs);
	snprintf(key, sizeof key, "%s/server.key", g_certs);
	snprintf(ca, sizeof ca, "%s/ca.crt", g_certs);
	s->pid = fork();
	if (s->pid == 0) {
		char errlog[4300];
		snprintf(errlog, sizeof errlog, "%s/server.stderr", s->dir);
		int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		const char *argv[] = { "python3", script, "--dir", fixtures, "--run-dir", s->dir, "--scenario", scen,
		                       "--log", s->log, "--port-file", portf, "--cert", cert, "--key", key,
		                       client_ca ? "--client-ca" : NULL, ca, NULL };
		execvp("python3", (char **)argv);
		_exit(127);
	}
	remember_server(s->pid, true);
	double end = pw_now() + SERVER_START_SECONDS;
	while (pw_now() < end) {
		pw_buf b = PW_BUF_INIT;
		if (pw_file_read(portf, 64, &b) == 0 && b.len) {
			s->port = atoi((const char *)b.data);
			pw_buf_free(&b);
			return true;
		}
		pw_buf_free(&b);
		pw_error_clear();
		usleep(20000);
	}
	return false;
}

static void server_stop(server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		remember_server(s->pid, false);
		s->pid = 0;
	}
}

static void trigger(server *s, const char *name)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", s->dir, name);
	write_file(p, "");
}

/* The requests the server saw, as a JSON array. */
static json_t *server_requests(server *s)
{
	json_t *arr = json_array();
	FILE *f = fopen(s->log, "r");
	char line[1 << 16];
	while (f && fgets(line, sizeof line, f))
		json_array_append_new(arr, json_loads(line, 0, NULL));
	if (f)
		fclose(f);
	return arr;
}

static size_t count_requests(server *s, const char *method, const char *path_prefix)
{
	json_t *r = server_requests(s);
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(r, i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *p = json_string_value(json_object_get(e, "path"));
		if (m && p && !strcmp(m, method) && !strncmp(p, path_prefix, strlen(path_prefix)))
			n++;
	}
	json_decref(r);
	return n;
}

/* A kubeconfig with a token and the test CA inline (certificate-authority-data). */
static const char *kubeconfig_token(server *s, const char *token)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/kubeconfig", s->dir);
	char ca[4200];
	snprintf(ca, sizeof ca, "%s/ca.crt", g_certs);
	pw_buf b = PW_BUF_INIT;
	pw_file_read(ca, 0, &b);
	char *b64 = pw_base64_encode(b.data, b.len);
	pw_buf_free(&b);
	pw_buf_printf(&b,
	              "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
	              "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d\n"
	              "    certificate-authority-data: %s\n"
	              "contexts:\n- name: test\n  context:\n    cluster: c\n    user: u\n"
	              "users:\n- name: u\n  user:\n    token: %s\n", s->port, b64, token);
	write_file(path, (const char *)b.data);
	pw_buf_free(&b);
	free(b64);
	return path;
}

/* The server on `scenario` and a client with a token kubeconfig for it; false (test skipped)
 * when the tools are missing. */
static bool start_with_client(server *s, const char *scenario, pw_k8s **k)
{
	*k = NULL;
	if (!server_start(s, scenario, false)) {
		pw_test_skip("python3/openssl missing or the test server did not start");
		return false;
	}
	pw_k8s_opts o = { .kubeconfig = kubeconfig_token(s, "tok-1") };
	if (pw_k8s_new(k, &o) < 0) {
		pw_test_fail(__FILE__, __LINE__, "pw_k8s_new: %s", pw_error_last());
		return false;
	}
	return true;
}

static bool allow_but_secrets(void *arg, const char *api_version, const char *kind)
{
	return strcmp(kind, "Secret") != 0;
}

/* One host call; returns the rc, the answer text in *out (static buffer). */
static int call(pw_k8s *k, const char *op, const char *payload, const char **out)
{
	static pw_buf b;
	pw_buf_free(&b);
	int rc = pw_k8s_answer(k, NULL, op, (const uint8_t *)payload, strlen(payload), allow_but_secrets, NULL, &b);
	*out = b.data ? (const char *)b.data : "";
	return rc;
}

#define DISCOVERY "\"GET /api/v1\": [{\"file\": \"api-v1.json\"}], \"GET /apis/apps/v1\": [{\"file\": \"apis-apps-v1.json\"}]"

static const char *LIST_PODS =
	"{\"api_version\":\"v1\",\"kind\":\"Pod\",\"namespace\":\"default\",\"label_selector\":null,"
	"\"field_selector\":null,\"field_masks\":null}";

static bool wait_for(pw_k8s *k, const char *payload, const char *needle, const char *absent)
{
	double end = pw_now() + EVENTUALLY_SECONDS;
	while (pw_now() < end) {
		const char *out;
		if (call(k, "list_resources_by_namespace", payload, &out) == 0 && strstr(out, needle) &&
		    (!absent || !strstr(out, absent)))
			return true;
		usleep(50000);
	}
	return false;
}

static void test_list_then_watch_updates(void)
{
	server s;
	pw_k8s *k = NULL;
	if (!start_with_client(&s,
	                  "{\"routes\": {" DISCOVERY ", \"GET /api/v1/namespaces/default/pods\": [{\"file\": \"pods-list.json\"}],"
	                  "\"GET /api/v1/namespaces/default/pods?watch\": [{\"stream\": \"pods-watch.ndjson\", \"wait_file\": \"go\", \"hold\": 60}]}}", &k))
		return;
	const char *out;
	CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	json_t *j = json_loads(out, 0, NULL);
	CHECK_MSG(j, "answer not JSON: %s", out);
	CHECK_STR(json_string_value(json_object_get(j, "kind")), "PodList");
	CHECK_STR(json_string_value(json_object_get(j, "apiVersion")), "v1");
	json_t *items = json_object_get(j, "items");
	CHECK_INT(json_array_size(items), 2);
	/* sorted by namespace/name; apiVersion and kind filled in; trimmed like Kubewarden */
	json_t *db = json_array_get(items, 0), *web = json_array_get(items, 1);
	CHECK_STR(json_string_value(json_object_get(json_object_get(db, "metadata"), "name")), "db-1");
	CHECK_STR(json_string_value(json_object_get(web, "kind")), "Pod");
	json_t *wm = json_object_get(web, "metadata");
	CHECK_INT(json_array_size(json_object_get(wm, "managedFields")), 0);
	CHECK(json_is_array(json_object_get(wm, "managedFields")));
	CHECK(!json_object_get(json_object_get(wm, "annotations"), "kubectl.kubernetes.io/last-applied-configuration"));
	CHECK_STR(json_string_value(json_object_get(json_object_get(wm, "annotations"), "team")), "blue");
	CHECK(json_is_object(json_object_get(json_object_get(db, "metadata"), "annotations")));
	json_decref(j);
	/* the wrapper in Kubewarden's order */
	static const char list_prefix[] = "{\"apiVersion\":\"v1\",\"kind\":\"PodList\",\"metadata\":{},\"items\":[";
	CHECK_MSG(!strncmp(out, list_prefix, strlen(list_prefix)), "%s", out);
	/* answered from the cache: one list request for any number of calls */
	for (int i = 0; i < 5; i++)
		CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces/default/pods?labelSelector"), 0);
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces/default/pods?limit=500"), 1);
	CHECK_INT(count_requests(&s, "GET", "/api/v1?"), 0);
	/* the events reach the cache: web-2 added, db-1 modified, web-1 deleted */
	trigger(&s, "go");
	CHECK_MSG(wait_for(k, LIST_PODS, "web-2", "web-1"), "the watch events never reached the cache");
	CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	CHECK_MSG(strstr(out, "10.244.1.7"), "MODIFIED not applied: %s", out);
	pw_k8s_stats st;
	pw_k8s_get_stats(k, &st);
	CHECK_INT(st.events, 3);
	CHECK_INT(st.lists, 1);
	CHECK_INT(st.discoveries, 1);
	/* the watch asked from the list's resourceVersion, with bookmarks; the token was sent */
	json_t *reqs = server_requests(&s);
	size_t i;
	json_t *e;
	bool saw_watch = false;
	json_array_foreach(reqs, i, e) {
		const char *p = json_string_value(json_object_get(e, "path"));
		CHECK_STR(json_string_value(json_object_get(e, "authorization")), "Bearer tok-1");
		if (strstr(p, "watch=1")) {
			saw_watch = true;
			CHECK_MSG(strstr(p, "resourceVersion=10245") && strstr(p, "allowWatchBookmarks=true"), "%s", p);
		}
	}
	json_decref(reqs);
	CHECK(saw_watch);
	pw_k8s_free(k);
	server_stop(&s);
}

static void test_gone_relists(void)
{
	server s;
	pw_k8s *k = NULL;
	if (!start_with_client(&s,
	                  "{\"routes\": {" DISCOVERY ", \"GET /api/v1/namespaces/default/pods\": ["
	                  "{\"file\": \"pods-list.json\"}, {\"file\": \"pods-list-relisted.json\"}],"
	                  "\"GET /api/v1/namespaces/default/pods?watch\": [{\"stream\": \"watch-gone.ndjson\", \"wait_file\": \"go\"},"
	                  "{\"file\": \"status-410.json\", \"status\": 410}, {\"stream\": \"pods-watch.ndjson\", \"wait_file\": \"never\", \"hold\": 60}]}}", &k))
		return;
	const char *out;
	CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	CHECK_MSG(strstr(out, "web-1"), "%s", out);
	trigger(&s, "go");
	/* ERROR 410 event -> list again (relisted fixture); then the watch's HTTP 410 -> list again */
	CHECK_MSG(wait_for(k, LIST_PODS, "api-7", "web-1"), "no re-list after 410 Gone");
	double end = pw_now() + EVENTUALLY_SECONDS;
	pw_k8s_stats st;
	do {
		pw_k8s_get_stats(k, &st);
		if (st.relists >= 2)
			break;
		usleep(50000);
	} while (pw_now() < end);
	CHECK_INT(st.relists, 2);
	end = pw_now() + EVENTUALLY_SECONDS;
	while (count_requests(&s, "GET", "/api/v1/namespaces/default/pods?limit=500") < 3 && pw_now() < end)
		usleep(50000);
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces/default/pods?limit=500"), 3);
	pw_k8s_free(k);
	server_stop(&s);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	bind(fd, (struct sockaddr *)&a, sizeof a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_server_down(void)
{
	server s;
	if (!server_start(&s,
	                  "{\"routes\": {" DISCOVERY ", \"GET /api/v1/namespaces/default/pods\": [{\"file\": \"pods-list.json\"}],"
	                  "\"GET /api/v1/namespaces/default/pods?watch\": [{\"stream\": \"pods-watch.ndjson\", \"wait_file\": \"never\", \"hold\": 60}]}}",
	                  false)) {
		pw_test_skip("python3/openssl missing or the test server did not start");
		return;
	}
	/* nothing listens: a clear error naming the server, at once */
	int real = s.port;
	s.port = free_port();
	pw_k8s *k = NULL;
	pw_k8s_opts o = { .kubeconfig = kubeconfig_token(&s, "tok-1") };
	CHECK_OK(pw_k8s_new(&k, &o));
	const char *out;
	CHECK(call(k, "list_resources_by_namespace", LIST_PODS, &out) < 0);
	CHECK_MSG(strstr(out, "Callback evaluation failure: error finding resource v1 / Pod: Kubernetes API GET https://127.0.0.1:"),
	          "%s", out);
	CHECK_MSG(strstr(out, "/api/v1: "), "%s", out);
	pw_k8s_free(k);
	/* a server that goes away: the cache keeps answering what it saw, gets fail cleanly */
	s.port = real;
	CHECK_OK(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = kubeconfig_token(&s, "tok-1") }));
	CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	server_stop(&s);
	CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	CHECK_MSG(strstr(out, "web-1") && strstr(out, "db-1"), "%s", out);
	CHECK(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"name\":\"web-1\",\"namespace\":\"default\",\"disable_cache\":true}", &out) < 0);
	CHECK_MSG(strstr(out, "Callback evaluation failure: Kubernetes API GET https://127.0.0.1:"), "%s", out);
	/* a first list of another collection while down: the failure comes back, no hang */
	CHECK(call(k, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\"}", &out) < 0);
	CHECK_MSG(strstr(out, "Callback evaluation failure: cannot list Kubernetes v1/Pod"), "%s", out);
	pw_k8s_free(k);
}

static void test_in_cluster_token_rotates(void)
{
	server s;
	if (!server_start(&s,
	                  "{\"routes\": {" DISCOVERY ", \"GET /api/v1/namespaces/team-a\": [{\"file\": \"namespace-get.json\"}]}}",
	                  false)) {
		pw_test_skip("python3/openssl missing or the test server did not start");
		return;
	}
	char sa[4200], p[4300], q[4300], port[16];
	snprintf(sa, sizeof sa, "%s/sa", s.dir);
	pw_mkdirs(sa, 0755);
	snprintf(p, sizeof p, "%s/token", sa);
	write_file(p, "tok-A\n");
	char cmd[16384];
	snprintf(cmd, sizeof cmd, "cp %s/ca.crt %s/ca.crt", g_certs, sa);
	CHECK(system(cmd) == 0);
	snprintf(port, sizeof port, "%d", s.port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	/* no kubeconfig anywhere: the in-cluster configuration is the one taken */
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char *kc = getenv("KUBECONFIG") ? strdup(getenv("KUBECONFIG")) : NULL;
	setenv("HOME", s.dir, 1);
	unsetenv("KUBECONFIG");
	pw_k8s *k = NULL;
	int rc = pw_k8s_new(&k, &(pw_k8s_opts){ .serviceaccount_dir = sa });
	if (home)
		setenv("HOME", home, 1);
	if (kc)
		setenv("KUBECONFIG", kc, 1);
	free(home);
	free(kc);
	CHECK_MSG(rc == 0, "%s", pw_error_last());
	static const char get_ns[] = "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"team-a\",\"namespace\":null,\"disable_cache\":true}";
	const char *out;
	CHECK_INT(call(k, "get_resource", get_ns, &out), 0);
	CHECK_MSG(strstr(out, "\"owner\":\"alice\""), "%s", out);
	/* the kubelet replaces the projected token: the new one is sent */
	snprintf(p, sizeof p, "%s/token.new", sa);
	write_file(p, "tok-B\n");
	snprintf(q, sizeof q, "%s/token", sa);
	CHECK(rename(p, q) == 0);
	usleep(1200000);   /* past the token re-check interval */
	CHECK_INT(call(k, "get_resource", get_ns, &out), 0);
	json_t *reqs = server_requests(&s);
	size_t n = json_array_size(reqs);
	CHECK(n >= 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(reqs, 1), "authorization")), "Bearer tok-A");
	CHECK_STR(json_string_value(json_object_get(json_array_get(reqs, n - 1), "authorization")), "Bearer tok-B");
	json_decref(reqs);
	pw_k8s_free(k);
	server_stop(&s);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_kubeconfig_client_certificate(void)
{
	server s;
	if (!server_start(&s,
	                  "{\"routes\": {" DISCOVERY ", \"GET /api/v1/namespaces/team-a\": [{\"file\": \"namespace-get.json\"}]}}",
	                  true)) {
		pw_test_skip("python3/openssl missing or the test server did not start");
		return;
	}
	/* files named relative to the kubeconfig, a context that is not the current one */
	char cmd[32768], kc[4200];
	snprintf(cmd, sizeof cmd, "mkdir -p %s/kc/pki && cp %s/ca.crt %s/client.crt %s/client.key %s/kc/pki/", s.dir,
	         g_certs, g_certs, g_certs, s.dir);
	CHECK(system(cmd) == 0);
	snprintf(kc, sizeof kc, "%s/kc/config", s.dir);
	pw_buf b = PW_BUF_INIT;
	pw_buf_printf(&b,
	              "apiVersion: v1\nkind: Config\ncurrent-context: other\n"
	              "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d/\n    certificate-authority: pki/ca.crt\n"
	              "contexts:\n- name: other\n  context: {cluster: nope, user: nope}\n"
	              "- name: mtls\n  context:\n    cluster: c\n    user: admin\n    namespace: team-a\n"
	              "users:\n- name: admin\n  user:\n    client-certificate: pki/client.crt\n    client-key: pki/client.key\n",
	              s.port);
	write_file(kc, (const char *)b.data);
	pw_buf_free(&b);
	pw_k8s *k = NULL;
	CHECK_OK(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = kc, .context = "mtls" }));
	const char *out;
	CHECK_INT(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"team-a\",\"disable_cache\":false}", &out), 0);
	json_t *reqs = server_requests(&s);
	const char *subj = json_string_value(json_object_get(json_array_get(reqs, 0), "client_subject"));
	CHECK_MSG(subj && strstr(subj, "commonName=prewarm-test"), "client certificate not presented: %s", subj ? subj : "(none)");
	CHECK(json_is_null(json_object_get(json_array_get(reqs, 0), "authorization")));
	json_decref(reqs);
	pw_k8s_free(k);
	/* the current-context names a cluster that does not exist */
	CHECK_INT(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = kc }), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "context \"other\": cluster \"nope\" not found"), "%s", pw_error_last());
	/* a CA that did not sign the server's certificate */
	snprintf(cmd, sizeof cmd, "cp %s/other-ca.crt %s/kc/pki/ca.crt", g_certs, s.dir);
	CHECK(system(cmd) == 0);
	CHECK_OK(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = kc, .context = "mtls" }));
	CHECK(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"team-a\",\"disable_cache\":false}", &out) < 0);
	CHECK_MSG(strstr(out, "error finding resource v1 / Namespace") && strstr(out, "certificate"), "%s", out);
	pw_k8s_free(k);
	server_stop(&s);
}

static void test_kubeconfig_errors(void)
{
	const char *d = pw_test_tmpdir();
	char p[4200];
	snprintf(p, sizeof p, "%s/exec.yaml", d);
	write_file(p, "current-context: x\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
	              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
	              "users: [{name: u, user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}}}]\n");
	pw_k8s *k = NULL;
	CHECK_INT(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = p }), PW_EUNSUPPORTED);
	CHECK_MSG(strstr(pw_error_last(), "user \"u\" authenticates with exec"), "%s", pw_error_last());
	snprintf(p, sizeof p, "%s/noserver.yaml", d);
	write_file(p, "current-context: x\nclusters: [{name: c, cluster: {}}]\ncontexts: [{name: x, context: {cluster: c}}]\n");
	CHECK_INT(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = p }), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "cluster \"c\" has no server"), "%s", pw_error_last());
	snprintf(p, sizeof p, "%s/bad.yaml", d);
	write_file(p, "current-context: [\n");
	CHECK_INT(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = p }), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "kubeconfig"), "%s", pw_error_last());
	snprintf(p, sizeof p, "%s/missing.yaml", d);
	CHECK_INT(pw_k8s_new(&k, &(pw_k8s_opts){ .kubeconfig = p }), PW_ENOTFOUND);
	/* no kubeconfig and not in a cluster */
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char *kc = getenv("KUBECONFIG") ? strdup(getenv("KUBECONFIG")) : NULL;
	setenv("HOME", d, 1);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	int rc = pw_k8s_new(&k, NULL);
	if (home)
		setenv("HOME", home, 1);
	if (kc)
		setenv("KUBECONFIG", kc, 1);
	free(home);
	free(kc);
	CHECK_INT(rc, PW_ENOTFOUND);
	CHECK_MSG(strstr(pw_error_last(), "no Kubernetes configuration"), "%s", pw_error_last());
	CHECK(k == NULL);
}

static void test_get_resource_and_can_i(void)
{
	server s;
	pw_k8s *k = NULL;
	if (!start_with_client(&s,
	                  "{\"routes\": {" DISCOVERY ", \"GET /api/v1/namespaces/team-a\": [{\"file\": \"namespace-get.json\"}],"
	                  "\"GET /api/v1/namespaces/missing\": [{\"file\": \"status-404-namespace.json\", \"status\": 404}],"
	                  "\"GET /api/v1/namespaces/default/secrets\": [{\"file\": \"status-403.json\", \"status\": 403}],"
	                  "\"GET /api/v1/namespaces\": [{\"file\": \"namespaces-list.json\"}],"
	                  "\"GET /apis/apps/v1/deployments\": [{\"file\": \"deployments-list.json\"}],"
	                  "\"GET /apis/apps/v1/deployments?watch\": [{\"stream\": \"pods-watch.ndjson\", \"wait_file\": \"never\", \"hold\": 60}],"
	                  "\"POST /apis/authorization.k8s.io/v1/subjectaccessreviews\": [{\"file\": \"sar-allowed.json\", \"status\": 201}]}}", &k))
		return;
	const char *out;
	static const char get_ns[] = "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"team-a\",\"namespace\":null,\"disable_cache\":false}";
	CHECK_INT(call(k, "get_resource", get_ns, &out), 0);
	/* the object as the server sent it (managedFields kept: get is not trimmed), keys sorted */
	static const char get_prefix[] = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"annotations\"";
	CHECK_MSG(!strncmp(out, get_prefix, strlen(get_prefix)), "%s", out);
	CHECK_MSG(strstr(out, "\"managedFields\":[{"), "%s", out);
	/* cached 5 s unless disable_cache; field masks apply after the cache, to data only */
	CHECK_INT(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"team-a\",\"disable_cache\":false,\"field_masks\":[\"spec.finalizers\"]}", &out), 0);
	CHECK_MSG(strstr(out, "\"spec\":{\"finalizers\":[\"kubernetes\"]}") && !strstr(out, "\"status\"") &&
	          strstr(out, "\"owner\":\"alice\""), "%s", out);
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces/team-a"), 1);
	CHECK_INT(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"team-a\",\"disable_cache\":true}", &out), 0);
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces/team-a"), 2);
	/* Kubewarden's not-found text (namespace printed as Rust's Option) */
	CHECK(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"missing\",\"disable_cache\":false}", &out) < 0);
	CHECK_STR(out, "Callback evaluation failure: Cannot find v1/Namespace named 'missing' inside of namespace 'None'");
	CHECK(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"name\":\"web-1\",\"disable_cache\":false}", &out) < 0);
	CHECK_STR(out, "Callback evaluation failure: Resource v1/Pod is namespaced, but no namespace was provided");
	CHECK(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Gizmo\",\"name\":\"x\",\"disable_cache\":false}", &out) < 0);
	CHECK_STR(out, "Callback evaluation failure: Cannot find resource v1/Gizmo");
	/* list of a cluster-wide kind: all yes, by namespace no */
	CHECK(call(k, "list_resources_by_namespace", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"namespace\":\"default\"}", &out) < 0);
	CHECK_STR(out, "Callback evaluation failure: resource v1/Namespace is cluster wide. Cannot search for it inside of a namespace");
	CHECK_INT(call(k, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Namespace\"}", &out), 0);
	CHECK_MSG(strstr(out, "\"kind\":\"NamespaceList\"") && strstr(out, "kube-system"), "%s", out);
	/* a group resource with field masks: only the masked data is kept, metadata whole */
	CHECK_INT(call(k, "list_resources_all", "{\"api_version\":\"apps/v1\",\"kind\":\"Deployment\",\"field_masks\":[\"spec.template.spec.containers.image\",\"status.readyReplicas\"]}", &out), 0);
	CHECK_MSG(strstr(out, "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":\"registry.k8s.io/coredns/coredns:v1.11.3\"}]}}},\"status\":{\"readyReplicas\":2}"),
	          "%s", out);
	CHECK_MSG(strstr(out, "\"k8s-app\":\"kube-dns\"") && strstr(out, "\"kind\":\"Deployment\""), "%s", out);
	/* can_i: a SubjectAccessReview POST, Kubewarden's spec, the status back, cached */
	static const char can_i[] = "{\"subject_access_review\":{\"groups\":[\"dev\"],\"resource_attributes\":{\"group\":null,"
	                            "\"name\":null,\"namespace\":\"default\",\"resource\":\"pods\",\"subresource\":null,\"verb\":\"create\","
	                            "\"version\":null},\"user\":\"alice\"},\"disable_cache\":false}";
	CHECK_INT(call(k, "can_i", can_i, &out), 0);
	CHECK_STR(out, "{\"allowed\":true,\"reason\":\"RBAC: allowed by RoleBinding \\\"dev-edit/default\\\" of ClusterRole \\\"edit\\\" to Group \\\"dev\\\"\"}");
	CHECK_INT(call(k, "can_i", can_i, &out), 0);
	CHECK_INT(count_requests(&s, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"), 1);
	json_t *reqs = server_requests(&s);
	size_t i;
	json_t *e;
	json_array_foreach(reqs, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "method")), "POST"))
			continue;
		json_t *body = json_loads(json_string_value(json_object_get(e, "body")), 0, NULL);
		CHECK_STR(json_string_value(json_object_get(body, "kind")), "SubjectAccessReview");
		char *spec = json_dumps(json_object_get(body, "spec"), JSON_COMPACT | JSON_SORT_KEYS);
		CHECK_STR(spec, "{\"groups\":[\"dev\"],\"resourceAttributes\":{\"namespace\":\"default\",\"resource\":\"pods\",\"verb\":\"create\"},\"user\":\"alice\"}");
		free(spec);
		json_decref(body);
	}
	json_decref(reqs);
	pw_k8s_free(k);
	server_stop(&s);
}

static void test_requests_and_gate(void)
{
	/* no client at all: the gate and the request decoding still answer first */
	pw_buf b = PW_BUF_INIT;
	static const char secrets[] = "{\"api_version\":\"v1\",\"kind\":\"Secret\",\"namespace\":\"default\"}";
	CHECK(pw_k8s_answer(NULL, "no kubeconfig", "list_resources_by_namespace", (const uint8_t *)secrets, strlen(secrets),
	                    allow_but_secrets, NULL, &b) == PW_EAUTH);
	CHECK_STR((const char *)b.data, "Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported.");
	pw_buf_clear(&b);
	CHECK(pw_k8s_answer(NULL, "no kubeconfig", "list_resources_by_namespace", (const uint8_t *)LIST_PODS, strlen(LIST_PODS),
	                    NULL, NULL, &b) == PW_EAUTH);
	pw_buf_clear(&b);
	CHECK(pw_k8s_answer(NULL, "no kubeconfig", "list_resources_by_namespace", (const uint8_t *)LIST_PODS, strlen(LIST_PODS),
	                    allow_but_secrets, NULL, &b) < 0);
	CHECK_STR((const char *)b.data, "Callback evaluation failure: kube::Client was not initialized properly: no kubeconfig");
	static const struct { const char *op, *payload, *want; } bad[] = {
		{ "list_resources_all", "{\"api_version\":\"v1\"}", "missing field `kind`" },
		{ "list_resources_all", "\"pods\"", "invalid type: string, expected struct ListAllResourcesRequest" },
		{ "list_resources_by_namespace", "{\"api_version\":\"v1\",\"kind\":\"Pod\"}", "missing field `namespace`" },
		{ "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"name\":\"x\"}", "missing field `disable_cache`" },
		{ "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"name\":7,\"disable_cache\":true}", "invalid type: integer, expected a string (field `name`)" },
		{ "can_i", "{\"subject_access_review\":{\"user\":\"u\",\"resource_attributes\":{\"verb\":\"get\"}},\"disable_cache\":true}", "missing field `resource`" },
		{ "can_i", "{\"disable_cache\":true}", "missing field `subject_access_review`" },
		{ "delete_everything", "{}", "unknown operation: delete_everything" },
		{ "list_resources_all", "{nope", "" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pw_buf_clear(&b);
		int rc = pw_k8s_answer(NULL, NULL, bad[i].op, (const uint8_t *)bad[i].payload, strlen(bad[i].payload),
		                       allow_but_secrets, NULL, &b);
		CHECK_MSG(rc < 0 && b.data && strstr((const char *)b.data, bad[i].want), "%s %s -> %d %s", bad[i].op,
		          bad[i].payload, rc, b.data ? (const char *)b.data : "");
	}
	/* can_i is not gated by contextAwareResources (Kubewarden): it reaches the client */
	pw_buf_clear(&b);
	static const char can_i[] = "{\"subject_access_review\":{\"user\":\"u\",\"resource_attributes\":{\"resource\":\"secrets\",\"verb\":\"get\"}},\"disable_cache\":true}";
	CHECK(pw_k8s_answer(NULL, NULL, "can_i", (const uint8_t *)can_i, strlen(can_i), NULL, NULL, &b) < 0);
	CHECK_STR((const char *)b.data, "Callback evaluation failure: kube::Client was not initialized properly");
	pw_buf_free(&b);
}

static void test_answers_from_file(void)
{
	const char *d = pw_test_tmpdir();
	char p[4200];
	snprintf(p, sizeof p, "%s/cluster.yaml", d);
	write_file(p,
	           "apiVersion: v1\nkind: PodList\nitems:\n"
	           "- metadata: {name: web-1, namespace: default, labels: {app: web, tier: frontend}}\n  spec: {nodeName: node-a}\n  status: {phase: Running}\n"
	           "- metadata: {name: db-1, namespace: default, labels: {app: db}}\n  spec: {nodeName: node-b}\n  status: {phase: Pending}\n"
	           "- metadata: {name: web-9, namespace: other, labels: {app: web}}\n"
	           "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {team: blue}\n"
	           "---\napiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\n"
	           "spec: {user: alice, resourceAttributes: {namespace: default, verb: create, resource: pods}}\n"
	           "status: {allowed: false, denied: true, reason: no}\n");
	pw_k8s *k = NULL;
	CHECK_OK(pw_k8s_new_from_file(&k, p));
	CHECK(pw_k8s_server(k) == NULL);
	const char *out;
	CHECK_INT(call(k, "list_resources_by_namespace", LIST_PODS, &out), 0);
	static const char file_prefix[] = "{\"apiVersion\":\"v1\",\"kind\":\"PodList\",\"metadata\":{},\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"db\"},\"managedFields\":[],\"name\":\"db-1\"";
	CHECK_MSG(!strncmp(out, file_prefix, strlen(file_prefix)), "%s", out);
	CHECK_MSG(strstr(out, "web-1") && !strstr(out, "web-9"), "%s", out);
	static const struct { const char *payload; const char *has, *hasnt; } q[] = {
		{ "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"label_selector\":\"app=web\"}", "web-9", "db-1" },
		{ "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"label_selector\":\"app in (web, db),tier\"}", "web-1", "db-1" },
		{ "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"label_selector\":\"!tier\"}", "web-9", "web-1" },
		{ "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"label_selector\":\"app!=web\"}", "db-1", "web-1" },
		{ "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"field_selector\":\"status.phase=Running,metadata.namespace==default\"}", "web-1", "db-1" },
		{ "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"field_selector\":\"spec.nodeName!=node-a\"}", "db-1", "web-1" },
	};
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		CHECK_INT(call(k, "list_resources_all", q[i].payload, &out), 0);
		CHECK_MSG(strstr(out, q[i].has) && !strstr(out, q[i].hasnt), "%s -> %s", q[i].payload, out);
	}
	CHECK(call(k, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"label_selector\":\"app in (web\"}", &out) < 0);
	CHECK_MSG(strstr(out, "label selector"), "%s", out);
	CHECK_INT(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"default\",\"disable_cache\":false}", &out), 0);
	CHECK_MSG(strstr(out, "\"team\":\"blue\""), "%s", out);
	CHECK(call(k, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"name\":\"web-1\",\"namespace\":\"nope\",\"disable_cache\":false}", &out) < 0);
	CHECK_STR(out, "Callback evaluation failure: Cannot find v1/Pod named 'web-1' inside of namespace 'Some(\"nope\")'");
	CHECK(call(k, "list_resources_by_namespace", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"namespace\":\"x\"}", &out) < 0);
	CHECK_MSG(strstr(out, "cluster wide"), "%s", out);
	CHECK_INT(call(k, "can_i", "{\"subject_access_review\":{\"user\":\"alice\",\"resource_attributes\":{\"namespace\":\"default\",\"resource\":\"pods\",\"verb\":\"create\"}},\"disable_cache\":false}", &out), 0);
	CHECK_STR(out, "{\"allowed\":false,\"denied\":true,\"reason\":\"no\"}");
	CHECK(call(k, "can_i", "{\"subject_access_review\":{\"user\":\"bob\",\"resource_attributes\":{\"resource\":\"pods\",\"verb\":\"create\"}},\"disable_cache\":false}", &out) < 0);
	CHECK_MSG(strstr(out, "no SubjectAccessReview in the --allow-context-aware file"), "%s", out);
	pw_k8s_free(k);
	/* bad files name the file and the object */
	snprintf(p, sizeof p, "%s/bad.yaml", d);
	write_file(p, "apiVersion: v1\nkind: Pod\nmetadata: {}\n");
	CHECK_INT(pw_k8s_new_from_file(&k, p), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "object 1 (v1/Pod) has no metadata.name"), "%s", pw_error_last());
	write_file(p, "[1, 2]");
	CHECK_INT(pw_k8s_new_from_file(&k, p), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "object 1 is not a mapping"), "%s", pw_error_last());
}

/* ---- the data document of context-aware Rego policies (pw_k8s_inventory) ------------------ */

#define INVENTORY_ROUTES DISCOVERY ", \"GET /api/v1/namespaces\": [{\"file\": \"%s\"}]," \
	"\"GET /api/v1/namespaces?watch\": [{\"stream\": \"pods-watch.ndjson\", \"wait_file\": \"never\", \"hold\": 60}]," \
	"\"GET /apis/apps/v1/deployments\": [{\"file\": \"deployments-list.json\"}]," \
	"\"GET /apis/apps/v1/deployments?watch\": [{\"stream\": \"pods-watch.ndjson\", \"wait_file\": \"never\", \"hold\": 60}]," \
	"\"GET /api/v1/pods\": [{\"file\": \"status-403-pods-cluster.json\", \"status\": 403}]"

static const char *inventory_scenario(const char *namespaces)
{
	static char b[2048];
	snprintf(b, sizeof b, "{\"routes\": {" INVENTORY_ROUTES "}}", namespaces);
	return b;
}

/* obj at a path of keys (NULL-terminated) */
static json_t *at(json_t *v, ...)
{
	va_list ap;
	va_start(ap, v);
	for (const char *key; v && (key = va_arg(ap, const char *));)
		v = json_object_get(v, key);
	va_end(ap);
	return v;
}

static void test_rego_inventories(void)
{
	server s;
	pw_k8s *k = NULL;
	if (!start_with_client(&s, inventory_scenario("namespaces-list.json"), &k))
		return;
	static const char *const res[] = { "v1", "Namespace", "apps/v1", "Deployment" };
	pw_buf b = PW_BUF_INIT;
	/* OPA: data.kubernetes, kube-mgmt's PLURAL / [NAMESPACE /] NAME */
	CHECK_OK(pw_k8s_inventory(k, NULL, false, res, 2, &b));
	json_t *j = json_loads((const char *)b.data, 0, NULL);
	CHECK_MSG(j && json_object_size(j) == 2, "%s", b.data);
	CHECK_INT(json_object_size(at(j, "namespaces", NULL)), 2);
	CHECK_STR(json_string_value(at(j, "namespaces", "default", "metadata", "name", NULL)), "default");
	CHECK_STR(json_string_value(at(j, "namespaces", "kube-system", "kind", NULL)), "Namespace");
	CHECK_STR(json_string_value(at(j, "deployments", "kube-system", "coredns", "apiVersion", NULL)), "apps/v1");
	CHECK_INT(json_integer_value(at(j, "deployments", "kube-system", "coredns", "spec", "replicas", NULL)), 2);
	/* the objects as list_resources_all answers them (Kubewarden's modify_object) */
	CHECK(json_is_array(at(j, "namespaces", "default", "metadata", "managedFields", NULL)));
	json_decref(j);
	CHECK_MSG(!strncmp((const char *)b.data, "{\"deployments\":{\"kube-system\":{\"coredns\":{\"apiVersion\":\"apps/v1\"", 60),
	          "%s", b.data);
	/* Gatekeeper: data.inventory, cluster / namespace, then groupVersion / kind / name */
	pw_buf_clear(&b);
	CHECK_OK(pw_k8s_inventory(k, NULL, true, res, 2, &b));
	j = json_loads((const char *)b.data, 0, NULL);
	CHECK_MSG(j && json_object_size(j) == 2, "%s", b.data);
	CHECK_INT(json_object_size(at(j, "cluster", "v1", "Namespace", NULL)), 2);
	CHECK_STR(json_string_value(at(j, "cluster", "v1", "Namespace", "kube-system", "metadata", "name", NULL)), "kube-system");
	CHECK_INT(json_object_size(at(j, "namespace", NULL)), 1);
	CHECK_STR(json_string_value(at(j, "namespace", "kube-system", "apps/v1", "Deployment", "coredns", "metadata", "name", NULL)),
	          "coredns");
	json_decref(j);
	/* both come from the watched cache: one list per kind */
	pw_buf_clear(&b);
	CHECK_OK(pw_k8s_inventory(k, NULL, false, res, 2, &b));
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces?limit=500"), 1);
	CHECK_INT(count_requests(&s, "GET", "/apis/apps/v1/deployments?limit=500"), 1);
	/* a kind the API server refuses fails the whole document, naming the kind */
	static const char *const with_pods[] = { "v1", "Namespace", "v1", "Pod" };
	pw_buf_clear(&b);
	CHECK(pw_k8s_inventory(k, NULL, false, with_pods, 2, &b) < 0);
	CHECK_MSG(b.data && strstr((const char *)b.data, "cannot build the Kubernetes context of the policy: listing v1/Pod: ") &&
	          strstr((const char *)b.data, "HTTP 403: pods is forbidden"), "%s", b.data ? (const char *)b.data : "");
	pw_buf_clear(&b);
	CHECK(pw_k8s_inventory(NULL, "no kubeconfig", true, res, 2, &b) < 0);
	CHECK_STR((const char *)b.data, "cannot build the Kubernetes context of the policy: kube::Client was not "
	          "initialized properly: no kubeconfig");
	pw_buf_free(&b);
	pw_k8s_free(k);
	server_stop(&s);
}

static void test_rego_inventory_from_file(void)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/cluster.yaml", pw_test_tmpdir());
	write_file(p, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n"
	              "- metadata: {name: deny, namespace: team-a}\n"
	              "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\n");
	pw_k8s *k = NULL;
	CHECK_OK(pw_k8s_new_from_file(&k, p));
	static const char *const res[] = { "networking.k8s.io/v1", "NetworkPolicy", "networking.k8s.io/v1", "IngressClass",
	                                   "v1", "Namespace" };
	pw_buf b = PW_BUF_INIT;
	CHECK_OK(pw_k8s_inventory(k, NULL, false, res, 3, &b));
	/* no discovery in a file: the plural by kube-rs's rule; a kind with no objects is absent */
	json_t *j = json_loads((const char *)b.data, 0, NULL);
	CHECK_MSG(j && json_object_size(j) == 2, "%s", b.data);
	CHECK(at(j, "networkpolicies", "team-a", "deny", "metadata", NULL));
	CHECK(at(j, "ingressclasses", "nginx", "metadata", NULL));
	json_decref(j);
	pw_buf_clear(&b);
	CHECK_OK(pw_k8s_inventory(k, NULL, true, res, 3, &b));
	CHECK_STR((const char *)b.data,
	          "{\"cluster\":{\"networking.k8s.io/v1\":{\"IngressClass\":{\"nginx\":{\"apiVersion\":\"networking.k8s.io/v1\","
	          "\"kind\":\"IngressClass\",\"metadata\":{\"annotations\":{},\"managedFields\":[],\"name\":\"nginx\"}}}}},"
	          "\"namespace\":{\"team-a\":{\"networking.k8s.io/v1\":{\"NetworkPolicy\":{\"deny\":{\"apiVersion\":"
	          "\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":{\"annotations\":{},\"managedFields\":[],"
	          "\"name\":\"deny\",\"namespace\":\"team-a\"}}}}}}}");
	pw_buf_free(&b);
	pw_k8s_free(k);
}

/* prewarm eval of a generated Rego fixture (tests/host/opa/context_spec.json, gatekeeper_context_spec.json) with --kubeconfig
 * KC and `extra` flags on a Pod created in namespace default: the AdmissionResponse. */
static json_t *eval_rego(const char *fixture, const char *kc, const char *extra)
{
	const char *bin = getenv("PREWARM_BIN"), *fix = getenv("PREWARM_FIXTURES");
	if (!bin || !fix)
		return NULL;
	const char *d = pw_test_tmpdir();
	char req[4200], out[4200], cmd[16384];
	snprintf(req, sizeof req, "%s/pod-request.json", d);
	snprintf(out, sizeof out, "%s/eval.out", d);
	write_file(req, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u-7\","
	                "\"operation\":\"CREATE\",\"namespace\":\"default\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
	                "\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"default\"}}}}");
	snprintf(cmd, sizeof cmd, "'%s' eval '%s/%s' --request '%s' --cache-dir '%s/cache' %s%s%s %s > '%s' 2> '%s.err'", bin, fix,
	         fixture, req, d, kc ? "--kubeconfig '" : "", kc ? kc : "", kc ? "'" : "", extra ? extra : "", out, out);
	if (system(cmd) != 0)
		return NULL;
	json_t *j = json_load_file(out, 0, NULL);
	json_t *r = json_incref(json_object_get(j, "response"));
	json_decref(j);
	return r;
}

static void test_rego_policies_eval(void)
{
	if (!getenv("PREWARM_BIN")) {
		pw_test_skip("PREWARM_BIN not set");
		return;
	}
	server s;
	pw_k8s *k = NULL;
	if (!start_with_client(&s, inventory_scenario("namespaces-list.json"), &k))
		return;
	pw_k8s_free(k);
	const char *kc = kubeconfig_token(&s, "tok-1");
	/* OPA: data.kubernetes.namespaces.default has no team label: rejected by the policy */
	json_t *r = eval_rego("opa_context.wasm", kc, NULL);
	CHECK_MSG(r, "prewarm eval failed");
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(at(r, "status", "message", NULL)), "namespace default has no team label (data.kubernetes.namespaces)");
	CHECK_INT(json_integer_value(at(r, "status", "code", NULL)), 403);
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "u-7");
	json_decref(r);
	/* Gatekeeper: data.inventory.cluster.v1.Namespace.default, the same verdict as a violation */
	r = eval_rego("opa_gatekeeper_context.wasm", kc, NULL);
	CHECK_MSG(r, "prewarm eval failed");
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(at(r, "status", "message", NULL)), "namespace default has no team label (data.inventory)");
	json_decref(r);
	/* a kind the API server refuses: an error answer naming it, for both modes */
	const char *fixtures[] = { "opa_context.wasm", "opa_gatekeeper_context.wasm" };
	for (size_t i = 0; i < 2; i++) {
		r = eval_rego(fixtures[i], kc, "--context-aware-resource v1/Namespace --context-aware-resource v1/Pod");
		CHECK_MSG(r, "prewarm eval %s failed", fixtures[i]);
		CHECK(json_is_false(json_object_get(r, "allowed")));
		CHECK_INT(json_integer_value(at(r, "status", "code", NULL)), 500);
		const char *m = json_string_value(at(r, "status", "message", NULL));
		CHECK_MSG(m && strstr(m, "cannot build the Kubernetes context of the policy: listing v1/Pod: ") &&
		          strstr(m, "pods is forbidden"), "%s", m ? m : "(none)");
		json_decref(r);
	}
	/* without contextAwareResources nothing changes: no list, the settings as data */
	size_t lists = count_requests(&s, "GET", "/api/v1/namespaces?limit=500");
	r = eval_rego("opa_policy_meta.wasm", kc, NULL);
	CHECK_MSG(r, "prewarm eval failed");
	CHECK(json_is_true(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(json_array_get(json_object_get(r, "warnings"), 0)), "checked by rego");
	json_decref(r);
	CHECK_INT(count_requests(&s, "GET", "/api/v1/namespaces?limit=500"), lists);
	r = eval_rego("opa_context.wasm", NULL, NULL);
	CHECK_MSG(r, "prewarm eval failed");
	CHECK(json_is_true(json_object_get(r, "allowed")));
	json_decref(r);
	server_stop(&s);
	/* the namespace has the label: both policies allow */
	if (!start_with_client(&s, inventory_scenario("namespaces-list-team.json"), &k))
		return;
	pw_k8s_free(k);
	kc = kubeconfig_token(&s, "tok-1");
	for (size_t i = 0; i < 2; i++) {
		r = eval_rego(fixtures[i], kc, NULL);
		CHECK_MSG(r, "prewarm eval %s failed", fixtures[i]);
		CHECK_MSG(json_is_true(json_object_get(r, "allowed")), "%s", fixtures[i]);
		json_decref(r);
	}
	server_stop(&s);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_all_servers);
	static const pw_test tests[] = {
		PW_TEST(test_requests_and_gate),
		PW_TEST(test_answers_from_file),
		PW_TEST(test_kubeconfig_errors),
		PW_TEST(test_list_then_watch_updates),
		PW_TEST(test_gone_relists),
		PW_TEST(test_server_down),
		PW_TEST(test_in_cluster_token_rotates),
		PW_TEST(test_kubeconfig_client_certificate),
		PW_TEST(test_get_resource_and_can_i),
		PW_TEST(test_rego_inventories),
		PW_TEST(test_rego_inventory_from_file),
		PW_TEST(test_rego_policies_eval),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}

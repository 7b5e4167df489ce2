/*
 * `prewarm serve`: the admission Policy Server, a drop-in for Kubewarden's policy-server.
 *
 * Takes Kubewarden's flags, each also settable as KUBEWARDEN_<FLAG> in the environment
 * (flags win), plus the shared cache options (cache_opts.h) and a few of Prewarm's own.
 * Starts the listeners at once (readiness 503), runs the startup pipeline, then serves;
 * SIGHUP or a change of the policies file (polled) reloads without a restart; SIGTERM or
 * SIGINT stop accepting, finish the requests in flight, and exit 0. Signals are taken by
 * sigtimedwait in the main thread (blocked everywhere else), so no handler runs async code.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cache_opts.h"
#include "cli/cli.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"
#include "prewarm/sigstore.h"
#include "prewarm/policy.h"
#include "prewarm/server.h"
#include "prewarm/util.h"

#define MIN_WATCH_INTERVAL_S 0.05   /* the policies.yml poll never spins */

static const char serve_help[] =
	"usage: prewarm serve [options]\n"
	"\n"
	"Runs the admission Policy Server on the policies of a Kubewarden policies.yml. Every\n"
	"module is fetched (in parallel), looked up in the artifact cache (local directory, then\n"
	"the OCI registry tier) and compiled to native code only on a miss; then every policy's\n"
	"settings are validated and the server reports ready. Any cache failure falls back to\n"
	"compiling. Each Kubewarden option can also be set with the environment variable shown\n"
	"in [brackets], Kubewarden's own name; a flag wins over the variable. Booleans: 1/true/yes\n"
	"or 0/false/no.\n"
	"\n"
	"Kubewarden options:\n"
	"  --policies FILE                 policies.yml (default policies.yml) [KUBEWARDEN_POLICIES]\n"
	"  --policies-download-dir DIR     where fetched modules are stored (default: a temp dir;\n"
	"                                  Kubewarden: .) [KUBEWARDEN_POLICIES_DOWNLOAD_DIR]\n"
	"  --sources-path FILE             sources.yml: insecure_sources, source_authorities; also\n"
	"                                  the registry cache tier's CA [KUBEWARDEN_SOURCES_PATH]\n"
	"  --docker-config-json-path DIR   registry credentials: DIR/config.json; also the registry\n"
	"                                  cache tier's, without --cache-registry-credentials\n"
	"                                  [KUBEWARDEN_DOCKER_CONFIG_JSON_PATH]\n"
	"  --addr ADDR                     listen address of both ports (default 0.0.0.0; IPv6\n"
	"                                  literal allowed) [KUBEWARDEN_BIND_ADDRESS; KUBEWARDEN_ADDR too]\n"
	"  --port N                        admission port (default 3000) [KUBEWARDEN_PORT]\n"
	"  --readiness-probe-port N        readiness and metrics port, plain HTTP (default 8081)\n"
	"                                  [KUBEWARDEN_READINESS_PROBE_PORT]\n"
	"  --cert-file FILE --key-file FILE  serve HTTPS on the admission port (PEM)\n"
	"                                  [KUBEWARDEN_CERT_FILE, KUBEWARDEN_KEY_FILE]\n"
	"  --client-ca-file FILE[,FILE...] mutual TLS: clients must present a certificate signed\n"
	"                                  by one of these CAs (PEM); needs --cert-file\n"
	"                                  [KUBEWARDEN_CLIENT_CA_FILE]\n"
	"  --workers N                     evaluation threads (default: number of CPUs) [KUBEWARDEN_WORKERS]\n"
	"  --policy-timeout SECONDS        evaluation timeout per request (default 2; \"500ms\" too)\n"
	"                                  [KUBEWARDEN_POLICY_TIMEOUT]\n"
	"  --disable-timeout-protection    no evaluation timeout [KUBEWARDEN_DISABLE_TIMEOUT_PROTECTION]\n"
	"  --always-accept-admission-reviews-on-namespace NS\n"
	"                                  accept every AdmissionReview from namespace NS unevaluated\n"
	"                                  [KUBEWARDEN_ALWAYS_ACCEPT_ADMISSION_REVIEWS_ON_NAMESPACE]\n"
	"  --continue-on-errors            serve the policies that load; broken ones answer 500\n"
	"                                  (default: a broken policy stops the start, like Kubewarden)\n"
	"                                  [KUBEWARDEN_CONTINUE_ON_ERRORS]\n"
	"  --log-level LEVEL               trace|debug|info|warn|error (default info) [KUBEWARDEN_LOG_LEVEL]\n"
	"  --log-fmt FMT                   text|json|otlp (default text) [KUBEWARDEN_LOG_FMT]. otlp:\n"
	"                                  JSON lines, no trace export (Prewarm has no OTLP exporter;\n"
	"                                  said once at start with the OTEL_EXPORTER_OTLP_* seen)\n"
	"  --enable-metrics                Kubewarden pushes metrics over OTLP; Prewarm serves them\n"
	"                                  always as Prometheus text on GET /metrics of the readiness\n"
	"                                  port, and warns once that nothing is pushed\n"
	"                                  [KUBEWARDEN_ENABLE_METRICS]\n"
	"  --log-no-color                  accepted: Prewarm's logs have no colours [NO_COLOR: any\n"
	"                                  value but empty/0/false/no/off]\n"
	"  --verification-path FILE        Kubewarden's verification config v1: every policy's cosign\n"
	"                                  signatures are verified (pubKey entries) before it is fetched,\n"
	"                                  at start and reload; keyless kinds are refused at start\n"
	"                                  [KUBEWARDEN_VERIFICATION_CONFIG_PATH]\n"
	"  --sigstore-trust-config FILE    accepted, unused (only keyless verification would read it)\n"
	"                                  [KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH]\n"
	"  --sigstore-cache-dir DIR        accepted, unused (no sigstore data is fetched)\n"
	"                                  [KUBEWARDEN_SIGSTORE_CACHE_DIR]\n"
	"  --ignore-kubernetes-connection-failure  accepted: a Kubernetes client that cannot be\n"
	"                                  configured never fails the start, the context-aware calls\n"
	"                                  answer why [KUBEWARDEN_IGNORE_KUBERNETES_CONNECTION_FAILURE]\n"
	"  --kubeconfig FILE               the cluster of context-aware policies (default: $KUBECONFIG,\n"
	"                                  ~/.kube/config, then in-cluster) [KUBEWARDEN_KUBECONFIG]\n"
	"  --enable-pprof                  accepted, logged: no /debug/pprof endpoints (use perf)\n"
	"                                  [KUBEWARDEN_ENABLE_PPROF]\n"
	"  --daemon                        refused (exit 2): run in the foreground [KUBEWARDEN_DAEMON]\n"
	"  --daemon-pid-file, --daemon-stdout-file, --daemon-stderr-file FILE  ignored without\n"
	"                                  --daemon [KUBEWARDEN_DAEMON_PID_FILE, ..._STDOUT_FILE, ..._STDERR_FILE]\n"
	"\n"
	"Prewarm options (variables KUBEWARDEN_<NAME> too, e.g. KUBEWARDEN_MAX_BODY_SIZE):\n"
	"  --max-body-size SIZE            request body limit, 413 beyond (default 8MiB; Kubewarden:\n"
	"                                  2 MiB, fixed)\n"
	"  --compile-jobs N                parallel cache lookups/compiles (default: CPUs)\n"
	"  --compile-memory SIZE           memory budget for parallel compiles (default 80%% of available)\n"
	"  --instance-memory SIZE          cap on each policy instance's linear memory (default: module's)\n"
	"  --no-watch                      do not reload when the policies file changes (SIGHUP still does)\n"
	"  --watch-interval SECONDS        how often the policies file is checked (default 2)\n"
	"  --shutdown-timeout SECONDS      how long SIGTERM waits for requests in flight (default 30)\n"
	"  --tiering on|off                on (default; [PREWARM_TIERING]): a module no cache tier\n"
	"                                  holds as optimized code is served at once from quick code\n"
	"                                  (wasm2c + tcc, a fraction of a second) while its optimized\n"
	"                                  compile (gcc) runs in the background at low priority, is\n"
	"                                  published to the cache and swapped in between requests.\n"
	"                                  off: every miss waits for the optimized compile\n"
	"  --tier-up-jobs N                parallel background optimized compiles (default 1)\n"
	"  --optimized-engine FILE         for images without gcc [PREWARM_OPTIMIZED_ENGINE]: the\n"
	"                                  optimized engine's description\n"
	"                                  (`prewarm engine --tier optimized` on the build host), so its\n"
	"                                  artifacts are taken from the cache; misses run on quick code\n"
	"\n"
	"%s"
	"\n"
	"Endpoints: POST /validate/{id}, /validate_raw/{id}, /audit/{id} on --port;\n"
	"GET /readiness (200 once ready) and /metrics on --readiness-probe-port.\n"
	"Signals: SIGHUP reloads policies.yml (the old set serves until the new one is ready; a\n"
	"broken new set is refused); SIGTERM/SIGINT drain and exit.\n"
	"Exit codes: 0 after a clean shutdown, 1 when the start failed, 2 for a usage error.\n";

/* O_ANYFLAG: a flag whose variable follows the NO_COLOR convention: any value but empty,
 * 0, false, no or off means true; never an error. */
typedef enum opt_kind { O_STR, O_UINT, O_SECONDS, O_SIZE, O_FLAG, O_ANYFLAG } opt_kind;

typedef struct serve_cfg {
	const char *policies, *download_dir, *sources, *docker_config, *addr, *cert, *key, *always_ns;
	const char *log_level, *log_fmt, *client_ca, *daemon_pid, *daemon_out, *daemon_err;
	const char *tiering, *optimized_engine, *sigstore_cache, *sigstore_trust, *verification;
	const char *kubeconfig;
	unsigned port, ready_port, workers, compile_jobs, tierup_jobs;
	double policy_timeout, watch_interval, shutdown_timeout;
	uint64_t max_body, compile_memory, instance_memory;
	bool disable_timeout, enable_metrics, continue_on_errors, no_watch, daemon;
	bool no_color, ignore_k8s_failure, enable_pprof;
} serve_cfg;

typedef struct opt_def {
	const char *name;     /* without the leading dashes */
	opt_kind kind;
	size_t off;
	const char *env;      /* Kubewarden's variable; NULL = KUBEWARDEN_<NAME> */
	const char *alias;    /* an older variable also read (the main one wins) */
} opt_def;

#define F(name, kind, field) { name, kind, offsetof(serve_cfg, field), NULL, NULL }
#define FE(name, kind, field, env, alias) { name, kind, offsetof(serve_cfg, field), env, alias }
static const opt_def defs[] = {
	F("policies", O_STR, policies),
	F("policies-download-dir", O_STR, download_dir),
	F("sources-path", O_STR, sources),
	F("docker-config-json-path", O_STR, docker_config),
	FE("addr", O_STR, addr, "KUBEWARDEN_BIND_ADDRESS", "KUBEWARDEN_ADDR"),
	F("port", O_UINT, port),
	F("readiness-probe-port", O_UINT, ready_port),
	F("cert-file", O_STR, cert),
	F("key-file", O_STR, key),
	F("client-ca-file", O_STR, client_ca),
	F("workers", O_UINT, workers),
	F("policy-timeout", O_SECONDS, policy_timeout),
	F("disable-timeout-protection", O_FLAG, disable_timeout),
	F("always-accept-admission-reviews-on-namespace", O_STR, always_ns),
	F("enable-metrics", O_FLAG, enable_metrics),
	F("log-level", O_STR, log_level),
	F("log-fmt", O_STR, log_fmt),
	FE("log-no-color", O_ANYFLAG, no_color, "NO_COLOR", NULL),
	F("sigstore-cache-dir", O_STR, sigstore_cache),
	FE("sigstore-trust-config", O_STR, sigstore_trust, "KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH", NULL),
	FE("verification-path", O_STR, verification, "KUBEWARDEN_VERIFICATION_CONFIG_PATH", NULL),
	F("ignore-kubernetes-connection-failure", O_FLAG, ignore_k8s_failure),
	F("kubeconfig", O_STR, kubeconfig),
	F("enable-pprof", O_FLAG, enable_pprof),
	F("daemon", O_FLAG, daemon),
	F("daemon-pid-file", O_STR, daemon_pid),
	F("daemon-stdout-file", O_STR, daemon_out),
	F("daemon-stderr-file", O_STR, daemon_err),
	F("continue-on-errors", O_FLAG, continue_on_errors),
	F("max-body-size", O_SIZE, max_body),
	F("compile-jobs", O_UINT, compile_jobs),
	F("compile-memory", O_SIZE, compile_memory),
	F("instance-memory", O_SIZE, instance_memory),
	F("no-watch", O_FLAG, no_watch),
	F("watch-interval", O_SECONDS, watch_interval),
	F("shutdown-timeout", O_SECONDS, shutdown_timeout),
	F("tiering", O_STR, tiering),
	F("tier-up-jobs", O_UINT, tierup_jobs),
	F("optimized-engine", O_STR, optimized_engine),
};
#undef F
#undef FE

/* Stores `val` into the option; `from` names where it came from for the error. */
static int set_opt(serve_cfg *c, const opt_def *d, const char *val, const char *from)
{
	void *p = (char *)c + d->off;
	switch (d->kind) {
	case O_STR:
		if (!*val) {
			fprintf(stderr, "prewarm serve: %s: empty value\n", from);
			return -1;
		}
		*(const char **)p = val;
		return 0;
	case O_UINT: {
		char *end;
		errno = 0;
		unsigned long v = strtoul(val, &end, 10);
		if (errno || !*val || *end || v > 65535 * 16 || *val == '-') {
			fprintf(stderr, "prewarm serve: %s: \"%s\" is not a non-negative integer\n", from, val);
			return -1;
		}
		*(unsigned *)p = (unsigned)v;
		return 0;
	}
	case O_SECONDS:
		if (pw_parse_duration(val, (double *)p) < 0 || *(double *)p < 0) {
			fprintf(stderr, "prewarm serve: %s: \"%s\" is not a duration (\"2\", \"500ms\")\n", from, val);
			return -1;
		}
		return 0;
	case O_SIZE:
		if (pw_parse_size(val, (uint64_t *)p) < 0) {
			fprintf(stderr, "prewarm serve: %s: \"%s\" is not a size (\"8MiB\", \"512k\")\n", from, val);
			return -1;
		}
		return 0;
	case O_ANYFLAG:
		*(bool *)p = *val && strcmp(val, "0") && strcasecmp(val, "false") && strcasecmp(val, "no") &&
		             strcasecmp(val, "off");
		return 0;
	case O_FLAG:
		if (!strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes"))
			*(bool *)p = true;
		else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no"))
			*(bool *)p = false;
		else {
			fprintf(stderr, "prewarm serve: %s: \"%s\" is not true or false\n", from, val);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* The variable of option d: its own name, else KUBEWARDEN_<NAME> (dashes to underscores). */
static const char *env_name(const opt_def *d, char *buf, size_t len)
{
	if (d->env)
		return d->env;
	size_t k = (size_t)snprintf(buf, len, "KUBEWARDEN_");
	for (const char *s = d->name; *s && k + 1 < len; s++)
		buf[k++] = *s == '-' ? '_' : (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
	buf[k] = '\0';
	return buf;
}

static int from_env(serve_cfg *c)
{
	for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
		char buf[96];
		const char *name = env_name(&defs[i], buf, sizeof buf), *v;
		if (defs[i].alias && (v = getenv(defs[i].alias)) && set_opt(c, &defs[i], v, defs[i].alias) < 0)
			return -1;
		if ((v = getenv(name)) && set_opt(c, &defs[i], v, name) < 0)
			return -1;
	}
	return 0;
}

/* 1 consumed, 0 not ours, -1 usage error */
static int from_arg(serve_cfg *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (strncmp(a, "--", 2) != 0)
		return 0;
	a += 2;
	for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
		size_t n = strlen(defs[k].name);
		if (strncmp(a, defs[k].name, n) != 0 || (a[n] != '\0' && a[n] != '='))
			continue;
		if (defs[k].kind == O_FLAG || defs[k].kind == O_ANYFLAG)
			return set_opt(c, &defs[k], a[n] == '=' ? a + n + 1 : "true", argv[*i]) < 0 ? -1 : 1;
		const char *val;
		if (a[n] == '=') {
			val = a + n + 1;
		} else if (*i + 1 < argc) {
			val = argv[++*i];
		} else {
			fprintf(stderr, "prewarm serve: --%s needs a value\n", defs[k].name);
			return -1;
		}
		char flag[96];
		snprintf(flag, sizeof flag, "--%s", defs[k].name);
		return set_opt(c, &defs[k], val, flag) < 0 ? -1 : 1;
	}
	return 0;
}

static int open_oci(const serve_cfg *c, pw_oci_client **out)
{
	pw_oci_sources *src = NULL;
	pw_oci_creds *creds = NULL;
	int rc = 0;

	if (c->sources && (rc = pw_oci_sources_load(&src, c->sources)) < 0)
		goto out;
	if (c->docker_config) {
		if ((rc = pw_oci_creds_new(&creds)) < 0 || (rc = pw_oci_creds_load_docker_config(creds, c->docker_config)) < 0)
			goto out;
	}
	pw_oci_client_opts oo = { .sources = src, .creds = creds };
	rc = pw_oci_client_new(out, &oo);
out:
	pw_oci_sources_free(src);
	pw_oci_creds_free(creds);
	return rc;
}

/*
 * The engines: *opt serves cached optimized artifacts and compiles misses (or only loads, when
 * pinned from --optimized-engine); *quick (tiering on) serves misses at once. Without an
 * optimizing compiler the quick engine alone serves everything (*opt = the quick engine,
 * *quick = NULL), said in the log; without both, the start fails.
 */
static int open_engines(const serve_cfg *c, pw_engine **opt, pw_engine **quick)
{
	const char *t = c->tiering ? c->tiering : getenv("PREWARM_TIERING");
	bool tiering = true;
	if (t && *t && !strcmp(t, "off"))
		tiering = false;
	else if (t && *t && strcmp(t, "on") != 0) {
		pw_err("serve", "--tiering: \"%s\" is not on or off", t);
		return -1;
	}
	const char *pin = c->optimized_engine ? c->optimized_engine : getenv("PREWARM_OPTIMIZED_ENGINE");
	pw_engine_opts oo = { .tier = PW_TIER_OPTIMIZED }, qo = { .tier = PW_TIER_QUICK };
	pw_buf text = PW_BUF_INIT;
	char why[512] = "";
	int rc = 0;
	if (pin && *pin) {
		if ((rc = pw_file_read(pin, 65536, &text)) == 0 && (rc = pw_buf_puts(&text, "")) == 0) {
			oo.pinned_description = (const char *)text.data;
			rc = pw_engine_new(opt, &oo);
		}
		if (rc < 0) {
			pw_err("serve", "--optimized-engine %s: %s", pin, pw_error_last());
			pw_buf_free(&text);
			return -1;
		}
		pw_info("serve", "optimized engine pinned from %s (%.16s): optimized artifacts come from the cache only",
		        pin, pw_engine_hash(*opt));
	} else if (pw_engine_new(opt, &oo) < 0) {
		snprintf(why, sizeof why, "%s", pw_error_last());
	}
	pw_buf_free(&text);
	if (tiering && pw_engine_new(quick, &qo) < 0) {
		if (!*opt) {
			pw_err("serve", "no engine: optimized tier: %s; quick tier: %s", why, pw_error_last());
			return -1;
		}
		pw_warn("serve", "quick tier unavailable (%s): tiering off, a new policy waits for its optimized compile",
		        pw_error_last());
	}
	if (!*opt && !*quick) {
		pw_err("serve", "engine: %s", why);
		return -1;
	}
	int swept = pw_engine_sweep_tmp(*opt ? *opt : *quick);
	if (swept)
		pw_info("serve", "removed %d compile directories left by killed processes", swept);
	if (!*opt) {
		pw_warn("serve", "optimized tier unavailable (%s): every policy runs on quick code (slower); "
		        "--optimized-engine FILE takes optimized artifacts from the cache", why);
		*opt = *quick;
		*quick = NULL;
	}
	return 0;
}

/* FILE[,FILE...] with no empty name (Kubewarden: clap value_delimiter(',')). */
static bool client_ca_list_ok(const char *list)
{
	for (const char *p = list;; p++) {
		const char *e = strchr(p, ',');
		if (e == p || !*p)
			return false;
		if (!e)
			return true;
		p = e;
	}
}

/*
 * One log line per Kubewarden setting Prewarm accepts without doing what Kubewarden does:
 * OTLP (tracing with --log-fmt otlp, metrics push with --enable-metrics) names the
 * OTEL_EXPORTER_OTLP_* variables seen (names only: their values may hold credentials).
 */
static void log_compat(const serve_cfg *c, bool otlp)
{
	extern char **environ;
	char seen[512] = "";
	size_t n = 0;

	if (otlp || c->enable_metrics) {
		for (char **e = environ; e && *e; e++) {
			const char *eq = strchr(*e, '=');
			if (strncmp(*e, "OTEL_EXPORTER_OTLP_", 19) || !eq || n + (size_t)(eq - *e) + 3 >= sizeof seen)
				continue;
			n += (size_t)snprintf(seen + n, sizeof seen - n, "%s%.*s", n ? ", " : "", (int)(eq - *e), *e);
		}
		pw_warn("serve", "%s%s%s: no OTLP exporter in Prewarm (Debian 12 has no maintained OTLP C library): "
		        "logs are JSON lines on stderr, no traces are exported, metrics stay Prometheus text on "
		        "GET /metrics of the readiness port; OTLP settings seen: %s",
		        otlp ? "--log-fmt otlp" : "", otlp && c->enable_metrics ? " and " : "",
		        c->enable_metrics ? "--enable-metrics" : "", n ? seen : "none");
	}
	if (c->sigstore_trust)
		pw_info("serve", "--sigstore-trust-config %s: accepted, unused (it only serves keyless signature "
		        "verification, Fulcio/Rekor, which Prewarm does not do)", c->sigstore_trust);
	if (c->sigstore_cache)
		pw_debug("serve", "--sigstore-cache-dir %s: accepted, unused (no sigstore data is fetched)", c->sigstore_cache);
	if (c->enable_pprof)
		pw_info("serve", "--enable-pprof: accepted, no /debug/pprof endpoints in Prewarm (profile with perf)");
	if (c->ignore_k8s_failure)
		pw_debug("serve", "--ignore-kubernetes-connection-failure: accepted (a Kubernetes client that cannot be "
		         "configured never fails the start: context-aware calls answer why)");
	if (c->daemon_pid || c->daemon_out || c->daemon_err)
		pw_debug("serve", "--daemon-pid-file/--daemon-stdout-file/--daemon-stderr-file: ignored without --daemon");
}

typedef struct start_arg {
	pw_server *srv;
	int rc;
	char error[1024];
	atomic_bool done;
} start_arg;

static void *start_thread(void *p)
{
	start_arg *a = p;
	a->rc = pw_server_start(a->srv);
	if (a->rc < 0)
		snprintf(a->error, sizeof a->error, "%s", pw_error_last());
	atomic_store(&a->done, true);
	return NULL;
}

/* Runs the startup pipeline in a thread while this one keeps taking signals.
 * 1 ready, 0 start failed (logged), -1 SIGTERM/SIGINT arrived first, 2 SIGTERM/SIGINT
 * arrived as the start ended (ready: stop the normal way). A SIGHUP during the start is
 * kept for once it is ready: the start may have read the policies file before it changed. */
static int start_interruptible(pw_server *srv, const sigset_t *sigs)
{
	start_arg a = { .srv = srv };
	pthread_t t;
	bool hup = false;
	atomic_init(&a.done, false);
	if (pthread_create(&t, NULL, start_thread, &a) != 0) {
		pw_err("serve", "pthread_create failed");
		return 0;
	}
	while (!atomic_load(&a.done)) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			pw_info("serve", "%s received while starting", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			if (!atomic_load(&a.done))
				return -1;
			/* the start had just ended: stop the normal way */
			pthread_join(t, NULL);
			if (a.rc < 0)
				pw_err("serve", "start failed: %s", a.error);
			return a.rc < 0 ? 0 : 2;
		}
		if (sig == SIGHUP && !hup) {
			hup = true;
			pw_info("serve", "SIGHUP received while starting: reloading once ready");
		}
	}
	pthread_join(t, NULL);
	if (a.rc < 0) {
		pw_err("serve", "start failed: %s", a.error);
		return 0;
	}
	if (hup)   /* blocked in every thread: pending until watch_until_stopped takes it */
		kill(getpid(), SIGHUP);
	return 1;
}

/* Settings from the environment, then the command line (which wins). Returns 1 when --help
 * was printed, 0 to go on, <0 on a usage error (already reported). */
static int parse_args(serve_cfg *c, pw_cache_cli_opts *co, int argc, char **argv)
{
	if (from_env(c) < 0)
		return -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf(serve_help, pw_cache_cli_help);
			return 1;
		}
		int r = pw_cache_cli_parse(co, argc, argv, &i);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		r = from_arg(c, argc, argv, &i);
		if (r < 0)
			return -1;
		if (r == 0) {
			fprintf(stderr, "prewarm serve: unknown option '%s' (see prewarm serve --help)\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

/* The settings that make no sense together or are out of range; each error names the flag. */
static int check_cfg(const serve_cfg *c, int *log_level)
{
	if ((*log_level = pw_log_level_parse(c->log_level)) < 0) {
		fprintf(stderr, "prewarm serve: --log-level: \"%s\" is not trace|debug|info|warn|error\n", c->log_level);
		return -1;
	}
	if (strcmp(c->log_fmt, "text") && strcmp(c->log_fmt, "json") && strcmp(c->log_fmt, "otlp")) {
		fprintf(stderr, "prewarm serve: --log-fmt: \"%s\" is not text, json or otlp\n", c->log_fmt);
		return -1;
	}
	if (c->daemon) {
		fprintf(stderr, "prewarm serve: --daemon is not supported: run it in the foreground (a container, systemd)\n");
		return -1;
	}
	if (!c->cert != !c->key) {
		fprintf(stderr, "prewarm serve: HTTPS needs both --cert-file and --key-file\n");
		return -1;
	}
	if (c->client_ca && !c->cert) {
		fprintf(stderr, "prewarm serve: --client-ca-file (mutual TLS) needs --cert-file and --key-file\n");
		return -1;
	}
	if (c->client_ca && !client_ca_list_ok(c->client_ca)) {
		fprintf(stderr, "prewarm serve: --client-ca-file: \"%s\" has an empty file name (FILE[,FILE...])\n",
		        c->client_ca);
		return -1;
	}
	if (c->port > 65535 || c->ready_port > 65535) {
		fprintf(stderr, "prewarm serve: ports must be at most 65535\n");
		return -1;
	}
	return 0;
}

/* Signals are taken synchronously by this thread; every thread created later inherits the
 * mask. */
static void block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static pw_server_opts server_opts(const serve_cfg *c, pw_oci_client *oci, pw_engine *engine, pw_engine *quick,
                                  pw_cache *cache)
{
	pw_server_opts so = {
		.policies_path = c->policies,
		.download_dir = c->download_dir,
		.oci = oci,
		.engine = engine,
		.quick_engine = quick,
		.tierup_jobs = c->tierup_jobs,
		.cache = cache,
		.addr = c->addr,
		.port = c->port,
		.readiness_port = c->ready_port,
		.cert_file = c->cert,
		.key_file = c->key,
		.client_ca_file = c->client_ca,
		.workers = c->workers,
		.policy_timeout = c->policy_timeout,
		.disable_timeout = c->disable_timeout,
		.always_accept_namespace = c->always_ns,
		.continue_on_errors = c->continue_on_errors,
		.max_body = c->max_body,
		.compile_jobs = c->compile_jobs,
		.max_memory = c->compile_memory,
		.instance_memory = c->instance_memory,
	};
	return so;
}

/* Serving: reload on SIGHUP or when policies.yml changes, until SIGTERM or SIGINT. */
static void watch_until_stopped(pw_server *srv, const serve_cfg *c, const sigset_t *sigs)
{
	struct timespec every = pw_timespec_of(c->watch_interval > MIN_WATCH_INTERVAL_S ? c->watch_interval
	                                                                               : MIN_WATCH_INTERVAL_S);
	for (;;) {
		struct timespec ts = every;
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			pw_info("serve", "%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			return;
		}
		if (sig == SIGHUP) {
			pw_info("serve", "SIGHUP received");
			pw_server_reload(srv);
		} else if (!c->no_watch && pw_server_policies_changed(srv)) {
			pw_info("serve", "%s changed", c->policies);
			pw_server_reload(srv);
		}
	}
}

int pw_cmd_serve(int argc, char **argv)
{
	serve_cfg c = {
		.policies = "policies.yml", .addr = "0.0.0.0", .port = 3000, .ready_port = 8081,
		.policy_timeout = 2, .watch_interval = 2, .shutdown_timeout = 30,
		.log_level = "info", .log_fmt = "text",
	};
	pw_cache_cli_opts co;
	pw_cache *cache = NULL;
	pw_engine *engine = NULL, *quick = NULL;
	pw_oci_client *oci = NULL;
	pw_verify_config *verification = NULL;
	pw_host_env *host_env = NULL;
	pw_server *srv = NULL;
	int exit_code = 1, lvl, r;
	sigset_t sigs;

	pw_cache_cli_init(&co);
	if ((r = parse_args(&c, &co, argc, argv)) != 0 || check_cfg(&c, &lvl) < 0) {
		pw_cache_cli_free(&co);
		return r > 0 ? 0 : 2;
	}
	pw_log_configure((pw_log_level)lvl, strcmp(c.log_fmt, "text") ? PW_LOG_JSON : PW_LOG_TEXT);
	if (c.verification && pw_verify_config_load(&verification, c.verification) < 0) {
		pw_err("serve", "--verification-path: %s", pw_error_last());
		pw_cache_cli_free(&co);
		return 1;
	}
	log_compat(&c, !strcmp(c.log_fmt, "otlp"));
	block_signals(&sigs);

	if (open_engines(&c, &engine, &quick) < 0)
		goto out;
	/* the registry tier takes what the controller mounts when not told otherwise */
	co.fallback_credentials = c.docker_config;
	co.sources_path = c.sources;
	if (pw_cache_cli_open(&co, &cache) < 0) {
		pw_err("serve", "cache: %s", pw_error_last());
		goto out;
	}
	if (open_oci(&c, &oci) < 0) {
		pw_err("serve", "%s", pw_error_last());
		goto out;
	}
	pw_host_env_opts eo = { .docker_config_path = c.docker_config, .sources_path = c.sources,
	                        .kubeconfig = c.kubeconfig };
	if (pw_host_env_new(&host_env, &eo) < 0) {
		pw_err("serve", "%s", pw_error_last());
		goto out;
	}
	pw_server_opts so = server_opts(&c, oci, engine, quick, cache);
	so.verification = verification;
	if (verification)
		pw_info("serve", "--verification-path %s: every policy's signatures are verified before it is fetched "
		        "(%zu allOf, %zu anyOf with minimumMatches %u)", c.verification, verification->nall_of,
		        verification->nany_of, verification->minimum_matches);
	so.host_env = host_env;
	pw_info("serve", "prewarm %s, engine %s %.16s%s%.16s, tiering %s, cache %s", PREWARM_VERSION,
	        pw_engine_tier_name(pw_engine_get_tier(engine)), pw_engine_hash(engine),
	        quick ? ", quick " : "", quick ? pw_engine_hash(quick) : "", quick ? "on" : "off",
	        co.no_cache ? "off" : pw_cache_cli_dir(&co) ? pw_cache_cli_dir(&co) : "(none)");
	if (pw_server_new(&srv, &so) < 0) {
		pw_err("serve", "%s", pw_error_last());
		goto out;
	}
	switch (start_interruptible(srv, &sigs)) {
	case 1:
		watch_until_stopped(srv, &c, &sigs);
		break;
	case 2:      /* ready, and SIGTERM came already */
		break;
	case 0:
		goto out;
	default:
		/* SIGTERM before ready: stop now (Kubernetes would otherwise wait for the whole start,
		 * then kill). The pipeline thread may be mid-compile: leave without unwinding it. */
		pw_server_shutdown(srv, 0);
		pw_info("serve", "stopped before ready");
		_exit(0);
	}
	pw_server_shutdown(srv, c.shutdown_timeout);
	pw_info("serve", "stopped");
	exit_code = 0;
out:
	pw_server_free(srv);
	pw_oci_client_free(oci);
	pw_verify_config_free(verification);
	pw_host_env_free(host_env);
	pw_cache_free(cache);
	pw_engine_free(engine);
	pw_engine_free(quick);
	pw_cache_cli_free(&co);
	return exit_code;
}

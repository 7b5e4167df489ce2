/*
 * `prewarm eval`: evaluates one policy on one request and prints what the Policy Server
 * would answer, the policy author's tool (like `kwctl run`).
 *
 * The policy is a wasm module, an artifact Prewarm compiled earlier, or a reference the
 * OCI client can pull (registry://, a bare host/repo:tag, https://, file://). A module goes
 * through the artifact cache (the shared cache options), so a second eval of the same module
 * loads native code instead of compiling. Then: settings are validated (invalid settings
 * are an error, exit 1), the request is evaluated in a fresh instance, and the answer body
 * (AdmissionReview, or {"response": ...} with --raw) is printed on stdout. Exit code 0 when
 * the evaluation ran, whatever the verdict; 1 for failures (named on stderr); 2 for usage.
 *
 * -e / --execution-mode picks Kubewarden's execution mode (kubewarden-wapc|wapc, wasi, opa,
 * gatekeeper) over the module's metadata. For Rego modules, --entrypoint/--input/--data run
 * the raw mode, the equivalent of `opa eval` on the compiled module: the result set is
 * printed exactly as OPA's SDKs return it ([{"result": ...}], [] when undefined), and an
 * evaluation that aborts (opa_abort) exits 1 with the module's message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cache_opts.h"
#include "cli/cli.h"
#include "prewarm/cache.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"
#include "prewarm/policy.h"
#include "prewarm/server.h"
#include "prewarm/util.h"

#define MAX_INPUT (64u << 20)
#define MAX_CAPS 64
#define MAX_RESOURCES 64

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: prewarm eval POLICY --request FILE [options]\n\n"
	        "Evaluates POLICY (a .wasm module, a Prewarm artifact, or a reference such as\n"
	        "registry://host/repo:tag, host/repo:tag, https://..., file:///...) on the admission\n"
	        "request in FILE ('-' for stdin) and prints the answer the Policy Server would give.\n"
	        "Exit code 0 when the evaluation ran (whatever the verdict).\n\n"
	        "       prewarm eval -e opa|gatekeeper MODULE --entrypoint NAME --input FILE [--data FILE]\n"
	        "                          raw Rego evaluation: prints the result set as OPA's SDKs\n"
	        "                          return it ([{\"result\": ...}], [] when undefined)\n\n"
	        "options:\n"
	        "  --request FILE          AdmissionReview JSON (with --raw: {\"request\": ...})\n"
	        "  -e, --execution-mode M  kubewarden-wapc|wapc, wasi, opa, gatekeeper (default: the\n"
	        "                          module's io.kubewarden.metadata; Rego modules need one)\n"
	        "  --entrypoint NAME       raw Rego mode: the entrypoint (e.g. policy/main)\n"
	        "  --input FILE            raw Rego mode: the input JSON ('-' for stdin)\n"
	        "  --data FILE             raw Rego mode: the data JSON (default {})\n"
	        "  --settings FILE|JSON    policy settings: inline JSON, or a JSON/YAML file\n"
	        "  --raw                   validate_raw: answer {\"response\": ...}\n"
	        "  --audit                 like /audit: no monitor/mutation post-processing\n"
	        "  --mode protect|monitor  policyMode (default protect)\n"
	        "  --allowed-to-mutate     allow the policy to mutate (else a mutation is a rejection)\n"
	        "  --message TEXT          custom rejection message\n"
	        "  --timeout SECONDS       evaluation timeout (default 2; 0 = none)\n"
	        "  --host-capability PATTERN  grant host capabilities, as policies.yml hostCapabilities\n"
	        "                          (\"*\", \"oci/*\", \"net/v1/dns_lookup_host\"...; repeatable;\n"
	        "                          default all; the same registry options answer oci/*)\n"
	        "  --sources-path FILE     sources.yml (insecure registries, extra CAs)\n"
	        "  --docker-config-json-path DIR   registry credentials (DIR/config.json)\n"
	        "  --log-level LEVEL       trace|debug|info|warn|error (default warn)\n"
	        "%s", pw_cache_cli_help);
}

/* --settings: inline JSON when it looks like JSON, else a JSON or YAML file. */
static int load_settings(const char *arg, char **out)
{
	json_error_t e;
	const char *p = arg;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p == '{') {
		json_t *j = json_loads(arg, JSON_REJECT_DUPLICATES, &e);
		if (!j)
			return pw_error_set(PW_EINVALID, "--settings: not valid JSON: %s at column %d", e.text, e.column);
		*out = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		return 0;
	}
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(arg, MAX_INPUT, &b);
	if (rc < 0)
		return pw_error_prefix("--settings");
	json_t *j = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &e);
	if (!j) {
		void *y = NULL;
		rc = pw_yaml_to_json(&y, (const char *)b.data, b.len, arg);
		j = y;
	}
	pw_buf_free(&b);
	if (!j)
		return pw_error_prefix("--settings %s", arg);
	if (json_is_null(j)) {
		json_decref(j);
		j = json_object();
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return pw_error_set(PW_EINVALID, "--settings %s: settings must be an object", arg);
	}
	*out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return 0;
}

static int read_input(const char *path, pw_buf *b)
{
	if (strcmp(path, "-") != 0)
		return pw_file_read(path, MAX_INPUT, b);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
		if (b->len + n > MAX_INPUT)
			return pw_error_set(PW_EINVALID, "stdin: request larger than %u MiB", MAX_INPUT >> 20);
		if (pw_buf_append(b, chunk, n) < 0)
			return PW_ENOMEM;
	}
	if (ferror(stdin))
		return pw_error_set_errno(PW_EIO, "read stdin");
	return 0;
}

/* A JSON document from a file ('-' for stdin), as compact JSON text (what OPA's SDKs hand
 * the module: JSON.stringify of the value), NUL-terminated. */
static int read_json_file(const char *opt, const char *path, pw_buf *b)
{
	pw_buf raw = PW_BUF_INIT;
	if (read_input(path, &raw) < 0) {
		pw_buf_free(&raw);
		return pw_error_prefix("%s %s", opt, path);
	}
	json_error_t e;
	json_t *j = json_loadb(raw.data ? (const char *)raw.data : "", raw.len, JSON_DECODE_ANY, &e);
	pw_buf_free(&raw);
	if (!j)
		return pw_error_set(PW_EINVALID, "%s %s: not JSON: %s (line %d)", opt, path, e.text, e.line);
	char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!text || pw_buf_puts(b, text) < 0 || pw_buf_append(b, "", 1) < 0) {
		free(text);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	free(text);
	b->len--;
	return 0;
}

typedef struct eval_args {
	const char *policy, *request, *settings, *message, *sources, *docker_config;
	const char *execution_mode, *entrypoint, *input, *data;   /* -e; the raw Rego mode */
	const char *caps[MAX_CAPS];
	size_t ncaps;
	const char *objects, *kubeconfig;
	pw_policy_resource resources[MAX_RESOURCES];
	char *resource_text[MAX_RESOURCES];
	size_t nresources;
	bool caps_given, raw, audit, monitor, allowed_to_mutate;
	double timeout;
	int log_level;
} eval_args;

/* Fetches a reference that is not a local file into tmpdir; *path gets the file. */
static int fetch_ref(const eval_args *a, const char *tmpdir, char **path)
{
	pw_oci_sources *src = NULL;
	pw_oci_creds *creds = NULL;
	pw_oci_client *cl = NULL;
	int rc = 0;
	if (a->sources && (rc = pw_oci_sources_load(&src, a->sources)) < 0)
		return rc;
	if (a->docker_config) {
		char cfg[4096];
		snprintf(cfg, sizeof cfg, "%s/config.json", a->docker_config);
		if ((rc = pw_oci_creds_new(&creds)) < 0 ||
		    (rc = pw_oci_creds_load_docker_config(creds, cfg)) < 0)
			goto out;
	}
	pw_oci_client_opts co = { .sources = src, .creds = creds };
	if ((rc = pw_oci_client_new(&cl, &co)) < 0)
		goto out;
	if (asprintf(path, "%s/policy.wasm", tmpdir) < 0) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	pw_oci_pulled pulled;
	rc = pw_oci_pull(cl, a->policy, *path, &pulled);
	if (rc == 0)
		pw_info("eval", "pulled %s (%s, %llu bytes)", a->policy, pulled.digest,
		        (unsigned long long)pulled.size);
out:
	pw_oci_client_free(cl);
	pw_oci_creds_free(creds);
	pw_oci_sources_free(src);
	return rc;
}

/* Loads the policy's artifact: from artifact bytes, or module bytes through the cache. */
static int load_artifact(const eval_args *a, pw_cache_cli_opts *co, const pw_buf *bytes,
                         pw_artifact **art)
{
	const pw_imports *imports = pw_policy_host_imports();
	if (!imports)
		return PW_ENOMEM;
	if (bytes->len >= 4 && !memcmp(bytes->data, "\x7f" "ELF", 4))
		return pw_artifact_load(art, bytes->data, bytes->len, NULL, imports);
	if (bytes->len < 4 || memcmp(bytes->data, "\0asm", 4) != 0)
		return pw_error_set(PW_EINVALID, "%s: neither a WebAssembly module nor a Prewarm artifact",
		                    a->policy);
	pw_engine *e = NULL;
	pw_cache *cache = NULL;
	pw_buf so = PW_BUF_INIT;
	int rc;
	if ((rc = pw_engine_new(&e, NULL)) < 0)
		return rc;
	if ((rc = pw_cache_cli_open(co, &cache)) < 0)
		goto out;
	pw_cache_result res;
	rc = pw_cache_get_or_compile(cache, e, bytes->data, bytes->len, imports, NULL, &so, &res);
	if (rc < 0)
		goto out;
	char d[32];
	pw_info("eval", "%s: artifact from %s in %s", a->policy, res.tier_name ? res.tier_name : "?",
	        pw_fmt_duration(res.seconds, d, sizeof d));
	rc = pw_artifact_load(art, so.data, so.len, NULL, imports);
out:
	pw_buf_free(&so);
	pw_cache_free(cache);
	pw_engine_free(e);
	return rc;
}

/* The options that take a value: the Rego and execution-mode ones, then the rest. */
static const char *const valued_options[] = {
	"-e", "--execution-mode", "--entrypoint", "--input", "--data",
	"--request", "--settings", "--mode", "--message", "--timeout", "--host-capability",
	"--sources-path", "--docker-config-json-path", "--log-level", "--allow-context-aware",
	"--kubeconfig", "--context-aware-resource", NULL,
};

static bool takes_value(const char *o)
{
	for (const char *const *p = valued_options; *p; p++)
		if (!strcmp(o, *p))
			return true;
	return false;
}

/* --context-aware-resource APIVERSION/KIND; 0, or 2 (said on stderr). */
static int add_resource(eval_args *a, const char *v)
{
	const char *slash = strrchr(v, '/');
	if (!slash || slash == v || !slash[1] || a->nresources == MAX_RESOURCES) {
		fprintf(stderr, "prewarm eval: --context-aware-resource: '%s' is not APIVERSION/KIND "
		        "(at most %d)\n", v, MAX_RESOURCES);
		return 2;
	}
	char *t = strdup(v);
	if (!t)
		return 2;
	t[slash - v] = '\0';
	a->resource_text[a->nresources] = t;
	a->resources[a->nresources++] = (pw_policy_resource){ t, t + (slash - v) + 1 };
	return 0;
}

/* --host-capability PATTERN; 0, or 2 (said on stderr). */
static int add_capability(eval_args *a, const char *v)
{
	if (a->ncaps == MAX_CAPS) {
		fprintf(stderr, "prewarm eval: more than %d --host-capability\n", MAX_CAPS);
		return 2;
	}
	if (pw_host_capability_pattern_check(v) < 0) {
		fprintf(stderr, "prewarm eval: --host-capability: %s\n", pw_error_last());
		return 2;
	}
	a->caps[a->ncaps++] = v;
	a->caps_given = true;
	return 0;
}

/* Option O (one of valued_options) with its value V; 0, or 2 (said on stderr). */
static int set_option(eval_args *a, const char *o, const char *v)
{
	pw_policy_abi abi;

	if (!strcmp(o, "-e") || !strcmp(o, "--execution-mode")) {
		if (pw_policy_abi_parse(v, &abi) < 0) {
			fprintf(stderr, "prewarm eval: %s: %s\n", o, pw_error_last());
			return 2;
		}
		a->execution_mode = v;
	} else if (!strcmp(o, "--entrypoint")) {
		a->entrypoint = v;
	} else if (!strcmp(o, "--input")) {
		a->input = v;
	} else if (!strcmp(o, "--data")) {
		a->data = v;
	} else if (!strcmp(o, "--request")) {
		a->request = v;
	} else if (!strcmp(o, "--settings")) {
		a->settings = v;
	} else if (!strcmp(o, "--message")) {
		a->message = v;
	} else if (!strcmp(o, "--sources-path")) {
		a->sources = v;
	} else if (!strcmp(o, "--docker-config-json-path")) {
		a->docker_config = v;
	} else if (!strcmp(o, "--allow-context-aware")) {
		a->objects = v;
	} else if (!strcmp(o, "--kubeconfig")) {
		a->kubeconfig = v;
	} else if (!strcmp(o, "--context-aware-resource")) {
		return add_resource(a, v);
	} else if (!strcmp(o, "--mode")) {
		if (!strcmp(v, "monitor")) {
			a->monitor = true;
		} else if (strcmp(v, "protect") != 0) {
			fprintf(stderr, "prewarm eval: --mode must be protect or monitor, not '%s'\n", v);
			return 2;
		}
	} else if (!strcmp(o, "--timeout")) {
		if (pw_parse_duration(v, &a->timeout) < 0 || a->timeout < 0) {
			fprintf(stderr, "prewarm eval: --timeout: bad duration '%s'\n", v);
			return 2;
		}
		if (a->timeout == 0)
			a->timeout = -1;
	} else if (!strcmp(o, "--log-level")) {
		if ((a->log_level = pw_log_level_parse(v)) < 0) {
			fprintf(stderr, "prewarm eval: --log-level: unknown level '%s'\n", v);
			return 2;
		}
	} else {
		return add_capability(a, v);
	}
	return 0;
}

/* The options that exclude or need each other; -1 when they fit, else 2 (said on stderr). */
static int check_args(const eval_args *a)
{
	bool rego_raw = a->entrypoint || a->input || a->data;
	if (rego_raw && a->request) {
		fprintf(stderr, "prewarm eval: --request and the raw Rego options (--entrypoint, --input, "
		        "--data) exclude each other\n");
		return 2;
	}
	if (!a->policy || (!a->request && !rego_raw)) {
		fprintf(stderr, "prewarm eval: %s is required\n\n", !a->policy ? "POLICY" : "--request");
		usage(stderr);
		return 2;
	}
	if (a->objects && a->kubeconfig) {
		fprintf(stderr, "prewarm eval: --allow-context-aware and --kubeconfig exclude each other\n");
		return 2;
	}
	if (a->raw && a->audit) {
		fprintf(stderr, "prewarm eval: --raw and --audit exclude each other\n");
		return 2;
	}
	return -1;
}

/* The command line into A and CO; -1 to go on, else the exit code (usage or error said). */
static int parse_args(eval_args *a, pw_cache_cli_opts *co, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int r = pw_cache_cli_parse(co, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(o, "--raw")) {
			a->raw = true;
		} else if (!strcmp(o, "--audit")) {
			a->audit = true;
		} else if (!strcmp(o, "--allowed-to-mutate")) {
			a->allowed_to_mutate = true;
		} else if (takes_value(o)) {
			const char *v = i + 1 < argc ? argv[++i] : NULL;
			if (!v) {
				fprintf(stderr, "prewarm eval: %s needs a value\n", o);
				return 2;
			}
			if ((r = set_option(a, o, v)) != 0)
				return r;
		} else if (o[0] == '-' && o[1]) {
			fprintf(stderr, "prewarm eval: unknown option '%s'\n", o);
			return 2;
		} else if (!a->policy) {
			a->policy = o;
		} else {
			fprintf(stderr, "prewarm eval: unexpected argument '%s'\n", o);
			return 2;
		}
	}
	return check_args(a);
}

/* kwctl's --allow-context-aware: the kinds the policy's metadata lists in
 * contextAwareResources are granted; the policy is made again with them. */
static int grant_metadata_resources(pw_policy **pol, pw_policy_spec *spec, pw_artifact *art)
{
	const char *meta = pw_policy_metadata(*pol);
	json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
	json_t *list = json_object_get(m, "contextAwareResources");
	size_t n = json_array_size(list), k = 0;
	if (n == 0) {
		pw_warn("eval", "the policy's metadata lists no contextAwareResources: no Kubernetes kind is granted "
		        "(--context-aware-resource grants one)");
		json_decref(m);
		return 0;
	}
	pw_policy_resource *res = calloc(n, sizeof *res);
	if (!res) {
		json_decref(m);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	size_t i;
	json_t *r;
	json_array_foreach(list, i, r) {
		const char *av = json_string_value(json_object_get(r, "apiVersion"));
		const char *kind = json_string_value(json_object_get(r, "kind"));
		if (av && kind) {
			res[k++] = (pw_policy_resource){ av, kind };
			pw_info("eval", "granted Kubernetes %s/%s (policy metadata)", av, kind);
		}
	}
	spec->context_aware = res;
	spec->ncontext_aware = k;
	pw_policy *again = NULL;
	int rc = pw_policy_new(&again, spec, art);
	free(res);
	spec->context_aware = NULL;
	spec->ncontext_aware = 0;
	json_decref(m);
	if (rc < 0)
		return rc;
	pw_policy_free(*pol);
	*pol = again;
	return 0;
}

/* The request, or for the raw Rego mode the input and data, and the settings. */
static int load_inputs(const eval_args *a, char **settings, pw_buf *req, pw_buf *data)
{
	int rc;

	if (a->settings && (rc = load_settings(a->settings, settings)) < 0)
		return rc;
	if (a->request) {
		if ((rc = read_input(a->request, req)) < 0)
			pw_error_prefix("--request %s", a->request);
		return rc;
	}
	if (a->input && (rc = read_json_file("--input", a->input, req)) < 0)
		return rc;
	if (a->data && (rc = read_json_file("--data", a->data, data)) < 0)
		return rc;
	return 0;
}

/* The policy's bytes: a local file (or file://) as it is, anything else pulled into a fresh
 * *tmpdir first (*fetched names the file). */
static int read_policy(const eval_args *a, char **tmpdir, char **fetched, pw_buf *bytes)
{
	const char *path = a->policy;
	size_t plen = strlen(path);
	bool looks_local = !strstr(path, "://") &&
	                   (!strchr(path, '/') || path[0] == '/' || path[0] == '.' ||
	                    (plen > 5 && !strcmp(path + plen - 5, ".wasm")));
	int rc;

	if (looks_local && access(path, F_OK) != 0)
		return pw_error_set_errno(PW_ENOTFOUND, "%s", path);
	if (strncmp(path, "file://", 7) != 0 && access(path, F_OK) != 0) {
		if ((rc = pw_mkdtemp(tmpdir, "prewarm-eval")) < 0 || (rc = fetch_ref(a, *tmpdir, fetched)) < 0)
			return rc;
		path = *fetched;
	} else if (!strncmp(path, "file://", 7)) {
		path += 7;
	}
	return pw_file_read(path, 0, bytes);
}

/* The policy as the Policy Server would make it from the options, with the kinds its
 * metadata lists granted when context-aware access is given without explicit kinds. */
static int make_policy(const eval_args *a, const char *settings, pw_host_env *env, pw_artifact *art,
                       pw_policy **pol)
{
	pw_policy_spec spec = {
		.id = "eval",
		.settings_json = settings,
		.mode = a->monitor ? PW_POLICY_MONITOR : PW_POLICY_PROTECT,
		.allowed_to_mutate = a->allowed_to_mutate,
		.message = a->message,
		.timeout_seconds = a->timeout,
		.host_capabilities = a->caps_given ? a->caps : NULL,
		.nhost_capabilities = a->ncaps,
		.host_env = env,
		.workers = 1,
		.execution_mode = a->execution_mode,
	};
	int rc;

	if (a->nresources) {
		spec.context_aware = a->resources;
		spec.ncontext_aware = a->nresources;
	}
	if ((rc = pw_policy_new(pol, &spec, art)) < 0)
		return rc;
	if (!a->nresources && (a->objects || a->kubeconfig))
		return grant_metadata_resources(pol, &spec, art);
	return 0;
}

/* Prints ANSWER as JSON re-dumped with DUMP_FLAGS (as it is when it does not parse). */
static void print_answer(const char *answer, size_t load_flags, size_t dump_flags)
{
	json_t *j = json_loads(answer, load_flags, NULL);
	char *text = j ? json_dumps(j, dump_flags) : NULL;
	printf("%s\n", text ? text : answer);
	free(text);
	json_decref(j);
	fflush(stdout);
}

/* The raw Rego mode: the result set, compact, as OPA's SDKs return it. */
static int eval_rego_raw(const eval_args *a, pw_policy *pol, const pw_buf *input, const pw_buf *data)
{
	char *answer = NULL;
	int rc = pw_policy_rego_eval(pol, 0, a->entrypoint, a->input ? (const char *)input->data : NULL, input->len,
	                             a->data ? (const char *)data->data : NULL, data->len, &answer);
	if (rc == 0)
		print_answer(answer, JSON_DECODE_ANY, JSON_COMPACT | JSON_ENCODE_ANY);
	free(answer);
	return rc;
}

/* Validates the settings, then evaluates the request; the answer pretty-printed. */
static int eval_request(const eval_args *a, pw_policy *pol, const pw_buf *req)
{
	pw_eval_kind kind = a->raw ? PW_EVAL_VALIDATE_RAW : a->audit ? PW_EVAL_AUDIT : PW_EVAL_VALIDATE;
	pw_eval_result res;
	char *answer = NULL, *msg = NULL;
	int rc;

	if ((rc = pw_policy_validate_settings(pol, 0, &msg)) < 0) {
		if (rc == PW_EINVALID)
			pw_error_set(rc, "%s: settings are not valid: %s", a->policy, msg ? msg : "(no message)");
		goto out;
	}
	if ((rc = pw_policy_evaluate(pol, 0, (const char *)req->data, req->len, kind, &answer, &res)) < 0)
		goto out;
	print_answer(answer, 0, JSON_INDENT(2));
out:
	free(answer);
	free(msg);
	return rc;
}

int pw_cmd_eval(int argc, char **argv)
{
	eval_args a = { .log_level = PW_LOG_WARN };
	pw_cache_cli_opts co;
	pw_cache_cli_init(&co);
	int ex = parse_args(&a, &co, argc, argv);
	if (ex >= 0) {
		pw_cache_cli_free(&co);
		return ex;
	}
	pw_log_configure((pw_log_level)a.log_level, PW_LOG_TEXT);

	char *settings = NULL, *tmpdir = NULL, *fetched = NULL;
	pw_buf bytes = PW_BUF_INIT, req = PW_BUF_INIT, data = PW_BUF_INIT;
	pw_artifact *art = NULL;
	pw_policy *pol = NULL;
	pw_host_env *env = NULL;
	pw_host_env_opts eo = { .docker_config_path = a.docker_config, .sources_path = a.sources,
	                        .kubernetes_objects = a.objects, .kubeconfig = a.kubeconfig };

	if (load_inputs(&a, &settings, &req, &data) < 0 || read_policy(&a, &tmpdir, &fetched, &bytes) < 0 ||
	    load_artifact(&a, &co, &bytes, &art) < 0 || pw_host_env_new(&env, &eo) < 0 ||
	    make_policy(&a, settings, env, art, &pol) < 0)
		goto fail;
	if ((a.request ? eval_request(&a, pol, &req) : eval_rego_raw(&a, pol, &req, &data)) < 0)
		goto fail;
	ex = 0;
	goto out;
fail:
	fprintf(stderr, "prewarm eval: %s\n", pw_error_last()[0] ? pw_error_last() : "failed");
	ex = 1;
out:
	pw_policy_free(pol);
	for (size_t i = 0; i < a.nresources; i++)
		free(a.resource_text[i]);
	pw_host_env_free(env);
	pw_artifact_free(art);
	pw_buf_free(&bytes);
	pw_buf_free(&req);
	pw_buf_free(&data);
	free(settings);
	free(fetched);
	if (tmpdir) {
		pw_rmtree(tmpdir);
		free(tmpdir);
	}
	pw_cache_cli_free(&co);
	return ex;
}

/*
 * Serving a request: a single policy through pw_policy_evaluate, a policy group through its
 * expression (expr.c), shaped as Kubewarden's PolicyGroupEvaluator answers.
 *
 * A group's members are entries of the set (pset.c), each a pw_policy in protect mode that
 * may mutate, so its answer reaches the group untouched. The expression calls a member only
 * when it needs its verdict; each call evaluates the member on the request in the caller's
 * worker slot (a fresh instance, like any evaluation). A member that answers with a patch
 * counts as a rejection ("mutation is not allowed inside of policy group"); a member whose
 * guest failed is a rejection carrying that failure's message; a member that cannot run at
 * all stops the expression: "error evaluating policy group expression: ..." with code 500.
 * A rejected group answers the group message and one cause per member that ran and rejected,
 * in the order of their first call (Kubewarden's order is a HashMap's), without a code; then
 * monitor mode applies on /validate and /validate_raw, not on /audit. Members never produce
 * a patch, warnings or audit annotations for the group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/expr.h"
#include "server/server_int.h"

#define MUTATION_MESSAGE "mutation is not allowed inside of policy group"

typedef struct member_run {
	bool ran, denied;
	char *message;          /* the last run's status.message (NULL: none) */
	size_t order;           /* position of the first call */
} member_run;

typedef struct group_run {
	pw_pset *s;
	const pw_pset_entry *g;
	unsigned worker;
	const char *body;
	size_t len;
	pw_eval_kind kind;
	member_run *m;
	size_t ncalled;
} group_run;

static int call_member(void *arg, size_t i, bool *verdict)
{
	group_run *r = arg;
	pw_pset_entry *me = &r->s->e[r->g->first_member + i];
	member_run *st = &r->m[i];
	char *resp = NULL;
	pw_eval_result res = { 0 };
	int rc;

	if (!me->policy)
		return pw_error_set(PW_ERROR, "error invoking %s: the policy is not loaded", me->conf->id);
	rc = pw_policy_evaluate(me->policy, r->worker, r->body, r->len, r->kind, &resp, &res);
	if (rc == PW_EINVALID)
		return rc;
	if (rc < 0)
		return pw_error_prefix("error invoking %s", me->conf->id);
	json_t *root = json_loads(resp, 0, NULL);
	const char *msg = json_string_value(json_object_get(json_object_get(json_object_get(root, "response"), "status"),
	                                                    "message"));
	if (!st->ran)
		st->order = r->ncalled++;
	st->ran = true;
	st->denied = res.mutated || !res.allowed;
	free(st->message);
	st->message = NULL;
	if (res.mutated)
		msg = MUTATION_MESSAGE;
	if (st->denied && msg && !(st->message = strdup(msg))) {
		json_decref(root);
		free(resp);
		return pw_error_set(PW_ENOMEM, "error invoking %s: out of memory", me->conf->id);
	}
	if (pw_log_enabled(PW_LOG_DEBUG)) {
		char comp[32 + PW_POLICY_ID_MAX];
		snprintf(comp, sizeof comp, "policy:%s", me->conf->id);
		pw_debug(comp, "group member: allowed=%d mutated=%d error=%d", res.allowed, res.mutated, res.error);
	}
	json_decref(root);
	free(resp);
	*verdict = !st->denied;
	return 0;
}

/* The request's uid, checking the body as pw_policy_evaluate does (a group whose expression
 * calls no member must refuse a bad body too). */
static int check_body(const char *body, size_t len, pw_eval_kind kind, json_t **root, const char **uid)
{
	json_error_t je;
	*root = json_loadb(body, len, 0, &je);
	if (!*root)
		return pw_error_set(PW_EINVALID, "request body is not JSON: %s at line %d column %d", je.text, je.line,
		                    je.column);
	json_t *req = json_object_get(*root, "request");
	if (!json_is_object(*root))
		return pw_error_set(PW_EINVALID, "request body is not a JSON object");
	if (!req)
		return pw_error_set(PW_EINVALID, "request body has no \"request\" member");
	json_t *juid = json_object_get(req, "uid");
	if (kind != PW_EVAL_VALIDATE_RAW) {
		if (!json_is_object(req))
			return pw_error_set(PW_EINVALID, "AdmissionReview \"request\" is not an object");
		if (juid && !json_is_string(juid))
			return pw_error_set(PW_EINVALID, "AdmissionReview request.uid is not a string");
	}
	*uid = json_string_value(juid) ? json_string_value(juid) : "";
	return 0;
}

static json_t *causes_of(const group_run *r)
{
	json_t *causes = json_array();
	size_t n = r->g->nmembers;
	for (size_t k = 0; causes && k < r->ncalled; k++)
		for (size_t i = 0; i < n; i++) {
			const member_run *m = &r->m[i];
			if (!m->ran || m->order != k || !m->denied)
				continue;
			char field[32 + PW_POLICY_ID_MAX];
			snprintf(field, sizeof field, "spec.policies.%s", r->s->e[r->g->first_member + i].conf->member_name);
			json_array_append_new(causes, json_pack("{s:n, s:o, s:s}", "reason", "message",
			                                        m->message ? json_string(m->message) : json_null(), "field", field));
		}
	return causes;
}

static int group_evaluate(pw_pset *s, pw_pset_entry *g, unsigned worker, const char *body, size_t len,
                          pw_eval_kind kind, char **response, pw_eval_result *res)
{
	const pw_policy_conf *c = g->conf;
	group_run r = { .s = s, .g = g, .worker = worker, .body = body, .len = len, .kind = kind };
	json_t *root = NULL, *resp = NULL, *out = NULL;
	const char *uid = "";
	bool allowed = false;
	double t0 = pw_now();
	int rc, erc = 0;

	*response = NULL;
	if ((rc = check_body(body, len, kind, &root, &uid)) < 0)
		goto done;
	if (!(r.m = calloc(g->nmembers + 1, sizeof *r.m))) {
		rc = pw_error_set(PW_ENOMEM, "policy group %s: out of memory", c->id);
		goto done;
	}
	erc = pw_expr_eval(c->expr, call_member, &r, &allowed);
	if (erc == PW_EINVALID) {
		rc = erc;
		goto done;
	}
	rc = PW_ENOMEM;
	if (!(resp = json_pack("{s:s, s:b}", "uid", uid, "allowed", erc == 0 && allowed)))
		goto done;
	if (erc < 0) {
		char msg[2048];
		snprintf(msg, sizeof msg, "error evaluating policy group expression: %s", pw_error_last());
		pw_warn("server", "policy group %s: %s", c->id, msg);
		json_object_set_new(resp, "status", json_pack("{s:s, s:i}", "message", msg, "code", 500));
	} else if (!allowed) {
		json_t *causes = causes_of(&r);
		json_t *details = json_object();
		if (causes && json_array_size(causes))
			json_object_set(details, "causes", causes);
		json_decref(causes);
		json_object_set_new(resp, "status", json_pack("{s:s, s:o}", "message", c->message ? c->message : "",
		                                              "details", details ? details : json_object()));
	}
	json_object_set_new(resp, "auditAnnotations", json_null());
	json_object_set_new(resp, "warnings", json_null());
	bool policy_allowed = erc == 0 && allowed;
	if (kind != PW_EVAL_AUDIT && c->mode == PW_POLICY_MONITOR) {
		char comp[32 + PW_POLICY_ID_MAX];
		snprintf(comp, sizeof comp, "policy:%s", c->id);
		pw_info(comp, "policy group evaluation (monitor mode): allowed %s", policy_allowed ? "true" : "false");
		json_object_set_new(resp, "allowed", json_true());
		json_object_del(resp, "status");
	}
	if (res) {
		memset(res, 0, sizeof *res);
		res->allowed = json_is_true(json_object_get(resp, "allowed"));
		res->policy_allowed = policy_allowed;
		res->error = erc < 0 ? erc : 0;
		res->status_code = json_object_get(resp, "status") && erc < 0 ? 500 : 0;
	}
	out = kind == PW_EVAL_VALIDATE_RAW
	    ? json_pack("{s:O}", "response", resp)
	    : json_pack("{s:s, s:s, s:O}", "apiVersion", "admission.k8s.io/v1", "kind", "AdmissionReview", "response", resp);
	if (!out || !(*response = json_dumps(out, JSON_COMPACT)))
		goto done;
	rc = 0;
done:
	if (rc == PW_ENOMEM)
		pw_error_set(PW_ENOMEM, "policy group %s: out of memory shaping the answer", c->id);
	for (size_t i = 0; r.m && i < g->nmembers; i++)
		free(r.m[i].message);
	free(r.m);
	json_decref(out);
	json_decref(resp);
	json_decref(root);
	if (res)
		res->seconds = pw_now() - t0;
	return rc;
}

int pw_pset_evaluate(pw_pset *s, pw_pset_entry *e, unsigned worker, const char *body, size_t len,
                     pw_eval_kind kind, char **response, pw_eval_result *result)
{
	if (!e->group)
		return pw_policy_evaluate(e->policy, worker, body, len, kind, response, result);
	return group_evaluate(s, e, worker, body, len, kind, response, result);
}

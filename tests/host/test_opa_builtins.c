/*
 * Unit tests of the Rego builtins the host implements (src/host/opa_*.c), without wasm:
 * every case of tests/host/opa/builtin_cases.json (the same cases the differential test
 * runs through the OPA ABI against the OPA JavaScript SDK) checked against its expected
 * value or error message prefix, plus what a table cannot say: the builtin list is
 * burrego's under OPA's names, arity checks, time.now_ns fixed within an evaluation,
 * bounded YAML alias expansion, hostile regex and format inputs.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/opa_internal.h"
#include "prewarm/common.h"

static json_t *load_cases(void)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/host/opa/builtin_cases.json",
	         pw_test_env("PREWARM_SOURCE_DIR", "."));
	json_error_t e;
	json_t *cases = json_load_file(path, 0, &e);
	if (!json_is_array(cases))
		fprintf(stderr, "cannot read %s: %s\n", path, e.text);
	return cases;
}

static void test_cases_table(void)
{
	json_t *cases = load_cases();
	CHECK(json_is_array(cases));
	CHECK(json_array_size(cases) > 50);
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *name = json_string_value(json_object_get(c, "b"));
		char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
		char *got = NULL;
		int rc = pw_opa_builtin_call_json(name, args, &got);
		const char *err = json_string_value(json_object_get(c, "error"));
		if (err) {
			CHECK_MSG(rc < 0, "case %zu %s(%s): expected error '%s', got %s", i, name, args, err,
			          got ? got : "undefined");
			CHECK_MSG(!strncmp(pw_error_last(), err, strlen(err)), "case %zu %s(%s): error '%s', expected '%s'",
			          i, name, args, pw_error_last(), err);
		} else {
			CHECK_MSG(rc == 0, "case %zu %s(%s): %s", i, name, args, pw_error_last());
			json_t *want = json_object_get(c, "want");
			json_t *g = got ? json_loads(got, JSON_DECODE_ANY, NULL) : NULL;
			CHECK_MSG(g && json_equal(g, want), "case %zu %s(%s) = %s, expected %s", i, name, args,
			          got ? got : "undefined", json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY));
			json_decref(g);
		}
		free(got);
		free(args);
	}
	json_decref(cases);
}

/* Every builtin burrego implements (crates/burrego/src/builtins/mod.rs), by OPA's name:
 * burrego registers time.parse_rfc3339_ns and time.date as "parse_rfc3339_ns" and "date",
 * names no OPA module uses. */
static void test_burrego_set(void)
{
	static const char *const burrego[] = {
		"trace", "base64url.encode_no_pad", "urlquery.encode", "urlquery.decode",
		"urlquery.encode_object", "urlquery.decode_object", "json.is_valid", "yaml.marshal",
		"yaml.unmarshal", "yaml.is_valid", "hex.encode", "hex.decode", "glob.quote_meta",
		"json.patch", "regex.split", "regex.template_match", "regex.find_n", "semver.is_valid",
		"semver.compare", "sprintf", "time.now_ns", "time.parse_rfc3339_ns", "time.date",
	};
	size_t n;
	const pw_opa_builtin *all = pw_opa_builtins(&n);
	CHECK_INT(n, sizeof burrego / sizeof burrego[0]);
	for (size_t i = 0; i < sizeof burrego / sizeof burrego[0]; i++)
		CHECK_MSG(pw_opa_builtin_find(burrego[i]), "missing builtin %s", burrego[i]);
	for (size_t i = 1; i < n; i++)
		CHECK_MSG(strcmp(all[i - 1].name, all[i].name) < 0, "table not sorted at %s", all[i].name);
	CHECK(pw_opa_builtin_find("crypto.sha256") == NULL);
	CHECK(pw_opa_builtin_find("") == NULL);
}

static void test_arity_and_types(void)
{
	char *out = NULL;
	CHECK(pw_opa_builtin_call_json("hex.encode", "[]", &out) == PW_EINVALID);
	CHECK(strstr(pw_error_last(), "takes 1 arguments"));
	CHECK(pw_opa_builtin_call_json("hex.encode", "[1]", &out) == PW_EINVALID);
	CHECK_STR(pw_error_last(), "hex.encode: operand 1 must be string");
	CHECK(pw_opa_builtin_call_json("sprintf", "[\"%d\", 1]", &out) == PW_EINVALID);
	CHECK(pw_opa_builtin_call_json("nope", "[]", &out) == PW_EINVALID);
	CHECK(pw_opa_builtin_call_json("trace", "not json", &out) == PW_EINVALID);
	CHECK(pw_opa_builtin_call_json("trace", "[1,2,3,4,5]", &out) == PW_EINVALID);
	CHECK(out == NULL);
}

static void test_now_ns_fixed_per_evaluation(void)
{
	pw_opa_bctx ctx = { .log_tag = "test" };
	const pw_opa_builtin *b = pw_opa_builtin_find("time.now_ns");
	CHECK(b);
	json_t *a = NULL, *c = NULL;
	CHECK_OK(pw_opa_builtin_call(b, &ctx, NULL, 0, &a));
	CHECK_OK(pw_opa_builtin_call(b, &ctx, NULL, 0, &c));
	CHECK(json_is_integer(a));
	CHECK(json_integer_value(a) == json_integer_value(c));
	CHECK(json_integer_value(a) > 1600000000LL * 1000000000LL);
	json_decref(a);
	json_decref(c);
}

static void test_yaml_alias_bomb(void)
{
	/* each level doubles: 2^40 values if expanded */
	pw_buf y = PW_BUF_INIT;
	pw_buf_puts(&y, "a0: &a0 [x, x]\n");
	for (int i = 1; i < 40; i++)
		pw_buf_printf(&y, "a%d: &a%d [*a%d, *a%d]\n", i, i, i - 1, i - 1);
	pw_buf_append(&y, "", 1);
	json_t *args = json_pack("[s]", (const char *)y.data);
	char *a = json_dumps(args, JSON_COMPACT);
	char *out = NULL;
	CHECK(pw_opa_builtin_call_json("yaml.unmarshal", a, &out) == PW_EINVALID);
	CHECK(strstr(pw_error_last(), "aliases"));
	free(a);
	json_decref(args);
	pw_buf_free(&y);
}

static void test_hostile_inputs(void)
{
	char *out = NULL;
	/* deep nesting in sprintf's term printer and yaml */
	pw_buf d = PW_BUF_INIT;
	pw_buf_puts(&d, "[\"%v\", [");
	for (int i = 0; i < 2000; i++)
		pw_buf_puts(&d, "[");
	for (int i = 0; i < 2000; i++)
		pw_buf_puts(&d, "]");
	pw_buf_puts(&d, "]]");
	pw_buf_append(&d, "", 1);
	/* jansson refuses nesting past its own limit: either way, a clean error */
	CHECK(pw_opa_builtin_call_json("sprintf", (const char *)d.data, &out) == PW_EINVALID);
	pw_buf_free(&d);
	/* a huge width is bounded */
	CHECK_OK(pw_opa_builtin_call_json("sprintf", "[\"%99999999999d\", [1]]", &out));
	free(out);
	/* regex: a pattern PCRE2 refuses */
	CHECK(pw_opa_builtin_call_json("regex.split", "[\"(\", \"x\"]", &out) == PW_EINVALID);
	CHECK(strstr(pw_error_last(), "error parsing regexp"));
	/* RE2 syntax: named groups and flags are fine */
	CHECK_OK(pw_opa_builtin_call_json("regex.find_n", "[\"(?P<d>[0-9])(?s:.)\", \"1a2b\", -1]", &out));
	CHECK_STR(out, "[\"1a\",\"2b\"]");
	free(out);
	CHECK(pw_opa_builtin_call_json("regex.find_n", "[\"(?<=a)b\", \"ab\", -1]", &out) == PW_EINVALID);
	CHECK(pw_opa_builtin_call_json("regex.find_n", "[\"\\\\Z\", \"ab\", -1]", &out) == PW_EINVALID);
	/* zone names cannot leave the zoneinfo directory */
	CHECK(pw_opa_builtin_call_json("time.date", "[[0, \"../../etc/passwd\"]]", &out) == PW_EINVALID);
	CHECK(pw_opa_builtin_call_json("time.date", "[[0, \"/etc/passwd\"]]", &out) == PW_EINVALID);
	/* a decoded string that is not UTF-8 has no Rego value */
	CHECK(pw_opa_builtin_call_json("hex.decode", "[\"ff\"]", &out) == PW_EINVALID);
	CHECK(pw_opa_builtin_call_json("urlquery.decode", "[\"%ff\"]", &out) == PW_EINVALID);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_cases_table),
		PW_TEST(test_burrego_set),
		PW_TEST(test_arity_and_types),
		PW_TEST(test_now_ns_fixed_per_evaluation),
		PW_TEST(test_yaml_alias_bomb),
		PW_TEST(test_hostile_inputs),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}

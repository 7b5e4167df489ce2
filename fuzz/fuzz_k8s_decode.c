/*
 * Fuzz target: what the Kubernetes client reads from outside (src/k8s): API server answers
 * (watch event lines, list responses, discovery documents, Status bodies) and what a policy
 * sends (label and field selectors, field masks, the host-call requests answered from a file
 * of objects). Input: one selector byte, then the text: 0 watch event (then the object is
 * trimmed with a mask), 1 list, 2 discovery, 3 label selector, 4 field selector, 5 a
 * kubernetes host call "OP\n" + JSON payload against a small file of objects, 7 a file of
 * objects whose kinds become the data documents of context-aware Rego policies
 * (pw_k8s_inventory, both layouts), else Status.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s/k8s_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char OBJECTS[] =
	"apiVersion: v1\nkind: PodList\nitems:\n"
	"- metadata: {name: a, namespace: default, labels: {app: web}}\n  spec: {containers: [{name: c, image: i}]}\n"
	"- metadata: {name: b, namespace: other}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n"
	"---\napiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\n"
	"spec: {user: u, resourceAttributes: {resource: pods, verb: get}}\nstatus: {allowed: true}\n";

static bool allow_all(void *arg, const char *api_version, const char *kind)
{
	return true;
}

static pw_k8s *objects_client(void)
{
	static pw_k8s *k;
	if (k)
		return k;
	char path[] = "/tmp/fuzz-k8s-objects-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	pw_write_all(fd, OBJECTS, strlen(OBJECTS));
	close(fd);
	pw_k8s_new_from_file(&k, path);
	unlink(path);
	return k;
}

/* The text as a file of objects; the inventories of (up to 8 of) the kinds in it. */
static void inventories(const char *text, size_t len)
{
	char path[] = "/tmp/fuzz-k8s-inventory-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return;
	pw_write_all(fd, text, len);
	close(fd);
	pw_k8s *k = NULL;
	if (pw_k8s_new_from_file(&k, path) == 0) {
		const char *res[16];
		size_t n = 0, i;
		json_t *o;
		json_array_foreach(k->objects, i, o) {
			const char *av = json_string_value(json_object_get(o, "apiVersion"));
			const char *kind = json_string_value(json_object_get(o, "kind"));
			if (av && kind && n < 8) {
				res[2 * n] = av;
				res[2 * n + 1] = kind;
				n++;
			}
		}
		for (int gk = 0; gk < 2; gk++) {
			pw_buf out = PW_BUF_INIT;
			pw_k8s_inventory(k, NULL, gk, res, n, &out);
			pw_buf_free(&out);
		}
	}
	pw_error_clear();
	pw_k8s_free(k);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_log_configure(PW_LOG_ERROR, PW_LOG_TEXT);
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	char *z = strndup(text, len);   /* selectors are C strings */
	if (!z)
		return 0;
	static const char masks_json[] = "[\"spec.containers.image\", \"status\", \"a.b.c\"]";
	json_t *mj = json_loads(masks_json, 0, NULL);
	json_t *masks = k8s_masks_tree(mj);
	switch (data[0] % 8) {
	case 0: {
		k8s_event ev;
		if (k8s_decode_event(text, len, &ev) == 0) {
			char *key = NULL;
			if (k8s_object_key(ev.object, &key) == 0)
				free(key);
			k8s_object_trim(ev.object, masks, true);
			k8s_event_free(&ev);
		}
		break;
	}
	case 1: {
		json_t *items = NULL;
		char *rv = NULL, *cont = NULL;
		if (k8s_decode_list(text, len, &items, &rv, &cont) == 0) {
			size_t i;
			json_t *o;
			json_array_foreach(items, i, o)
				k8s_object_trim(o, masks, true);
		}
		json_decref(items);
		free(rv);
		free(cont);
		break;
	}
	case 2: {
		char *plural = NULL;
		bool ns;
		k8s_decode_discovery(text, len, "Pod", &plural, &ns);
		free(plural);
		break;
	}
	case 3:
	case 4: {
		k8s_selector *sel = NULL;
		int rc = data[0] % 8 == 3 ? k8s_label_selector_parse(&sel, z) : k8s_field_selector_parse(&sel, z);
		if (rc == 0) {
			json_t *o = json_pack("{s:{s:s,s:s,s:{s:s}},s:{s:s}}", "metadata", "name", "a", "namespace", "b",
			                      "labels", "app", "web", "status", "phase", "Running");
			(void)k8s_selector_matches(sel, o);
			json_decref(o);
			k8s_selector_free(sel);
		}
		break;
	}
	case 5: {
		const char *nl = memchr(text, '\n', len);
		pw_k8s *k = objects_client();
		if (nl && k) {
			char *op = strndup(text, (size_t)(nl - text));
			pw_buf answer = PW_BUF_INIT;
			if (op)
				pw_k8s_answer(k, NULL, op, (const uint8_t *)nl + 1, len - (size_t)(nl - text) - 1, allow_all, NULL,
				              &answer);
			pw_buf_free(&answer);
			free(op);
		}
		break;
	}
	case 7:
		inventories(text, len);
		break;
	default:
		free(k8s_status_text(text, len));
	}
	json_decref(masks);
	json_decref(mj);
	free(z);
	return 0;
}

/*
 * The kubernetes family of host capabilities: kubernetes/list_resources_by_namespace,
 * list_resources_all, get_resource and can_i, answered by the Kubernetes client of
 * src/k8s (include/prewarm/k8s.h: Kubewarden's request decoding, answers and error texts,
 * the watched cache). This file only connects it to the framework: the environment's client
 * (made once, when the first policy with contextAwareResources is created, or from the file
 * of `prewarm eval --allow-context-aware`) and the calling policy's contextAwareResources as
 * the gate of the list and get calls. docs/kubernetes.md.
 */
#include <stdlib.h>
#include <string.h>

#include "host/hostcap.h"
#include "prewarm/k8s.h"

int pw_hostcap_kubernetes_init(pw_host_env *e, const pw_host_env_opts *o)
{
	pthread_mutex_init(&e->k8s_lock, NULL);
	if (o->kubeconfig && !(e->kubeconfig = strdup(o->kubeconfig)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	if (!o->kubernetes_objects)
		return 0;
	e->k8s_tried = true;
	return pw_k8s_new_from_file(&e->k8s, o->kubernetes_objects);
}

void pw_hostcap_kubernetes_free(pw_host_env *e)
{
	if (!e->k8s_tried && !e->kubeconfig && !e->k8s)
		return;
	pw_k8s_free(e->k8s);
	free(e->k8s_error);
	free(e->kubeconfig);
	pthread_mutex_destroy(&e->k8s_lock);
}

struct pw_k8s *pw_host_env__kubernetes(pw_host_env *e, const char **why)
{
	static const char none[] = "no host capabilities environment";
	*why = none;
	if (!e)
		return NULL;
	pthread_mutex_lock(&e->k8s_lock);
	if (!e->k8s_tried) {
		e->k8s_tried = true;
		pw_k8s_opts ko = { .kubeconfig = e->kubeconfig };
		if (pw_k8s_new(&e->k8s, &ko) < 0) {
			e->k8s_error = strdup(pw_error_last());
			pw_warn("kubernetes", "no Kubernetes client: %s (context-aware calls answer this error)",
			        pw_error_last());
			pw_error_clear();
		}
	}
	pw_k8s *k = e->k8s;
	*why = e->k8s_error ? e->k8s_error : none;
	pthread_mutex_unlock(&e->k8s_lock);
	return k;
}

static bool resource_allowed(void *arg, const char *api_version, const char *kind)
{
	return pw_policy__resource_allowed(arg, api_version, kind);
}

static int kubernetes_call(const pw_hostcap_call *c, pw_buf *answer)
{
	const char *why = NULL;
	pw_k8s *k = pw_host_env__kubernetes(c->env, &why);
	return pw_k8s_answer(k, why, c->op, c->payload, c->len, resource_allowed, (void *)c->policy, answer);
}

const pw_hostcap_op pw_hostcap_kubernetes_ops[] = {
	{ "kubernetes", "list_resources_by_namespace", kubernetes_call },
	{ "kubernetes", "list_resources_all", kubernetes_call },
	{ "kubernetes", "get_resource", kubernetes_call },
	{ "kubernetes", "can_i", kubernetes_call },
	{ NULL, NULL, NULL },
};

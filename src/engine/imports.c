/*
 * Host import tables (pw_imports): the set of C functions a host offers to
 * wasm modules, keyed by (module, name) with a signature string. The engine
 * checks a module's imports against it before compiling and the loader binds
 * an artifact's imports from it. Read-only once built, so shared by threads.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

struct pw_imports {
	pw_host_func *v;
	size_t n, cap;
};

int pw_imports_new(pw_imports **out)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return pw_error_set(PW_ENOMEM, "pw_imports_new: out of memory");
	return 0;
}

void pw_imports_free(pw_imports *im)
{
	if (!im)
		return;
	free(im->v);
	free(im);
}

const pw_host_func *pw_imports_find(const pw_imports *im, const char *module, const char *name)
{
	if (!im)
		return NULL;
	for (size_t i = 0; i < im->n; i++)
		if (!strcmp(im->v[i].module, module) && !strcmp(im->v[i].name, name))
			return &im->v[i];
	return NULL;
}

int pw_imports_add(pw_imports *im, const char *module, const char *name, const char *sig,
                   void (*fn)(void))
{
	if (!im || !module || !name || !sig || !fn)
		return pw_error_set(PW_EINVALID, "pw_imports_add: missing argument for %s.%s",
		                    module ? module : "?", name ? name : "?");
	if (!strchr(sig, ':') || strspn(sig, "iIfF:") != strlen(sig) || strchr(strchr(sig, ':') + 1, ':'))
		return pw_error_set(PW_EINVALID, "pw_imports_add: bad signature \"%s\" for %s.%s", sig, module, name);
	if (strlen(strchr(sig, ':') + 1) > 1)
		return pw_error_set(PW_EUNSUPPORTED, "pw_imports_add: host function %s.%s has more than one result (%s)",
		                    module, name, sig);
	pw_host_func *old = (pw_host_func *)pw_imports_find(im, module, name);
	if (old) {
		*old = (pw_host_func){ module, name, sig, fn };
		return 0;
	}
	if (im->n == im->cap) {
		size_t nc = im->cap ? im->cap * 2 : 32;
		pw_host_func *nv = realloc(im->v, nc * sizeof *nv);
		if (!nv)
			return pw_error_set(PW_ENOMEM, "pw_imports_add: out of memory");
		im->v = nv;
		im->cap = nc;
	}
	im->v[im->n++] = (pw_host_func){ module, name, sig, fn };
	return 0;
}

int pw_imports_add_all(pw_imports *im, const pw_host_func *funcs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = pw_imports_add(im, funcs[i].module, funcs[i].name, funcs[i].sig, funcs[i].fn);
		if (rc)
			return rc;
	}
	return 0;
}

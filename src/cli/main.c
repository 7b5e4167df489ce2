/*
 * The `prewarm` binary: one subcommand per file (src/cli/cmd_<name>.c), each an
 * `int pw_cmd_<name>(int argc, char **argv)` returning the process exit code,
 * with argv[0] the subcommand name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "prewarm/common.h"

typedef struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{ "serve", pw_cmd_serve, "run the admission Policy Server (Kubewarden policies.yml)" },
	{ "eval", pw_cmd_eval, "evaluate one policy on one admission request (like kwctl run)" },
	{ "run", pw_cmd_run, "run a WASI command module (_start) with native speed" },
	{ "compile", pw_cmd_compile, "compile a module into a native artifact (or into the cache)" },
	{ "inspect", pw_cmd_inspect, "show a module's imports, exports, features and ABI" },
	{ "engine", pw_cmd_engine, "print the engine description and its compatibility hash" },
	{ "cache", pw_cmd_cache, "manage the artifact cache: ls, stats, verify, gc, rm, push, pull, warm" },
	{ "pull", pw_cmd_pull, "download a policy from an OCI registry (or https/file)" },
	{ "push", pw_cmd_push, "publish a policy module to an OCI registry" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: prewarm <command> [options]\n\n"
	           "Prewarm is a Kubernetes admission Policy Server for Kubewarden policies that\n"
	           "compiles each WebAssembly module to native code once per (module, engine) and\n"
	           "caches the result locally and in an OCI registry, so restarts are near-instant.\n\n"
	           "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'prewarm <command> --help' explains each command. 'prewarm --version' prints the version.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("prewarm %s\n", PREWARM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "prewarm: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}

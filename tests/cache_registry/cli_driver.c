/*
 * Runs the registry-facing `prewarm cache` subcommands of src/cli/cmd_cache_warm.c
 * (push, pull, ls --registry, warm) directly, so their tests do not depend on how
 * cmd_cache.c dispatches them:  cache_registry_cli push|pull|ls|warm ARGS...
 */
#include <stdio.h>
#include <string.h>

int pw_cmd_cache_warm(int argc, char **argv);
int pw_cmd_cache_push(int argc, char **argv);
int pw_cmd_cache_pull(int argc, char **argv);
int pw_cmd_cache_ls_registry(int argc, char **argv);

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: cache_registry_cli push|pull|ls|warm ARGS...\n");
		return 2;
	}
	if (!strcmp(argv[1], "push"))
		return pw_cmd_cache_push(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pull"))
		return pw_cmd_cache_pull(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ls"))
		return pw_cmd_cache_ls_registry(argc - 1, argv + 1);
	if (!strcmp(argv[1], "warm"))
		return pw_cmd_cache_warm(argc - 1, argv + 1);
	fprintf(stderr, "cache_registry_cli: unknown command %s\n", argv[1]);
	return 2;
}

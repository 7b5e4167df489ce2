/*
 * Subcommands of the prewarm binary and the small helpers they share.
 * Each pw_cmd_* gets argv[0] = its own name and returns the exit code.
 * Exit codes: 0 ok, 1 failure (the message on stderr names what), 2 usage error.
 */
#ifndef PW_CLI_H
#define PW_CLI_H

int pw_cmd_serve(int argc, char **argv);
int pw_cmd_eval(int argc, char **argv);
int pw_cmd_run(int argc, char **argv);
int pw_cmd_compile(int argc, char **argv);
int pw_cmd_inspect(int argc, char **argv);
int pw_cmd_engine(int argc, char **argv);
int pw_cmd_cache(int argc, char **argv);
int pw_cmd_pull(int argc, char **argv);
int pw_cmd_push(int argc, char **argv);
/* `prewarm cache` subcommands that use the registry tier (cmd_cache_warm.c); argv[0] is the
 * subcommand. */
int pw_cmd_cache_warm(int argc, char **argv);
int pw_cmd_cache_push(int argc, char **argv);
int pw_cmd_cache_pull(int argc, char **argv);
int pw_cmd_cache_ls_registry(int argc, char **argv);

/* --timeout ('t') and --log-level ('l') of pull and push: 1 handled, 0 not one of them,
 * -1 bad value (message printed, exit 2). */
int pw_cli_oci_common_opt(const char *cmd, int ch, const char *arg, double *timeout);

#endif

/*
 * Subcommands of the prewarm binary and the small helpers they share.
 * Each pw_cmd_* gets argv[0] = its own name and returns the exit code.
 * Exit codes: 0 ok, 1 failure (the message on stderr names what), 2 usage error.
 */
#ifndef PW_CLI_H
#define PW_CLI_H

/* Weak so the binary links while a subcommand is being written; main() reports a missing one. */
#define PW_CMD(name) __attribute__((weak)) int pw_cmd_##name(int argc, char **argv)
PW_CMD(serve);
PW_CMD(eval);
PW_CMD(run);
PW_CMD(compile);
PW_CMD(inspect);
PW_CMD(engine);
PW_CMD(cache);
PW_CMD(pull);
PW_CMD(push);
#undef PW_CMD

/* --timeout ('t') and --log-level ('l') of pull and push: 1 handled, 0 not one of them,
 * -1 bad value (message printed, exit 2). */
int pw_cli_oci_common_opt(const char *cmd, int ch, const char *arg, double *timeout);

#endif

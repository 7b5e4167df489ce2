/*
 * The options `prewarm pull` and `prewarm push` share (--timeout, --log-level), parsed in
 * one place so both commands accept and report them the same way.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "prewarm/common.h"
#include "prewarm/util.h"

int pw_cli_oci_common_opt(const char *cmd, int ch, const char *arg, double *timeout)
{
	if (ch == 't') {
		if (pw_parse_duration(arg, timeout) < 0 || *timeout <= 0) {
			fprintf(stderr, "prewarm %s: invalid --timeout '%s'\n", cmd, arg);
			return -1;
		}
		return 1;
	}
	if (ch == 'l') {
		int lv = pw_log_level_parse(arg);
		if (lv < 0) {
			fprintf(stderr, "prewarm %s: invalid --log-level '%s'\n", cmd, arg);
			return -1;
		}
		pw_log_configure((pw_log_level)lv, PW_LOG_TEXT);
		return 1;
	}
	return 0;
}

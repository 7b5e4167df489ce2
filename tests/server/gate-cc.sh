#!/bin/sh
# A real gcc behind a gate, for tests/server/serve_tiering.sh: a compile waits until the file
# $PREWARM_GATE exists, then runs gcc; the engine's probes (--version, -dumpmachine) answer at
# once. Each compile's PID is appended to $PREWARM_GATE.pids (exec keeps it for gcc).
case "$1" in
--version|-dumpmachine|-v) exec gcc "$@" ;;
esac
echo $$ >>"$PREWARM_GATE.pids"
while [ ! -e "$PREWARM_GATE" ]; do sleep 0.1; done
exec gcc "$@"

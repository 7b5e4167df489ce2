#!/bin/bash
# `prewarm run` of WASI programs through the real binary: C programs built with
# wasi-libc (tests/fixtures/c/wasi_*.c) compiled once with `prewarm compile` and
# run as artifacts; args and environ exactly as given; stdin to stdout byte for
# byte; the program's exit code (return and proc_exit from deep calls); clocks,
# random, sleep, fdstat, no preopens, ENOSYS/EBADF for unsupported calls, EFAULT
# for bad pointers (all checked inside wasi_misc); wasi_unstable; memory limits
# (the module's max and --max-memory); --timeout; bad files and bad usage.
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-run-wasi.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for p in wasi_args wasi_echo wasi_misc; do
	"$BIN" compile -q "$FIX/$p.wasm" -o "$T/$p.so" || { echo "FAIL: compile $p"; exit 1; }
done

# --- args and environ: exactly what was given, nothing inherited ---
FOO_FROM_HOST=leak "$BIN" run --env A=1 --env "B=two words" --env EMPTY= "$T/wasi_args.so" x "y z" "" > "$T/out"
rc=$?
[[ $rc == 0 ]] || bad "wasi_args exit $rc"
printf '%s\n' 'argc=4' 'argv[0]=wasi_args.so' 'argv[1]=x' 'argv[2]=y z' 'argv[3]=' \
	'env: A=1' 'env: B=two words' 'env: EMPTY=' > "$T/want"
diff -u "$T/want" "$T/out" || bad "wasi_args output differs"

# --env K passes K from prewarm's environment; unset K passes nothing
FROM_HOST=yes "$BIN" run --env FROM_HOST --env NOT_SET_ANYWHERE "$T/wasi_args.so" > "$T/out"
grep -qx 'env: FROM_HOST=yes' "$T/out" || bad "--env K did not pass K: $(cat "$T/out")"
grep -q 'NOT_SET_ANYWHERE' "$T/out" && bad "--env of an unset variable passed something"

# exit codes: main's return value
for code in 0 1 3 42 255; do
	"$BIN" run --env EXIT_CODE=$code "$T/wasi_args.so" > /dev/null
	rc=$?
	[[ $rc == "$code" ]] || bad "EXIT_CODE=$code gave exit $rc"
done

# options after the module belong to the program
"$BIN" run "$T/wasi_args.so" --env X=1 --help > "$T/out"
grep -qxF 'argv[1]=--env' "$T/out" && grep -qxF 'argv[3]=--help' "$T/out" || bad "program args parsed as options: $(cat "$T/out")"

# the .wasm itself (compiled on the fly) behaves the same as the artifact
"$BIN" run --env EXIT_CODE=9 "$FIX/wasi_args.wasm" a > "$T/out"
rc=$?
[[ $rc == 9 ]] || bad "wasi_args.wasm exit $rc, expected 9"
grep -qxF 'argv[0]=wasi_args.wasm' "$T/out" && grep -qxF 'argv[1]=a' "$T/out" || bad "wasi_args.wasm output: $(cat "$T/out")"

# --- stdin -> stdout, binary safe ---
head -c 300000 /dev/urandom > "$T/in.bin"
"$BIN" run "$T/wasi_echo.so" check-count < "$T/in.bin" > "$T/out.bin" 2> "$T/err"
rc=$?
[[ $rc == 0 ]] || bad "wasi_echo exit $rc: $(cat "$T/err")"
cmp -s "$T/in.bin" "$T/out.bin" || bad "wasi_echo output differs from its input"
grep -qx 'echoed 300000 bytes' "$T/err" || bad "wasi_echo stderr: $(cat "$T/err")"
"$BIN" run "$T/wasi_echo.so" check-count < /dev/null > "$T/out.bin" 2>/dev/null
rc=$?
[[ $rc == 6 && ! -s "$T/out.bin" ]] || bad "wasi_echo with empty stdin: exit $rc"
# a reader that goes away: the program sees EPIPE, prewarm is not killed by SIGPIPE
head -c 3000000 /dev/zero | "$BIN" run "$T/wasi_echo.so" 2>/dev/null | head -c 10 > /dev/null
rc=${PIPESTATUS[1]}
[[ $rc != 141 && $rc -lt 128 ]] || bad "prewarm died of a signal on a closed pipe (status $rc)"

# --- clocks, random, sleep, fdstat, preopens, ENOSYS/EBADF ---
"$BIN" run "$T/wasi_misc.so" > "$T/out" 2>&1
rc=$?
[[ $rc == 0 ]] || bad "wasi_misc exit $rc: $(grep FAIL "$T/out")"
[[ $(grep -c '^ok ' "$T/out") -ge 16 ]] || bad "wasi_misc ran too few checks: $(cat "$T/out")"
grep -qx 'failures=0' "$T/out" || bad "wasi_misc: $(cat "$T/out")"

# proc_exit from 20 frames deep
for code in 0 7 200; do
	"$BIN" run "$T/wasi_misc.so" exit $code > "$T/out"
	rc=$?
	[[ $rc == "$code" ]] || bad "proc_exit($code) gave exit $rc"
	grep -q unreachable "$T/out" && bad "code after proc_exit ran"
done

# bad pointers given to fd_write / random_get / clock_time_get: EFAULT, no crash
"$BIN" run "$T/wasi_misc.so" efault > "$T/out" 2>&1
rc=$?
[[ $rc == 0 ]] || bad "efault checks: exit $rc: $(cat "$T/out")"
[[ $(grep -c '^ok efault' "$T/out") == 6 ]] || bad "efault checks: $(cat "$T/out")"

# --- the old module name ---
"$BIN" run "$FIX/wasm_unstable.wasm" > "$T/out"
rc=$?
[[ $rc == 5 ]] || bad "wasi_unstable program exit $rc, expected 5"
grep -qx 'unstable ok' "$T/out" || bad "wasi_unstable output: $(cat "$T/out")"

# --- memory limits: the module's max (40 pages) and --max-memory ---
"$BIN" run "$FIX/wasm_grow.wasm"; rc=$?
[[ $rc == 40 ]] || bad "memory grew to $rc pages, module max is 40"
"$BIN" run --max-memory 1MiB "$FIX/wasm_grow.wasm"; rc=$?
[[ $rc == 16 ]] || bad "--max-memory 1MiB: memory grew to $rc pages, expected 16"
"$BIN" run --max-memory=128KiB "$FIX/wasm_grow.wasm"; rc=$?
[[ $rc == 2 ]] || bad "--max-memory=128KiB: memory grew to $rc pages, expected 2"

# --- --timeout stops an endless loop ---
"$BIN" run --timeout 0.5 "$FIX/wasm_loop.wasm" 2> "$T/err"
rc=$?
[[ $rc == 124 ]] || bad "--timeout: exit $rc, expected 124"
grep -q 'timeout' "$T/err" || bad "--timeout message: $(cat "$T/err")"

# --timeout also stops a program blocked in a host call: a long sleep (poll_oneoff)
# and a read from a stdin that never delivers
"$BIN" run --timeout 0.5 "$T/wasi_misc.so" sleep 600 > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 124 ]] || bad "--timeout during a sleep: exit $rc, expected 124 ($(cat "$T/err"))"
grep -q woke "$T/out" && bad "--timeout: the sleeper woke up"
"$BIN" run "$T/wasi_misc.so" sleep 0 > "$T/out"
rc=$?
[[ $rc == 0 ]] && grep -qx woke "$T/out" || bad "sleep 0: exit $rc"
mkfifo "$T/fifo"
sleep 600 > "$T/fifo" &
writer=$!
"$BIN" run --timeout 0.5 "$T/wasi_echo.so" < "$T/fifo" > /dev/null 2>&1
rc=$?
kill $writer 2>/dev/null; wait $writer 2>/dev/null
[[ $rc == 124 ]] || bad "--timeout during a blocked read: exit $rc, expected 124"

# --- bad files: exit 1 with the reason; bad usage: exit 2 ---
expect_fail() {  # CODE MESSAGE ARGS...
	local code=$1 msg=$2; shift 2
	"$BIN" run "$@" > /dev/null 2> "$T/err"
	local rc=$?
	[[ $rc == "$code" ]] || bad "run $*: exit $rc, expected $code ($(cat "$T/err"))"
	grep -qF -- "$msg" "$T/err" || bad "run $*: message lacks '$msg': $(cat "$T/err")"
}
printf 'hello world' > "$T/text.wasm"
printf '\0asm\1\0\0\0\1\5' > "$T/trunc.wasm"
printf '\0asm\r\0\1\0' > "$T/component.wasm"
head -c 200 "$T/wasi_args.so" > "$T/trunc.so"
expect_fail 1 "No such file" "$T/missing.wasm"
expect_fail 1 "bad magic" "$T/text.wasm"
expect_fail 1 "offset" "$T/trunc.wasm"
expect_fail 1 "component-model" "$T/component.wasm"
expect_fail 1 "prewarm run" "$T/trunc.so"
expect_fail 1 "no exported _start" "$FIX/wasm_feat_bulk.wasm"
expect_fail 1 "env." "$FIX/wasm_mvp.wasm"   # imports the host does not provide, named
expect_fail 2 "no module given"
expect_fail 2 "unknown option" --bogus "$FIX/wasm_loop.wasm"
expect_fail 2 "needs a value" --env
expect_fail 2 "--max-memory" --max-memory lots "$FIX/wasm_loop.wasm"
expect_fail 2 "--timeout" --timeout -3 "$FIX/wasm_loop.wasm"
expect_fail 2 "empty variable name" --env =x "$FIX/wasm_loop.wasm"
"$BIN" run --help | grep -q 'usage: prewarm run' || bad "run --help"

exit $fail

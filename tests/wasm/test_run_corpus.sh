#!/bin/bash
# Real third-party WASI programs from PREWARM_CORPUS, each compiled once with
# `prewarm compile` and run as an artifact with `prewarm run`:
#  - wasm3's brotli (C, wasi_unstable): compress stdin to stdout and back,
#    byte-identical round trip (and the host's brotli, when installed, agrees);
#  - Sightglass tinygo-json (TinyGo) and rust-json (Rust std): each reads its
#    input file (tinygo-json.input / default.input: a JSON array of users, the
#    benchmark's schema; Sightglass's own inputs are not in the corpus, so
#    tests/wasm/data/sightglass_users.json, 3 users, written compactly in the
#    programs' own field order) from the current directory through a read-only
#    preopen (`--dir DIR::.`), parses it, serializes it back and prints
#    "processed 3 users" and "serialized size: N bytes" on stderr, N being the
#    input's own size; exit 0. A broken input gives the programs' own errors
#    (Go: exit 1; Rust: panic = abort = trap, exit 134). Without --dir (the
#    default: no file system) they find no input: Go exits 1 with its message,
#    Rust panics with its message and traps (exit 134, "trap: unreachable").
#  - Sightglass pulldown-cmark (Rust): renders default.input.md (a small Markdown
#    document written here) from a read-only preopen to exact HTML on stderr.
# Big compiles (a minute or more each on this machine, even at -O0, which is enough to
# check behaviour): once per module, labelled no-asan.
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
C=${PREWARM_CORPUS:-}
if [[ -z $C || ! -d $C ]]; then
	echo "skip: PREWARM_CORPUS is not set (folder of third-party .wasm modules)"
	exit 77
fi
BR=$C/wasm3_wasm3__brotli.wasm
TG=$C/bytecodealliance_sightglass__tinygo_json.wasm
RJ=$C/bytecodealliance_sightglass__rust_json.wasm
CM=$C/bytecodealliance_sightglass__pulldown_cmark.wasm
for f in "$BR" "$TG" "$RJ" "$CM"; do
	[[ -f $f ]] || { echo "skip: $f is missing from PREWARM_CORPUS"; exit 77; }
done
USERS=${PREWARM_SOURCE_DIR:?PREWARM_SOURCE_DIR not set}/tests/wasm/data/sightglass_users.json
[[ -f $USERS ]] || { echo "FAIL: $USERS is missing"; exit 1; }
NUSERS=3
USIZE=$(stat -c %s "$USERS")
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-run-corpus.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# --- brotli (C): a real round trip through stdin/stdout ---
nice "$BIN" compile --opt -O0 "$BR" -o "$T/brotli.so" || { echo "FAIL: compile brotli"; exit 1; }
"$BIN" run "$T/brotli.so" --version > "$T/out" 2>&1
rc=$?
[[ $rc == 0 ]] || bad "brotli --version exit $rc: $(cat "$T/out")"
grep -q '^brotli [0-9]' "$T/out" || bad "brotli --version: $(cat "$T/out")"
{ for i in $(seq 1 3000); do echo "line $i of a compressible policy document"; done; head -c 50000 /dev/urandom; } > "$T/in"
"$BIN" run "$T/brotli.so" -c -q 5 < "$T/in" > "$T/in.br"
rc=$?
[[ $rc == 0 ]] || bad "brotli compress exit $rc"
[[ $(stat -c %s "$T/in.br") -lt $(stat -c %s "$T/in") ]] || bad "brotli output is not smaller"
"$BIN" run "$T/brotli.so" -d -c < "$T/in.br" > "$T/out"
rc=$?
[[ $rc == 0 ]] || bad "brotli decompress exit $rc"
cmp -s "$T/in" "$T/out" || bad "brotli round trip differs"
if command -v brotli > /dev/null; then
	brotli -d -c < "$T/in.br" | cmp -s - "$T/in" || bad "host brotli cannot decode prewarm's output"
fi
printf 'garbage, not brotli' | "$BIN" run "$T/brotli.so" -d -c > /dev/null 2> "$T/err"
rc=$?
[[ $rc != 0 && $rc -lt 128 ]] || bad "brotli -d of garbage: exit $rc (expected its own error code)"

# --- TinyGo (imports bench.start/bench.end: compile without the policy import check) ---
nice "$BIN" compile --opt -O0 --no-import-check "$TG" -o "$T/tinygo.so" || { echo "FAIL: compile tinygo_json"; exit 1; }
"$BIN" run "$T/tinygo.so" > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 1 ]] || bad "tinygo_json exit $rc, expected 1: $(cat "$T/err")"
grep -qF 'Error reading input: open tinygo-json.input' "$T/err" || bad "tinygo_json stderr: $(cat "$T/err")"
# with its input in a read-only preopen: the real benchmark run
mkdir -p "$T/tg-in" "$T/elsewhere"
cp "$USERS" "$T/tg-in/tinygo-json.input"
(cd "$T/elsewhere" && "$BIN" run --dir "$T/tg-in::." "$T/tinygo.so") > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 0 ]] || bad "tinygo_json with --dir: exit $rc, expected 0: $(cat "$T/err")"
printf '[tinygo-json] processed %d users\n[tinygo-json] serialized size: %d bytes\n' $NUSERS "$USIZE" > "$T/want"
diff -u "$T/want" "$T/err" || bad "tinygo_json with --dir: stderr differs"
[[ ! -s $T/out ]] || bad "tinygo_json printed on stdout: $(cat "$T/out")"
[[ $(ls "$T/tg-in") == tinygo-json.input ]] && cmp -s "$USERS" "$T/tg-in/tinygo-json.input" ||
	bad "tinygo_json changed its input directory"
# a broken input: Go's own error
printf '[{"id": 1, "username": ' > "$T/tg-in/tinygo-json.input"
(cd "$T/tg-in" && "$BIN" run --dir . "$T/tinygo.so") > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 1 ]] || bad "tinygo_json on broken JSON: exit $rc, expected 1: $(cat "$T/err")"
grep -qF 'Error parsing JSON: unexpected end of JSON input' "$T/err" || bad "tinygo_json on broken JSON: $(cat "$T/err")"

# --- Rust std ---
nice "$BIN" compile --opt -O0 --no-import-check "$RJ" -o "$T/rust.so" || { echo "FAIL: compile rust_json"; exit 1; }
"$BIN" run "$T/rust.so" > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 134 ]] || bad "rust_json exit $rc, expected 134 (panic = abort = trap): $(cat "$T/err")"
grep -qF "thread 'main' panicked" "$T/err" || bad "rust_json: no Rust panic message: $(cat "$T/err")"
grep -qF 'unable to read default.input' "$T/err" || bad "rust_json stderr: $(cat "$T/err")"
grep -qx 'trap: unreachable' "$T/err" || bad "rust_json: no 'trap: unreachable': $(cat "$T/err")"
# with its input in a read-only preopen
mkdir -p "$T/rj-in"
cp "$USERS" "$T/rj-in/default.input"
(cd "$T/rj-in" && "$BIN" run --dir . "$T/rust.so") > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 0 ]] || bad "rust_json with --dir: exit $rc, expected 0: $(cat "$T/err")"
printf '[rust-json] processed %d users\n[rust-json] serialized size: %d bytes\n' $NUSERS "$USIZE" > "$T/want"
diff -u "$T/want" "$T/err" || bad "rust_json with --dir: stderr differs"
[[ $(ls "$T/rj-in") == default.input ]] && cmp -s "$USERS" "$T/rj-in/default.input" ||
	bad "rust_json changed its input directory"
# a broken input: serde's error, then the panic (abort = trap)
printf '[{"id": "one"}]' > "$T/rj-in/default.input"
(cd "$T/rj-in" && "$BIN" run --dir . "$T/rust.so") > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 134 ]] || bad "rust_json on bad JSON: exit $rc, expected 134: $(cat "$T/err")"
grep -qF 'failed to parse JSON' "$T/err" || bad "rust_json on bad JSON: $(cat "$T/err")"

# --- Rust pulldown-cmark: Markdown in a read-only preopen -> HTML ---
nice "$BIN" compile --opt -O0 --no-import-check "$CM" -o "$T/cmark.so" || { echo "FAIL: compile pulldown_cmark"; exit 1; }
mkdir -p "$T/md"
printf '# Title\n\nSome *emphasis* and a [link](https://example.com).\n\n- one\n- two\n' > "$T/md/default.input.md"
(cd "$T/md" && "$BIN" run --dir . "$T/cmark.so") > "$T/out" 2> "$T/err"
rc=$?
[[ $rc == 0 ]] || bad "pulldown_cmark with --dir: exit $rc: $(cat "$T/err")"
printf '%s\n' '<h1>Title</h1>' '<p>Some <em>emphasis</em> and a <a href="https://example.com">link</a>.</p>' \
	'<ul>' '<li>one</li>' '<li>two</li>' '</ul>' '' > "$T/want"   # eprintln! adds a newline
diff -u "$T/want" "$T/err" || bad "pulldown_cmark: HTML differs"

exit $fail

#!/bin/bash
# `prewarm run --dir`: read-only preopened directories, through the real binary
# and a C program built with wasi-libc (tests/fixtures/c/wasi_fs.c), compiled
# once. A real directory tree is built in a temp dir, with a secret file beside
# it and symlinks that stay inside or lead out. Checked: preopen names and fds,
# listing (opendir/readdir, and raw fd_readdir with every small buffer size and
# its cookies), reading (cat, seek, pread, tell), stat/lstat/readlink; every
# escape (`..`, absolute paths, symlinks out, both with openat2 and with the
# component walk forced by PREWARM_WASI_NO_OPENAT2) is ENOTCAPABLE; every write
# is EROFS (or EBADF for write(2) on a read-only fd) and the tree is unchanged
# afterwards; EINVAL/EFAULT for bad path arguments; the bounded fd table
# (EMFILE, then reusable); no --dir = no file system; bad --dir values.
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-run-fs.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

"$BIN" compile -q "$FIX/wasi_fs.wasm" -o "$T/fs.so" || { echo "FAIL: compile wasi_fs"; exit 1; }

R=$T/root
mkdir -p "$R/sub" "$R/emptydir"
printf 'hello, preopened world\n' > "$R/hello.txt"
printf 'inner\n' > "$R/sub/inner.txt"
printf 'secret\n' > "$T/secret.txt"
ln -s hello.txt "$R/link_in"
ln -s ../secret.txt "$R/link_up"
ln -s "$T/secret.txt" "$R/link_abs"
ln -s sub "$R/link_dir"
ln -s / "$R/link_root"
snapshot() { (cd "$R" && find . -printf '%p %y %s %l\n' | sort && cat hello.txt sub/inner.txt) | sha256sum; }
before=$(snapshot)

# run ARGS...: the fixture with the tree preopened as "." (from inside the tree)
run() { (cd "$R" && "$BIN" run --dir . "$T/fs.so" "$@"); }
# expect NAME WANT ARGS...: the output must be exactly WANT
expect() {
	local name=$1 want=$2; shift 2
	local got
	got=$(run "$@" 2>&1)
	[[ $got == "$want" ]] || bad "$name: got '$got', expected '$want'"
}

# --- preopens: names, order, fds ---
got=$("$BIN" run --dir "$R" --dir "$R/sub::/data" --dir "$R::." "$T/fs.so" prestat)
want="preopen fd=3 name=$R
preopen fd=4 name=/data
preopen fd=5 name=."
[[ $got == "$want" ]] || bad "prestat: got '$got'"
[[ -z $("$BIN" run "$T/fs.so" prestat) ]] || bad "preopens without --dir"

# --- listing ---
expect ls ". d
.. d
emptydir d
hello.txt f
link_abs l
link_dir l
link_in l
link_root l
link_up l
sub d" ls .
expect ls-sub ". d
.. d
inner.txt f" ls sub
expect ls-empty ". d
.. d" ls emptydir
expect ls-file "opendir hello.txt: ENOTDIR" ls hello.txt
got=$(run readdir-small .)
[[ $got == "readdir entries=10 failures=0" ]] || bad "readdir-small: $got"

# --- reading ---
expect cat "hello, preopened world" cat hello.txt
expect cat-sub "inner" cat sub/inner.txt
expect cat-dotdot-inside "inner" cat sub/../sub/./inner.txt
expect cat-link-in "hello, preopened world" cat link_in
expect cat-link-dir "inner" cat link_dir/inner.txt
expect cat-missing "fopen missing: ENOENT" cat missing
# the same file through a named preopen and an absolute guest path (libc maps it)
got=$("$BIN" run --dir "$R/sub::/data" "$T/fs.so" cat /data/inner.txt)
[[ $got == inner ]] || bad "cat /data/inner.txt: $got"
got=$("$BIN" run --dir "$R" "$T/fs.so" cat "$R/hello.txt")
[[ $got == "hello, preopened world" ]] || bad "cat through the default guest path: $got"
head -c 300000 /dev/urandom > "$R/big.bin"
(cd "$R" && "$BIN" run --dir . "$T/fs.so" cat big.bin) > "$T/big.out"
cmp -s "$R/big.bin" "$T/big.out" || bad "cat of a 300 kB binary file differs"
rm -f "$R/big.bin"
expect seek "read5=5 'hello'
tell=5
set2=2
read3=3 'llo'
pread4@7=4 'preo'
tell-after-pread=5
end=23
cur-3=20
negative=-1 EINVAL
tail-read=3" seek hello.txt
expect stat "size=23 type=f" stat hello.txt
expect stat-link "size=23 type=f" stat link_in
expect lstat-link "size=9 type=l" lstat link_in
expect stat-dir "size=$(stat -c %s "$R/sub") type=d" stat sub
expect readlink "$T/secret.txt" readlink link_abs
expect readlink-file "readlink: EINVAL" readlink hello.txt

# --- escapes: through libc, then straight to path_open (below libc's own checks) ---
expect esc-dotdot "fopen ../secret.txt: ENOTCAPABLE" cat ../secret.txt
expect esc-dotdot-deep "fopen sub/../../secret.txt: ENOTCAPABLE" cat sub/../../secret.txt
expect esc-link-up "fopen link_up: ENOTCAPABLE" cat link_up
expect esc-link-abs "fopen link_abs: ENOTCAPABLE" cat link_abs
expect esc-link-root "fopen link_root/etc/passwd: ENOTCAPABLE" cat link_root/etc/passwd
expect esc-stat "stat link_up: ENOTCAPABLE" stat link_up
raw_checks() {  # the results of raw path_open in the current mode
	for p in hello.txt ../secret.txt "$T/secret.txt" / sub/../hello.txt sub/../../secret.txt \
	         link_in link_up link_abs link_root/etc/passwd link_dir/inner.txt missing hello.txt/x; do
		run raw "$p"
		run raw "$p" follow
	done
	run raw hello.txt nul
	run raw hello.txt efault-path
	run raw hello.txt efault-out
	run raw ""
}
raw_common="raw hello.txt: ok
raw hello.txt: ok
raw ../secret.txt: ENOTCAPABLE
raw ../secret.txt: ENOTCAPABLE
raw $T/secret.txt: ENOTCAPABLE
raw $T/secret.txt: ENOTCAPABLE
raw /: ENOTCAPABLE
raw /: ENOTCAPABLE
raw sub/../hello.txt: ok
raw sub/../hello.txt: ok
raw sub/../../secret.txt: ENOTCAPABLE
raw sub/../../secret.txt: ENOTCAPABLE
raw link_in: ELOOP"
raw_tail="raw missing: ENOENT
raw missing: ENOENT
raw hello.txt/x: ENOTDIR
raw hello.txt/x: ENOTDIR
raw hello.txt: EINVAL
raw hello.txt: EFAULT
raw hello.txt: EFAULT
raw : ENOENT"
# openat2: symlinks that stay inside are followed, the others refused
got=$(raw_checks 2>&1)
want="$raw_common
raw link_in: ok
raw link_up: ELOOP
raw link_up: ENOTCAPABLE
raw link_abs: ELOOP
raw link_abs: ENOTCAPABLE
raw link_root/etc/passwd: ENOTCAPABLE
raw link_root/etc/passwd: ENOTCAPABLE
raw link_dir/inner.txt: ok
raw link_dir/inner.txt: ok
$raw_tail"
diff -u <(echo "$want") <(echo "$got") || bad "raw path_open (openat2)"
# the component walk (no openat2): every symlink on the way is refused
got=$(PREWARM_WASI_NO_OPENAT2=1 raw_checks 2>&1)
want="$raw_common
raw link_in: ENOTCAPABLE
raw link_up: ELOOP
raw link_up: ENOTCAPABLE
raw link_abs: ELOOP
raw link_abs: ENOTCAPABLE
raw link_root/etc/passwd: ENOTCAPABLE
raw link_root/etc/passwd: ENOTCAPABLE
raw link_dir/inner.txt: ENOTCAPABLE
raw link_dir/inner.txt: ENOTCAPABLE
$raw_tail"
diff -u <(echo "$want") <(echo "$got") || bad "raw path_open (component walk)"
got=$(cd "$R" && PREWARM_WASI_NO_OPENAT2=1 "$BIN" run --dir . "$T/fs.so" cat sub/./inner.txt)
[[ $got == inner ]] || bad "component walk: cat sub/./inner.txt: $got"
got=$(cd "$R" && PREWARM_WASI_NO_OPENAT2=1 "$BIN" run --dir . "$T/fs.so" ls link_dir)
[[ $got == "opendir link_dir: ENOTCAPABLE" ]] || bad "component walk: ls link_dir: $got"
expect ls-link-dir ". d
.. d
inner.txt f" ls link_dir

# --- read-only: every write is refused and nothing changes ---
for m in w rw append creat trunc excl; do
	expect "open-$m" EROFS open hello.txt $m
	expect "open-$m-new" EROFS open brand-new $m
done
expect open-r ok open hello.txt r
expect open-dir ok open sub dir
expect open-dir-file ENOTDIR open hello.txt dir
expect write-attempts "fopen-w: EROFS
fopen-a: EROFS
create: EROFS
mkdir: EROFS
unlink: EROFS
rename: EROFS
symlink: EROFS
rmdir: EROFS
write-on-rdonly: EBADF
ftruncate: EROFS" write-attempts hello.txt sub
[[ $(snapshot) == "$before" ]] || bad "the preopened tree changed"

# --- the fd table is bounded (128 fds >= 3; one is the preopen) and reusable ---
expect emfile "opened 127 then EMFILE
reopen: ok" emfile hello.txt

# --- no --dir: no file system at all ---
got=$(cd "$R" && "$BIN" run "$T/fs.so" cat hello.txt)
[[ $got == "fopen hello.txt: ENOTCAPABLE" ]] || bad "without --dir: $got"

# --- bad --dir values: exit 1 (cannot open) or 2 (usage), named ---
expect_fail() {  # CODE MESSAGE ARGS...
	local code=$1 msg=$2; shift 2
	"$BIN" run "$@" > /dev/null 2> "$T/err"
	local rc=$?
	[[ $rc == "$code" ]] || bad "run $*: exit $rc, expected $code ($(cat "$T/err"))"
	grep -qF -- "$msg" "$T/err" || bad "run $*: message lacks '$msg': $(cat "$T/err")"
}
expect_fail 1 "$T/missing-dir" --dir "$T/missing-dir" "$T/fs.so" prestat
expect_fail 1 "Not a directory" --dir "$R/hello.txt::." "$T/fs.so" prestat
expect_fail 2 "expected HOSTDIR" --dir "::x" "$T/fs.so" prestat
expect_fail 2 "expected HOSTDIR" --dir "$R::" "$T/fs.so" prestat
expect_fail 2 "needs a value" --dir
"$BIN" run --help | grep -q -- '--dir HOSTDIR\[::GUESTPATH\]' || bad "run --help lacks --dir"

exit $fail

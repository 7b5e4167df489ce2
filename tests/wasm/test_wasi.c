/*
 * WASI host functions driven call by call: the fixture wasm_wasi_calls.wat
 * exports thin wrappers over the WASI imports, compiled once by the real engine,
 * so each test writes exact guest memory and checks errno values, bytes written
 * and struct layouts: the write callback and in-memory stdin that the policy host
 * uses, EFAULT at the exact memory boundary with nothing written, closed fds,
 * fdstat and both filestat layouts, fd_seek whence in both module versions on a
 * real file, poll_oneoff in both subscription layouts, args/environ tables,
 * clocks, random, no preopens, ENOSYS, preopens and the calls beneath them (layouts,
 * cookies, refusals), and proc_exit through pw_wasi_run_start.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"
#include "prewarm/wasi.h"

#define PAGE 65536u

static pw_engine *g_engine;
static pw_imports *g_host;
static pw_artifact *g_art;

typedef struct test_host {
	pw_wasi_ctx *wasi;   /* first member, as wasi.h requires */
	pw_buf out[3];       /* what the guest wrote to fds 1 and 2 via the callback */
	int writes;
} test_host;

static void on_write(void *cb_data, int fd, const uint8_t *data, size_t len)
{
	test_host *h = cb_data;
	h->writes++;
	pw_buf_append(&h->out[fd], data, len);
}

static int setup(void)
{
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	int rc;
	if (g_art)
		return 0;
	rc = pw_file_read(pw_test_fixture("wasm_wasi_calls.wasm"), 0, &wasm);
	if (!rc)
		rc = pw_imports_new(&g_host);
	if (!rc)
		rc = pw_wasi_add_imports(g_host);
	if (!rc)
		rc = pw_engine_new(&g_engine, NULL);
	if (!rc)
		rc = pw_engine_compile(g_engine, wasm.data, wasm.len, g_host, &art, NULL);
	if (!rc)
		rc = pw_artifact_load(&g_art, art.data, art.len, NULL, g_host);
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	return rc;
}

typedef struct env {
	pw_wasi_ctx ctx;
	test_host host;
	pw_instance *inst;
	uint8_t *mem;
} env;

/* A fresh instance whose stdio goes to callbacks and memory stdin. */
static int env_new(env *e, const char *stdin_text)
{
	uint64_t size;
	memset(e, 0, sizeof *e);
	int rc = setup();
	if (rc)
		return rc;
	pw_wasi_ctx_init(&e->ctx);
	e->ctx.write_cb = on_write;
	e->ctx.cb_data = &e->host;
	e->ctx.stdin_data = (const uint8_t *)(stdin_text ? stdin_text : "");
	e->ctx.stdin_len = stdin_text ? strlen(stdin_text) : 0;
	e->host.wasi = &e->ctx;
	pw_instance_opts o = { .host_data = &e->host };
	rc = pw_instance_new(&e->inst, g_art, &o);
	if (rc)
		return rc;
	e->mem = pw_instance_memory(e->inst, &size);
	return size == PAGE ? 0 : pw_error_set(PW_ERROR, "memory is %llu bytes", (unsigned long long)size);
}

static void env_free(env *e)
{
	pw_instance_free(e->inst);
	for (int i = 0; i < 3; i++)
		pw_buf_free(&e->host.out[i]);
}

/* Calls export NAME with up to 9 args; returns the errno result, or -1000 - code on failure. */
static long call(env *e, const char *name, int n, ...)
{
	pw_val a[9], r[1] = { 0 };
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		a[i] = va_arg(ap, uint64_t);
	va_end(ap);
	/* a safety net, not a timed assertion: a call that would block forever fails the test */
	pw_instance_set_deadline(e->inst, pw_now() + 120);
	int rc = pw_instance_call(e->inst, name, a, (size_t)n, r, 1);
	if (rc) {
		fprintf(stderr, "    %s: %s\n", name, pw_error_last());
		return -1000 + rc;
	}
	return (long)(uint32_t)r[0];
}

#define U(x) ((uint64_t)(x))

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }   /* x86/arm64 hosts: little-endian */
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static void test_fd_write_callback_and_iovecs(void)
{
	env e;
	CHECK_OK(env_new(&e, NULL));
	memcpy(e.mem + 100, "ab", 2);
	memcpy(e.mem + 200, "cde", 3);
	put32(e.mem + 0, 100); put32(e.mem + 4, 2);
	put32(e.mem + 8, 200); put32(e.mem + 12, 3);
	put32(e.mem + 16, 0); put32(e.mem + 20, 0);   /* an empty iovec is fine */
	long r = call(&e, "p1_fd_write", 4, U(1), U(0), U(3), U(32));
	uint32_t nw = get32(e.mem + 32);
	int writes = e.host.writes;
	int same = e.host.out[1].len == 5 && !memcmp(e.host.out[1].data, "abcde", 5);
	r += call(&e, "p1_fd_write", 4, U(2), U(8), U(1), U(32));
	int err_ok = e.host.out[2].len == 3 && !memcmp(e.host.out[2].data, "cde", 3);
	env_free(&e);
	CHECK_INT(r, 0);
	CHECK_INT(nw, 5);
	CHECK_INT(writes, 2);
	CHECK(same);
	CHECK(err_ok);
}

static void test_efault_at_the_exact_boundary(void)
{
	env e;
	CHECK_OK(env_new(&e, NULL));
	memset(e.mem + PAGE - 16, 'x', 16);
	/* iovec array ending exactly at the end of memory: fine */
	put32(e.mem + PAGE - 8, PAGE - 1); put32(e.mem + PAGE - 4, 1);
	long ok1 = call(&e, "p1_fd_write", 4, U(1), U(PAGE - 8), U(1), U(PAGE - 12));
	/* one byte further: EFAULT */
	long f1 = call(&e, "p1_fd_write", 4, U(1), U(PAGE - 7), U(1), U(0));
	/* buffer running one byte past the end */
	put32(e.mem + 0, PAGE - 1); put32(e.mem + 4, 2);
	long f2 = call(&e, "p1_fd_write", 4, U(1), U(0), U(1), U(16));
	/* nwritten pointer with 3 bytes left */
	put32(e.mem + 0, 64); put32(e.mem + 4, 1);
	long f3 = call(&e, "p1_fd_write", 4, U(1), U(0), U(1), U(PAGE - 3));
	/* an iovec count whose array size overflows 32 bits */
	long f4 = call(&e, "p1_fd_write", 4, U(1), U(0), U(0x20000001), U(16));
	int writes = e.host.writes;
	size_t outlen = e.host.out[1].len;
	/* reads: the same checks, and nothing consumed on EFAULT */
	put32(e.mem + 0, PAGE - 2); put32(e.mem + 4, 4);
	long f5 = call(&e, "p1_fd_read", 4, U(0), U(0), U(1), U(16));
	long f6 = call(&e, "p1_random_get", 2, U(PAGE - 4), U(5));
	long ok2 = call(&e, "p1_random_get", 2, U(PAGE), U(0));
	long f7 = call(&e, "p1_clock_time_get", 3, U(1), U(1), U(PAGE - 7));
	long f8 = call(&e, "p1_fd_fdstat_get", 2, U(1), U(PAGE - 23));
	long f9 = call(&e, "p1_args_sizes_get", 2, U(PAGE - 2), U(0));
	long f10 = call(&e, "p1_poll_oneoff", 4, U(PAGE - 47), U(0), U(1), U(100));
	long f11 = call(&e, "p1_fd_filestat_get", 2, U(1), U(PAGE - 63));
	long ok3 = call(&e, "p0_fd_filestat_get", 2, U(1), U(PAGE - 56));
	env_free(&e);
	CHECK_INT(ok1, 0);
	CHECK_INT(f1, PW_WASI_EFAULT);
	CHECK_INT(f2, PW_WASI_EFAULT);
	CHECK_INT(f3, PW_WASI_EFAULT);
	CHECK_INT(f4, PW_WASI_EFAULT);
	CHECK_INT(writes, 1);     /* only the valid write reached the callback */
	CHECK_INT(outlen, 1);
	CHECK_INT(f5, PW_WASI_EFAULT);
	CHECK_INT(f6, PW_WASI_EFAULT);
	CHECK_INT(ok2, 0);
	CHECK_INT(f7, PW_WASI_EFAULT);
	CHECK_INT(f8, PW_WASI_EFAULT);
	CHECK_INT(f9, PW_WASI_EFAULT);
	CHECK_INT(f10, PW_WASI_EFAULT);
	CHECK_INT(f11, PW_WASI_EFAULT);
	CHECK_INT(ok3, 0);
}

static void test_memory_stdin(void)
{
	env e;
	CHECK_OK(env_new(&e, "hello world"));
	put32(e.mem + 0, 100); put32(e.mem + 4, 4);
	put32(e.mem + 8, 200); put32(e.mem + 12, 3);
	long r1 = call(&e, "p1_fd_read", 4, U(0), U(0), U(2), U(32));
	uint32_t n1 = get32(e.mem + 32);
	int first = !memcmp(e.mem + 100, "hell", 4) && !memcmp(e.mem + 200, "o w", 3);
	put32(e.mem + 4, 64);
	long r2 = call(&e, "p1_fd_read", 4, U(0), U(0), U(1), U(32));
	uint32_t n2 = get32(e.mem + 32);
	int second = !memcmp(e.mem + 100, "orld", 4);
	long r3 = call(&e, "p1_fd_read", 4, U(0), U(0), U(1), U(32));
	uint32_t n3 = get32(e.mem + 32);
	long r4 = call(&e, "p1_fd_read", 4, U(1), U(0), U(1), U(32));   /* stdout is not readable */
	long r5 = call(&e, "p1_fd_write", 4, U(0), U(0), U(1), U(32));  /* stdin is not writable */
	env_free(&e);
	CHECK_INT(r1, 0);
	CHECK_INT(n1, 7);
	CHECK(first);
	CHECK_INT(r2, 0);
	CHECK_INT(n2, 4);
	CHECK(second);
	CHECK_INT(r3, 0);
	CHECK_INT(n3, 0);   /* end of input */
	CHECK_INT(r4, PW_WASI_EBADF);
	CHECK_INT(r5, PW_WASI_EBADF);
}

static void test_close_and_bad_fds(void)
{
	env e;
	CHECK_OK(env_new(&e, NULL));
	put32(e.mem + 0, 100); put32(e.mem + 4, 1);
	long w3 = call(&e, "p1_fd_write", 4, U(3), U(0), U(1), U(32));
	long c1 = call(&e, "p1_fd_close", 1, U(1));
	long c2 = call(&e, "p1_fd_close", 1, U(1));
	long w1 = call(&e, "p1_fd_write", 4, U(1), U(0), U(1), U(32));
	long s1 = call(&e, "p1_fd_fdstat_get", 2, U(1), U(64));
	long w2 = call(&e, "p1_fd_write", 4, U(2), U(0), U(1), U(32));
	long c9 = call(&e, "p1_fd_close", 1, U(9));
	long big = call(&e, "p1_fd_close", 1, U(0xffffffffu));
	env_free(&e);
	CHECK_INT(w3, PW_WASI_EBADF);
	CHECK_INT(c1, 0);
	CHECK_INT(c2, PW_WASI_EBADF);
	CHECK_INT(w1, PW_WASI_EBADF);
	CHECK_INT(s1, PW_WASI_EBADF);
	CHECK_INT(w2, 0);   /* stderr still open */
	CHECK_INT(c9, PW_WASI_EBADF);
	CHECK_INT(big, PW_WASI_EBADF);
}

static void test_fdstat_and_filestat_layouts(void)
{
	env e;
	CHECK_OK(env_new(&e, NULL));
	memset(e.mem, 0xaa, 512);
	long r0 = call(&e, "p1_fd_fdstat_get", 2, U(0), U(0));
	long r1 = call(&e, "p1_fd_fdstat_get", 2, U(1), U(32));
	uint64_t rights0 = get64(e.mem + 8), rights1 = get64(e.mem + 32 + 8);
	uint8_t sentinel = e.mem[56];
	long f1 = call(&e, "p1_fd_filestat_get", 2, U(1), U(100));
	long f0 = call(&e, "p0_fd_filestat_get", 2, U(1), U(300));
	uint8_t after1 = e.mem[164], after0 = e.mem[356], last1 = e.mem[163], last0 = e.mem[355];
	env_free(&e);
	CHECK_INT(r0, 0);
	CHECK_INT(r1, 0);
	CHECK(rights0 & (1u << 1));    /* fd_read */
	CHECK(!(rights0 & (1u << 6)));
	CHECK(rights1 & (1u << 6));    /* fd_write */
	CHECK(!(rights1 & (1u << 2))); /* no seek on a callback stream */
	CHECK_INT(sentinel, 0xaa);     /* fdstat is 24 bytes */
	CHECK_INT(f1, 0);
	CHECK_INT(f0, 0);
	CHECK_INT(last1, 0);           /* preview1 filestat: 64 bytes written */
	CHECK_INT(after1, 0xaa);
	CHECK_INT(last0, 0);           /* wasi_unstable filestat: 56 bytes */
	CHECK_INT(after0, 0xaa);
}

/* fd_seek on a real file given as stdin: both whence numberings. */
static void test_seek_whence_both_versions(void)
{
	env e;
	char path[4096];
	snprintf(path, sizeof path, "%s/seek.txt", pw_test_tmpdir());
	CHECK_OK(pw_file_write_atomic(path, "0123456789", 10, 0644));
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	int rc = env_new(&e, NULL);
	if (rc) {
		close(fd);
		CHECK_OK(rc);
	}
	e.ctx.stdin_data = NULL;
	e.ctx.stdin_fd = fd;
	long a = call(&e, "p1_fd_seek", 4, U(0), U(5), U(0), U(64));   /* SET */
	uint64_t pa = get64(e.mem + 64);
	long b = call(&e, "p0_fd_seek", 4, U(0), U(2), U(0), U(64));   /* unstable CUR */
	uint64_t pb = get64(e.mem + 64);
	long c = call(&e, "p0_fd_seek", 4, U(0), U(1), U(2), U(64));   /* unstable SET */
	uint64_t pc = get64(e.mem + 64);
	long d = call(&e, "p1_fd_seek", 4, U(0), U(-3), U(2), U(64));  /* END */
	uint64_t pd = get64(e.mem + 64);
	long t = call(&e, "p1_fd_tell", 2, U(0), U(72));
	uint64_t pt = get64(e.mem + 72);
	long bad = call(&e, "p1_fd_seek", 4, U(0), U(0), U(3), U(64));
	long rights = call(&e, "p1_fd_fdstat_get", 2, U(0), U(128));
	uint8_t ft = e.mem[128];
	uint64_t r = get64(e.mem + 136);
	e.ctx.stdin_data = (const uint8_t *)"";
	long pipe_like = call(&e, "p1_fd_seek", 4, U(0), U(0), U(0), U(64));
	env_free(&e);
	close(fd);
	CHECK_INT(a, 0); CHECK_INT(pa, 5);
	CHECK_INT(b, 0); CHECK_INT(pb, 7);
	CHECK_INT(c, 0); CHECK_INT(pc, 1);
	CHECK_INT(d, 0); CHECK_INT(pd, 7);
	CHECK_INT(t, 0); CHECK_INT(pt, 7);
	CHECK_INT(bad, PW_WASI_EINVAL);
	CHECK_INT(rights, 0);
	CHECK_INT(ft, 4);              /* regular file */
	CHECK(r & (1u << 2));          /* fd_seek right */
	CHECK_INT(pipe_like, PW_WASI_ESPIPE);
}

/* poll_oneoff: preview1 layout (48-byte subscriptions) and wasi_unstable (56). */
static void test_poll_oneoff_layouts(void)
{
	env e;
	CHECK_OK(env_new(&e, "abc"));
	uint8_t *s = e.mem + 1024;
	memset(s, 0, 3 * 56);
	/* preview1: [0] clock monotonic relative 1 ms, [1] fd_read on 0 (memory: ready), [2] bad clock */
	put64(s + 0, 0x1111); s[8] = 0; put32(s + 16, 1); put64(s + 24, 1000000);
	put64(s + 48, 0x2222); s[56] = 1; put32(s + 64, 0);
	put64(s + 96, 0x3333); s[104] = 0; put32(s + 112, 77);
	long r = call(&e, "p1_poll_oneoff", 4, U(1024), U(2048), U(3), U(4000));
	uint32_t nev = get32(e.mem + 4000);
	uint8_t *ev = e.mem + 2048;
	int found_fd = 0, found_bad = 0;
	for (uint32_t i = 0; i < nev && i < 3; i++) {
		uint8_t *x = ev + 32 * i;
		if (get64(x) == 0x2222 && x[10] == 1 && get16(x + 8) == 0 && get64(x + 16) == 3)
			found_fd = 1;
		if (get64(x) == 0x3333 && get16(x + 8) == PW_WASI_EINVAL)
			found_bad = 1;
	}
	/* preview1: a lone clock subscription of 1 ms fires */
	memset(s, 0, 56);
	put64(s, 0x4444); s[8] = 0; put32(s + 16, 1); put64(s + 24, 1000000);
	long r2 = call(&e, "p1_poll_oneoff", 4, U(1024), U(2048), U(1), U(4000));
	int clock_ok = get32(e.mem + 4000) == 1 && get64(ev) == 0x4444 && ev[10] == 0 && get16(ev + 8) == 0;
	/* wasi_unstable: clock id at 24, timeout at 32, absolute flag at 48: an absolute time in the past */
	memset(s, 0, 56);
	put64(s, 0x5555); s[8] = 0; put64(s + 16, 99); put32(s + 24, 1); put64(s + 32, 1); s[48] = 1;
	long r3 = call(&e, "p0_poll_oneoff", 4, U(1024), U(2048), U(1), U(4000));
	int unstable_ok = get32(e.mem + 4000) == 1 && get64(ev) == 0x5555 && ev[10] == 0 && get16(ev + 8) == 0;
	long r4 = call(&e, "p1_poll_oneoff", 4, U(1024), U(2048), U(0), U(4000));
	/* a lone subscription on an unknown clock answers at once with an EINVAL event */
	memset(s, 0, 48);
	put64(s, 0x6666); s[8] = 0; put32(s + 16, 1234); put64(s + 24, 1000000000000ull);
	long r5 = call(&e, "p1_poll_oneoff", 4, U(1024), U(2048), U(1), U(4000));
	int bad_clock_ok = get32(e.mem + 4000) == 1 && get64(ev) == 0x6666 && get16(ev + 8) == PW_WASI_EINVAL;
	env_free(&e);
	CHECK_INT(r, 0);
	CHECK(nev >= 2);
	CHECK(found_fd);
	CHECK(found_bad);
	CHECK_INT(r2, 0);
	CHECK(clock_ok);
	CHECK_INT(r3, 0);
	CHECK(unstable_ok);
	CHECK_INT(r4, PW_WASI_EINVAL);
	CHECK_INT(r5, 0);
	CHECK(bad_clock_ok);
}

static void test_args_and_environ(void)
{
	env e;
	char *argv[] = { (char *)"prog", (char *)"a b", NULL };
	char *envp[] = { (char *)"K=V", (char *)"EMPTY=", NULL };
	CHECK_OK(env_new(&e, NULL));
	e.ctx.argc = 2; e.ctx.argv = argv;
	e.ctx.envc = 2; e.ctx.envp = envp;
	long r1 = call(&e, "p1_args_sizes_get", 2, U(0), U(4));
	uint32_t argc = get32(e.mem), argsz = get32(e.mem + 4);
	long r2 = call(&e, "p1_args_get", 2, U(16), U(64));
	int args_ok = get32(e.mem + 16) == 64 && get32(e.mem + 20) == 69 &&
	              !memcmp(e.mem + 64, "prog\0a b\0", 9);
	long r3 = call(&e, "p1_environ_sizes_get", 2, U(0), U(4));
	uint32_t envc = get32(e.mem), envsz = get32(e.mem + 4);
	long r4 = call(&e, "p1_environ_get", 2, U(16), U(128));
	int env_ok = get32(e.mem + 16) == 128 && get32(e.mem + 20) == 132 &&
	             !memcmp(e.mem + 128, "K=V\0EMPTY=\0", 11);
	long f1 = call(&e, "p1_args_get", 2, U(16), U(PAGE - 8));   /* 9 bytes needed */
	long f2 = call(&e, "p1_environ_get", 2, U(PAGE - 4), U(128));
	env_free(&e);
	CHECK_INT(r1, 0); CHECK_INT(argc, 2); CHECK_INT(argsz, 9);
	CHECK_INT(r2, 0); CHECK(args_ok);
	CHECK_INT(r3, 0); CHECK_INT(envc, 2); CHECK_INT(envsz, 11);
	CHECK_INT(r4, 0); CHECK(env_ok);
	CHECK_INT(f1, PW_WASI_EFAULT);
	CHECK_INT(f2, PW_WASI_EFAULT);
}

static void test_clocks_random_and_unsupported(void)
{
	env e;
	CHECK_OK(env_new(&e, NULL));
	long c1 = call(&e, "p1_clock_time_get", 3, U(1), U(1), U(0));
	uint64_t t1 = get64(e.mem);
	long c2 = call(&e, "p1_clock_time_get", 3, U(1), U(1), U(8));
	uint64_t t2 = get64(e.mem + 8);
	long c3 = call(&e, "p1_clock_time_get", 3, U(0), U(1), U(16));
	uint64_t wall = get64(e.mem + 16);
	long c4 = call(&e, "p1_clock_time_get", 3, U(9), U(1), U(16));
	long c5 = call(&e, "p1_clock_res_get", 2, U(1), U(24));
	uint64_t res = get64(e.mem + 24);
	memset(e.mem + 100, 0, 64);
	long rg = call(&e, "p1_random_get", 2, U(100), U(64));
	int nonzero = 0;
	for (int i = 0; i < 64; i++)
		nonzero |= e.mem[100 + i];
	long y = call(&e, "p1_sched_yield", 0);
	long pre = call(&e, "p1_fd_prestat_get", 2, U(3), U(0));
	long po3 = call(&e, "p1_path_open", 9, U(3), U(0), U(0), U(1), U(0), U(0), U(0), U(0), U(0));
	long po1 = call(&e, "p1_path_open", 9, U(1), U(0), U(0), U(1), U(0), U(0), U(0), U(0), U(0));
	long sa = call(&e, "p1_sock_accept", 3, U(0), U(0), U(0));
	long sy = call(&e, "p1_fd_sync", 1, U(1));
	env_free(&e);
	CHECK_INT(c1, 0); CHECK_INT(c2, 0);
	CHECK(t2 >= t1 && t1 > 0);
	CHECK_INT(c3, 0);
	CHECK(wall > 1600000000ull * 1000000000ull);
	CHECK_INT(c4, PW_WASI_EINVAL);
	CHECK_INT(c5, 0);
	CHECK(res > 0);
	CHECK_INT(rg, 0);
	CHECK(nonzero);
	CHECK_INT(y, 0);
	CHECK_INT(pre, PW_WASI_EBADF);
	CHECK_INT(po3, PW_WASI_EBADF);
	CHECK_INT(po1, PW_WASI_ENOTDIR);
	CHECK_INT(sa, PW_WASI_ENOSYS);
	CHECK_INT(sy, PW_WASI_ENOSYS);
}

/* Preopens and the calls beneath them, byte for byte: prestat (8 bytes), dir name
 * (ENAMETOOLONG when short, EFAULT at the end of memory), path_open (p1 and p0) of a
 * file, fdstat rights (read-only file, directory inheriting everything), fd_filestat_get
 * and path_filestat_get in both layouts, fd_pread, the dirent layout and cookies of
 * fd_readdir (including a truncated entry), path_readlink, EROFS / ENOTCAPABLE / EFAULT
 * refusals with nothing opened, fd_renumber, and pw_wasi_ctx_release. */
static void test_preopen_layouts(void)
{
	env e;
	char dir[4096], path[4200];
	const char *tmp = pw_test_tmpdir();
	snprintf(dir, sizeof dir, "%s/pre", tmp);
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(path, sizeof path, "%s/f.txt", dir);
	FILE *fp = fopen(path, "w");
	CHECK(fp != NULL);
	fputs("0123456789", fp);
	fclose(fp);
	snprintf(path, sizeof path, "%s/ln", dir);
	CHECK(symlink("f.txt", path) == 0);
	CHECK_OK(env_new(&e, NULL));
	int pre = pw_wasi_preopen(&e.ctx, dir, "/data");
	int bad = pw_wasi_preopen(&e.ctx, "/nonexistent/prewarm", ".");
	char bad_msg[256];
	snprintf(bad_msg, sizeof bad_msg, "%s", pw_error_last());

	/* prestat and the name */
	memset(e.mem, 0xee, 64);
	long ps = call(&e, "p1_fd_prestat_get", 2, U(3), U(0));
	uint8_t ps_tag = e.mem[0], ps_pad = e.mem[1];
	uint32_t ps_len = get32(e.mem + 4);
	long ps4 = call(&e, "p1_fd_prestat_get", 2, U(4), U(0));
	long dn = call(&e, "p1_fd_prestat_dir_name", 3, U(3), U(16), U(5));
	int dn_ok = !memcmp(e.mem + 16, "/data", 5);
	long dn_short = call(&e, "p1_fd_prestat_dir_name", 3, U(3), U(16), U(4));
	long dn_fault = call(&e, "p1_fd_prestat_dir_name", 3, U(3), U(PAGE - 4), U(5));

	/* path_open "f.txt" -> fd 4 */
	memcpy(e.mem + 100, "f.txt", 5);
	long po = call(&e, "p1_path_open", 9, U(3), U(0), U(100), U(5), U(0), U(0x2026ull), U(0), U(0), U(200));
	uint32_t fd = get32(e.mem + 200);
	long fs = call(&e, "p1_fd_fdstat_get", 2, U(fd), U(300));
	uint8_t fs_type = e.mem[300];
	uint64_t fs_base = get64(e.mem + 308), fs_inh = get64(e.mem + 316);
	long ds = call(&e, "p1_fd_fdstat_get", 2, U(3), U(300));
	uint8_t ds_type = e.mem[300];
	uint64_t ds_inh = get64(e.mem + 316);
	struct stat st;
	snprintf(path, sizeof path, "%s/f.txt", dir);
	stat(path, &st);
	long f1 = call(&e, "p1_fd_filestat_get", 2, U(fd), U(400));
	uint64_t f1_ino = get64(e.mem + 408), f1_nlink = get64(e.mem + 424), f1_size = get64(e.mem + 432);
	uint8_t f1_type = e.mem[416];
	long f0 = call(&e, "p0_fd_filestat_get", 2, U(fd), U(500));
	uint32_t f0_nlink = get32(e.mem + 520);
	uint64_t f0_size = get64(e.mem + 524);
	long pf1 = call(&e, "p1_path_filestat_get", 5, U(3), U(1), U(100), U(5), U(600));
	uint64_t pf1_size = get64(e.mem + 632);
	memcpy(e.mem + 110, "ln", 2);
	long pf0 = call(&e, "p0_path_filestat_get", 5, U(3), U(0), U(110), U(2), U(700));
	uint8_t pf0_type = e.mem[716];
	uint64_t pf0_size = get64(e.mem + 724);
	long pf0f = call(&e, "p0_path_filestat_get", 5, U(3), U(1), U(110), U(2), U(700));
	uint8_t pf0f_type = e.mem[716];

	/* fd_pread: 3 bytes at 4 into two iovecs, the file offset untouched */
	put32(e.mem + 800, 900); put32(e.mem + 804, 1);
	put32(e.mem + 808, 910); put32(e.mem + 812, 2);
	long pr = call(&e, "p1_fd_pread", 5, U(fd), U(800), U(2), U(4), U(820));
	int pr_ok = get32(e.mem + 820) == 3 && e.mem[900] == '4' && !memcmp(e.mem + 910, "56", 2);
	long tl = call(&e, "p1_fd_tell", 2, U(fd), U(830));
	uint64_t pos = get64(e.mem + 830);

	/* fd_readdir: the whole directory, then from the second cookie into a 30-byte buffer */
	long rd = call(&e, "p1_fd_readdir", 5, U(3), U(1000), U(2000), U(0), U(996));
	uint32_t used = get32(e.mem + 996);
	int names = 0, cookies_ok = 1, type_ok = 0;
	for (uint32_t off = 0, i = 0; off + 24 <= used; i++) {
		uint64_t next = get64(e.mem + 1000 + off);
		uint32_t nl = get32(e.mem + 1000 + off + 16);
		uint8_t t = e.mem[1000 + off + 20];
		const char *nm = (const char *)e.mem + 1000 + off + 24;
		if (next != i + 1)
			cookies_ok = 0;
		if (nl == 5 && !memcmp(nm, "f.txt", 5) && t == 4)
			type_ok++;
		if (nl == 2 && !memcmp(nm, "ln", 2) && t == 7)
			type_ok++;
		names++;
		off += 24 + nl;
	}
	long rd2 = call(&e, "p1_fd_readdir", 5, U(3), U(3100), U(30), U(1), U(3096));
	uint32_t used2 = get32(e.mem + 3096);
	uint64_t next2 = get64(e.mem + 3100);
	long rd_file = call(&e, "p1_fd_readdir", 5, U(fd), U(1000), U(100), U(0), U(996));
	long rd_fault = call(&e, "p1_fd_readdir", 5, U(3), U(PAGE - 10), U(100), U(0), U(996));

	/* readlink, including a buffer shorter than the target (truncated) */
	long rl = call(&e, "p1_path_readlink", 6, U(3), U(110), U(2), U(1100), U(64), U(1096));
	int rl_ok = get32(e.mem + 1096) == 5 && !memcmp(e.mem + 1100, "f.txt", 5);
	long rl_short = call(&e, "p1_path_readlink", 6, U(3), U(110), U(2), U(1200), U(3), U(1196));
	uint32_t rl_short_n = get32(e.mem + 1196);

	/* refusals: nothing is opened (the next open still gets fd 5) */
	memcpy(e.mem + 120, "../x", 4);
	long esc = call(&e, "p1_path_open", 9, U(3), U(0), U(120), U(4), U(0), U(0x2ull), U(0), U(0), U(200));
	long wr = call(&e, "p1_path_open", 9, U(3), U(0), U(100), U(5), U(0), U(0x40ull), U(0), U(0), U(200));
	long cr = call(&e, "p0_path_open", 9, U(3), U(0), U(100), U(5), U(1), U(0x2ull), U(0), U(0), U(200));
	long ap = call(&e, "p1_path_open", 9, U(3), U(0), U(100), U(5), U(0), U(0x2ull), U(0), U(1), U(200));
	long pf = call(&e, "p1_path_open", 9, U(3), U(0), U(PAGE - 3), U(5), U(0), U(0x2ull), U(0), U(0), U(200));
	long of = call(&e, "p1_path_open", 9, U(3), U(0), U(100), U(5), U(0), U(0x2ull), U(0), U(0), U(PAGE - 2));
	long ul = call(&e, "p1_path_unlink_file", 3, U(3), U(100), U(5));
	long ul_file = call(&e, "p1_path_unlink_file", 3, U(fd), U(100), U(5));
	long wfd = call(&e, "p1_fd_write", 4, U(fd), U(800), U(1), U(820));
	long po2 = call(&e, "p0_path_open", 9, U(3), U(0), U(100), U(5), U(0), U(0x2ull), U(0), U(0), U(200));
	uint32_t fd2 = get32(e.mem + 200);
	long rn_std = call(&e, "p1_fd_renumber", 2, U(fd2), U(1));
	long rn_bad = call(&e, "p1_fd_renumber", 2, U(1), U(99));
	long rn = call(&e, "p1_fd_renumber", 2, U(fd2), U(fd));
	long rn_tell = call(&e, "p1_fd_tell", 2, U(fd), U(830));
	long rn_gone = call(&e, "p1_fd_tell", 2, U(fd2), U(830));
	long cl = call(&e, "p1_fd_close", 1, U(fd));
	long cl2 = call(&e, "p1_fd_close", 1, U(fd));
	pw_wasi_ctx_release(&e.ctx);
	int released = e.ctx.fs == NULL;
	long after = call(&e, "p1_fd_prestat_get", 2, U(3), U(0));
	pw_wasi_ctx_release(&e.ctx);   /* twice: a no-op */
	env_free(&e);

	CHECK_INT(pre, 0);
	CHECK_INT(bad, PW_EIO);
	CHECK_MSG(strstr(bad_msg, "/nonexistent/prewarm") != NULL, "message: %s", bad_msg);
	CHECK_INT(ps, 0); CHECK_INT(ps_tag, 0); CHECK_INT(ps_pad, 0); CHECK_INT(ps_len, 5);
	CHECK_INT(ps4, PW_WASI_EBADF);
	CHECK_INT(dn, 0); CHECK(dn_ok);
	CHECK_INT(dn_short, PW_WASI_ENAMETOOLONG);
	CHECK_INT(dn_fault, PW_WASI_EFAULT);
	CHECK_INT(po, 0); CHECK_INT(fd, 4);
	CHECK_INT(fs, 0); CHECK_INT(fs_type, 4);
	CHECK_INT(fs_base, 0x26ull);   /* read, seek, tell kept; path_open (a directory right) dropped */
	CHECK_INT(fs_inh, 0);
	CHECK_INT(ds, 0); CHECK_INT(ds_type, 3); CHECK_INT(ds_inh, (1ull << 30) - 1);
	CHECK_INT(f1, 0); CHECK_INT(f1_ino, st.st_ino); CHECK_INT(f1_nlink, 1); CHECK_INT(f1_size, 10);
	CHECK_INT(f1_type, 4);
	CHECK_INT(f0, 0); CHECK_INT(f0_nlink, 1); CHECK_INT(f0_size, 10);
	CHECK_INT(pf1, 0); CHECK_INT(pf1_size, 10);
	CHECK_INT(pf0, 0); CHECK_INT(pf0_type, 7); CHECK_INT(pf0_size, 5);   /* the link itself */
	CHECK_INT(pf0f, 0); CHECK_INT(pf0f_type, 4);                         /* followed */
	CHECK_INT(pr, 0); CHECK(pr_ok);
	CHECK_INT(tl, 0); CHECK_INT(pos, 0);
	CHECK_INT(rd, 0); CHECK_INT(names, 4); CHECK(cookies_ok); CHECK_INT(type_ok, 2);
	CHECK(used < 2000);
	CHECK_INT(rd2, 0); CHECK_INT(used2, 30); CHECK_INT(next2, 2);   /* full buffer: truncated */
	CHECK_INT(rd_file, PW_WASI_ENOTDIR);
	CHECK_INT(rd_fault, PW_WASI_EFAULT);
	CHECK_INT(rl, 0); CHECK(rl_ok);
	CHECK_INT(rl_short, 0); CHECK_INT(rl_short_n, 3);
	CHECK_INT(esc, PW_WASI_ENOTCAPABLE);
	CHECK_INT(wr, PW_WASI_EROFS);
	CHECK_INT(cr, PW_WASI_EROFS);
	CHECK_INT(ap, PW_WASI_EROFS);
	CHECK_INT(pf, PW_WASI_EFAULT);
	CHECK_INT(of, PW_WASI_EFAULT);
	CHECK_INT(ul, PW_WASI_EROFS);
	CHECK_INT(ul_file, PW_WASI_ENOTDIR);
	CHECK_INT(wfd, PW_WASI_EBADF);
	CHECK_INT(po2, 0); CHECK_INT(fd2, 5);
	CHECK_INT(rn_std, PW_WASI_ENOTSUP); CHECK_INT(rn_bad, PW_WASI_EBADF);
	CHECK_INT(rn, 0); CHECK_INT(rn_tell, 0); CHECK_INT(rn_gone, PW_WASI_EBADF);
	CHECK_INT(cl, 0); CHECK_INT(cl2, PW_WASI_EBADF);
	CHECK(released);
	CHECK_INT(after, PW_WASI_EBADF);
}

static void test_run_start_proc_exit(void)
{
	env e;
	int code = -1, code2 = -1;
	CHECK_OK(env_new(&e, NULL));
	pw_val v = 17;
	int rc0 = pw_instance_call(e.inst, "set_code", &v, 1, NULL, 0);
	int rc = pw_wasi_run_start(e.inst, &code);
	int ctx_code = e.ctx.exit_code;
	v = 0;
	pw_instance_call(e.inst, "set_code", &v, 1, NULL, 0);
	int rc2 = pw_wasi_run_start(e.inst, &code2);
	env_free(&e);
	CHECK_INT(rc0, 0);
	CHECK_INT(rc, 0);
	CHECK_INT(code, 17);
	CHECK_INT(ctx_code, 17);
	CHECK_INT(rc2, 0);
	CHECK_INT(code2, 0);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_fd_write_callback_and_iovecs),
		PW_TEST(test_efault_at_the_exact_boundary),
		PW_TEST(test_memory_stdin),
		PW_TEST(test_close_and_bad_fds),
		PW_TEST(test_fdstat_and_filestat_layouts),
		PW_TEST(test_seek_whence_both_versions),
		PW_TEST(test_poll_oneoff_layouts),
		PW_TEST(test_args_and_environ),
		PW_TEST(test_clocks_random_and_unsupported),
		PW_TEST(test_preopen_layouts),
		PW_TEST(test_run_start_proc_exit),
	};
	int rc = pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
	pw_artifact_free(g_art);
	pw_imports_free(g_host);
	pw_engine_free(g_engine);
	return rc;
}

#!/usr/bin/env python3
"""Writes a WebAssembly text module that follows OPA's WebAssembly ABI, from a spec.

`opa build -t wasm` is not a Debian package (nor on npm), so the project's own Rego-shaped
fixtures are generated: a module importing env.memory, env.opa_abort, env.opa_println and
env.opa_builtin0..4 and exporting what OPA's SDKs call (opa_malloc, opa_free, opa_json_parse,
opa_value_parse, opa_json_dump, opa_value_dump, opa_heap_ptr_get/set, opa_eval_ctx_*, eval,
builtins, entrypoints, the ABI version globals, and opa_eval for ABI 1.2+). Its values are
JSON texts in the module's heap; each entrypoint does one thing, given in the spec:

  {"name": "case/0", "kind": "builtin", "builtin": "sprintf", "args": [<json>, ...]}
        calls the host builtin through opa_builtinN with the args parsed by the module;
        result [{"result": <value>}] or [] when the host answers 0 (undefined)
  {"name": "echo", "kind": "echo"}      [{"result": {"input": <input>, "data": <data>}}],
                                        [] when the input is undefined
  {"name": "boom", "kind": "abort", "message": "..."}   calls opa_abort(message)
  {"name": "main", "kind": "match", "needle": "...", "then": <result set>, "else": <result set>}
        the result set `then` when the input's JSON text contains `needle`, else `else`;
        with "data_needle": "..." also the data's JSON text must contain it (the host passes
        data as compact JSON with sorted keys, so a needle can spell a path of the document)
  {"name": "c", "kind": "const", "result": <result set>}

Usage: gen_opa_fixture.py SPEC.json OUT.wasm [--minor N] [--metadata JSON] [--wat2wasm PATH]
  --minor N       ABI minor version (default 2; below 2 the module has no opa_eval export, so
                  the SDKs take the eval-context path)
  --metadata JSON an io.kubewarden.metadata custom section with this JSON text
SPEC.json may also be a builtin case table (a JSON list of {"b", "args", ...}, see
tests/host/opa/builtin_cases.json): entrypoint "case/N" then calls case N's builtin.
The WAT text is kept beside OUT.wasm as OUT.wat.
"""
import json
import subprocess
import sys

ENTRY_SIZE = 48
DATA_BASE = 1024
KINDS = {"const": 0, "builtin": 1, "echo": 2, "abort": 3, "match": 4}


def wat_bytes(b):
    out = []
    for c in b:
        if 0x20 <= c < 0x7F and c not in (0x22, 0x5C):
            out.append(chr(c))
        else:
            out.append("\\%02x" % c)
    return "".join(out)


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def main():
    args = sys.argv[1:]
    opts = {"--minor": "2", "--metadata": None, "--wat2wasm": "wat2wasm"}
    for o in list(opts):
        if o in args:
            i = args.index(o)
            opts[o] = args[i + 1]
            del args[i:i + 2]
    minor = int(opts["--minor"])
    spec = json.load(open(args[0], encoding="utf-8"))
    if isinstance(spec, list):
        spec = {"entrypoints": [{"name": "case/%d" % i, "kind": "builtin", "builtin": c["b"],
                                 "args": c["args"]} for i, c in enumerate(spec)]}
    eps = spec["entrypoints"]
    blob = bytearray()

    def put(text, nul=False):
        b = text.encode("utf-8") if isinstance(text, str) else text
        addr = DATA_BASE + len(blob)
        blob.extend(b)
        if nul:
            blob.append(0)
        return addr, len(b)

    builtins = {}
    for ep in eps:
        if ep["kind"] == "builtin" and ep["builtin"] not in builtins:
            builtins[ep["builtin"]] = len(builtins)
    table = bytearray()
    for ep in eps:
        words = [0] * (ENTRY_SIZE // 4)
        words[0] = KINDS[ep["kind"]]
        k = ep["kind"]
        if k == "const":
            words[3], words[4] = put(compact(ep["result"]))
        elif k == "builtin":
            words[1] = builtins[ep["builtin"]]
            words[2] = len(ep["args"])
            for i, a in enumerate(ep["args"]):
                words[3 + 2 * i], words[4 + 2 * i] = put(compact(a))
        elif k == "abort":
            words[3], _ = put(ep["message"], nul=True)
        elif k == "match":
            words[1], words[2] = put(ep["needle"])
            words[3], words[4] = put(compact(ep["then"]))
            words[5], words[6] = put(compact(ep["else"]))
            if ep.get("data_needle"):
                words[7], words[8] = put(ep["data_needle"])
        for w in words:
            table.extend(w.to_bytes(4, "little"))
    while len(blob) % 8:
        blob.append(0)
    table_addr = DATA_BASE + len(blob)
    blob.extend(table)
    bt_addr, bt_len = put(compact(builtins))
    ep_addr, ep_len = put(compact({ep["name"]: i for i, ep in enumerate(eps)}))
    cst = {}
    for name, text in (("undef", "[]"), ("open", '[{"result":'), ("close", "}]"),
                       ("echo1", '[{"result":{"input":'), ("echo2", ',"data":'), ("echo3", "}}]"),
                       ("null", "null"), ("badep", "invalid entrypoint id")):
        cst[name] = put(text, nul=(name == "badep"))
    heap_base = (DATA_BASE + len(blob) + 15) // 16 * 16
    pages = max(2, (heap_base + 65535) // 65536 + 1)

    w = []
    w.append(";; generated by tests/host/opa/gen_opa_fixture.py: do not edit")
    w.append("(module")
    w.append('  (import "env" "memory" (memory %d))' % pages)
    w.append('  (import "env" "opa_abort" (func $opa_abort (param i32)))')
    w.append('  (import "env" "opa_println" (func $opa_println (param i32)))')
    for n in range(5):
        w.append('  (import "env" "opa_builtin%d" (func $b%d (param %s) (result i32)))'
                 % (n, n, " ".join(["i32"] * (n + 2))))
    w.append('  (global $heap (mut i32) (i32.const %d))' % heap_base)
    w.append('  (global (export "opa_wasm_abi_version") i32 (i32.const 1))')
    w.append('  (global (export "opa_wasm_abi_minor_version") i32 (i32.const %d))' % minor)
    w.append('  (data (i32.const %d) "%s")' % (DATA_BASE, wat_bytes(bytes(blob))))
    w.append(r'''
  (func $alloc (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7))
                               (i32.const -8)))
    (block $done (loop $grow
      (br_if $done (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (unreachable)))
      (br $grow)))
    (local.get $p))
  (func $copy (param $d i32) (param $s i32) (param $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (i32.store8 (local.get $d) (i32.load8_u (local.get $s)))
      (local.set $d (i32.add (local.get $d) (i32.const 1)))
      (local.set $s (i32.add (local.get $s) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l))))
  ;; a value: [len][text][0]
  (func $mkval (param $p i32) (param $n i32) (result i32) (local $v i32)
    (local.set $v (call $alloc (i32.add (local.get $n) (i32.const 5))))
    (i32.store (local.get $v) (local.get $n))
    (call $copy (i32.add (local.get $v) (i32.const 4)) (local.get $p) (local.get $n))
    (i32.store8 (i32.add (i32.add (local.get $v) (i32.const 4)) (local.get $n)) (i32.const 0))
    (local.get $v))
  (func $text (param $v i32) (result i32) (i32.add (local.get $v) (i32.const 4)))
  (func $len (param $v i32) (result i32) (i32.load (local.get $v)))
  (func $cat5 (param $p1 i32) (param $l1 i32) (param $p2 i32) (param $l2 i32) (param $p3 i32)
              (param $l3 i32) (param $p4 i32) (param $l4 i32) (param $p5 i32) (param $l5 i32)
              (result i32) (local $v i32) (local $d i32) (local $n i32)
    (local.set $n (i32.add (i32.add (i32.add (local.get $l1) (local.get $l2))
                                    (i32.add (local.get $l3) (local.get $l4))) (local.get $l5)))
    (local.set $v (call $alloc (i32.add (local.get $n) (i32.const 5))))
    (i32.store (local.get $v) (local.get $n))
    (local.set $d (i32.add (local.get $v) (i32.const 4)))
    (call $copy (local.get $d) (local.get $p1) (local.get $l1))
    (local.set $d (i32.add (local.get $d) (local.get $l1)))
    (call $copy (local.get $d) (local.get $p2) (local.get $l2))
    (local.set $d (i32.add (local.get $d) (local.get $l2)))
    (call $copy (local.get $d) (local.get $p3) (local.get $l3))
    (local.set $d (i32.add (local.get $d) (local.get $l3)))
    (call $copy (local.get $d) (local.get $p4) (local.get $l4))
    (local.set $d (i32.add (local.get $d) (local.get $l4)))
    (call $copy (local.get $d) (local.get $p5) (local.get $l5))
    (i32.store8 (i32.add (local.get $d) (local.get $l5)) (i32.const 0))
    (local.get $v))
  (func $contains (param $h i32) (param $hn i32) (param $n i32) (param $nn i32) (result i32)
        (local $i i32) (local $j i32)
    (block $no (loop $outer
      (br_if $no (i32.gt_u (i32.add (local.get $i) (local.get $nn)) (local.get $hn)))
      (local.set $j (i32.const 0))
      (block $miss (loop $inner
        (if (i32.eq (local.get $j) (local.get $nn)) (then (return (i32.const 1))))
        (br_if $miss (i32.ne (i32.load8_u (i32.add (local.get $h) (i32.add (local.get $i) (local.get $j))))
                             (i32.load8_u (i32.add (local.get $n) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $inner)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $outer)))
    (i32.const 0))
  (func $arg (param $e i32) (param $i i32) (result i32)
    (call $mkval (i32.load (i32.add (local.get $e) (i32.add (i32.const 12) (i32.shl (local.get $i) (i32.const 3)))))
                 (i32.load (i32.add (local.get $e) (i32.add (i32.const 16) (i32.shl (local.get $i) (i32.const 3)))))))
''')
    w.append('''  (func $run (param $ep i32) (param $input i32) (param $data i32) (result i32)
        (local $e i32) (local $k i32) (local $r i32) (local $id i32)
    (if (i32.ge_u (local.get $ep) (i32.const %d)) (then (call $opa_abort (i32.const %d)) (unreachable)))
    (local.set $e (i32.add (i32.const %d) (i32.mul (local.get $ep) (i32.const %d))))
    (local.set $k (i32.load (local.get $e)))
    (local.set $id (i32.load offset=4 (local.get $e)))''' % (len(eps), cst["badep"][0], table_addr, ENTRY_SIZE))
    w.append('''    (if (i32.eqz (local.get $k))
      (then (return (call $mkval (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))))))
    (if (i32.eq (local.get $k) (i32.const 3))
      (then (call $opa_abort (i32.load offset=12 (local.get $e))) (unreachable)))
    (if (i32.eq (local.get $k) (i32.const 4))
      (then
        (if (i32.and (i32.and (i32.ne (local.get $input) (i32.const 0))
                              (call $contains (call $text (local.get $input)) (call $len (local.get $input))
                                              (i32.load offset=4 (local.get $e)) (i32.load offset=8 (local.get $e))))
                     (i32.or (i32.eqz (i32.load offset=32 (local.get $e)))
                             (i32.and (i32.ne (local.get $data) (i32.const 0))
                                      (call $contains (call $text (local.get $data)) (call $len (local.get $data))
                                                      (i32.load offset=28 (local.get $e))
                                                      (i32.load offset=32 (local.get $e))))))
          (then (return (call $mkval (i32.load offset=12 (local.get $e)) (i32.load offset=16 (local.get $e))))))
        (return (call $mkval (i32.load offset=20 (local.get $e)) (i32.load offset=24 (local.get $e))))))''')
    w.append('''    (if (i32.eq (local.get $k) (i32.const 2))
      (then
        (if (i32.eqz (local.get $input)) (then (return (call $mkval (i32.const %d) (i32.const %d)))))
        (if (i32.eqz (local.get $data)) (then (local.set $data (call $mkval (i32.const %d) (i32.const %d)))))
        (return (call $cat5 (i32.const %d) (i32.const %d)
                            (call $text (local.get $input)) (call $len (local.get $input))
                            (i32.const %d) (i32.const %d)
                            (call $text (local.get $data)) (call $len (local.get $data))
                            (i32.const %d) (i32.const %d)))))''' % (
        cst["undef"] + cst["null"] + cst["echo1"] + cst["echo2"] + cst["echo3"]))
    w.append('''    (block $call (block $n4 (block $n3 (block $n2 (block $n1 (block $n0
      (br_table $n0 $n1 $n2 $n3 $n4 $n4 (i32.load offset=8 (local.get $e))))
      (local.set $r (call $b0 (local.get $id) (i32.const 0))) (br $call))
      (local.set $r (call $b1 (local.get $id) (i32.const 0) (call $arg (local.get $e) (i32.const 0)))) (br $call))
      (local.set $r (call $b2 (local.get $id) (i32.const 0) (call $arg (local.get $e) (i32.const 0))
                         (call $arg (local.get $e) (i32.const 1)))) (br $call))
      (local.set $r (call $b3 (local.get $id) (i32.const 0) (call $arg (local.get $e) (i32.const 0))
                         (call $arg (local.get $e) (i32.const 1)) (call $arg (local.get $e) (i32.const 2)))) (br $call))
      (local.set $r (call $b4 (local.get $id) (i32.const 0) (call $arg (local.get $e) (i32.const 0))
                         (call $arg (local.get $e) (i32.const 1)) (call $arg (local.get $e) (i32.const 2))
                         (call $arg (local.get $e) (i32.const 3)))))
    (if (i32.eqz (local.get $r)) (then (return (call $mkval (i32.const %d) (i32.const %d)))))
    (call $cat5 (i32.const %d) (i32.const %d) (call $text (local.get $r)) (call $len (local.get $r))
                (i32.const %d) (i32.const %d) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))''' % (
        cst["undef"] + cst["open"] + cst["close"]))
    w.append('''  (func (export "opa_malloc") (param i32) (result i32) (call $alloc (local.get 0)))
  (func (export "opa_free") (param i32))
  (func $parse (export "opa_json_parse") (param i32 i32) (result i32)
    (if (i32.eqz (local.get 1)) (then (return (i32.const 0))))
    (call $mkval (local.get 0) (local.get 1)))
  (func (export "opa_value_parse") (param i32 i32) (result i32) (call $parse (local.get 0) (local.get 1)))
  (func (export "opa_json_dump") (param i32) (result i32) (call $text (local.get 0)))
  (func (export "opa_value_dump") (param i32) (result i32) (call $text (local.get 0)))
  (func (export "opa_heap_ptr_get") (result i32) (global.get $heap))
  (func (export "opa_heap_ptr_set") (param i32) (global.set $heap (local.get 0)))
  (func (export "opa_eval_ctx_new") (result i32) (local $c i32)
    (local.set $c (call $alloc (i32.const 16)))
    (i64.store (local.get $c) (i64.const 0)) (i64.store offset=8 (local.get $c) (i64.const 0))
    (local.get $c))
  (func (export "opa_eval_ctx_set_input") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "opa_eval_ctx_set_data") (param i32 i32) (i32.store offset=4 (local.get 0) (local.get 1)))
  (func (export "opa_eval_ctx_set_entrypoint") (param i32 i32) (i32.store offset=8 (local.get 0) (local.get 1)))
  (func (export "opa_eval_ctx_get_result") (param i32) (result i32) (i32.load offset=12 (local.get 0)))
  (func (export "eval") (param $c i32) (result i32)
    (i32.store offset=12 (local.get $c)
      (call $run (i32.load offset=8 (local.get $c)) (i32.load (local.get $c)) (i32.load offset=4 (local.get $c))))
    (i32.const 0))
  (func (export "builtins") (result i32) (call $mkval (i32.const %d) (i32.const %d)))
  (func (export "entrypoints") (result i32) (call $mkval (i32.const %d) (i32.const %d)))''' % (
        bt_addr, bt_len, ep_addr, ep_len))
    if minor >= 2:
        w.append('''  (func (export "opa_eval") (param $r i32) (param $ep i32) (param $data i32) (param $in i32)
        (param $inlen i32) (param $heap i32) (param $fmt i32) (result i32) (local $input i32)
    (global.set $heap (local.get $heap))
    (if (local.get $inlen) (then (local.set $input (call $mkval (local.get $in) (local.get $inlen)))))
    (call $text (call $run (local.get $ep) (local.get $input) (local.get $data))))''')
    w.append(")")
    out = args[1]
    wat = out[:-5] + ".wat" if out.endswith(".wasm") else out + ".wat"
    with open(wat, "w", encoding="utf-8") as f:
        f.write("\n".join(w) + "\n")
    subprocess.run([opts["--wat2wasm"], wat, "-o", out], check=True)
    if opts["--metadata"] is not None:
        append_custom_section(out, "io.kubewarden.metadata", opts["--metadata"].encode("utf-8"))


def leb128(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def append_custom_section(path, name, payload):
    body = leb128(len(name)) + name.encode("utf-8") + payload
    with open(path, "ab") as f:
        f.write(b"\x00" + leb128(len(body)) + body)


if __name__ == "__main__":
    main()

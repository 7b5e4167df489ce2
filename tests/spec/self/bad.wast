;; Prewarm's own check that the spec-test runner reports failures: every assertion below
;; is WRONG on purpose and must be counted as a failure (see tests/spec/selftest.sh).
(module
  (func (export "one") (result i32) (i32.const 1))
  (func (export "fid") (param f32) (result f32) (local.get 0))
  (func (export "neg") (param f64) (result f64) (f64.neg (local.get 0)))
  (func (export "unreachable") (unreachable))
  (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
)
(assert_return (invoke "one") (i32.const 2))
(assert_return (invoke "fid" (f32.const nan:0x200000)) (f32.const nan:arithmetic))
(assert_return (invoke "fid" (f32.const nan:0x400001)) (f32.const nan:canonical))
(assert_return (invoke "neg" (f64.const 0)) (f64.const 0))
(assert_trap (invoke "one") "unreachable")
(assert_trap (invoke "unreachable") "integer divide by zero")
(assert_return (invoke "div" (i32.const 1) (i32.const 0)) (i32.const 0))
(assert_invalid (module (func (result i32) (i32.const 0))) "type mismatch")
(module
  (type $v (func))
  (table 2 funcref)
  (elem (i32.const 0) $f)
  (func $f)
  (func (export "ci") (param i32) (call_indirect (type $v) (local.get 0))))
(assert_trap (invoke "ci" (i32.const 1)) "undefined element")

# cmake -DIN=header -DOUT=file.c -P embed.cmake: writes `const char pw_rt_header_text[]`
# (the bytes of IN, NUL-terminated) and `const unsigned long pw_rt_header_len`.
file(READ ${IN} _hex HEX)
string(LENGTH "${_hex}" _n)
math(EXPR _len "${_n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" _bytes "${_bytes}")
file(WRITE ${OUT} "/* Generated from src/engine/rt/wasm-rt.h by embed.cmake: do not edit. */\n"
  "extern const char pw_rt_header_text[];\nextern const unsigned long pw_rt_header_len;\n"
  "const char pw_rt_header_text[] = {\n${_bytes}0x00 };\n"
  "const unsigned long pw_rt_header_len = ${_len};\n")

# The engine part: embeds the runtime header (src/engine/rt/wasm-rt.h) into the
# library as a C string (pw_rt_header_text), so every compile writes exactly the
# header the engine hash covers, and the binary needs no file at run time.
set(_pw_rt_hdr ${CMAKE_SOURCE_DIR}/src/engine/rt/wasm-rt.h)
set(_pw_rt_gen ${CMAKE_BINARY_DIR}/generated/pw_rt_header.c)
add_custom_command(OUTPUT ${_pw_rt_gen}
  COMMAND ${CMAKE_COMMAND} -DIN=${_pw_rt_hdr} -DOUT=${_pw_rt_gen}
          -P ${CMAKE_SOURCE_DIR}/src/engine/rt/embed.cmake
  DEPENDS ${_pw_rt_hdr} ${CMAKE_SOURCE_DIR}/src/engine/rt/embed.cmake VERBATIM)
target_sources(pw_engine PRIVATE ${_pw_rt_gen})

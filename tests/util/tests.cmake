pw_add_c_test(test_util ${CMAKE_SOURCE_DIR}/tests/util/test_util.c pw_util)

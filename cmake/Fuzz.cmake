# The fuzz preset turns this on: the reference library (everything kvfid parses) and
# tests/fuzz's libFuzzer harnesses, built by clang with coverage for the fuzzer and
# ASan+UBSan, every sanitizer report fatal. tools/fuzz builds and runs them.
option(KVFID_FUZZ "Build the libFuzzer harnesses of tests/fuzz (clang only)" OFF)
if(KVFID_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KVFID_FUZZ needs clang (libFuzzer); configure with the fuzz preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# The asan preset turns this on: tests/fuzz's libFuzzer harnesses of everything kvfid
# parses, in the same clang ASan+UBSan tree as the sanitized tests, the code compiled
# with the fuzzer's coverage (inert in the test binaries: its callbacks have weak
# defaults in the sanitizer runtime) except where fuzz_coverage_ignore.txt says no input
# reaches. tools/fuzz runs them.
option(KVFID_FUZZ "Build the libFuzzer harnesses of tests/fuzz (clang, with KVFID_SANITIZE)" OFF)
if(KVFID_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR NOT KVFID_SANITIZE)
    message(FATAL_ERROR "KVFID_FUZZ needs clang (libFuzzer) and KVFID_SANITIZE; configure with the asan preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link
                      -fsanitize-coverage-ignorelist=${CMAKE_CURRENT_LIST_DIR}/fuzz_coverage_ignore.txt)
endif()

# Every dependency is a Debian package (see README); tools/setup installs them.
find_package(Threads REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.10 REQUIRED)

find_path(MPFR_INCLUDE_DIR mpfr.h REQUIRED)
# Static MPFR and GMP: binaries that carry to another machine (the gpu preset), and
# faster ones (the default preset): linked into an executable, MPFR's thread-local state
# (exponent range, flags, read by every operation) is reached directly instead of through
# __tls_get_addr, which took 7% of a golden's time (perf, stories260K 128 tokens; the
# forward at 192 bits 1.50 -> 1.41 s, at 128 bits 1.18 -> 1.09 s).
option(KVFID_STATIC_NUMERICS "Link MPFR and GMP statically" OFF)
if(KVFID_STATIC_NUMERICS)
  find_library(MPFR_STATIC_LIBRARY NAMES libmpfr.a REQUIRED)
  find_library(GMP_STATIC_LIBRARY NAMES libgmp.a REQUIRED)
  set(kvfid_numeric_libraries ${MPFR_STATIC_LIBRARY} ${GMP_STATIC_LIBRARY})
else()
  find_library(MPFR_LIBRARY NAMES mpfr REQUIRED)
  find_library(GMP_LIBRARY NAMES gmp REQUIRED)
  set(kvfid_numeric_libraries ${MPFR_LIBRARY} ${GMP_LIBRARY})
endif()
add_library(kvfid::mpfr INTERFACE IMPORTED)
target_include_directories(kvfid::mpfr INTERFACE ${MPFR_INCLUDE_DIR})
target_link_libraries(kvfid::mpfr INTERFACE ${kvfid_numeric_libraries})

if(BUILD_TESTING OR NOT DEFINED BUILD_TESTING)
  find_package(GTest REQUIRED)
  find_package(rapidcheck REQUIRED)
endif()
find_package(benchmark QUIET)

# OpenMPI is optional, like CUDA: when found (Debian: libopenmpi-dev), `mpirun -np N
# kvfid golden` shares the golden's work across N ranks (reference/dist/). Without it
# kvfid runs as one process and refuses an MPI launch of more than one rank.
set(KVFID_MPI AUTO CACHE STRING "Build MPI support for kvfid golden: AUTO, ON or OFF")
set_property(CACHE KVFID_MPI PROPERTY STRINGS AUTO ON OFF)

set(KVFID_HAVE_MPI OFF)
if(NOT KVFID_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(KVFID_HAVE_MPI ON)
    find_program(KVFID_MPIRUN NAMES mpirun mpiexec HINTS ${MPIEXEC_EXECUTABLE})
  elseif(KVFID_MPI STREQUAL "ON")
    message(FATAL_ERROR "KVFID_MPI=ON but no MPI for C++ was found (install libopenmpi-dev)")
  endif()
endif()
message(STATUS "kvfid: MPI support ${KVFID_HAVE_MPI}")

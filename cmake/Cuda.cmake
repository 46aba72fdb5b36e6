# CUDA is optional: the engine's CPU twin carries every test without a GPU.
# KVFID_CUDA=AUTO builds the kernels when nvcc is found (it is at /usr/local/cuda in CI).
set(KVFID_CUDA AUTO CACHE STRING "Build the CUDA engine: AUTO, ON or OFF")
set_property(CACHE KVFID_CUDA PROPERTY STRINGS AUTO ON OFF)

set(KVFID_HAVE_CUDA OFF)
if(NOT KVFID_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    set(KVFID_HAVE_CUDA ON)
  elseif(KVFID_CUDA STREQUAL "ON")
    message(FATAL_ERROR "KVFID_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

if(KVFID_HAVE_CUDA)
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  find_package(CUDAToolkit REQUIRED)
  # Bit-exactness with the CPU twin: no contraction of a*b+c into FMA (only explicit fmaf),
  # IEEE division and square root, denormals kept.
  set(KVFID_CUDA_FLAGS -fmad=false --prec-div=true --prec-sqrt=true --ftz=false)
endif()
message(STATUS "kvfid: CUDA engine ${KVFID_HAVE_CUDA}")

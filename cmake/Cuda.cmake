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
    # Only sm_90 (H100/H200) unless the user names others: it keeps nvcc's time down,
    # and CMake would otherwise pick the compiler's default (sm_75 for nvcc 13).
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(KVFID_HAVE_CUDA ON)
  elseif(KVFID_CUDA STREQUAL "ON")
    message(FATAL_ERROR "KVFID_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

if(KVFID_HAVE_CUDA)
  # CMake 3.25's table of nvcc dialects stops at C++17: the kernels' dialect level is
  # declared as 17 and its flag made nvcc's C++20 one.
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA17_STANDARD_COMPILE_OPTION -std=c++20)
  set(CMAKE_CUDA17_EXTENSION_COMPILE_OPTION -std=c++20)
  find_package(CUDAToolkit REQUIRED)
  # Bit-exactness with the CPU twin: no contraction of a*b+c into FMA (only explicit fmaf),
  # IEEE division and square root, denormals kept.
  set(KVFID_CUDA_FLAGS -fmad=false --prec-div=true --prec-sqrt=true --ftz=false)
endif()
message(STATUS "kvfid: CUDA engine ${KVFID_HAVE_CUDA}")

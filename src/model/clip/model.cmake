# fs_clip_model: CLIP weights (safetensors) and the vision/text towers. Included from
# src/model/CMakeLists.txt; paths are relative to this file's folder.
# oneDNN (libdnnl-dev). Found by hand: Debian's dnnl-config.cmake insists on OpenCL headers.
if(NOT TARGET fs_dnnl)
  find_library(FS_DNNL_LIBRARY NAMES dnnl REQUIRED)
  find_path(FS_DNNL_INCLUDE_DIR NAMES dnnl.hpp REQUIRED)
  add_library(fs_dnnl INTERFACE)
  target_link_libraries(fs_dnnl INTERFACE ${FS_DNNL_LIBRARY})
  target_include_directories(fs_dnnl SYSTEM INTERFACE ${FS_DNNL_INCLUDE_DIR})
endif()
find_package(OpenMP REQUIRED)

set(_clip ${CMAKE_CURRENT_LIST_DIR})

# The one translation unit built for AVX-512; everything else stays at the default ISA.
add_library(fs_clip_kernels STATIC
  ${_clip}/kernels/clip_kernels_scalar.cpp
  ${_clip}/kernels/clip_kernels_avx512.cpp
  ${_clip}/kernels/clip_gemm.cpp)
set_source_files_properties(${_clip}/kernels/clip_kernels_avx512.cpp PROPERTIES
  COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mfma;-Wno-uninitialized;-Wno-maybe-uninitialized")
# (GCC 12 warns falsely about the _mm512_undefined_* inside its own masked intrinsics.)
target_include_directories(fs_clip_kernels PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fs_clip_kernels PUBLIC fs_core PRIVATE fs_dnnl OpenMP::OpenMP_CXX filesearch_warnings)

add_library(fs_clip_model STATIC
  ${_clip}/clip_config.cpp
  ${_clip}/clip_model.cpp
  ${_clip}/safetensors.cpp)
target_include_directories(fs_clip_model PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fs_clip_model PUBLIC fs_core PRIVATE fs_clip_kernels OpenMP::OpenMP_CXX
  nlohmann_json::nlohmann_json filesearch_warnings)

filesearch_test(clip_kernels_test
  SOURCES ${_clip}/kernels/clip_kernels_test.cpp
  LIBS fs_clip_kernels)
filesearch_test(clip_model_test
  SOURCES ${_clip}/clip_model_test.cpp ${_clip}/clip_test_util.cpp
  LIBS fs_clip_model nlohmann_json::nlohmann_json)
filesearch_test(xlmr_model_test
  SOURCES ${_clip}/xlmr_model_test.cpp ${_clip}/clip_test_util.cpp
  LIBS fs_clip_model nlohmann_json::nlohmann_json)
filesearch_test(clip_model_b32_test
  SOURCES ${_clip}/clip_model_b32_test.cpp ${_clip}/clip_test_util.cpp
  LIBS fs_clip_model nlohmann_json::nlohmann_json
  LABELS integration)
if(TARGET clip_model_b32_test)
  set_tests_properties(clip_model_b32_test PROPERTIES TIMEOUT 600)
endif()

option(FILESEARCH_BUILD_CLIP_BENCH "Build clip_bench (also built with FILESEARCH_BUILD_BENCH)" OFF)
if(FILESEARCH_BUILD_BENCH OR FILESEARCH_BUILD_CLIP_BENCH)
  add_executable(clip_bench ${_clip}/clip_bench.cpp)
  target_link_libraries(clip_bench PRIVATE fs_clip_model filesearch_warnings)
endif()

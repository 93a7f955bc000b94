# fs_clip_preprocess: decoded RGB8 -> CLIP's normalised 3 x 224 x 224 input (Pillow-exact bicubic).
# Included from src/model/CMakeLists.txt; paths are relative to src/model/.
add_library(fs_clip_preprocess STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/clip/preprocess.cpp)
target_link_libraries(fs_clip_preprocess PUBLIC fs_core PRIVATE filesearch_warnings)

filesearch_test(clip_preprocess_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/clip/preprocess_test.cpp
  LIBS fs_clip_preprocess)

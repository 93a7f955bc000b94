# filesearch_warnings: an INTERFACE target every first-party target links to.
add_library(filesearch_warnings INTERFACE)
target_compile_options(filesearch_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  $<$<CONFIG:Debug>:-Wconversion -Wsign-conversion>
  $<$<BOOL:${FILESEARCH_WERROR}>:-Werror>)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(filesearch_warnings INTERFACE -Wthread-safety)
endif()

# fs_model_hub: model download from the Hugging Face hub (HTTPS via cpp-httplib + OpenSSL).
add_library(fs_model_hub STATIC ${CMAKE_CURRENT_LIST_DIR}/hub_download.cpp)
target_include_directories(fs_model_hub PUBLIC ${PROJECT_SOURCE_DIR}/src)
if(NOT TARGET PkgConfig::HTTPLIB)
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
endif()
target_link_libraries(fs_model_hub PUBLIC fs_core PRIVATE PkgConfig::HTTPLIB OpenSSL::Crypto filesearch_warnings)

filesearch_test(model_hub_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/hub_download_test.cpp
  LIBS fs_model_hub PkgConfig::HTTPLIB OpenSSL::Crypto)

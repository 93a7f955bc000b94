# fs_clip_tokenizer: the text tokenizers (src/model/clip/text_tokenizer.h): CLIP's BPE
# (tokenizer.h) and XLM-R's SentencePiece Unigram (xlmr_tokenizer.h). Included from
# src/model/CMakeLists.txt. Its Unicode tables (categories, NFC, lower-casing) are generated at build
# time from the Unicode Character Database that Debian's `unicode-data` package installs.
set(FILESEARCH_UNICODE_DATA_DIR "/usr/share/unicode" CACHE PATH
    "Unicode Character Database (UnicodeData.txt, ...) for the CLIP tokenizer's tables")
if(NOT EXISTS "${FILESEARCH_UNICODE_DATA_DIR}/UnicodeData.txt")
  message(FATAL_ERROR "The CLIP tokenizer needs the Unicode Character Database in "
    "${FILESEARCH_UNICODE_DATA_DIR}: run scripts/setup (installs Debian's unicode-data) or set "
    "-DFILESEARCH_UNICODE_DATA_DIR=DIR")
endif()
find_package(Python3 REQUIRED COMPONENTS Interpreter)
find_package(ZLIB REQUIRED)

set(_clip_dir ${CMAKE_CURRENT_SOURCE_DIR}/clip)
set(_clip_gen ${CMAKE_CURRENT_BINARY_DIR}/clip_gen)
set(_clip_tables ${_clip_gen}/model/clip/clip_unicode_tables.inc)
set(_ucd ${FILESEARCH_UNICODE_DATA_DIR})
add_custom_command(
  OUTPUT ${_clip_tables}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_clip_gen}/model/clip
  COMMAND Python3::Interpreter ${_clip_dir}/gen_unicode_tables.py ${_ucd} ${_clip_tables}
  DEPENDS ${_clip_dir}/gen_unicode_tables.py ${_ucd}/UnicodeData.txt ${_ucd}/SpecialCasing.txt
          ${_ucd}/DerivedNormalizationProps.txt ${_ucd}/DerivedCoreProperties.txt
          ${_ucd}/PropList.txt
  COMMENT "Generating CLIP tokenizer Unicode tables from ${_ucd}"
  VERBATIM)

add_library(fs_clip_tokenizer STATIC
  ${_clip_dir}/tokenizer.cpp
  ${_clip_dir}/xlmr_tokenizer.cpp
  ${_clip_dir}/unicode.cpp
  ${_clip_tables})
target_include_directories(fs_clip_tokenizer
  PUBLIC ${PROJECT_SOURCE_DIR}/src
  PRIVATE ${_clip_gen})
target_link_libraries(fs_clip_tokenizer
  PUBLIC fs_core
  PRIVATE nlohmann_json::nlohmann_json ZLIB::ZLIB filesearch_warnings)

filesearch_test(clip_tokenizer_test
  SOURCES ${_clip_dir}/tokenizer_test.cpp ${_clip_dir}/unicode_test.cpp ${_clip_dir}/tokenizer_corpus.cpp
  LIBS fs_clip_tokenizer nlohmann_json::nlohmann_json)

# Ids against the Hugging Face tokenizer (node + @huggingface/tokenizers from tests/node).
filesearch_test(clip_tokenizer_hf_test
  SOURCES ${_clip_dir}/tokenizer_hf_test.cpp ${_clip_dir}/tokenizer_corpus.cpp
  LIBS fs_clip_tokenizer nlohmann_json::nlohmann_json
  LABELS integration)

# XLM-R: the published test vectors and synthetic tokenizer.json files (unit), and ids against the
# Hugging Face tokenizer's Rust core (node + the `tokenizers` npm package from tests/node).
filesearch_test(xlmr_tokenizer_test
  SOURCES ${_clip_dir}/xlmr_tokenizer_test.cpp
  LIBS fs_clip_tokenizer nlohmann_json::nlohmann_json)
filesearch_test(xlmr_tokenizer_hf_test
  SOURCES ${_clip_dir}/xlmr_tokenizer_hf_test.cpp ${_clip_dir}/tokenizer_corpus.cpp
  LIBS fs_clip_tokenizer nlohmann_json::nlohmann_json
  LABELS integration)

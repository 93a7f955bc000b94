# FILESEARCH_SANITIZE=address|undefined|thread|address,undefined applies to every target.
if(FILESEARCH_SANITIZE)
  message(STATUS "filesearch: sanitizers ${FILESEARCH_SANITIZE}")
  add_compile_options(-fsanitize=${FILESEARCH_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${FILESEARCH_SANITIZE})
endif()

# The asan preset turns this on (with clang): the reference, the loaders and the fuzz
# harnesses run under ASan+UBSan in CI.
option(KVFID_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
if(KVFID_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

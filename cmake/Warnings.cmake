# Warnings for all of our targets (not for third-party headers, which come in as SYSTEM).
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
                    -Wcast-align -Wunused -Wformat=2 -Wimplicit-fallthrough
                    # C++ only (the C ABI test is compiled as C):
                    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>
                    $<$<COMPILE_LANGUAGE:CXX>:-Wold-style-cast>
                    $<$<COMPILE_LANGUAGE:CXX>:-Woverloaded-virtual>)
if(VTPM_WERROR)
  add_compile_options(-Werror)
endif()
if(VTPM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
  # Code that must behave differently under the sanitizers asks for this (e.g. the seccomp
  # default: LeakSanitizer stops the world with ptrace at exit).
  add_compile_definitions(VTPM_SANITIZED=1)
endif()

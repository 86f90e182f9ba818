# Warnings for all of our targets (not for third-party headers, which come in as SYSTEM).
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
                    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused
                    -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough)
if(VTPM_WERROR)
  add_compile_options(-Werror)
endif()
if(VTPM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()

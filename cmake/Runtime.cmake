# How the programs that users start (vtpm, and bench/startup_floor which stands in for it) are
# linked. Every vtpm process pays for its start-up with the dynamic loader's work and page faults
# for each shared library, and one instance runs per VM: so libstdc++ and libgcc are linked in
# statically, and so are spdlog and fmt (compiled once, src/base/logging_impl.cc), unused sections are
# dropped and relative relocations are packed (DT_RELR, glibc >= 2.36). What stays dynamic:
# libc, libtpms and libcrypto (libtpms links libcrypto itself, so a second static copy would be
# wrong). Measured in bench/ (vtpm_compare's start-up and memory rows); see docs/ARCHITECTURE.md.
if(NOT VTPM_SANITIZE)
  add_compile_options(-ffunction-sections -fdata-sections)
endif()

function(vtpm_lean_executable target)
  if(VTPM_SANITIZE)
    return()  # the sanitizer runtimes expect the shared libstdc++
  endif()
  target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc -Wl,--gc-sections
                      -Wl,-O1 -Wl,-z,pack-relative-relocs)
endfunction()

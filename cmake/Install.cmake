# `cmake --install`: what a VMM builds against (docs/ARCHITECTURE.md, "Embedding: the installed
# library").
#   libvtpm.so.0 + include/vtpm/vtpm_device.h   the C ABI: the stable interface (any toolchain)
#   libvtpm_*.a  + include/vtpm/cxx/...         the C++ device API, for the same toolchain
#   lib/cmake/vtpm/vtpmConfig.cmake             targets vtpm::vtpm (C) and vtpm::cxx (C++)
#   lib/pkgconfig/vtpm.pc                       the C library for pkg-config users
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The C++ API: the device models, backends, ACPI builders and the state directory, with the
# headers they include (and nothing private: the daemon, the sandbox, provisioning, the op queue).
set(VTPM_CXX_HEADERS
    acpi/tpm_tables.h
    backend/in_process_backend.h backend/queued_backend.h backend/swtpm_socket_backend.h
    base/bytes.h base/crc32.h base/log.h base/result.h base/socket_io.h base/unique_fd.h
    client/ctrl_client.h
    device/bus_device.h device/crb.h device/crb_state.h device/device_shell.h device/mmio.h
    device/regs.h device/tis.h device/tis_state.h device/tpm_backend.h
    engine/engine.h
    state/blob.h state/dir_store.h state/nv_store.h state/state_key.h
    wire/swtpm_ctrl.h wire/tpm_constants.h wire/tpm_header.h)
foreach(_h IN LISTS VTPM_CXX_HEADERS)
  get_filename_component(_dir ${_h} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/src/${_h}
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vtpm/cxx/${_dir})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/include/vtpm/vtpm_device.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vtpm)

set(VTPM_CXX_LIBS vtpm_base vtpm_wire vtpm_tpmcmd vtpm_state vtpm_engine vtpm_device vtpm_client
                  vtpm_backend vtpm_acpi)
add_library(vtpm_cxx INTERFACE)
target_link_libraries(vtpm_cxx INTERFACE ${VTPM_CXX_LIBS})
set_target_properties(vtpm_cxx PROPERTIES EXPORT_NAME cxx)
set_target_properties(vtpm_shared PROPERTIES EXPORT_NAME vtpm)
install(TARGETS vtpm_shared ${VTPM_CXX_LIBS} vtpm_cxx EXPORT vtpmTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT vtpmTargets NAMESPACE vtpm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtpm)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/vtpmConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/vtpmConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtpm)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/vtpmConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/vtpmConfig.cmake ${PROJECT_BINARY_DIR}/vtpmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtpm)
file(RELATIVE_PATH VTPM_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/vtpm.pc.in ${PROJECT_BINARY_DIR}/vtpm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/vtpm.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

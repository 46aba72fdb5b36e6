# cmake --install: the reference library (exact ops, goldens, the gate) and the
# GoogleTest matchers as a CMake package for other engines' test suites:
#   find_package(kvfid CONFIG REQUIRED)
#   target_link_libraries(my_tests PRIVATE kvfid::testing)   # or kvfid::reference
# Headers go under include/kvfid/reference/..., included as "reference/...".
include(CMakePackageConfigHelpers)

set(kvfid_installed kvfid_reference)
if(TARGET kvfid_testing)
  list(APPEND kvfid_installed kvfid_testing)
endif()
install(TARGETS ${kvfid_installed} EXPORT kvfidTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/reference/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kvfid/reference
        FILES_MATCHING PATTERN "*.h" PATTERN "dist" EXCLUDE)
set(kvfid_config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kvfid)
install(EXPORT kvfidTargets NAMESPACE kvfid:: DESTINATION ${kvfid_config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kvfidConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/kvfidConfig.cmake INSTALL_DESTINATION ${kvfid_config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kvfidConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kvfidConfig.cmake ${PROJECT_BINARY_DIR}/kvfidConfigVersion.cmake
        DESTINATION ${kvfid_config_dir})

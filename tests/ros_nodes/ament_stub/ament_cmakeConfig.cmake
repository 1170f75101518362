# Stand-in for ROS 2's ament_cmake, for tests on machines without ROS 2 (a fake: the real
# package cannot be installed from the package index). Its ament_package() does the two
# things `ros2 launch`/`ros2 run` rely on: package.xml in share/<pkg>, and the package's
# marker in the ament resource index.
macro(ament_package)
  install(FILES ${PROJECT_SOURCE_DIR}/package.xml DESTINATION share/${PROJECT_NAME})
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/ament_index_marker "")
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ament_index_marker
          DESTINATION share/ament_index/resource_index/packages RENAME ${PROJECT_NAME})
endmacro()

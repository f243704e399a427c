# Installs BUILD_DIR into WORK_DIR/prefix, then configures, builds and runs the consumer.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f bin/cpumodel share/cpumodel/models share/man/man1/cpumodel.1
          share/bash-completion/completions/cpumodel lib/cmake/cpumodel/cpumodelConfig.cmake)
  if(NOT EXISTS ${WORK_DIR}/prefix/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G Ninja
  -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer configure failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer build failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer run failed: ${rc}")
endif()
# The installed binary runs and finds a catalog.
execute_process(COMMAND ${WORK_DIR}/prefix/bin/cpumodel expand Haswell-v4 --json
  RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(rc OR NOT out MATCHES "\"model\": \"Haswell-v4\"")
  message(FATAL_ERROR "installed cpumodel expand failed (${rc}): ${out}")
endif()
# It reads its own PREFIX/share/cpumodel, not the source tree it was built from: a model file
# added only to the installed catalog is found.
file(WRITE ${WORK_DIR}/prefix/share/cpumodel/models/zz-site.yaml
  "models:\n  - name: site-test-model\n    base: qemu64\n    versions:\n      - version: 1\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=CPUMODEL_DATA_DIR ${WORK_DIR}/prefix/bin/cpumodel
  show site-test-model RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "site-test-model")
  message(FATAL_ERROR "installed cpumodel did not read its installed catalog (${rc}): ${out}${err}")
endif()

# Installs the built tracetorch into a scratch prefix, then configures, builds and runs
# tests/consumer against it with find_package(tracetorch).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install failed: ${rc}")
endif()
# The exported targets name libraries by target, never by a path of this machine.
file(GLOB_RECURSE targets_files ${WORK_DIR}/prefix/*/tracetorchTargets.cmake)
foreach(f ${targets_files})
  file(READ ${f} text)
  if(text MATCHES "libc10|libtorch[^ ]*\\.so")
    message(FATAL_ERROR "${f} links LibTorch by absolute path")
  endif()
endforeach()
if(NOT targets_files)
  message(FATAL_ERROR "no tracetorchTargets.cmake was installed")
endif()

# The installed program runs from this (non-system) prefix: RPATH finds libtracetorch.
execute_process(COMMAND ${WORK_DIR}/prefix/bin/tracetorch --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "run")
  message(FATAL_ERROR "the installed tracetorch did not run: ${rc} ${out} ${err}")
endif()
file(WRITE ${WORK_DIR}/arch.json [=[{"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
  {"type": "Linear", "in_features": 3, "out_features": 2, "bias": true}, {"type": "snn.LIB", "num_neurons": 2}]}}]=])
execute_process(COMMAND ${WORK_DIR}/prefix/bin/tracetorch arch ${WORK_DIR}/arch.json RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "LIB")
  message(FATAL_ERROR "the installed tracetorch could not read an architecture: ${rc} ${out} ${err}")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configure of the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "build of the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc OR NOT out MATCHES "consumer ok")
  message(FATAL_ERROR "the consumer did not run: ${rc} ${out}")
endif()

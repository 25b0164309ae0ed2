# Run as: cmake -DREADELF=readelf "-DFILES=a;b" -P check-noexecstack.cmake
#
# Fails if any of FILES asks for an executable stack (a PT_GNU_STACK header
# with the E flag, or none at all), which is what an assembly file without
# `.section .note.GNU-stack,"",@progbits` does to everything linked with it.
cmake_minimum_required(VERSION 3.20)

if(NOT READELF)
  find_program(READELF readelf)
endif()
cmake_minimum_required(VERSION 3.20)

if(NOT READELF)
  message(FATAL_ERROR "check-noexecstack: readelf not found")
endif()
set(_fail FALSE)
foreach(_f IN LISTS FILES)
  execute_process(COMMAND "${READELF}" -lW "${_f}"
                  OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "check-noexecstack: readelf failed on ${_f}")
  endif()
  string(REGEX MATCH "GNU_STACK[^\n]*" _line "${_out}")
  if(NOT _line)
    message("${_f}: no PT_GNU_STACK header (executable stack by default)")
    set(_fail TRUE)
  elseif(_line MATCHES " RWE ")
    message("${_f}: executable stack: ${_line}")
    set(_fail TRUE)
  else()
    message("${_f}: ok: ${_line}")
  endif()
endforeach()
if(_fail)
  message(FATAL_ERROR "check-noexecstack: FAILED")
endif()

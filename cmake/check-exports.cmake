# Run as: cmake -DNM=nm -DLIB=libweft.so -DINCLUDE_DIR=include -P check-exports.cmake
#
# Checks the dynamic symbol table of the shared library:
#   1. every exported (defined) symbol is named weft_*: private functions are
#      hidden (CMAKE_C_VISIBILITY_PRESET hidden) and only WEFT_API leaks out;
#   2. every function declared WEFT_API in the public headers is exported,
#      i.e. is implemented.
cmake_minimum_required(VERSION 3.20)

foreach(_v NM LIB INCLUDE_DIR)
  if(NOT ${_v})
    message(FATAL_ERROR "check-exports: ${_v} not set")
  endif()
endforeach()

execute_process(COMMAND "${NM}" -D --defined-only --format=posix "${LIB}"
                OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "check-exports: ${NM} failed on ${LIB}")
endif()
string(REPLACE "\n" ";" _lines "${_out}")
set(_exported "")
set(_bad "")
foreach(_line IN LISTS _lines)
  if(_line MATCHES "^([^ ]+) ([A-Za-z]) ")
    set(_sym "${CMAKE_MATCH_1}")
    set(_kind "${CMAKE_MATCH_2}")
    # Versioned names (sym@VER) keep only the name.
    string(REGEX REPLACE "@.*$" "" _sym "${_sym}")
    if(_kind STREQUAL "A")
      continue() # absolute symbols: version nodes
    endif()
    if(_sym MATCHES "^_(init|fini|edata|end|_bss_start)$")
      continue()
    endif()
    list(APPEND _exported "${_sym}")
    if(NOT _sym MATCHES "^weft_")
      list(APPEND _bad "${_sym}")
    endif()
  endif()
endforeach()

set(_fail FALSE)
if(_bad)
  string(REPLACE ";" "\n  " _bad_s "${_bad}")
  message("exported symbols not named weft_* (make them static, or they "
          "leak from the shared library):\n  ${_bad_s}")
  set(_fail TRUE)
endif()

file(GLOB_RECURSE _headers "${INCLUDE_DIR}/*.h")
set(_missing "")
set(_declared 0)
foreach(_h IN LISTS _headers)
  file(STRINGS "${_h}" _decls REGEX "^[ \t]*WEFT_API[ \t]")
  foreach(_d IN LISTS _decls)
    if(_d MATCHES "([A-Za-z_][A-Za-z0-9_]*)[ \t]*\\(")
      set(_fn "${CMAKE_MATCH_1}")
      math(EXPR _declared "${_declared} + 1")
      if(NOT _fn IN_LIST _exported)
        list(APPEND _missing "${_fn}")
      endif()
    endif()
  endforeach()
endforeach()
if(_missing)
  string(REPLACE ";" "\n  " _missing_s "${_missing}")
  message("declared WEFT_API in include/ but not exported by ${LIB} "
          "(not implemented?):\n  ${_missing_s}")
  set(_fail TRUE)
endif()

list(LENGTH _exported _n)
if(_fail)
  message(FATAL_ERROR "check-exports: FAILED")
endif()
message("check-exports: ${_n} symbols exported, all weft_*; "
        "${_declared} WEFT_API declarations, all exported")

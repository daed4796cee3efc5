# Links the libraries that have a static archive installed next to their shared object (abseil,
# gRPC, upb, address_sorting, c-ares, re2, protobuf) statically into every binary.
#
# Why: a new branch's start runs several short-lived processes back to back (the CLI, the compute
# agent, pagefs) on a 2-vCPU machine. With these as shared objects each process start binds ~83
# shared libraries (the CLI): ~55% of the CLI's CPU went to the dynamic loader's symbol lookups.
#
# Invariant: a library is either static everywhere or shared everywhere. Nothing that stays
# shared (cpprest, libpq, yaml-cpp, prometheus-cpp, fuse3, OpenSSL, zlib) links any of these, so
# no process ever holds two copies of one library. PGBRANCH_STATIC_DEPS=OFF links them all shared.

option(PGBRANCH_STATIC_DEPS "Link abseil, gRPC, protobuf, c-ares and re2 statically" ON)

# lib/x86_64-linux-gnu/libfoo.so[.N...] -> libfoo.a next to it, if installed; else "".
function(_pgbranch_static_twin shared out)
  set(${out} "" PARENT_SCOPE)
  if(shared MATCHES "^(.*/lib[^/]+)\\.so(\\.[0-9.]+)?$")
    if(EXISTS "${CMAKE_MATCH_1}.a")
      set(${out} "${CMAKE_MATCH_1}.a" PARENT_SCOPE)
    endif()
  endif()
endfunction()

# Points an imported library target at its static archive (every configuration's location).
function(_pgbranch_use_static target)
  if(NOT TARGET ${target})
    return()
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    # re2::re2 (gRPC's Findre2) names the library by its link name or path.
    get_target_property(libs ${target} INTERFACE_LINK_LIBRARIES)
    if(NOT libs)
      return()
    endif()
    set(new_libs "")
    foreach(lib IN LISTS libs)
      set(static "")
      if(lib MATCHES "^/")
        _pgbranch_static_twin("${lib}" static)
      elseif(lib MATCHES "^-l([A-Za-z0-9_+]+)$")
        find_library(_pgbranch_lib_${CMAKE_MATCH_1} NAMES lib${CMAKE_MATCH_1}.a)
        if(_pgbranch_lib_${CMAKE_MATCH_1})
          set(static "${_pgbranch_lib_${CMAKE_MATCH_1}}")
        endif()
      endif()
      if(static)
        list(APPEND new_libs "${static}")
      else()
        list(APPEND new_libs "${lib}")
      endif()
    endforeach()
    set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${new_libs}")
    return()
  endif()
  foreach(prop IMPORTED_LOCATION IMPORTED_LOCATION_NONE IMPORTED_LOCATION_RELEASE
               IMPORTED_LOCATION_RELWITHDEBINFO IMPORTED_LOCATION_DEBUG)
    get_target_property(loc ${target} ${prop})
    if(loc)
      _pgbranch_static_twin("${loc}" static)
      if(static)
        set_target_properties(${target} PROPERTIES ${prop} "${static}")
      endif()
    endif()
  endforeach()
endfunction()

if(PGBRANCH_STATIC_DEPS)
  get_directory_property(_pgbranch_imported IMPORTED_TARGETS)
  foreach(t IN LISTS _pgbranch_imported)
    if(t MATCHES "^(absl::|gRPC::(gpr|grpc|grpc\\+\\+|upb|address_sorting)$|protobuf::libprotobuf$|c-ares::cares$|re2::re2$)")
      _pgbranch_use_static(${t})
    endif()
  endforeach()
endif()

# pgbranch_use_tcmalloc(target): links gperftools' tcmalloc_minimal into `target` when the build
# machine has it (scripts/install-deps.sh installs libgoogle-perftools-dev; the images'
# runtime-packages.txt has libtcmalloc-minimal4), so that it replaces glibc's malloc in that
# process. Without it the target keeps glibc's malloc.
#
# Why: pagefs and the pageserver allocate per request on every commit's path (a FUSE request's
# pages, the commit channel's frames, protobuf's strings of 8 KiB values, the framed log record).
# glibc's malloc took 12% (pagefs) and 18% (the pageserver's commit connection thread) of their
# CPU in pgbench's TPC-B run, with malloc_consolidate and heap trims that fault pages back in;
# docs/pagefs.md "Where TPC-B's CPU goes".
# Not with PGBRANCH_SANITIZE: AddressSanitizer brings its own malloc.
if(NOT PGBRANCH_SANITIZE)
  find_library(PGBRANCH_TCMALLOC NAMES tcmalloc_minimal)
endif()
if(PGBRANCH_TCMALLOC)
  message(STATUS "pagefs and the pageserver use tcmalloc: ${PGBRANCH_TCMALLOC}")
else()
  message(STATUS "tcmalloc_minimal not found (libgoogle-perftools-dev): glibc's malloc")
endif()

function(pgbranch_use_tcmalloc target)
  if(PGBRANCH_TCMALLOC)
    # --no-as-needed: nothing names a tcmalloc symbol, and the library must stay loaded (before
    # libc) to replace malloc.
    target_link_libraries(${target} PRIVATE -Wl,--no-as-needed ${PGBRANCH_TCMALLOC}
                                            -Wl,--as-needed)
  endif()
endfunction()

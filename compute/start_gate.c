// libpgbranch_start_gate.so: preloaded into a postmaster the agent spawns before the branch is
// mounted, so that the dynamic linking of postgres and its ~40 libraries (tens of ms on a
// loaded machine) overlaps the mount instead of following it (postgres_process.h, Prespawn).
//
// Its constructor runs after every library is loaded and relocated, before main(). It tells the
// agent so (one byte 'r' on the descriptor named by PGBRANCH_START_GATE_FD), then blocks until
// the agent answers: 'g' lets PostgreSQL start; anything else, or the agent's end closing,
// makes the process exit with code 1 before main() has touched anything.
//
// The gated argv carries its options with the prefix "pgbranch_gated_" ("-c
// pgbranch_gated_config_file=..."), which the constructor strips on 'g'. PostgreSQL refuses
// such an option (an unknown parameter) before it looks at its data directory, so a postmaster
// the library did not reach (not preloaded) fails at once instead of starting ungated.
//
// Both variables are removed from the environment: PostgreSQL's own children (archive or
// restore commands) start ungated.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PGBRANCH_GATED_PREFIX "pgbranch_gated_"

__attribute__((constructor)) static void pgbranch_start_gate(int argc, char** argv, char** envp) {
  (void)envp;
  const char* fd_text = getenv("PGBRANCH_START_GATE_FD");
  if (fd_text == NULL) return;
  int fd = atoi(fd_text);
  unsetenv("PGBRANCH_START_GATE_FD");
  unsetenv("LD_PRELOAD");
  char c = 'r';
  ssize_t n;
  do {
    n = write(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) _exit(1);
  c = 0;
  do {
    n = read(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n != 1 || c != 'g') _exit(1);
  const size_t len = strlen(PGBRANCH_GATED_PREFIX);
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != NULL && strncmp(argv[i], PGBRANCH_GATED_PREFIX, len) == 0) argv[i] += len;
  }
}

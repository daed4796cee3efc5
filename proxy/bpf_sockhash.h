#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgbranch::proxy {

// A BPF_MAP_TYPE_SOCKHASH with a hand-assembled sk_skb verdict program attached to it
// (BPF_SK_SKB_VERDICT: no stream parser), built with raw bpf(2) calls (no libbpf, no clang).
//
// The program, for every skb arriving on a socket of the map, looks up the *receiving* socket's
// cookie (bpf_get_socket_cookie) as the key and redirects the skb to the egress of the socket
// stored under that key (bpf_sk_redirect_hash, flags 0). A miss drops the skb: callers keep the
// window in which a socket is in the map but its key's target is not as short as possible.
//
// Invariants:
//  - an entry `key -> socket` means "bytes received on the socket whose cookie is `key` are sent
//    out of `socket`"; a spliced pair is two entries, each holding the other's socket;
//  - the kernel removes a socket's entry when the socket is closed, so closed sessions leave
//    nothing behind even if Remove() is never called;
//  - the map and program live as long as this object (closing the map fd frees both).
//
// Needs CAP_BPF + CAP_NET_ADMIN (or root) and Linux >= 5.13 (BPF_SK_SKB_VERDICT). Thread-safe:
// map updates are atomic syscalls.
class BpfSockhash {
 public:
  // Creates the map (up to `max_entries` sockets), loads and attaches the program. The error
  // says which step failed (and carries the verifier log for a refused program).
  static absl::StatusOr<std::unique_ptr<BpfSockhash>> Create(uint32_t max_entries);
  ~BpfSockhash();
  BpfSockhash(const BpfSockhash&) = delete;
  BpfSockhash& operator=(const BpfSockhash&) = delete;

  // Adds `key -> socket_fd` (fails if `key` is present or the map is full). The socket must be
  // an established TCP socket.
  absl::Status Insert(uint64_t key, int socket_fd);
  // Removes the entry; a missing entry (e.g. already dropped at close) is not an error.
  void Remove(uint64_t key);
  // Entries currently in the map (walks the keys; for tests and diagnostics).
  size_t CountEntries() const;

  // The kernel's socket cookie (SO_COOKIE), what the program uses as its key.
  static absl::StatusOr<uint64_t> SocketCookie(int fd);

 private:
  BpfSockhash(int map_fd, int prog_fd) : map_fd_(map_fd), prog_fd_(prog_fd) {}

  const int map_fd_;
  const int prog_fd_;
};

}  // namespace pgbranch::proxy

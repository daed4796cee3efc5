#include "proxy/bpf_sockhash.h"

#include <errno.h>
#include <linux/bpf.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace pgbranch::proxy {
namespace {

// Small instruction builders in the style of the kernel's samples/bpf (the uapi header does
// not define them).
constexpr bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
constexpr bpf_insn Mov64Reg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
constexpr bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
constexpr bpf_insn Add64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm);
}
constexpr bpf_insn StoreDw(uint8_t dst, int16_t off, uint8_t src) {
  return Insn(BPF_STX | BPF_MEM | BPF_DW, dst, src, off, 0);
}
constexpr bpf_insn Call(int32_t helper) { return Insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
constexpr bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
// A 64-bit load of a map's address from its fd: two instruction slots.
constexpr bpf_insn LoadMapFd(uint8_t dst, int fd) {
  return Insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
}
constexpr bpf_insn LoadMapFdHigh() { return Insn(0, 0, 0, 0, 0); }

constexpr uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R6 = 6, R10 = 10;

long Bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

void SetName(char* dst, size_t cap, const char* name) { strncpy(dst, name, cap - 1); }

}  // namespace

absl::StatusOr<std::unique_ptr<BpfSockhash>> BpfSockhash::Create(uint32_t max_entries) {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_SOCKHASH;
  attr.key_size = sizeof(uint64_t);    // socket cookie of the receiving socket
  attr.value_size = sizeof(uint32_t);  // socket fd (on update)
  attr.max_entries = max_entries;
  SetName(attr.map_name, sizeof(attr.map_name), "pgb_splice");
  int map_fd = static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
  if (map_fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the BPF sockhash: ", strerror(errno)));
  }

  // r6 = skb; key = bpf_get_socket_cookie(skb) at fp-8;
  // return bpf_sk_redirect_hash(skb, map, fp-8, 0)   (SK_PASS after redirect, SK_DROP on miss)
  const bpf_insn program[] = {
      Mov64Reg(R6, R1),
      Call(BPF_FUNC_get_socket_cookie),
      StoreDw(R10, -8, R0),
      Mov64Reg(R1, R6),
      LoadMapFd(R2, map_fd),
      LoadMapFdHigh(),
      Mov64Reg(R3, R10),
      Add64Imm(R3, -8),
      Mov64Imm(R4, 0),
      Call(BPF_FUNC_sk_redirect_hash),
      Exit(),
  };
  static const char kLicense[] = "GPL";
  std::string log(16384, '\0');
  attr = bpf_attr{};
  attr.prog_type = BPF_PROG_TYPE_SK_SKB;
  attr.insns = Ptr(program);
  attr.insn_cnt = sizeof(program) / sizeof(program[0]);
  attr.license = Ptr(kLicense);
  attr.log_buf = Ptr(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  SetName(attr.prog_name, sizeof(attr.prog_name), "pgb_redirect");
  int prog_fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (prog_fd < 0) {
    int err = errno;
    close(map_fd);
    log.resize(strnlen(log.data(), log.size()));
    return absl::UnavailableError(
        absl::StrCat("cannot load the sk_skb verdict program: ", strerror(err),
                     log.empty() ? "" : "; verifier: ", log));
  }

  attr = bpf_attr{};
  attr.target_fd = static_cast<uint32_t>(map_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = BPF_SK_SKB_VERDICT;
  if (Bpf(BPF_PROG_ATTACH, &attr) != 0) {
    int err = errno;
    close(prog_fd);
    close(map_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot attach the verdict program to the sockhash: ", strerror(err)));
  }
  return std::unique_ptr<BpfSockhash>(new BpfSockhash(map_fd, prog_fd));
}

BpfSockhash::~BpfSockhash() {
  close(prog_fd_);
  close(map_fd_);
}

absl::Status BpfSockhash::Insert(uint64_t key, int socket_fd) {
  uint32_t value = static_cast<uint32_t>(socket_fd);
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map_fd_);
  attr.key = Ptr(&key);
  attr.value = Ptr(&value);
  attr.flags = BPF_NOEXIST;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &attr) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot add a socket to the sockhash: ", strerror(errno)));
  }
  return absl::OkStatus();
}

void BpfSockhash::Remove(uint64_t key) {
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map_fd_);
  attr.key = Ptr(&key);
  (void)Bpf(BPF_MAP_DELETE_ELEM, &attr);
}

size_t BpfSockhash::CountEntries() const {
  size_t n = 0;
  uint64_t key = 0, next = 0;
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map_fd_);
  attr.key = 0;  // null: the first key
  attr.next_key = Ptr(&next);
  while (Bpf(BPF_MAP_GET_NEXT_KEY, &attr) == 0) {
    ++n;
    key = next;
    attr.key = Ptr(&key);
  }
  return n;
}

absl::StatusOr<uint64_t> BpfSockhash::SocketCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) {
    return absl::UnavailableError(absl::StrCat("SO_COOKIE: ", strerror(errno)));
  }
  return cookie;
}

}  // namespace pgbranch::proxy

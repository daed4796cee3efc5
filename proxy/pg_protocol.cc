#include "proxy/pg_protocol.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pgbranch::proxy {
namespace {

uint32_t ReadU32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void AppendU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

// Overwrites the length word at `offset` with the length of everything from there to the end.
void PatchLength(std::string* out, size_t offset) {
  uint32_t len = static_cast<uint32_t>(out->size() - offset);
  for (int i = 0; i < 4; ++i) (*out)[offset + i] = static_cast<char>(len >> (24 - 8 * i));
}

bool IsOptionSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

absl::StatusOr<size_t> ParseInitialPacketLength(const unsigned char header[4]) {
  uint32_t len = ReadU32(header);
  if (len < 8 || len > kMaxInitialPacketLength) {
    return absl::InvalidArgumentError(absl::StrCat("invalid length of startup packet: ", len));
  }
  return len - 4;
}

absl::StatusOr<InitialPacket> ParseInitialPacket(std::string_view body) {
  if (body.size() < 4) return absl::InvalidArgumentError("startup packet too short");
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  InitialPacket packet;
  uint32_t code = ReadU32(p);
  switch (code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      if (body.size() != 4) return absl::InvalidArgumentError("invalid length of SSL/GSS request");
      packet.kind = code == kSslRequestCode ? InitialPacket::Kind::kSslRequest
                                            : InitialPacket::Kind::kGssEncRequest;
      return packet;
    case kCancelRequestCode:
      if (body.size() != 12) return absl::InvalidArgumentError("invalid length of cancel request");
      packet.kind = InitialPacket::Kind::kCancelRequest;
      packet.cancel_pid = ReadU32(p + 4);
      packet.cancel_key = ReadU32(p + 8);
      return packet;
    default:
      break;
  }
  packet.kind = InitialPacket::Kind::kStartup;
  packet.protocol_version = code;
  if ((code >> 16) != 3) {
    return absl::UnimplementedError(absl::StrCat("unsupported frontend protocol ", code >> 16, ".",
                                                 code & 0xffff, ": the proxy speaks 3.x"));
  }
  // name\0value\0 ... \0
  size_t pos = 4;
  while (true) {
    if (pos >= body.size()) {
      return absl::InvalidArgumentError("startup packet is not terminated by an empty name");
    }
    size_t name_end = body.find('\0', pos);
    if (name_end == std::string_view::npos) {
      return absl::InvalidArgumentError("unterminated parameter name in startup packet");
    }
    if (name_end == pos) {
      if (name_end + 1 != body.size()) {
        return absl::InvalidArgumentError("unexpected data after the startup packet's parameters");
      }
      break;
    }
    size_t value_end = body.find('\0', name_end + 1);
    if (value_end == std::string_view::npos) {
      return absl::InvalidArgumentError("unterminated parameter value in startup packet");
    }
    packet.parameters.emplace_back(
        std::string(body.substr(pos, name_end - pos)),
        std::string(body.substr(name_end + 1, value_end - name_end - 1)));
    pos = value_end + 1;
  }
  return packet;
}

std::string BuildStartupMessage(uint32_t protocol_version, const StartupParameters& parameters) {
  std::string out;
  AppendU32(&out, 0);
  AppendU32(&out, protocol_version);
  for (const auto& [name, value] : parameters) {
    out.append(name).push_back('\0');
    out.append(value).push_back('\0');
  }
  out.push_back('\0');
  PatchLength(&out, 0);
  return out;
}

std::string BuildCancelRequest(uint32_t pid, uint32_t key) {
  std::string out;
  AppendU32(&out, 16);
  AppendU32(&out, kCancelRequestCode);
  AppendU32(&out, pid);
  AppendU32(&out, key);
  return out;
}

std::string BuildErrorResponse(const ErrorFields& f) {
  std::string out = "E";
  AppendU32(&out, 0);
  auto field = [&out](char type, const std::string& value) {
    if (value.empty()) return;
    out.push_back(type);
    // A NUL would end the field early: the client would misparse the rest.
    for (char c : value) out.push_back(c == '\0' ? ' ' : c);
    out.push_back('\0');
  };
  field('S', f.severity);
  field('V', f.severity);
  field('C', f.sqlstate);
  field('M', f.message);
  field('D', f.detail);
  field('H', f.hint);
  out.push_back('\0');
  PatchLength(&out, 1);
  return out;
}

std::string BuildMessage(char type, std::string_view body) {
  std::string out(1, type);
  AppendU32(&out, static_cast<uint32_t>(body.size() + 4));
  out.append(body);
  return out;
}

namespace {

std::string AuthenticationMessage(uint32_t code, std::string_view data) {
  std::string body;
  AppendU32(&body, code);
  body.append(data);
  return BuildMessage('R', body);
}

}  // namespace

std::string BuildAuthenticationSasl(const std::vector<std::string>& mechanisms) {
  std::string data;
  for (const auto& m : mechanisms) {
    data.append(m);
    data.push_back('\0');
  }
  data.push_back('\0');
  return AuthenticationMessage(kAuthSasl, data);
}

std::string BuildAuthenticationSaslContinue(std::string_view data) {
  return AuthenticationMessage(kAuthSaslContinue, data);
}

std::string BuildAuthenticationSaslFinal(std::string_view data) {
  return AuthenticationMessage(kAuthSaslFinal, data);
}

std::string BuildAuthenticationOk() { return AuthenticationMessage(kAuthOk, ""); }

std::string BuildSaslInitialResponse(std::string_view mechanism, std::string_view data) {
  std::string body(mechanism);
  body.push_back('\0');
  AppendU32(&body, static_cast<uint32_t>(data.size()));
  body.append(data);
  return BuildMessage('p', body);
}

std::string BuildSaslResponse(std::string_view data) { return BuildMessage('p', data); }

absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(std::string_view body) {
  size_t nul = body.find('\0');
  if (nul == std::string_view::npos || nul == 0 || body.size() < nul + 5) {
    return absl::InvalidArgumentError("malformed SASLInitialResponse");
  }
  SaslInitialResponse r;
  r.mechanism = std::string(body.substr(0, nul));
  uint32_t len = ReadU32(reinterpret_cast<const unsigned char*>(body.data()) + nul + 1);
  std::string_view rest = body.substr(nul + 5);
  if (len == 0xffffffffu) {
    if (!rest.empty()) return absl::InvalidArgumentError("malformed SASLInitialResponse");
    return r;
  }
  if (rest.size() != len) return absl::InvalidArgumentError("malformed SASLInitialResponse");
  r.data = std::string(rest);
  return r;
}

absl::StatusOr<AuthenticationRequest> ParseAuthenticationRequest(std::string_view body) {
  if (body.size() < 4) return absl::InvalidArgumentError("malformed authentication request");
  AuthenticationRequest r;
  r.code = ReadU32(reinterpret_cast<const unsigned char*>(body.data()));
  r.data = std::string(body.substr(4));
  return r;
}

std::vector<std::string> ParseSaslMechanisms(std::string_view data) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nul = data.find('\0', pos);
    if (nul == std::string_view::npos || nul == pos) break;
    out.emplace_back(data.substr(pos, nul - pos));
    pos = nul + 1;
  }
  return out;
}

absl::StatusOr<OptionsRewrite> ExtractEndpointOption(std::string_view options) {
  OptionsRewrite result;
  std::vector<std::string> kept;
  size_t i = 0;
  while (i < options.size()) {
    while (i < options.size() && IsOptionSpace(options[i])) ++i;
    if (i >= options.size()) break;
    size_t start = i;
    std::string word;  // unescaped
    while (i < options.size() && !IsOptionSpace(options[i])) {
      if (options[i] == '\\' && i + 1 < options.size()) ++i;
      word.push_back(options[i++]);
    }
    std::string_view raw = options.substr(start, i - start);
    std::string_view w = word;
    std::string_view name;
    if (w.substr(0, 9) == "endpoint=") {
      name = w.substr(9);
    } else if (w.substr(0, 11) == "--endpoint=") {
      name = w.substr(11);
    } else {
      kept.emplace_back(raw);
      continue;
    }
    if (name.empty()) return absl::InvalidArgumentError("empty endpoint name in options");
    if (!result.endpoint.empty() && result.endpoint != name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "options name two endpoints: \"", result.endpoint, "\" and \"", std::string(name), "\""));
    }
    result.endpoint = std::string(name);
  }
  result.options = absl::StrJoin(kept, " ");
  return result;
}

bool IsValidEndpointName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '.')) return false;
  }
  auto alnum = [](char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c); };
  return alnum(name.front()) && alnum(name.back());
}

std::string EndpointFromSni(std::string_view server_name) {
  size_t dot = server_name.find('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  return absl::AsciiStrToLower(std::string(server_name.substr(0, dot)));
}

const std::string* FindParameter(const StartupParameters& parameters, std::string_view name) {
  for (const auto& [n, v] : parameters) {
    if (n == name) return &v;
  }
  return nullptr;
}

}  // namespace pgbranch::proxy

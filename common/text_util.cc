#include "common/text_util.h"

#include <cctype>
#include <random>

namespace pgbranch {

std::string YamlQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string UriEscape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string RandomPassword(size_t n) {
  static const char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  std::random_device rd;  // /dev/urandom (getrandom) on Linux
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string pw;
  for (size_t i = 0; i < n; ++i) pw += kAlphabet[pick(rd)];
  return pw;
}

std::string EncodeArgList(const std::vector<std::string>& args) {
  std::string m;
  for (const std::string& a : args) {
    m += a;
    m.push_back('\0');
  }
  return m;
}

std::optional<std::vector<std::string>> DecodeArgList(std::string_view message) {
  if (message.empty() || message.back() != '\0') return std::nullopt;
  std::vector<std::string> out;
  size_t start = 0;
  while (start < message.size()) {
    size_t end = message.find('\0', start);
    out.emplace_back(message.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace pgbranch

#pragma once

#include <cstddef>
#include <string>

// Small text helpers shared by the controllers: quoting for the compute agent's YAML, URI
// components of connection strings, and generated passwords.
namespace pgbranch {

// A double-quoted YAML scalar ("a\"b").
std::string YamlQuote(const std::string& s);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UriEscape(const std::string& s);
// `n` characters from an alphabet without look-alikes (no 0/O, 1/l/I), from the kernel's CSPRNG.
std::string RandomPassword(size_t n = 24);

}  // namespace pgbranch

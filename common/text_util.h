#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Small text helpers shared by the controllers: quoting for the compute agent's YAML, URI
// components of connection strings, and generated passwords.
namespace pgbranch {

// A double-quoted YAML scalar ("a\"b").
std::string YamlQuote(const std::string& s);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UriEscape(const std::string& s);
// `n` characters from an alphabet without look-alikes (no 0/O, 1/l/I), from the kernel's CSPRNG.
std::string RandomPassword(size_t n = 24);

// An argument list as one message: each string followed by a NUL (how a spare compute agent
// hands a spare pagefs its arguments, compute/spare_pagefs.h). Strings must hold no NUL, as
// argv's cannot.
std::string EncodeArgList(const std::vector<std::string>& args);
// The strings of `message`; nullopt if it is empty or does not end with a NUL.
std::optional<std::vector<std::string>> DecodeArgList(std::string_view message);

}  // namespace pgbranch

#pragma once

#include <string>

namespace pgbranch::cli {

// "0.1.0 (git bd646dd)": the CMake project version and `git describe` at configure time.
std::string Version();

}  // namespace pgbranch::cli

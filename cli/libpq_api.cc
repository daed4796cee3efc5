#include "cli/libpq_api.h"

#include <dlfcn.h>

#include <mutex>

#include "absl/strings/str_cat.h"

namespace pgbranch::cli {
namespace {

// Binds `*fn` to `name` in `lib`; false (and `*error` set) when missing.
template <typename Fn>
bool Bind(void* lib, const char* name, Fn* fn, std::string* error) {
  *fn = reinterpret_cast<Fn>(dlsym(lib, name));
  if (*fn == nullptr && error->empty()) {
    *error = absl::StrCat("libpq.so.5 has no ", name, " (", dlerror(), ")");
  }
  return *fn != nullptr;
}

absl::StatusOr<LibpqApi> Load() {
  // The soname the Debian package libpq5 installs (the one the build linked against before).
  void* lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load libpq (", dlerror(),
                     "); install PostgreSQL's client library (Debian: libpq5)"));
  }
  LibpqApi api{};
  std::string error;
  Bind(lib, "PQconnectdbParams", &api.connectdb_params, &error);
  Bind(lib, "PQstatus", &api.status, &error);
  Bind(lib, "PQerrorMessage", &api.error_message, &error);
  Bind(lib, "PQfinish", &api.finish, &error);
  Bind(lib, "PQsetNoticeProcessor", &api.set_notice_processor, &error);
  Bind(lib, "PQsendQuery", &api.send_query, &error);
  Bind(lib, "PQgetResult", &api.get_result, &error);
  Bind(lib, "PQresultStatus", &api.result_status, &error);
  Bind(lib, "PQntuples", &api.ntuples, &error);
  Bind(lib, "PQnfields", &api.nfields, &error);
  Bind(lib, "PQgetisnull", &api.getisnull, &error);
  Bind(lib, "PQgetvalue", &api.getvalue, &error);
  Bind(lib, "PQresultErrorField", &api.result_error_field, &error);
  Bind(lib, "PQclear", &api.clear, &error);
  // The library stays loaded for the process's life (the table points into it).
  if (!error.empty()) return absl::FailedPreconditionError(error);
  return api;
}

}  // namespace

absl::StatusOr<const LibpqApi*> LibpqApi::Get() {
  static std::once_flag once;
  static absl::StatusOr<LibpqApi>* loaded = nullptr;  // never freed: used until exit
  std::call_once(once, [] { loaded = new absl::StatusOr<LibpqApi>(Load()); });
  if (!loaded->ok()) return loaded->status();
  return &**loaded;
}

}  // namespace pgbranch::cli

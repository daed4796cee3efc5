#pragma once

#include <libpq-fe.h>

#include "absl/status/statusor.h"

// libpq, loaded on first use (dlopen of libpq.so.5) instead of linked: libpq pulls ~20 shared
// libraries (Kerberos, LDAP, GnuTLS, p11-kit, ...) whose relocation the dynamic loader would pay
// at every start of the pgbranch binary, while only the promotion's commands open a SQL session.
// The types and constants still come from libpq-fe.h; only the calls go through this table.
namespace pgbranch::cli {

struct LibpqApi {
  decltype(&::PQconnectdbParams) connectdb_params;
  decltype(&::PQstatus) status;
  decltype(&::PQerrorMessage) error_message;
  decltype(&::PQfinish) finish;
  decltype(&::PQsetNoticeProcessor) set_notice_processor;
  decltype(&::PQsendQuery) send_query;
  decltype(&::PQgetResult) get_result;
  decltype(&::PQresultStatus) result_status;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQnfields) nfields;
  decltype(&::PQgetisnull) getisnull;
  decltype(&::PQgetvalue) getvalue;
  decltype(&::PQresultErrorField) result_error_field;
  decltype(&::PQclear) clear;

  // The process's table, loaded once (thread-safe); an error (libpq missing, or a symbol
  // missing from it) is kept and returned on every call.
  static absl::StatusOr<const LibpqApi*> Get();
};

}  // namespace pgbranch::cli

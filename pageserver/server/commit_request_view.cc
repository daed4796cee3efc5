#include "pageserver/server/commit_request_view.h"

#include "common/coding.h"

namespace pgbranch::pageserver {
namespace {

// One field of a message: its number, wire type and, by wire type, its value or bytes.
struct Field {
  uint32_t number;
  int wire_type;
  uint64_t varint;
  std::string_view bytes;
};

// Reads the next field of `*in`; false on malformed input (including groups).
bool NextField(std::string_view* in, Field* f) {
  uint64_t tag;
  if (!GetVarint64(in, &tag) || tag > 0xffffffffu) return false;
  f->number = static_cast<uint32_t>(tag >> 3);
  f->wire_type = static_cast<int>(tag & 7);
  if (f->number == 0) return false;
  switch (f->wire_type) {
    case 0:
      return GetVarint64(in, &f->varint);
    case 1:
      if (in->size() < 8) return false;
      in->remove_prefix(8);
      return true;
    case 2:
      return GetLengthPrefixed(in, &f->bytes);
    case 5:
      if (in->size() < 4) return false;
      in->remove_prefix(4);
      return true;
    default:
      return false;
  }
}

// Whether `s` is valid UTF-8 (what protobuf checks of a proto3 string field).
bool ValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // at most U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
    }
    p += n + 1;
  }
  return true;
}

// v1::Mutation {key = 1, value = 2, tombstone = 3}.
bool ParseMutation(std::string_view in, storage::MutationView* m) {
  *m = {};
  Field f;
  while (!in.empty()) {
    if (!NextField(&in, &f)) return false;
    if (f.number == 1 && f.wire_type == 2) {
      m->key = f.bytes;
    } else if (f.number == 2 && f.wire_type == 2) {
      m->value = f.bytes;
    } else if (f.number == 3 && f.wire_type == 0) {
      m->tombstone = f.varint != 0;
    }
  }
  return true;
}

}  // namespace

bool ParseCommitRequest(std::string_view bytes, CommitRequestView* request,
                        std::vector<storage::MutationView>* mutations) {
  const size_t begin = mutations->size();
  *request = {};
  request->begin = begin;
  std::string_view in = bytes;
  Field f;
  bool ok = true;
  while (ok && !in.empty()) {
    if (!NextField(&in, &f)) {
      ok = false;
      break;
    }
    if (f.wire_type == 2 && f.number == 1) {
      request->tenant_id = f.bytes;
    } else if (f.wire_type == 2 && f.number == 2) {
      request->timeline_id = f.bytes;
    } else if (f.wire_type == 0 && f.number == 3) {
      request->generation = f.varint;
    } else if (f.wire_type == 2 && f.number == 4) {
      storage::MutationView m;
      ok = ParseMutation(f.bytes, &m);
      if (ok) mutations->push_back(m);
    }
  }
  ok = ok && ValidUtf8(request->tenant_id) && ValidUtf8(request->timeline_id);
  if (!ok) {
    mutations->resize(begin);
    return false;
  }
  request->end = mutations->size();
  return true;
}

}  // namespace pgbranch::pageserver

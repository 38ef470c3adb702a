// The managed-export layout that `gcloud firestore import` (and the emulator's import) reads: a
// LevelDB log of legacy App Engine EntityProtos per 5,000 documents, and the two metadata files
// (see firestore.h, write_managed_export).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/atomic_file.h"
#include "core/crc32c.h"
#include "core/time.h"
#include "sources/firestore/firestore_internal.h"

namespace lifeboat::sources::firestore {

namespace {

// ---- protobuf wire format (the few shapes EntityProto needs) ----
void put_varint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}
void put_tag(Bytes& out, uint32_t field, uint32_t wire) { put_varint(out, (uint64_t{field} << 3) | wire); }
void put_uint(Bytes& out, uint32_t field, uint64_t v) {
  put_tag(out, field, 0);
  put_varint(out, v);
}
void put_bytes(Bytes& out, uint32_t field, ByteView v) {
  put_tag(out, field, 2);
  put_varint(out, v.size());
  out.insert(out.end(), v.begin(), v.end());
}
void put_string(Bytes& out, uint32_t field, std::string_view v) { put_bytes(out, field, as_bytes(v)); }
void put_double(Bytes& out, uint32_t field, double d) {
  put_tag(out, field, 1);
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(bits >> (8 * i)));
}

// EntityProto meanings (datastore_v3).
constexpr uint64_t kGdWhen = 7, kGeoPoint = 9, kBlob = 14, kEntityProto = 19, kEmptyList = 24;

// Days since 1970-01-01 of a civil date (any year 1..9999).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "2024-01-02T03:04:05.123456Z" → microseconds since the epoch (Firestore keeps microseconds).
Result<int64_t> timestamp_micros(const std::string& t) {
  int y, mo, d, h, mi, s;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6 || t.size() < 20)
    return Error(Code::kCorrupt, fmt::format("timestamp {} is not RFC 3339 UTC", t));
  int64_t micros = 0;
  size_t i = 19;
  if (t[i] == '.') {
    int digits = 0;
    for (++i; i < t.size() && std::isdigit(static_cast<unsigned char>(t[i])); ++i)
      if (digits++ < 6) micros = micros * 10 + (t[i] - '0');
    for (; digits < 6; ++digits) micros *= 10;
  }
  if (i >= t.size() || (t[i] != 'Z' && t[i] != 'z')) return Error(Code::kCorrupt, fmt::format("timestamp {} is not in UTC", t));
  int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + s;
  return secs * 1000000 + micros;
}

struct Encoder {
  std::string app;   // "dev~PROJECT", as the emulator's export names the application
  std::string root;  // the documents root references are made absolute against

  // Path elements of a relative document name ("users/alice/orders/o1"), as EntityProto's Path groups.
  void put_path_elements(Bytes& out, const std::string& rel, uint32_t group, uint32_t type_field, uint32_t name_field) const {
    size_t start = 0;
    while (start < rel.size()) {
      size_t slash = rel.find('/', start);
      size_t slash2 = slash == std::string::npos ? std::string::npos : rel.find('/', slash + 1);
      std::string kind = rel.substr(start, slash - start);
      std::string id = slash == std::string::npos ? "" : rel.substr(slash + 1, slash2 == std::string::npos ? std::string::npos : slash2 - slash - 1);
      put_tag(out, group, 3);
      put_string(out, type_field, kind);
      put_string(out, name_field, id);
      put_tag(out, group, 4);
      if (slash2 == std::string::npos) break;
      start = slash2 + 1;
    }
  }

  Bytes path(const std::string& rel) const {
    Bytes p;
    put_path_elements(p, rel, 1, 2, 4);
    return p;
  }

  // One property (or, for arrays, one per element) of `value` named `name`.
  Status put_property(Bytes& entity, const std::string& name, const nlohmann::json& value, bool multiple) const {
    if (!value.is_object() || value.empty()) return Error(Code::kCorrupt, fmt::format("field {} has no value", name));
    const std::string& type = value.begin().key();
    const nlohmann::json& x = value.begin().value();
    if (type == "arrayValue") {
      const auto& values = x.value("values", nlohmann::json::array());
      if (values.empty()) {
        Bytes p;
        put_uint(p, 1, kEmptyList);
        put_string(p, 3, name);
        put_uint(p, 4, 0);
        put_bytes(p, 5, {});
        put_bytes(entity, 14, p);
        return Status::ok();
      }
      for (const auto& e : values) LB_RETURN_IF_ERROR(put_property(entity, name, e, true));
      return Status::ok();
    }
    Bytes v;
    uint64_t meaning = 0;
    if (type == "nullValue") {
    } else if (type == "booleanValue") {
      put_uint(v, 2, x.get<bool>() ? 1 : 0);
    } else if (type == "integerValue") {
      put_uint(v, 1, static_cast<uint64_t>(std::strtoll(x.get<std::string>().c_str(), nullptr, 10)));
    } else if (type == "doubleValue") {
      double d = x.is_string() ? (x == "NaN" ? std::numeric_limits<double>::quiet_NaN()
                                             : x == "Infinity" ? std::numeric_limits<double>::infinity()
                                                               : -std::numeric_limits<double>::infinity())
                               : x.get<double>();
      put_double(v, 4, d);
    } else if (type == "stringValue") {
      put_string(v, 3, x.get<std::string>());
    } else if (type == "bytesValue") {
      auto raw = base64_decode(x.get<std::string>());
      if (!raw) return Error(Code::kCorrupt, fmt::format("field {}: bytes are not base64", name));
      meaning = kBlob;
      put_bytes(v, 3, *raw);
    } else if (type == "timestampValue") {
      LB_ASSIGN_OR_RETURN(int64_t us, timestamp_micros(x.get<std::string>()));
      meaning = kGdWhen;
      put_uint(v, 1, static_cast<uint64_t>(us));
    } else if (type == "geoPointValue") {
      meaning = kGeoPoint;
      put_tag(v, 5, 3);
      put_double(v, 6, x.value("latitude", 0.0));
      put_double(v, 7, x.value("longitude", 0.0));
      put_tag(v, 5, 4);
    } else if (type == "referenceValue") {
      std::string ref = x.get<std::string>();
      std::string app = this->app, rel;
      if (ref.starts_with("~/")) {
        rel = ref.substr(2);
      } else {  // projects/Q/databases/D/documents/…
        size_t docs = ref.find("/documents/");
        if (!ref.starts_with("projects/") || docs == std::string::npos)
          return Error(Code::kCorrupt, fmt::format("field {}: reference {} is not a document name", name, ref));
        app = "dev~" + ref.substr(9, ref.find('/', 9) - 9);
        rel = ref.substr(docs + 11);
      }
      put_tag(v, 12, 3);
      put_string(v, 13, app);
      put_path_elements(v, rel, 14, 15, 17);
      put_tag(v, 12, 4);
    } else if (type == "mapValue") {
      meaning = kEntityProto;
      LB_ASSIGN_OR_RETURN(Bytes inner, encode_entity("", x.value("fields", nlohmann::json::object())));
      put_bytes(v, 3, inner);
    } else {
      return Error(Code::kCorrupt, fmt::format("field {}: unknown value type {}", name, type));
    }
    Bytes p;
    if (meaning) put_uint(p, 1, meaning);
    put_string(p, 3, name);
    put_uint(p, 4, multiple ? 1 : 0);
    put_bytes(p, 5, v);
    put_bytes(entity, 15, p);
    return Status::ok();
  }

  // A document (rel non-empty) or an embedded map (rel empty: no key).
  Result<Bytes> encode_entity(const std::string& rel, const nlohmann::json& fields) const {
    Bytes e, key;
    put_string(key, 13, rel.empty() ? "" : app);
    put_bytes(key, 14, rel.empty() ? Bytes{} : path(rel));
    put_bytes(e, 13, key);
    for (auto it = fields.begin(); it != fields.end(); ++it) LB_RETURN_IF_ERROR(put_property(e, it.key(), it.value(), false));
    Bytes group;
    if (!rel.empty()) {
      size_t first = rel.find('/');
      size_t second = rel.find('/', first + 1);
      group = path(rel.substr(0, second));
    }
    put_bytes(e, 16, group);
    return e;
  }
};

// LevelDB's log format: 32 KiB blocks of records, each with a masked CRC32C, a length and a type.
class LogWriter {
 public:
  void add(ByteView record) {
    size_t left = record.size(), pos = 0;
    bool first = true;
    do {
      size_t room = kBlock - offset_;
      if (room < kHeader) {
        out_.insert(out_.end(), room, 0);
        offset_ = 0;
        room = kBlock;
      }
      size_t n = std::min(left, room - kHeader);
      bool last = n == left;
      uint8_t type = first && last ? 1 : first ? 2 : last ? 4 : 3;
      uint32_t crc = crc32c_extend(crc32c(ByteView(&type, 1)), record.subspan(pos, n));
      uint32_t masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
      for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(masked >> (8 * i)));
      out_.push_back(static_cast<uint8_t>(n & 0xff));
      out_.push_back(static_cast<uint8_t>(n >> 8));
      out_.push_back(type);
      out_.insert(out_.end(), record.begin() + static_cast<ptrdiff_t>(pos), record.begin() + static_cast<ptrdiff_t>(pos + n));
      offset_ += kHeader + n;
      pos += n;
      left -= n;
      first = false;
    } while (left > 0);
  }
  const Bytes& bytes() const { return out_; }

 private:
  static constexpr size_t kBlock = 32768, kHeader = 7;
  Bytes out_;
  size_t offset_ = 0;
};

Status write_file(const std::filesystem::path& p, const Bytes& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  f.close();
  if (!f) return Error(Code::kIo, fmt::format("writing {}", p.string()));
  return Status::ok();
}

}  // namespace

Result<ManagedExport> write_managed_export(const std::string& dir, const std::string& project,
                                           std::vector<std::pair<std::string, nlohmann::json>> documents) {
  namespace fs = std::filesystem;
  fs::path base = fs::absolute(dir).lexically_normal();
  if (base.filename().empty()) base = base.parent_path();
  std::error_code ec;
  if (fs::exists(base, ec) && !fs::is_empty(base, ec))
    return Error(Code::kAlreadyExists, fmt::format("{} exists and is not empty: give a new directory", base.string()));
  fs::path kinds = base / "all_namespaces" / "all_kinds";
  fs::create_directories(kinds, ec);
  if (ec) return Error(Code::kIo, fmt::format("creating {}: {}", kinds.string(), ec.message()));
  const std::string name = base.filename().string();
  std::sort(documents.begin(), documents.end(), [](const auto& a, const auto& b) { return firestore_name_less(a.first, b.first); });

  Encoder enc{"dev~" + project, ""};
  ManagedExport out;
  out.directory = base.string();
  out.metadata_file = (base / (name + ".overall_export_metadata")).string();
  const int64_t start_us = now_unix_ns() / 1000;
  Bytes outputs;  // export_metadata's list of output files
  uint64_t total_bytes = 0;
  const size_t per_file = 5000;
  for (size_t begin = 0, file = 0; begin < documents.size() || (file == 0 && documents.empty()); begin += per_file, ++file) {
    LogWriter log;
    for (size_t i = begin; i < std::min(documents.size(), begin + per_file); ++i) {
      auto e = enc.encode_entity(documents[i].first, documents[i].second.value("fields", nlohmann::json::object()));
      if (!e) return e.status().with_context("document " + documents[i].first);
      log.add(*e);
    }
    std::string fname = fmt::format("output-{}", file);
    LB_RETURN_IF_ERROR(write_file(kinds / fname, log.bytes()));
    total_bytes += log.bytes().size();
    Bytes entry;
    put_string(entry, 1, "");
    put_string(entry, 2, fname);
    put_bytes(outputs, 2, entry);
    out.files.push_back((kinds / fname).string());
    if (documents.empty()) break;
  }
  out.documents = documents.size();

  Bytes meta, head;
  put_string(head, 1, name);
  put_uint(head, 2, static_cast<uint64_t>(start_us));
  put_uint(head, 3, static_cast<uint64_t>(now_unix_ns() / 1000));
  put_bytes(meta, 1, head);
  meta.insert(meta.end(), outputs.begin(), outputs.end());
  LB_RETURN_IF_ERROR(write_file(kinds / "all_namespaces_all_kinds.export_metadata", meta));

  // The overall metadata: a version record, then one record naming the kind's metadata file with its
  // document count and output bytes.
  LogWriter overall;
  const uint8_t version = 0x33;
  overall.add(ByteView(&version, 1));
  Bytes item, inner, flags;
  put_uint(flags, 1, 2);
  put_uint(flags, 3, 3);
  put_bytes(inner, 1, flags);
  put_string(inner, 2, "all_namespaces/all_kinds/all_namespaces_all_kinds.export_metadata");
  put_uint(inner, 3, documents.size());
  put_uint(inner, 4, total_bytes);
  put_bytes(item, 1, inner);
  overall.add(item);
  LB_RETURN_IF_ERROR(write_file(out.metadata_file, overall.bytes()));
  return out;
}

}  // namespace lifeboat::sources::firestore

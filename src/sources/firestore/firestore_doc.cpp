// Documents as the Firestore source stores them: names, normalised values, tree names, and the
// per-collection counts and hashes (see firestore.h).
#include <fmt/format.h>

#include <cstring>

#include "core/bytes.h"
#include "core/names.h"
#include "crypto/crypto.h"
#include "sources/firestore/firestore.h"

namespace lifeboat::sources::firestore {

namespace {

// "2024-01-02T03:04:05.120000Z" → "2024-01-02T03:04:05.12Z": the same instant has one spelling.
std::string canonical_timestamp(std::string t) {
  size_t dot = t.find('.');
  size_t z = t.find_first_of("Zz+-", dot == std::string::npos ? 19 : dot);
  if (dot == std::string::npos || z == std::string::npos) return t;
  size_t end = z;
  while (end > dot + 1 && t[end - 1] == '0') --end;
  if (end == dot + 1) end = dot;
  return t.substr(0, end) + t.substr(z);
}

double as_double(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  return 0.0;
}

nlohmann::json normalise_value(const nlohmann::json& v, const std::string& root, bool to_api);

nlohmann::json normalise_fields(const nlohmann::json& fields, const std::string& root, bool to_api) {
  nlohmann::json out = nlohmann::json::object();
  if (!fields.is_object()) return out;
  for (auto it = fields.begin(); it != fields.end(); ++it) out[it.key()] = normalise_value(it.value(), root, to_api);
  return out;
}

nlohmann::json normalise_value(const nlohmann::json& v, const std::string& root, bool to_api) {
  if (!v.is_object() || v.empty()) return {{"nullValue", nullptr}};
  auto it = v.begin();
  const std::string& type = it.key();
  const nlohmann::json& x = it.value();
  if (type == "integerValue") {
    if (x.is_string()) return {{type, x}};
    if (x.is_number_integer()) return {{type, std::to_string(x.get<int64_t>())}};
    return {{type, "0"}};
  }
  if (type == "doubleValue") {
    if (x.is_string()) return {{type, x}};  // "NaN", "Infinity", "-Infinity"
    return {{type, as_double(x)}};
  }
  if (type == "timestampValue") return {{type, canonical_timestamp(x.is_string() ? x.get<std::string>() : "")}};
  if (type == "referenceValue" && x.is_string()) {
    std::string ref = x.get<std::string>();
    if (to_api && ref.starts_with("~/")) return {{type, root + ref.substr(1)}};
    if (!to_api && ref.starts_with(root + "/")) return {{type, "~" + ref.substr(root.size())}};
    return {{type, ref}};
  }
  if (type == "geoPointValue") {
    double lat = x.is_object() && x.contains("latitude") ? as_double(x["latitude"]) : 0.0;
    double lng = x.is_object() && x.contains("longitude") ? as_double(x["longitude"]) : 0.0;
    return {{type, {{"latitude", lat}, {"longitude", lng}}}};
  }
  if (type == "arrayValue") {
    nlohmann::json values = nlohmann::json::array();
    if (x.is_object() && x.contains("values") && x["values"].is_array())
      for (const auto& e : x["values"]) values.push_back(normalise_value(e, root, to_api));
    return {{type, {{"values", values}}}};
  }
  if (type == "mapValue") {
    nlohmann::json f = x.is_object() && x.contains("fields") ? normalise_fields(x["fields"], root, to_api) : nlohmann::json::object();
    return {{type, {{"fields", f}}}};
  }
  return {{type, x}};  // null, boolean, string, bytes: as given
}

}  // namespace

std::string relative_name(const std::string& full_name, const std::string& root) {
  if (full_name.size() <= root.size() + 1 || full_name.compare(0, root.size(), root) != 0 || full_name[root.size()] != '/')
    return "";
  return full_name.substr(root.size() + 1);
}

std::string top_collection(const std::string& relative) { return relative.substr(0, relative.find('/')); }

nlohmann::json stored_document(const nlohmann::json& api_document, const std::string& root) {
  nlohmann::json d = {{"name", relative_name(api_document.value("name", ""), root)},
                      {"fields", normalise_fields(api_document.value("fields", nlohmann::json::object()), root, false)}};
  if (api_document.contains("createTime")) d["createTime"] = api_document["createTime"];
  if (api_document.contains("updateTime")) d["updateTime"] = api_document["updateTime"];
  return d;
}

nlohmann::json api_fields(const nlohmann::json& stored, const std::string& root) {
  return normalise_fields(stored.value("fields", nlohmann::json::object()), root, true);
}

std::string escape_name(const std::string& relative) { return escape_component(relative); }

std::string unescape_name(const std::string& tree_name) { return unescape_component(tree_name); }

uint64_t name_hash(const std::string& relative) {
  auto d = crypto::sha256(ByteView(reinterpret_cast<const uint8_t*>(relative.data()), relative.size()));
  uint64_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);
  return h;
}

void CollectionStats::add(const nlohmann::json& stored) {
  std::string text = nlohmann::json{{"name", stored.value("name", "")}, {"fields", stored.value("fields", nlohmann::json::object())}}.dump();
  auto d = crypto::sha256(ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  for (size_t lane = 0; lane < 4; ++lane) {
    uint64_t x = 0;
    std::memcpy(&x, d.data() + lane * 8, 8);
    sum[lane] += x;
  }
  ++documents;
}

std::string CollectionStats::hash() const {
  uint8_t raw[32];
  std::memcpy(raw, sum.data(), 32);
  return hex_encode(ByteView(raw, 32));
}

void merge_stats(StatsMap& into, const StatsMap& from) {
  for (const auto& [c, s] : from) {
    auto& e = into[c];
    e.documents += s.documents;
    for (size_t i = 0; i < 4; ++i) e.sum[i] += s.sum[i];
  }
}

StatsMap stats_from_json(const nlohmann::json& j) {
  StatsMap out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto& e = out[it.key()];
    e.documents = it.value().value("documents", uint64_t{0});
    auto raw = hex_decode(it.value().value("hash", ""));
    if (raw && raw->size() == 32) std::memcpy(e.sum.data(), raw->data(), 32);
  }
  return out;
}

nlohmann::json stats_json(const StatsMap& stats) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [id, s] : stats) out[id] = {{"documents", s.documents}, {"hash", s.hash()}};
  return out;
}

}  // namespace lifeboat::sources::firestore

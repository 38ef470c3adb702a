// Snapshot JSON codec.
#include "repo/snapshot.h"

#include <algorithm>

#include "core/json_int.h"
#include "core/time.h"

namespace lifeboat::repo {

std::string Snapshot::to_json() const {
  nlohmann::json j = {{"version", 1},
                      {"time", format_rfc3339(time_ns)},
                      {"time_ns", time_ns},
                      {"hostname", hostname},
                      {"username", username},
                      {"source", source},
                      {"paths", paths},
                      {"tags", tags},
                      {"tree", to_hex(tree)},
                      {"metadata", metadata},
                      {"summary", summary}};
  if (parent) j["parent"] = *parent;
  if (!writer_key.empty()) j["writer"] = {{"key", writer_key}, {"signature", writer_signature}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Snapshot::signed_message(const std::string& repo_id) const {
  Snapshot unsigned_copy = *this;
  unsigned_copy.writer_key.clear();
  unsigned_copy.writer_signature.clear();
  return "lifeboat-snapshot-v1\n" + repo_id + "\n" + unsigned_copy.to_json();
}

Result<Snapshot> Snapshot::from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(Code::kCorrupt, "snapshot is not valid JSON");
  try {
    if (json_int<int>(j.at("version")) != 1) return Error(Code::kCorrupt, "snapshot has an unknown version");
    Snapshot s;
    s.time_ns = json_int<int64_t>(j.at("time_ns"));
    s.hostname = j.value("hostname", "");
    s.username = j.value("username", "");
    s.source = j.value("source", "files");
    s.paths = j.value("paths", std::vector<std::string>{});
    s.tags = j.value("tags", std::vector<std::string>{});
    if (!parse_id(j.at("tree").get<std::string>(), s.tree)) return Error(Code::kCorrupt, "snapshot has a bad tree ID");
    if (j.contains("parent")) s.parent = j["parent"].get<std::string>();
    if (j.contains("metadata")) s.metadata = j["metadata"];
    if (j.contains("summary")) s.summary = j["summary"];
    if (j.contains("writer")) {
      s.writer_key = j["writer"].at("key").get<std::string>();
      s.writer_signature = j["writer"].at("signature").get<std::string>();
      if (s.writer_key.empty()) return Error(Code::kCorrupt, "snapshot names an empty writer key");
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    return Error(Code::kCorrupt, std::string("snapshot is missing a field: ") + e.what());
  }
}

bool Snapshot::has_tag(const std::string& tag) const { return std::find(tags.begin(), tags.end(), tag) != tags.end(); }

nlohmann::json SnapshotRef::to_json() const {
  const auto& s = snapshot;
  nlohmann::json j = {{"id", id},                {"short_id", short_id()}, {"time", format_rfc3339(s.time_ns)},
                      {"hostname", s.hostname}, {"username", s.username}, {"source", s.source},
                      {"paths", s.paths},       {"tags", s.tags},         {"tree", to_hex(s.tree)},
                      {"summary", s.summary},   {"metadata", s.metadata}};
  if (s.parent) j["parent"] = *s.parent;
  if (!s.writer_key.empty()) j["writer"] = s.writer_key;
  j["trusted"] = s.untrusted.empty();
  if (!s.untrusted.empty()) j["untrusted"] = s.untrusted;
  return j;
}

}  // namespace lifeboat::repo

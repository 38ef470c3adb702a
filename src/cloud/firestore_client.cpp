// Firestore REST v1 calls with credentials and retries (see firestore_client.h).
#include "cloud/firestore_client.h"

#include <fmt/format.h>

#include <cstdlib>

namespace lifeboat::cloud {

namespace {

std::string message_of(const HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body.begin(), r.body.end(), nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const auto& e = j["error"];
    return fmt::format("{} {}", e.value("status", ""), e.value("message", ""));
  }
  if (j.is_array())
    for (const auto& x : j)
      if (x.is_object() && x.contains("error") && x["error"].is_object())
        return fmt::format("{} {}", x["error"].value("status", ""), x["error"].value("message", ""));
  return std::string(reinterpret_cast<const char*>(r.body.data()), std::min<size_t>(r.body.size(), 300));
}

nlohmann::json reference(const std::string& name) { return {{"referenceValue", name}}; }

}  // namespace

std::string firestore_documents_root(const std::string& project, const std::string& database) {
  return fmt::format("projects/{}/databases/{}/documents", project, database.empty() ? "(default)" : database);
}

bool firestore_read_time_too_old(const Status& s) {
  const std::string& m = s.message();
  return m.find("too old") != std::string::npos || m.find("read_time") != std::string::npos ||
         m.find("readTime") != std::string::npos || m.find("Read time") != std::string::npos;
}

FirestoreClient::FirestoreClient(std::string endpoint, std::shared_ptr<GcpAuth> auth, bool emulator)
    : GoogleApiClient(std::move(endpoint), std::move(auth)), emulator_(emulator) {}

Result<std::shared_ptr<FirestoreClient>> FirestoreClient::from_environment() {
  if (const char* emu = std::getenv("FIRESTORE_EMULATOR_HOST"); emu && *emu) {
    std::string host = emu;
    if (!host.starts_with("http://") && !host.starts_with("https://")) host = "http://" + host;
    return std::make_shared<FirestoreClient>(host, nullptr, true);
  }
  const char* ep = std::getenv("LIFEBOAT_FIRESTORE_ENDPOINT");
  LB_ASSIGN_OR_RETURN(auto auth, GcpAuth::from_environment("https://www.googleapis.com/auth/datastore"));
  return std::make_shared<FirestoreClient>(ep && *ep ? ep : "https://firestore.googleapis.com", auth, false);
}

Result<Bytes> FirestoreClient::post_body(const std::string& path, const nlohmann::json& body, const std::string& what) const {
  std::string text = body.dump();
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
  if (emulator_) headers.emplace_back("Authorization", "Bearer owner");
  std::string url = endpoint_ + "/v1/" + path;
  LB_ASSIGN_OR_RETURN(auto r, send_retrying("POST", url, headers, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  if (r.status < 200 || r.status > 299) {
    std::string msg = fmt::format("{}: HTTP {} {}", what, r.status, message_of(r));
    if (r.status == 408 || r.status == 429 || r.status >= 500) return Error(Code::kUnavailable, msg + " (the server kept failing)");
    if (r.status == 404) return Error(Code::kNotFound, msg);
    if (r.status == 401 || r.status == 403)
      return Error(Code::kIo, msg + " (check the credentials and that they may use this database)");
    return Error(Code::kIo, msg);
  }
  return std::move(r.body);
}

Result<nlohmann::json> FirestoreClient::post(const std::string& path, const nlohmann::json& body, const std::string& what) const {
  LB_ASSIGN_OR_RETURN(Bytes reply, post_body(path, body, what));
  auto j = nlohmann::json::parse(reply.begin(), reply.end(), nullptr, false);
  if (j.is_discarded()) return Error(Code::kUnavailable, fmt::format("{}: unreadable or cut reply ({} bytes)", what, reply.size()));
  if (j.is_array())
    for (const auto& x : j)
      if (x.is_object() && x.contains("error"))
        return Error(Code::kUnavailable, fmt::format("{}: the server stopped the answer: {}", what, x["error"].dump()));
  return j;
}

nlohmann::json FirestoreClient::structured_query(const FirestoreRange& range, const std::string& after) const {
  nlohmann::json q = {{"from", nlohmann::json::array({{{"allDescendants", true}}})},
                      {"orderBy", nlohmann::json::array({{{"field", {{"fieldPath", "__name__"}}}, {"direction", "ASCENDING"}}})}};
  if (!after.empty()) q["startAt"] = {{"values", nlohmann::json::array({reference(after)})}, {"before", false}};
  else if (!range.start.empty()) q["startAt"] = {{"values", nlohmann::json::array({reference(range.start)})}, {"before", true}};
  if (!range.end.empty()) q["endAt"] = {{"values", nlohmann::json::array({reference(range.end)})}, {"before", true}};
  return q;
}

Result<FirestorePage> FirestoreClient::query(const std::string& root, const FirestoreRange& range, const std::string& after,
                                             size_t limit, const std::string& read_time, bool keys_only) const {
  nlohmann::json q = structured_query(range, after);
  if (limit) q["limit"] = limit;
  if (keys_only) q["select"] = {{"fields", nlohmann::json::array({{{"fieldPath", "__name__"}}})}};
  nlohmann::json body = {{"structuredQuery", q}};
  if (!read_time.empty()) body["readTime"] = read_time;
  LB_ASSIGN_OR_RETURN(auto j, post(root + ":runQuery", body, fmt::format("reading {} from {}", root, after.empty() ? range.start : after)));
  if (!j.is_array()) return Error(Code::kUnavailable, fmt::format("reading {}: the answer is not a list", root));
  FirestorePage page;
  for (auto& x : j) {
    if (!x.is_object()) continue;
    if (x.contains("readTime") && x["readTime"].is_string()) page.read_time = x["readTime"].get<std::string>();
    if (x.contains("document") && x["document"].is_object()) page.documents.push_back(std::move(x["document"]));
  }
  return page;
}

Result<FirestoreClient::PageEnd> FirestoreClient::query_each(const std::string& root, const FirestoreRange& range,
                                                             const std::string& after, size_t limit, const std::string& read_time,
                                                             const std::function<Status(nlohmann::json&& document)>& fn) const {
  nlohmann::json q = structured_query(range, after);
  if (limit) q["limit"] = limit;
  nlohmann::json body = {{"structuredQuery", q}};
  if (!read_time.empty()) body["readTime"] = read_time;
  const std::string what = fmt::format("reading {} from {}", root, after.empty() ? range.start : after);
  LB_ASSIGN_OR_RETURN(Bytes reply, post_body(root + ":runQuery", body, what));
  return each_query_document(reply, what, fn);
}

Result<FirestoreClient::PageEnd> each_query_document(ByteView reply, const std::string& what,
                                                     const std::function<Status(nlohmann::json&& document)>& fn) {
  // Each element of the answer's list is handed on as soon as it is parsed, then dropped: the page
  // is never held as one document tree (a page of 20,000 documents took ~160 MB that way).
  FirestoreClient::PageEnd end;
  Status failed;
  bool not_a_list = false;
  nlohmann::json::parser_callback_t each = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 0 && event == nlohmann::json::parse_event_t::object_start) not_a_list = true;
    if (depth != 1 || event != nlohmann::json::parse_event_t::object_end) return true;
    if (!failed.is_ok()) return false;
    if (parsed.contains("error")) {
      failed = Error(Code::kUnavailable, fmt::format("{}: the server stopped the answer: {}", what, parsed["error"].dump()));
    } else {
      if (parsed.contains("readTime") && parsed["readTime"].is_string()) end.read_time = parsed["readTime"].get<std::string>();
      if (parsed.contains("document") && parsed["document"].is_object()) {
        end.last_name = parsed["document"].value("name", "");
        ++end.documents;
        failed = fn(std::move(parsed["document"]));
      }
    }
    return false;
  };
  auto j = nlohmann::json::parse(reply.begin(), reply.end(), each, false);
  LB_RETURN_IF_ERROR(failed);
  if (j.is_discarded()) return Error(Code::kUnavailable, fmt::format("{}: unreadable or cut reply ({} bytes)", what, reply.size()));
  if (not_a_list) return Error(Code::kUnavailable, fmt::format("{}: the answer is not a list", what));
  return end;
}

Result<int64_t> FirestoreClient::count(const std::string& root, const FirestoreRange& range, const std::string& read_time) const {
  nlohmann::json body = {{"structuredAggregationQuery",
                          {{"structuredQuery", structured_query(range, "")},
                           {"aggregations", nlohmann::json::array({{{"alias", "n"}, {"count", nlohmann::json::object()}}})}}}};
  if (!read_time.empty()) body["readTime"] = read_time;
  LB_ASSIGN_OR_RETURN(auto j, post(root + ":runAggregationQuery", body, "counting the documents of " + root));
  if (j.is_array())
    for (const auto& x : j)
      if (x.is_object() && x.contains("result")) {
        const auto& v = x["result"]["aggregateFields"]["n"];
        if (v.contains("integerValue")) {
          const auto& n = v["integerValue"];
          return n.is_string() ? std::strtoll(n.get<std::string>().c_str(), nullptr, 10) : n.get<int64_t>();
        }
      }
  return Error(Code::kUnavailable, "counting the documents of " + root + ": no count in the answer");
}

Result<std::optional<std::string>> FirestoreClient::name_at(const std::string& root, const FirestoreRange& range, int64_t offset,
                                                            const std::string& read_time) const {
  nlohmann::json q = structured_query(range, "");
  q["offset"] = offset;
  q["limit"] = 1;
  q["select"] = {{"fields", nlohmann::json::array({{{"fieldPath", "__name__"}}})}};
  nlohmann::json body = {{"structuredQuery", q}};
  if (!read_time.empty()) body["readTime"] = read_time;
  LB_ASSIGN_OR_RETURN(auto j, post(root + ":runQuery", body, "finding split points in " + root));
  if (j.is_array())
    for (const auto& x : j)
      if (x.is_object() && x.contains("document")) return std::optional<std::string>(x["document"].value("name", ""));
  return std::optional<std::string>();
}

Result<std::optional<std::vector<std::string>>> FirestoreClient::partition(const std::string& root, size_t parts,
                                                                          const std::string& read_time) const {
  std::vector<std::string> cuts;
  std::string token;
  do {
    nlohmann::json q = {{"from", nlohmann::json::array({{{"allDescendants", true}}})},
                        {"orderBy", nlohmann::json::array({{{"field", {{"fieldPath", "__name__"}}}, {"direction", "ASCENDING"}}})}};
    nlohmann::json body = {{"structuredQuery", q}, {"partitionCount", parts}};
    if (!read_time.empty()) body["readTime"] = read_time;
    if (!token.empty()) body["pageToken"] = token;
    auto j = post(root + ":partitionQuery", body, "partitioning " + root);
    if (!j) {
      if (j.status().message().find("HTTP 501") != std::string::npos || j.status().message().find("UNIMPLEMENTED") != std::string::npos)
        return std::optional<std::vector<std::string>>();
      return j.status();
    }
    for (const auto& p : j->value("partitions", nlohmann::json::array())) {
      auto values = p.value("values", nlohmann::json::array());
      if (!values.empty() && values[0].contains("referenceValue")) cuts.push_back(values[0]["referenceValue"].get<std::string>());
    }
    token = j->value("nextPageToken", "");
  } while (!token.empty());
  return std::optional<std::vector<std::string>>(std::move(cuts));
}

Result<std::vector<std::string>> FirestoreClient::collection_ids(const std::string& parent, const std::string& read_time) const {
  std::vector<std::string> ids;
  std::string token;
  do {
    nlohmann::json body = {{"pageSize", 300}};
    if (!token.empty()) body["pageToken"] = token;
    if (!read_time.empty()) body["readTime"] = read_time;
    LB_ASSIGN_OR_RETURN(auto j, post(parent + ":listCollectionIds", body, "listing the collections of " + parent));
    for (const auto& id : j.value("collectionIds", nlohmann::json::array()))
      if (id.is_string()) ids.push_back(id.get<std::string>());
    token = j.value("nextPageToken", "");
  } while (!token.empty());
  return ids;
}

Result<std::vector<nlohmann::json>> FirestoreClient::batch_write(const std::string& database, const nlohmann::json& writes) const {
  LB_ASSIGN_OR_RETURN(auto j, post(database + "/documents:batchWrite", {{"writes", writes}}, "writing to " + database));
  std::vector<nlohmann::json> out;
  auto st = j.value("status", nlohmann::json::array());
  if (st.size() != writes.size())
    return Error(Code::kUnavailable, fmt::format("writing to {}: {} write statuses for {} writes", database, st.size(), writes.size()));
  for (size_t i = 0; i < writes.size(); ++i) out.push_back(i < st.size() ? st[i] : nlohmann::json::object());
  return out;
}

}  // namespace lifeboat::cloud

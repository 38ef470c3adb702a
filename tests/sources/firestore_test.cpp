// Firestore documents as stored: normalised values (every type, −0.0 and NaN included), references
// relative to the database, tree names, name order, and order-independent collection hashes; the
// snapshot tree built a group at a time, and documents read back through a bounded producer.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "../repo/test_repo.h"
#include "repo/node_io.h"
#include "repo/tree_walk.h"
#include "sources/firestore/firestore.h"
#include "sources/firestore/firestore_internal.h"

namespace lifeboat::sources::firestore {
namespace {

const std::string kRoot = "projects/p/databases/(default)/documents";

nlohmann::json doc(const std::string& rel, nlohmann::json fields) {
  return {{"name", kRoot + "/" + rel}, {"fields", std::move(fields)}, {"createTime", "2026-01-01T00:00:00Z"},
          {"updateTime", "2026-01-02T00:00:00.500Z"}};
}

TEST(Firestore, StoredDocumentNormalisesEveryValueType) {
  auto fields = nlohmann::json::parse(R"({
    "i": {"integerValue": 7}, "s": {"integerValue": "-9223372036854775808"},
    "d": {"doubleValue": 1}, "z": {"doubleValue": -0.0}, "n": {"doubleValue": "NaN"}, "inf": {"doubleValue": "-Infinity"},
    "t": {"timestampValue": "2024-01-02T03:04:05.120000Z"}, "t0": {"timestampValue": "2024-01-02T03:04:05.000Z"},
    "r": {"referenceValue": "projects/p/databases/(default)/documents/users/bob"},
    "x": {"referenceValue": "projects/other/databases/(default)/documents/users/bob"},
    "g": {"geoPointValue": {"latitude": 1.5}}, "a": {"arrayValue": {}}, "m": {"mapValue": {}},
    "b": {"bytesValue": "AAE="}, "nul": {"nullValue": null}, "yes": {"booleanValue": true}})");
  auto s = stored_document(doc("users/alice", fields), kRoot);
  EXPECT_EQ(s["name"], "users/alice");
  const auto& f = s["fields"];
  EXPECT_EQ(f["i"]["integerValue"], "7");
  EXPECT_EQ(f["s"]["integerValue"], "-9223372036854775808");
  EXPECT_TRUE(f["d"]["doubleValue"].is_number_float());
  EXPECT_EQ(f["z"].dump(), R"({"doubleValue":-0.0})");
  EXPECT_EQ(f["n"]["doubleValue"], "NaN");
  EXPECT_EQ(f["inf"]["doubleValue"], "-Infinity");
  EXPECT_EQ(f["t"]["timestampValue"], "2024-01-02T03:04:05.12Z");
  EXPECT_EQ(f["t0"]["timestampValue"], "2024-01-02T03:04:05Z");
  EXPECT_EQ(f["r"]["referenceValue"], "~/users/bob");
  EXPECT_EQ(f["x"]["referenceValue"], "projects/other/databases/(default)/documents/users/bob");
  EXPECT_EQ(f["g"]["geoPointValue"].dump(), R"({"latitude":1.5,"longitude":0.0})");
  EXPECT_EQ(f["a"].dump(), R"({"arrayValue":{"values":[]}})");
  EXPECT_EQ(f["m"].dump(), R"({"mapValue":{"fields":{}}})");
  EXPECT_EQ(s["updateTime"], "2026-01-02T00:00:00.500Z");

  // Back to the API below another root: references follow the database they are restored into.
  auto api = api_fields(nlohmann::json::parse(s.dump()), "projects/q/databases/d2/documents");
  EXPECT_EQ(api["r"]["referenceValue"], "projects/q/databases/d2/documents/users/bob");
  EXPECT_EQ(api["x"]["referenceValue"], "projects/other/databases/(default)/documents/users/bob");
  EXPECT_EQ(api["z"].dump(), R"({"doubleValue":-0.0})");
}

TEST(Firestore, TreeNamesRoundTripAndNeverHoldASlash) {
  for (std::string rel : {"users/alice", "a%2Fb/c", "odd%name/x y", "u/a/o/b/i/c"}) {
    auto t = escape_name(rel);
    EXPECT_EQ(t.find('/'), std::string::npos) << t;
    EXPECT_EQ(unescape_name(t), rel);
  }
  EXPECT_EQ(relative_name(kRoot + "/users/a", kRoot), "users/a");
  EXPECT_EQ(relative_name("projects/p/databases/other/documents/users/a", kRoot), "");
  EXPECT_EQ(top_collection("users/a/orders/b"), "users");
}

TEST(Firestore, NameOrderIsSegmentBySegment) {
  EXPECT_TRUE(firestore_name_less("users/alice", "users/alice/orders/o1"));
  EXPECT_TRUE(firestore_name_less("users/alice/orders/o1", "users/alicf"));
  EXPECT_TRUE(firestore_name_less("users/a/x/y", "users/a-b"));  // '/' sorts before every character
  EXPECT_FALSE(firestore_name_less("users/b", "users/a/z/z"));
}

TEST(Firestore, CollectionHashesIgnoreOrderAndTimesButNotContent) {
  auto a = stored_document(doc("c/a", {{"n", {{"integerValue", "1"}}}}), kRoot);
  auto b = stored_document(doc("c/b", {{"n", {{"integerValue", "2"}}}}), kRoot);
  CollectionStats x, y, z;
  x.add(a), x.add(b);
  y.add(b), y.add(a);
  EXPECT_EQ(x.hash(), y.hash());
  EXPECT_EQ(x.documents, 2u);
  auto a2 = a;
  a2["updateTime"] = "2030-01-01T00:00:00Z";
  z.add(b), z.add(a2);
  EXPECT_EQ(x.hash(), z.hash());  // a restore makes new times
  CollectionStats w;
  auto b2 = b;
  b2["fields"]["n"]["integerValue"] = "3";
  w.add(a), w.add(b2);
  EXPECT_NE(x.hash(), w.hash());
  CollectionStats renamed;
  auto a3 = a;
  a3["name"] = "c/a3";
  renamed.add(a3), renamed.add(b);
  EXPECT_NE(x.hash(), renamed.hash());
}

TEST(Firestore, CollectionRangesCoverOneCollectionAndEverythingBelowIt) {
  auto r = collection_ranges(kRoot, {"users"});
  ASSERT_EQ(r.size(), 1u);
  // "users/…" and "users/x/orders/…" lie inside, "users2/…" and "user/…" outside.
  auto inside = [&](const std::string& rel) {
    std::string n = kRoot + "/" + rel;
    auto rel_of = [&](const std::string& full) { return full.substr(kRoot.size() + 1); };
    return !firestore_name_less(rel, rel_of(r[0].start)) && firestore_name_less(rel, rel_of(r[0].end));
  };
  EXPECT_TRUE(inside("users/a"));
  EXPECT_TRUE(inside("users/a/orders/b"));
  EXPECT_FALSE(inside("users2/a"));
  EXPECT_FALSE(inside("user/a"));
  EXPECT_EQ(collection_ranges(kRoot, {}).size(), 1u);
}

TEST(Firestore, RecordedStatsRoundTripAndADifferenceIsNamed) {
  StatsMap got;
  got["c"].add(stored_document(doc("c/a", {{"n", {{"integerValue", "1"}}}}), kRoot));
  auto recorded = stats_json(got);
  EXPECT_EQ(stats_from_json(recorded), got);
  EXPECT_TRUE(match_record(got, recorded).is_ok());
  EXPECT_TRUE(match_record(got, nlohmann::json::object()).is_ok());  // a collection the record lacks is not judged
  StatsMap other = got;
  other["c"].add(stored_document(doc("c/b", {{"n", {{"integerValue", "2"}}}}), kRoot));
  auto st = match_record(other, recorded);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_NE(st.message().find("collection c"), std::string::npos) << st.message();
}

// The tree as the whole-list builder made it (every document placed in one DirBuilder, then stored):
// the streaming writer must give the same root, so daily trees keep deduplicating against older ones.
TEST(Firestore, TheTreeWriterGivesTheTreeOneDirBuilderGives) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  std::vector<std::string> names;
  for (int i = 0; i < 6000; ++i) names.push_back(fmt::format("users/u{}", i * 7919 % 100003));
  for (int i = 0; i < 300; ++i) names.push_back(fmt::format("users/u{}/orders/o{}", i * 13, i));
  names.push_back("a-b/x");
  std::sort(names.begin(), names.end(), firestore_name_less);
  names.erase(std::unique(names.begin(), names.end()), names.end());
  auto node_of = [](const std::string& rel) {
    repo::Node n;
    n.kind = repo::NodeKind::kFile;
    n.mode = 0644;
    n.size = rel.size();
    n.mtime_ns = static_cast<int64_t>(rel.size()) * 1000;
    return n;
  };
  repo::WriteSession session(*repo);
  repo::DirBuilder reference;
  repo::DirBuilder& docs = reference.dirs["documents"];
  std::string group, bucket;
  size_t groups = 0;
  for (const auto& rel : names) {
    std::string name = escape_name(rel);
    if (group.empty()) group = name, ++groups;
    if (bucket.empty()) bucket = name;
    docs.place(group + "/" + bucket + "/" + name, node_of(rel));
    uint64_t h = name_hash(rel);
    if (h % 16 == 0) bucket.clear();
    if (h % 1024 == 0) group.clear(), bucket.clear();
  }
  ASSERT_GE(groups, 3u);  // the test crosses group boundaries
  auto expected = reference.store(session);
  ASSERT_TRUE(expected.is_ok());
  DocumentTreeWriter writer(session);
  for (const auto& rel : names) ASSERT_TRUE(writer.add(rel, node_of(rel)).is_ok());
  auto got = writer.finish();
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(*got, *expected);
  ASSERT_TRUE(session.flush().is_ok());
  std::vector<std::string> walked;
  ASSERT_TRUE(for_each_document_node(*repo, *got, [&](const std::string& rel, const repo::Node&) {
                walked.push_back(rel);
                return Status::ok();
              }).is_ok());
  std::sort(walked.begin(), walked.end(), firestore_name_less);
  EXPECT_EQ(walked, names);

  // An empty database still has its documents directory.
  DocumentTreeWriter empty(session);
  auto e = empty.finish();
  repo::DirBuilder empty_reference;
  empty_reference.dirs["documents"];
  EXPECT_EQ(*e, *empty_reference.store(session));
}

TEST(Firestore, TheTreeWriterRefusesDocumentsOutOfOrder) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  repo::WriteSession session(*repo);
  DocumentTreeWriter writer(session);
  ASSERT_TRUE(writer.add("users/b", repo::Node{}).is_ok());
  auto st = writer.add("users/a", repo::Node{});
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("out of name order"), std::string::npos) << st.message();
  EXPECT_FALSE(writer.add("users/b", repo::Node{}).is_ok());  // the same name twice too
}

// A reader's failure stops the producer early instead of letting it queue every document.
TEST(Firestore, StoredDocumentsStopTheProducerAtTheFirstFailure) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  std::vector<repo::Node> stored;
  {
    repo::WriteSession session(*repo);
    for (int i = 0; i < 20; ++i) {
      std::string text = doc(fmt::format("users/u{}", i), nlohmann::json::object()).dump();
      auto n = repo::store_bytes_node(session, fmt::format("u{}", i), as_bytes(text), 0644, 0);
      ASSERT_TRUE(n.is_ok());
      stored.push_back(*n);
    }
    ASSERT_TRUE(session.flush().is_ok());
  }
  size_t emitted = 0, seen = 0;
  auto produce = [&](const std::function<Status(repo::Node&&)>& emit) -> Status {
    for (size_t i = 0; i < 100000; ++i) {
      ++emitted;
      LB_RETURN_IF_ERROR(emit(repo::Node(stored[i % stored.size()])));
    }
    return Status::ok();
  };
  std::mutex mu;
  Status st = for_each_stored(*repo, produce, 2, 10, [&](std::vector<nlohmann::json>&& docs) -> Status {
    std::lock_guard<std::mutex> g(mu);
    seen += docs.size();
    return Error(Code::kIo, "the target went away");
  });
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_EQ(st.message(), "the target went away");
  EXPECT_LT(emitted, 1000u);  // stopped within the bounded queue, not after 100,000
  EXPECT_GT(seen, 0u);

  size_t all = 0;
  std::atomic<size_t> read{0};
  auto produce_all = [&](const std::function<Status(repo::Node&&)>& emit) -> Status {
    for (const auto& n : stored) {
      ++all;
      LB_RETURN_IF_ERROR(emit(repo::Node(n)));
    }
    return Status::ok();
  };
  ASSERT_TRUE(for_each_stored(*repo, produce_all, 3, 7, [&](std::vector<nlohmann::json>&& docs) {
                read += docs.size();
                return Status::ok();
              }).is_ok());
  EXPECT_EQ(read.load(), stored.size());
}

TEST(Firestore, RampStartsAt500WritesASecondAndGrowsHalfEveryFiveMinutes) {
  const int64_t minute = 60LL * 1000000000LL;
  EXPECT_DOUBLE_EQ(ramp_writes_per_second(0), 500);
  EXPECT_DOUBLE_EQ(ramp_writes_per_second(5 * minute - 1), 500);
  EXPECT_DOUBLE_EQ(ramp_writes_per_second(5 * minute), 750);
  EXPECT_DOUBLE_EQ(ramp_writes_per_second(10 * minute), 1125);
  EXPECT_DOUBLE_EQ(ramp_writes_per_second(-minute), 500);
}

}  // namespace
}  // namespace lifeboat::sources::firestore

// Firestore documents as stored: normalised values (every type, −0.0 and NaN included), references
// relative to the database, tree names, name order, and order-independent collection hashes.
#include <gtest/gtest.h>

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

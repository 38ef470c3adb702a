// The options and indexes a MongoDB restore must leave, predicted from the backup's metadata.json and
// the replayed command entries as MongoDB 4.4-8.0 logs them (createIndexes, the two-phase index build's
// commitIndexBuild, dropIndexes, collMod, create with idIndex, convertToCapped, renameCollection,
// drop). Every expectation is written out here by hand, in the form the checks compare.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sources/mongodb/restore_sink.h"

namespace lifeboat::sources::mongodb {
namespace {

// mongodump's metadata.json of d.a: an _id index and a unique index on n.
const char* kDumped = R"({"options":{},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"},
  {"v":{"$numberInt":"2"},"key":{"n":{"$numberInt":"1"}},"name":"n_1","unique":true}],"collectionName":"a","type":"collection"})";

nlohmann::json ix(nlohmann::json key, const std::string& name, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json out = {{"key", std::move(key)}, {"name", name}};
  for (auto& [k, v] : extra.items()) out[k] = v;
  return out;
}
const nlohmann::json kId = ix({{"_id", 1}}, "_id_");
const nlohmann::json kN = ix({{"n", 1}}, "n_1", {{"unique", true}});

// One command entry of database d, as the unpacker hands it on.
BsonDoc command(const std::string& o) {
  auto d = BsonDoc::from_json(R"({"op":"c","ns":"d.$cmd","ts":{"$timestamp":{"t":5,"i":1}},"o":)" + o + "}");
  EXPECT_TRUE(d.is_ok()) << o;
  return d.is_ok() ? std::move(*d) : BsonDoc();
}

struct Case {
  const char* name;
  std::vector<std::string> entries;
  const char* ns;        // the collection looked at
  bool exists;
  nlohmann::json metadata;  // {options, indexes} as compared; unused when !exists
};

TEST(MongoExpectedMetadata, CommandsChangeOptionsAndIndexesAsTheServerWould) {
  const std::vector<Case> cases = {
      {"nothing replayed", {}, "d.a", true, {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}, {"n_1", kN}}}}},
      {"createIndexes (4.2 and single-phase builds)",
       {R"({"createIndexes":"a","v":2,"key":{"t":-1,"s":1},"name":"t_-1_s_1","sparse":true,"background":true})"},
       "d.a", true,
       {{"options", nlohmann::json::object()},
        {"indexes", {{"_id_", kId}, {"n_1", kN}, {"t_-1_s_1", ix(nlohmann::json::array({{"t", -1}, {"s", 1}}), "t_-1_s_1", {{"sparse", true}})}}}}},
      {"two-phase build: start ignored, commit adds",
       {R"({"startIndexBuild":"a","indexBuildUUID":{"$uuid":"00000000-0000-4000-8000-000000000001"},"indexes":[{"v":2,"key":{"x":1},"name":"x_1"}]})",
        R"({"commitIndexBuild":"a","indexBuildUUID":{"$uuid":"00000000-0000-4000-8000-000000000001"},"indexes":[{"v":2,"key":{"x":1},"name":"x_1"}]})"},
       "d.a", true,
       {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}, {"n_1", kN}, {"x_1", ix(nlohmann::json::array({{"x", 1}}), "x_1")}}}}},
      {"abortIndexBuild adds nothing",
       {R"({"abortIndexBuild":"a","indexBuildUUID":{"$uuid":"00000000-0000-4000-8000-000000000002"},"indexes":[{"v":2,"key":{"y":1},"name":"y_1"}]})"},
       "d.a", true, {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}, {"n_1", kN}}}}},
      {"dropIndexes by name", {R"({"dropIndexes":"a","index":"n_1"})"}, "d.a", true,
       {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}}}}},
      {"dropIndexes by key pattern", {R"({"dropIndexes":"a","index":{"n":1}})"}, "d.a", true,
       {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}}}}},
      {"collMod of a TTL and a hidden flag",
       {R"({"createIndexes":"a","v":2,"key":{"t":1},"name":"t_1","expireAfterSeconds":60})",
        R"({"collMod":"a","index":{"name":"t_1","expireAfterSeconds":90}})",
        R"({"collMod":"a","index":{"keyPattern":{"n":1},"hidden":true}})"},
       "d.a", true,
       {{"options", nlohmann::json::object()},
        {"indexes", {{"_id_", kId}, {"n_1", ix({{"n", 1}}, "n_1", {{"unique", true}, {"hidden", true}})},
                     {"t_1", ix(nlohmann::json::array({{"t", 1}}), "t_1", {{"expireAfterSeconds", 90}})}}}}},
      {"collMod of a validator",
       {R"({"collMod":"a","validator":{"$jsonSchema":{"required":["n"]}},"validationLevel":"moderate"})"}, "d.a", true,
       {{"options", {{"validator", {{"$jsonSchema", {{"required", {"n"}}}}}}, {"validationLevel", "moderate"}}},
        {"indexes", {{"_id_", kId}, {"n_1", kN}}}}},
      {"create with options and idIndex; a capped size rounds up to 256",
       {R"({"create":"c","capped":true,"size":1000,"max":10,"idIndex":{"v":2,"key":{"_id":1},"name":"_id_"}})"}, "d.c", true,
       {{"options", {{"capped", true}, {"size", 1024}, {"max", 10}}}, {"indexes", {{"_id_", kId}}}}},
      {"collMod cappedSize (6.0)",
       {R"({"create":"c","capped":true,"size":4096})", R"({"collMod":"c","cappedSize":8192,"cappedMax":5})"}, "d.c", true,
       {{"options", {{"capped", true}, {"size", 8192}, {"max", 5}}}, {"indexes", {{"_id_", kId}}}}},
      {"convertToCapped keeps only the _id index", {R"({"convertToCapped":"a","size":5000})"}, "d.a", true,
       {{"options", {{"capped", true}, {"size", 5120}}}, {"indexes", {{"_id_", kId}}}}},
      {"renameCollection carries options and indexes",
       {R"({"renameCollection":"d.a","to":"d.b","stayTemp":false})"}, "d.b", true,
       {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}, {"n_1", kN}}}}},
      {"renameCollection leaves nothing behind", {R"({"renameCollection":"d.a","to":"d.b","stayTemp":false})"}, "d.a", false, {}},
      {"drop", {R"({"drop":"a"})"}, "d.a", false, {}},
      {"dropDatabase", {R"({"dropDatabase":1})"}, "d.a", false, {}},
      {"a view is not a collection", {R"({"create":"v","viewOn":"a","pipeline":[]})"}, "d.v", false, {}},
      {"an index build creates its collection", {R"({"createIndexes":"new","v":2,"key":{"k":1},"name":"k_1"})"}, "d.new", true,
       {{"options", nlohmann::json::object()}, {"indexes", {{"_id_", kId}, {"k_1", ix(nlohmann::json::array({{"k", 1}}), "k_1")}}}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectedState e;
    e.add_collection("d.a", kDumped);
    for (const auto& o : c.entries) e.apply_op(command(o).get());
    auto out = e.finish();
    auto it = out.find(c.ns);
    if (!c.exists) {
      EXPECT_TRUE(it == out.end() || !it->second.exists);
      continue;
    }
    ASSERT_TRUE(it != out.end());
    EXPECT_TRUE(it->second.exists);
    // The key pattern compares as [[field, direction], ...]: write the expected ones that way.
    nlohmann::json want = c.metadata;
    for (auto& [name, spec] : want["indexes"].items())
      if (spec["key"].is_object()) {
        nlohmann::json pairs = nlohmann::json::array();
        for (auto& [f, d] : spec["key"].items()) pairs.push_back({f, d});
        spec["key"] = pairs;
      }
    EXPECT_EQ(it->second.metadata, want) << it->second.metadata.dump();
    EXPECT_TRUE(metadata_differences(want, it->second.metadata).empty());
  }
}

TEST(MongoExpectedMetadata, EveryDifferenceIsNamed) {
  auto want = comparable_metadata(kDumped);
  ASSERT_TRUE(want.is_ok());
  // The target as a server reports it: the unique index lost, another added, an option changed.
  auto got = comparable_metadata(R"({"options":{"capped":true,"size":4096},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"},
    {"v":2,"key":{"n":1},"name":"n_1"},{"v":2,"key":{"z":1},"name":"z_1"}]})");
  ASSERT_TRUE(got.is_ok());
  auto diffs = metadata_differences(*want, *got);
  ASSERT_EQ(diffs.size(), 3u) << nlohmann::json(diffs).dump();
  EXPECT_NE(diffs[0].find("options"), std::string::npos);
  EXPECT_NE(diffs[1].find("index n_1 is"), std::string::npos);
  EXPECT_NE(diffs[2].find("index z_1"), std::string::npos);
  // The order of a compound key pattern matters; a number's BSON type and `v` do not.
  auto ab = comparable_metadata(R"({"indexes":[{"v":1,"key":{"a":1,"b":{"$numberDouble":"1.0"}},"name":"i"}]})");
  auto ba = comparable_metadata(R"({"indexes":[{"v":2,"key":{"b":1,"a":1},"name":"i"}]})");
  auto ab2 = comparable_metadata(R"({"indexes":[{"key":{"a":{"$numberLong":"1"},"b":1},"name":"i","unique":false}]})");
  ASSERT_TRUE(ab.is_ok() && ba.is_ok() && ab2.is_ok());
  EXPECT_FALSE(metadata_differences(*ab, *ba).empty());
  EXPECT_TRUE(metadata_differences(*ab, *ab2).empty());
}

}  // namespace
}  // namespace lifeboat::sources::mongodb

// Oplog entries as MongoDB 4.4-8.0 writes them, turned into the changes a restore applies: transactions
// whole at their commit, the command list, skip rules, unknown entries refused by name; and the
// mongodump directory sink replaying commands. Every expectation is written out here by hand.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/oplog_replay.h"
#include "sources/mongodb/restore_sink.h"

namespace lifeboat::sources::mongodb {
namespace {

BsonDoc doc(const std::string& json) {
  auto d = BsonDoc::from_json(json);
  EXPECT_TRUE(d.is_ok()) << json << ": " << d.status().message();
  return d.is_ok() ? std::move(*d) : BsonDoc();
}

std::string ts(uint32_t t, uint32_t i) {
  return R"({"$timestamp":{"t":)" + std::to_string(t) + R"(,"i":)" + std::to_string(i) + "}}";
}

const char* kLsid =
    R"("lsid":{"id":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}}},"txnNumber":{"$numberLong":"1"})";
const char* kLsid2 =
    R"("lsid":{"id":{"$binary":{"base64":"AQAAAAAAAAAAAAAAAAAAAA==","subType":"04"}}},"txnNumber":{"$numberLong":"4"})";

// Feeds entries and records each change as "op ns o-first-key-or-_id @t:i".
struct Fed {
  std::vector<std::string> changes;
  std::optional<UnknownEntry> unknown;
};

std::string describe(const bson_t* c) {
  std::string op = bson_string(c, "op"), ns = bson_string(c, "ns");
  auto t = bson_timestamp(c, "ts").value_or(OplogTime{});
  bson_iter_t it, sub;
  std::string what;
  if (bson_iter_init_find(&it, c, op == "u" ? "o2" : "o") && bson_iter_recurse(&it, &sub) && bson_iter_next(&sub)) {
    what = bson_iter_key(&sub);
    if (what == "_id" && BSON_ITER_HOLDS_INT32(&sub))
      what = "_id " + std::to_string(bson_iter_int32(&sub));
    else if (BSON_ITER_HOLDS_UTF8(&sub))
      what += " " + std::string(bson_iter_utf8(&sub, nullptr));
  }
  return op + " " + ns + " " + what + " @" + t.to_string();
}

Fed feed_all(const std::vector<std::string>& entries, NsFilter filter = {}, bool skip_unknown = false,
             OplogUnpacker** keep = nullptr) {
  static std::unique_ptr<OplogUnpacker> last;
  static NsFilter kept;
  kept = std::move(filter);
  last = std::make_unique<OplogUnpacker>(kept, skip_unknown);
  if (keep) *keep = last.get();
  Fed fed;
  for (const auto& e : entries) {
    BsonDoc entry = doc(e);
    Status s = last->feed(
        entry.get(),
        [&](const BsonDoc& c) {
          fed.changes.push_back(describe(c.get()));
          return Status::ok();
        },
        fed.unknown);
    EXPECT_TRUE(s.is_ok()) << s.message();
    if (fed.unknown) break;
  }
  return fed;
}

using Changes = std::vector<std::string>;

TEST(OplogUnpacker, PlainEntriesPassWithTheirPosition) {
  auto fed = feed_all(
      {R"({"op":"i","ns":"shop.orders","o":{"_id":1},"ts":)" + ts(10, 1) + "}",
       R"({"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"a":1}}},"o2":{"_id":1},"ts":)" + ts(10, 2) + "}",
       R"({"op":"d","ns":"shop.orders","o":{"_id":1},"ts":)" + ts(11, 1) + "}",
       R"({"op":"n","ns":"","o":{"msg":"periodic noop"},"ts":)" + ts(12, 1) + "}"});
  EXPECT_FALSE(fed.unknown);
  EXPECT_EQ(fed.changes,
            (Changes{"i shop.orders _id 1 @10:1", "u shop.orders _id 1 @10:2", "d shop.orders _id 1 @11:1"}));
}

TEST(OplogUnpacker, ATransactionIsAppliedWholeAtItsCommitWithInnerNamespacesMapped) {
  NsFilter filter{{}, {{"shop", "shop_r"}}};
  auto fed = feed_all(
      {std::string(R"({"op":"c","ns":"admin.$cmd",)") + kLsid +
       R"(,"prevOpTime":{"ts":{"$timestamp":{"t":0,"i":0}},"t":{"$numberLong":"-1"}},"o":{"applyOps":[)"
       R"({"op":"i","ns":"shop.orders","ui":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}},"o":{"_id":100}},)"
       R"({"op":"d","ns":"shop.orders","o":{"_id":2}},)"
       R"({"op":"u","ns":"shop.items","o":{"$v":2,"diff":{"u":{"n":1}}},"o2":{"_id":7}}]},"ts":)" +
       ts(20, 3) + "}"},
      filter);
  EXPECT_FALSE(fed.unknown);
  EXPECT_EQ(fed.changes,
            (Changes{"i shop_r.orders _id 100 @20:3", "d shop_r.orders _id 2 @20:3", "u shop_r.items _id 7 @20:3"}));
}

TEST(OplogUnpacker, APartialTxnChainWaitsForTheEntryThatEndsIt) {
  std::string l = kLsid;
  auto part = [&](int id, uint32_t t) {
    return R"({"op":"c","ns":"admin.$cmd",)" + l + R"(,"o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":)" +
           std::to_string(id) + R"(}}],"partialTxn":true},"ts":)" + ts(t, 1) + "}";
  };
  std::string other = R"({"op":"i","ns":"shop.orders","o":{"_id":50},"ts":)" + ts(31, 2) + "}";
  std::string last =
      R"({"op":"c","ns":"admin.$cmd",)" + l +
      R"(,"o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":3}}],"count":{"$numberLong":"3"}},"ts":)" +
      ts(32, 1) + "}";
  // Cut before the end: nothing of the transaction.
  auto before = feed_all({part(1, 30), part(2, 31), other});
  EXPECT_EQ(before.changes, (Changes{"i shop.orders _id 50 @31:2"}));
  auto all = feed_all({part(1, 30), part(2, 31), other, last});
  EXPECT_EQ(all.changes, (Changes{"i shop.orders _id 50 @31:2", "i shop.orders _id 1 @32:1",
                                  "i shop.orders _id 2 @32:1", "i shop.orders _id 3 @32:1"}));
}

// A standby resumed later reads from the first entry of a transaction still open (a chain cut by the
// end of what was applied); nothing is open once it ended, or before it began.
TEST(OplogUnpacker, TheOldestOpenTransactionIsWhereAResumedReplayMustStart) {
  std::string l = kLsid, l2 = kLsid2;
  auto part = [&](const std::string& lsid, int id, uint32_t t, uint32_t i) {
    return R"({"op":"c","ns":"admin.$cmd",)" + lsid + R"(,"o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":)" +
           std::to_string(id) + R"(}}],"partialTxn":true},"ts":)" + ts(t, i) + "}";
  };
  std::string end = R"({"op":"c","ns":"admin.$cmd",)" + l +
                    R"(,"o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":3}}],"count":{"$numberLong":"2"}},"ts":)" + ts(52, 1) + "}";
  OplogUnpacker* u = nullptr;
  feed_all({R"({"op":"i","ns":"shop.orders","o":{"_id":9},"ts":)" + ts(49, 1) + "}"}, {}, false, &u);
  EXPECT_FALSE(u->oldest_open());
  feed_all({part(l, 1, 50, 4), part(l2, 7, 51, 2), part(l, 2, 51, 3)}, {}, false, &u);
  ASSERT_TRUE(u->oldest_open());
  EXPECT_EQ(*u->oldest_open(), (OplogTime{50, 4}));  // the chain's first entry, not its latest
  feed_all({part(l, 1, 50, 4), part(l2, 7, 51, 2), part(l, 2, 51, 3), end}, {}, false, &u);
  ASSERT_TRUE(u->oldest_open());
  EXPECT_EQ(*u->oldest_open(), (OplogTime{51, 2}));  // the other session's chain is still open
}

TEST(OplogUnpacker, PreparedTransactionsApplyAtTheirCommitAndAbortedOnesNever) {
  std::string prepare1 = std::string(R"({"op":"c","ns":"admin.$cmd",)") + kLsid +
                         R"(,"o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":200}}],"prepare":true},"ts":)" +
                         ts(40, 1) + "}";
  std::string prepare2 = std::string(R"({"op":"c","ns":"admin.$cmd",)") + kLsid2 +
                         R"(,"o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":300}}],"prepare":true},"ts":)" +
                         ts(40, 2) + "}";
  std::string commit1 = std::string(R"({"op":"c","ns":"admin.$cmd",)") + kLsid +
                        R"(,"o":{"commitTransaction":1,"commitTimestamp":{"$timestamp":{"t":40,"i":5}}},"ts":)" +
                        ts(41, 1) + "}";
  std::string abort2 = std::string(R"({"op":"c","ns":"admin.$cmd",)") + kLsid2 +
                       R"(,"o":{"abortTransaction":1},"ts":)" + ts(41, 2) + "}";
  EXPECT_EQ(feed_all({prepare1, prepare2}).changes, Changes{});
  EXPECT_EQ(feed_all({prepare1, prepare2, commit1, abort2}).changes, (Changes{"i shop.orders _id 200 @41:1"}));
  // A commit whose prepare lies before what the backup holds cannot be replayed: refused, named.
  auto orphan = feed_all({commit1});
  ASSERT_TRUE(orphan.unknown);
  EXPECT_NE(orphan.unknown->describe().find("o.commitTransaction"), std::string::npos) << orphan.unknown->describe();
}

TEST(OplogUnpacker, CommandsAreMappedAndSystemNamespacesSkippedByRule) {
  NsFilter filter{{"shop", "logs"}, {{"shop", "shop_r"}}};
  auto fed = feed_all(
      {R"({"op":"c","ns":"shop.$cmd","o":{"create":"audit","capped":true,"size":{"$numberLong":"4096"}},"ts":)" +
           ts(50, 1) + "}",
       R"({"op":"c","ns":"shop.$cmd","o":{"createIndexes":"orders","v":2,"key":{"sku":1},"name":"sku_1"},"ts":)" +
           ts(50, 2) + "}",
       R"({"op":"c","ns":"shop.$cmd","o":{"renameCollection":"shop.orders","to":"shop.orders_v2","stayTemp":false,"dropTarget":false},"ts":)" +
           ts(50, 3) + "}",
       R"({"op":"c","ns":"shop.$cmd","o":{"renameCollection":"shop.tmp","to":"archive.tmp","dropTarget":false},"ts":)" +
           ts(50, 4) + "}",
       R"({"op":"i","ns":"config.transactions","o":{"_id":1},"ts":)" + ts(50, 5) + "}",
       R"({"op":"i","ns":"shop.system.views","o":{"_id":"shop.v"},"ts":)" + ts(50, 6) + "}",
       R"({"op":"i","ns":"other.c","o":{"_id":1},"ts":)" + ts(50, 7) + "}",
       R"({"op":"c","ns":"shop.$cmd","o":{"dbCheck":"orders","minKey":1},"ts":)" + ts(50, 8) + "}",
       R"({"op":"c","ns":"logs.$cmd","o":{"dropDatabase":1},"ts":)" + ts(50, 9) + "}"},
      filter);
  EXPECT_FALSE(fed.unknown);
  EXPECT_EQ(fed.changes, (Changes{"c shop_r.$cmd create audit @50:1", "c shop_r.$cmd createIndexes orders @50:2",
                                  "c shop_r.$cmd renameCollection shop_r.orders @50:3",
                                  // leaving the databases restored: a drop there
                                  "c shop_r.$cmd drop tmp @50:4", "c logs.$cmd dropDatabase @50:9"}));
}

TEST(OplogUnpacker, UnknownEntriesStopBeforeThemNamedOrAreSkippedWhenAsked) {
  std::vector<std::string> entries = {
      R"({"op":"i","ns":"shop.orders","o":{"_id":1},"ts":)" + ts(60, 1) + "}",
      R"({"op":"c","ns":"shop.$cmd","o":{"futureCommand":"orders"},"ts":)" + ts(60, 2) + "}",
      R"({"op":"i","ns":"shop.orders","o":{"_id":2},"ts":)" + ts(60, 3) + "}"};
  auto stopped = feed_all(entries);
  ASSERT_TRUE(stopped.unknown);
  EXPECT_EQ(stopped.unknown->describe(), "ts 60:2, op c, o.futureCommand: a command this version does not know");
  EXPECT_EQ(stopped.changes, (Changes{"i shop.orders _id 1 @60:1"}));
  OplogUnpacker* u = nullptr;
  auto skipped = feed_all(entries, {}, true, &u);
  EXPECT_FALSE(skipped.unknown);
  EXPECT_EQ(skipped.changes, (Changes{"i shop.orders _id 1 @60:1", "i shop.orders _id 2 @60:3"}));
  EXPECT_EQ(u->skipped_count(), 1u);
  ASSERT_EQ(u->skipped().size(), 1u);
  EXPECT_NE(u->skipped()[0].find("futureCommand"), std::string::npos);

  // Each malformed shape is refused, naming why.
  const std::pair<std::string, std::string> bad[] = {
      {R"({"op":"x","ns":"shop.orders","o":{"_id":1},"ts":)" + ts(61, 1) + "}", "operation type"},
      {R"({"op":"i","ns":"shop.orders","o":{"a":1},"ts":)" + ts(61, 2) + "}", "insert without _id"},
      {R"({"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"a":1}}},"ts":)" + ts(61, 3) + "}", "o2._id"},
      {R"({"op":"u","ns":"shop.orders","o":{"$v":3,"x":{}},"o2":{"_id":1},"ts":)" + ts(61, 4) + "}", "$v:3"},
      {R"({"op":"u","ns":"shop.orders","o":{"$v":2,"diff":5},"o2":{"_id":1},"ts":)" + ts(61, 8) + "}", "diff document"},
      {R"({"op":"c","ns":"admin.$cmd","o":{"applyOps":{"op":"i"}},"ts":)" + ts(61, 5) + "}", "not an array"},
      {R"({"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"c","ns":"shop.$cmd","o":{"newThing":"x"}}]},"ts":)" +
           ts(61, 6) + "}",
       "o.newThing"},
      {R"({"op":"c","ns":"shop.$cmd","o":{"renameCollection":"other.x","to":"shop.x"},"ts":)" + ts(61, 7) + "}",
       "does not hold"},
  };
  for (const auto& [entry, why] : bad) {
    SCOPED_TRACE(entry);
    auto fed = feed_all({entry}, NsFilter{{"shop"}, {}});
    ASSERT_TRUE(fed.unknown);
    EXPECT_NE(fed.unknown->describe().find(why), std::string::npos) << fed.unknown->describe();
    EXPECT_TRUE(fed.changes.empty());
  }
}

TEST(OplogUnpacker, AnUnknownOperationInsideATransactionKeepsAllOfItOut) {
  auto fed = feed_all({R"({"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"i","ns":"shop.orders","o":{"_id":1}},)"
                       R"({"op":"z","ns":"shop.orders","o":{"_id":2}}]},"ts":)" +
                       ts(70, 1) + "}"});
  ASSERT_TRUE(fed.unknown);
  EXPECT_TRUE(fed.changes.empty());
}

// The directory sink, driven with changes as the unpacker yields them.
class DirSinkCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("lb_dirsink_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto s = make_dir_sink(dir_);
    ASSERT_TRUE(s.is_ok());
    sink_ = std::move(*s);
    CollectionSpec spec{
        "shop", "orders",
        R"({"options":{},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"collectionName":"orders","type":"collection"})"};
    ASSERT_TRUE(sink_->begin_collection(spec).is_ok());
    std::vector<Bytes> docs;
    for (int i = 1; i <= 3; ++i) {
      BsonDoc d = doc(R"({"_id":)" + std::to_string(i) + R"(,"n":0})");
      docs.emplace_back(d.bytes().begin(), d.bytes().end());
    }
    ASSERT_TRUE(sink_->insert_batch(std::move(docs)).is_ok());
    ASSERT_TRUE(sink_->end_collection().is_ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void apply(const std::string& json) {
    BsonDoc c = doc(json);
    Status s = sink_->apply_op(c.get());
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  std::vector<std::string> ids(const std::string& db, const std::string& coll) {
    std::ifstream in(dir_ / db / (coll + ".bson"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::vector<std::string> out;
    for (size_t off = 0; off + 4 <= bytes.size();) {
      uint32_t len;
      std::memcpy(&len, bytes.data() + off, 4);
      bson_t v;
      bson_init_static(&v, reinterpret_cast<const uint8_t*>(bytes.data() + off), len);
      char* j = bson_as_relaxed_extended_json(&v, nullptr);
      out.push_back(j);
      bson_free(j);
      off += len;
    }
    return out;
  }
  nlohmann::json metadata(const std::string& db, const std::string& coll) {
    std::ifstream in(dir_ / db / (coll + ".metadata.json"));
    return nlohmann::json::parse(in);
  }
  std::filesystem::path dir_;
  std::unique_ptr<RestoreSink> sink_;
};

TEST_F(DirSinkCommands, RenameCreateIndexesAndDeltaUpdatesLandInTheDumpLayout) {
  apply(R"({"op":"u","ns":"shop.orders","o":{"$v":2,"diff":{"u":{"n":5},"i":{"tag":"x"}}},"o2":{"_id":2}})");
  apply(R"({"op":"c","ns":"shop.$cmd","o":{"createIndexes":"orders","v":2,"key":{"sku":1},"name":"sku_1"}})");
  apply(
      R"({"op":"c","ns":"shop.$cmd","o":{"commitIndexBuild":"orders","indexBuildUUID":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}},"indexes":[{"v":2,"key":{"when":-1},"name":"when_-1"}]}})");
  apply(R"({"op":"c","ns":"shop.$cmd","o":{"dropIndexes":"orders","index":"sku_1"}})");
  apply(
      R"({"op":"c","ns":"shop.$cmd","o":{"renameCollection":"shop.orders","to":"shop.orders_v2","dropTarget":false}})");
  apply(R"({"op":"i","ns":"shop.orders","o":{"_id":9}})");  // a new collection under the old name
  apply(
      R"({"op":"c","ns":"shop.$cmd","o":{"create":"audit","capped":true,"size":4096,"idIndex":{"v":2,"key":{"_id":1},"name":"_id_"}}})");
  apply(R"({"op":"c","ns":"shop.$cmd","o":{"collMod":"orders_v2","validationLevel":"moderate"}})");
  ASSERT_TRUE(sink_->finish().is_ok());
  EXPECT_EQ(ids("shop", "orders_v2"),
            (std::vector<std::string>{R"({ "_id" : 1, "n" : 0 })", R"({ "_id" : 2, "n" : 5, "tag" : "x" })",
                                      R"({ "_id" : 3, "n" : 0 })"}));
  EXPECT_EQ(ids("shop", "orders"), (std::vector<std::string>{R"({ "_id" : 9 })"}));
  auto v2 = metadata("shop", "orders_v2");
  EXPECT_EQ(v2["collectionName"], "orders_v2");
  std::vector<std::string> names;
  for (const auto& ix : v2["indexes"]) names.push_back(ix["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"_id_", "when_-1"}));
  EXPECT_EQ(v2["options"]["validationLevel"], "moderate");
  auto audit = metadata("shop", "audit");
  EXPECT_EQ(audit["options"]["capped"], true);
  EXPECT_FALSE(audit["options"].contains("idIndex"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "shop" / "audit.bson"));
}

TEST_F(DirSinkCommands, DropsRemoveTheFiles) {
  apply(R"({"op":"c","ns":"shop.$cmd","o":{"drop":"orders"}})");
  ASSERT_TRUE(sink_->finish().is_ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "shop" / "orders.bson"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "shop" / "orders.metadata.json"));
}

}  // namespace
}  // namespace lifeboat::sources::mongodb

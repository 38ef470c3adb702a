// libFuzzer: BSON streams and oplog entries as a restore reads them back (the document framing, the
// entry's position and namespace, the --to-db mapping, transactions and commands unpacked), and one
// property: replaying the entries into a mongodump directory and predicting the result in memory
// (ExpectedState, which drills compare targets with) give the same documents in every collection.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_client.h"
#include "sources/mongodb/oplog_replay.h"
#include "sources/mongodb/restore_sink.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  using namespace lifeboat::sources::mongodb;
  ByteView all(data, size);
  std::vector<ByteView> docs;
  for (size_t pos = 0; pos < all.size();) {
    auto len = bson_frame_length(all.subspan(pos), "fuzz");
    if (!len.is_ok() || *len > all.size() - pos || !bson_framed(all.subspan(pos, *len))) break;
    docs.push_back(all.subspan(pos, *len));
    pos += *len;
  }
  // Every framed document is an oplog entry; those with a distinct _id are also the backed-up
  // documents of collection a.c (restored as renamed.c).
  NsFilter filter{{"a", "b"}, {{"a", "renamed"}}};
  std::vector<Bytes> stored;
  std::set<std::string> ids;
  for (ByteView doc : docs) {
    bson_t view;
    if (!bson_init_static(&view, doc.data(), doc.size())) abort();  // framed documents always initialise
    (void)bson_timestamp(&view, "ts");
    bson_iter_t it;
    if (!bson_iter_init_find(&it, &view, "_id")) continue;
    BsonDoc key;
    bson_append_iter(key.get(), "_id", 3, &it);
    if (ids.insert(to_string(key.bytes())).second) stored.emplace_back(doc.begin(), doc.end());
  }

  std::string dir = "/tmp/lb_fuzz_oplog_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto made = make_dir_sink(dir);
  if (!made.is_ok()) abort();
  auto& sink = *made;
  ExpectedState expected;
  std::optional<UnknownEntry> unknown;
  size_t replayed = docs.size();  // the replay stops before the first unknown entry, as a restore does
  {
    OplogUnpacker scan(filter, false);
    for (size_t n = 0; n < docs.size(); ++n) {
      ByteView doc = docs[n];
      bson_t view;
      bson_init_static(&view, doc.data(), doc.size());
      if (!scan.feed(
                   &view,
                   [&](const BsonDoc& c) {
                     expected.note_op(c.get());
                     return Status::ok();
                   },
                   unknown)
               .is_ok())
        abort();  // the unpacker itself never fails: what it does not know comes back as `unknown`
      if (unknown) {
        replayed = n;
        break;
      }
    }
  }
  bool ok = sink->begin_collection({"renamed", "c", ""}).is_ok();
  for (const auto& d : stored) expected.add_document("renamed.c", d);
  ok = ok && sink->insert_batch(stored).is_ok() && sink->end_collection().is_ok();
  OplogUnpacker replay(filter, false);
  std::optional<UnknownEntry> again;
  for (size_t n = 0; n < replayed && ok; ++n) {
    bson_t view;
    bson_init_static(&view, docs[n].data(), docs[n].size());
    ok = replay
             .feed(
                 &view,
                 [&](const BsonDoc& c) {
                   expected.apply_op(c.get());
                   return sink->apply_op(c.get());
                 },
                 again)
             .is_ok();
    if (again) break;
  }
  // A sink error (a diff the applier refuses, a damaged file) ends the comparison: the restore
  // would have stopped there too.
  if (ok && !again && sink->finish().is_ok()) {
    for (const auto& [ns, want] : expected.finish()) {
      if (want.hash.size() != 32) abort();
      if (!want.predictable) continue;
      size_t dot = ns.find('.');
      auto got = digest_dir_collection(dir, ns.substr(0, dot), ns.substr(dot + 1));
      if (!got.is_ok()) continue;
      if (got->count() != want.count || got->hash_hex() != want.hash) abort();  // replay and prediction differ
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}

// libFuzzer: BSON streams and oplog entries as a restore reads them back: the document framing, the
// entry's position and namespace, the --to-db mapping, and the in-memory replay (insert, delete,
// $set/$unset, whole-document updates) that predicts what a restored collection must hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_client.h"
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
  NsFilter filter{{"a", "b"}, {{"a", "renamed"}}};
  std::vector<BsonDoc> mapped;
  for (ByteView doc : docs) {
    bson_t view;
    if (!bson_init_static(&view, doc.data(), doc.size())) abort();  // framed documents always initialise
    (void)bson_timestamp(&view, "ts");
    if (auto m = filter.map_op(&view)) mapped.push_back(std::move(*m));
  }
  // Every framed document is both a stored document of a collection and, mapped, an oplog entry.
  ExpectedState expected;
  for (const auto& op : mapped) expected.note_op(op.get());
  for (ByteView doc : docs) expected.add_document("renamed.c", doc);
  for (const auto& op : mapped) expected.apply_op(op.get());
  auto out = expected.finish();
  for (const auto& [ns, c] : out)
    if (c.hash.size() != 32) abort();
  return 0;
}

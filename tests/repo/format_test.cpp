// Pack, index, tree and snapshot codecs: round trips, and rejection of damaged input.
#include <gtest/gtest.h>

#include "repo/index.h"
#include "repo/pack.h"
#include "repo/snapshot.h"
#include "repo/snapshot_select.h"
#include "repo/tree.h"
#include "test_repo.h"

namespace lifeboat::repo {

static BlobId id_of(uint8_t b) {
  BlobId id{};
  id.fill(b);
  return id;
}

TEST(Pack, HeaderRoundTripAndBlobsAreWhereItSays) {
  crypto::Aead aead(crypto::random_key());
  PackBuilder pb;
  Bytes blob1 = aead.seal(as_bytes("one")), blob2 = aead.seal(as_bytes("second blob"));
  pb.append({BlobType::kData, false, id_of(1), 0, 0, 3}, blob1);
  pb.append({BlobType::kTree, true, id_of(2), 0, 0, 11}, blob2);
  Bytes pack = pb.finish(aead);
  auto entries = read_pack_header(pack, aead);
  ASSERT_TRUE(entries.is_ok()) << entries.status().message();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].type, BlobType::kTree);
  EXPECT_TRUE((*entries)[1].compressed);
  EXPECT_EQ((*entries)[1].offset, blob1.size());
  auto plain = aead.open(ByteView(pack).subspan((*entries)[1].offset, (*entries)[1].stored_len));
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(to_string(*plain), "second blob");
}

TEST(Pack, TruncationAndFlipsAreCorruption) {
  crypto::Aead aead(crypto::random_key());
  PackBuilder pb;
  pb.append({BlobType::kData, false, id_of(1), 0, 0, 3}, aead.seal(as_bytes("abc")));
  Bytes pack = pb.finish(aead);
  for (size_t cut = 0; cut < pack.size(); ++cut)
    EXPECT_FALSE(read_pack_header(ByteView(pack).subspan(0, cut), aead).is_ok()) << cut;
  Bytes bad = pack;
  bad[bad.size() - 10] ^= 0x40;
  EXPECT_EQ(read_pack_header(bad, aead).status().code(), Code::kCorrupt);
}

TEST(Pack, DecodeRejectsHeadersThatDoNotCoverThePack) {
  std::vector<PackEntry> entries = {{BlobType::kData, false, id_of(1), 0, 100, 60}};
  Bytes h = encode_pack_header(entries);
  EXPECT_TRUE(decode_pack_header(h, 100).is_ok());
  EXPECT_FALSE(decode_pack_header(h, 99).is_ok());
  EXPECT_FALSE(decode_pack_header(h, 101).is_ok());
}

TEST(Index, FileRoundTripAndMasterIndexLookup) {
  IndexFile f;
  f.packs.push_back({id_of(9), {{BlobType::kData, true, id_of(1), 0, 100, 200}, {BlobType::kTree, false, id_of(2), 100, 50, 10}}});
  f.supersedes = {"abc"};
  auto g = IndexFile::decode(f.encode());
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  ASSERT_EQ(g->packs.size(), 1u);
  EXPECT_EQ(g->packs[0].entries[1].offset, 100u);
  EXPECT_EQ(g->supersedes, f.supersedes);

  MasterIndex mi;
  mi.add_pack(g->packs[0].id, g->packs[0].entries);
  EXPECT_TRUE(mi.contains(id_of(2)));  // before merge: found in recent additions
  mi.merge();
  auto loc = mi.find(id_of(1));
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->pack, id_of(9));
  EXPECT_TRUE(loc->compressed);
  EXPECT_EQ(loc->stored_len, 100u);
  EXPECT_EQ(loc->raw_len, 200u);
  EXPECT_EQ(mi.find(id_of(2))->type, BlobType::kTree);
  EXPECT_FALSE(mi.contains(id_of(3)));
  EXPECT_EQ(mi.blob_count(), 2u);
}

TEST(Index, DecodeRejectsTruncation) {
  IndexFile f;
  f.packs.push_back({id_of(9), {{BlobType::kData, true, id_of(1), 0, 100, 200}}});
  Bytes b = f.encode();
  for (size_t cut = 0; cut < b.size(); ++cut) EXPECT_FALSE(IndexFile::decode(ByteView(b).subspan(0, cut)).is_ok());
}

TEST(Tree, RoundTripKeepsEveryField) {
  Tree t;
  Node n;
  n.kind = NodeKind::kFile;
  n.name = std::string("we\xff\nird name", 12);
  n.mode = 04755;
  n.uid = 1000;
  n.gid = 100;
  n.user = "u";
  n.mtime_ns = -5;  // before 1970
  n.size = 12345;
  n.links = 2;
  n.xattrs = {{"user.a", std::string("\0b", 2)}};
  n.content = {id_of(1), id_of(2)};
  Node d;
  d.kind = NodeKind::kDir;
  d.name = "dir";
  d.subtree = id_of(3);
  t.nodes = {n, d};
  t.sort();
  auto u = Tree::decode(t.encode());
  ASSERT_TRUE(u.is_ok()) << u.status().message();
  EXPECT_EQ(u->nodes, t.nodes);
}

TEST(Tree, RejectsPathTraversalNames) {
  for (const char* bad : {"..", ".", "a/b", ""}) {
    Tree t;
    Node n;
    n.name = bad;
    t.nodes = {n};
    EXPECT_FALSE(Tree::decode(t.encode()).is_ok()) << bad;
  }
}

TEST(Snapshot, JsonRoundTripAndSelectionByTime) {
  Snapshot s;
  s.time_ns = 1000;
  s.paths = {"/a"};
  s.tags = {"daily"};
  s.tree = id_of(5);
  s.metadata = {{"oplog_end", 42}};
  auto t = Snapshot::from_json(s.to_json());
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->tree, s.tree);
  EXPECT_EQ(t->metadata["oplog_end"], 42);

  std::vector<SnapshotRef> all;
  for (int i = 1; i <= 3; ++i) {
    Snapshot x = s;
    x.time_ns = i * 100;
    all.push_back({std::string(1, static_cast<char>('a' + i)) + "bc", x});
  }
  EXPECT_EQ(select_snapshot(all, "latest", std::nullopt, {})->id, "dbc");
  EXPECT_EQ(select_snapshot(all, "latest", 250, {})->id, "cbc");
  EXPECT_EQ(select_snapshot(all, "", 200, {})->id, "cbc");  // at exactly the instant counts
  EXPECT_EQ(select_snapshot(all, "latest", 50, {}).status().code(), Code::kNotFound);
  EXPECT_EQ(select_snapshot(all, "b", std::nullopt, {})->id, "bbc");
  EXPECT_EQ(select_snapshot(all, "x", std::nullopt, {}).status().code(), Code::kNotFound);
  SnapshotFilter f;
  f.tags = {"weekly"};
  EXPECT_FALSE(select_snapshot(all, "latest", std::nullopt, f).is_ok());
}

// --at given to the second a listing shows, for a snapshot taken a fraction of that second later:
// the refusal names the snapshot, by how much it missed, and what to give instead.
TEST(SnapshotSelect, AnAtThatMissesBySubSecondsSaysWhichSnapshotAndBy) {
  Snapshot s;
  s.time_ns = 1796574691804077122;  // 2026-12-06T16:31:31.804077122Z
  std::vector<SnapshotRef> all = {{"59a1afe9aa", s}};
  int64_t at = 1796574691000000000;  // 2026-12-06T16:31:31Z
  auto r = select_snapshot(all, "latest", at, {});
  ASSERT_FALSE(r.is_ok());
  const auto& m = r.status().message();
  EXPECT_NE(m.find("59a1afe9"), std::string::npos) << m;
  EXPECT_NE(m.find("804 ms later"), std::string::npos) << m;
  EXPECT_NE(m.find("give --at 2026-12-06T16:31:31.804077122Z or later"), std::string::npos) << m;
  EXPECT_EQ(select_snapshot(all, "latest", s.time_ns, {})->id, "59a1afe9aa");  // exactly its instant: taken
  auto by_id = select_snapshot(all, "59a1", at, {});
  ASSERT_FALSE(by_id.is_ok());
  EXPECT_NE(by_id.status().message().find("804 ms after --at"), std::string::npos) << by_id.status().message();
}

}  // namespace lifeboat::repo

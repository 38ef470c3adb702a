// Pack, index, tree and snapshot codecs: round trips, and rejection of damaged input.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "repo/index.h"
#include "repo/pack.h"
#include "repo/snapshot.h"
#include "repo/snapshot_select.h"
#include "repo/tree.h"
#include "repo/write_session.h"
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

// A reference for MasterIndex: every blob added, in order, the first location of each ID kept.
TEST(Index, RunsFindWhatAReferenceMapFinds) {
  MasterIndex mi;
  std::map<BlobId, std::pair<PackId, uint32_t>> expected;  // first location wins
  uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  auto random_id = [&](uint64_t v) {
    BlobId id{};
    for (size_t i = 0; i < id.size(); i += 8) {
      uint64_t w = v * 0x9E3779B97F4A7C15ull + i;
      std::memcpy(id.data() + i, &w, 8);
    }
    return id;
  };
  size_t max_runs = 0;
  for (uint32_t pack = 0; pack < 300; ++pack) {
    PackId pid = random_id(1'000'000 + pack);
    std::vector<PackEntry> entries;
    std::set<uint64_t> in_pack;  // a pack holds a blob once
    size_t n = pack % 7 == 0 ? 1 : 1 + next() % 3000;  // single-blob packs too
    for (size_t i = 0; i < n; ++i) {
      uint64_t v = next() % 400'000;  // repeats across packs: stored twice, first location kept
      if (!in_pack.insert(v).second) continue;
      entries.push_back({BlobType::kData, (v & 1) != 0, random_id(v), static_cast<uint32_t>(i * 10), 7, 9});
      expected.emplace(entries.back().id, std::make_pair(pid, static_cast<uint32_t>(i * 10)));
    }
    mi.add_pack(pid, entries);
    max_runs = std::max(max_runs, mi.run_count());
  }
  // Runs at least double going back, so their count stays logarithmic.
  EXPECT_LE(max_runs, 20u);
  auto verify = [&](const char* when) {
    for (const auto& [id, loc] : expected) {
      auto found = mi.find(id);
      ASSERT_TRUE(found.has_value()) << when;
      EXPECT_EQ(found->pack, loc.first) << when;
      EXPECT_EQ(found->offset, loc.second) << when;
    }
    for (uint64_t v = 400'000; v < 401'000; ++v) EXPECT_FALSE(mi.contains(random_id(v))) << when;
  };
  verify("in runs");
  mi.merge();
  EXPECT_EQ(mi.run_count(), 0u);
  EXPECT_EQ(mi.blob_count(), expected.size());
  verify("merged");
  for (const auto& [id, loc] : expected) {
    auto pos = mi.position(id);
    ASSERT_TRUE(pos.has_value());
    EXPECT_EQ(mi.location_at(*pos).pack, loc.first);
  }
}

TEST(Index, LoadingDropsSupersededRangesAndTheirPacks) {
  MasterIndex mi;
  mi.begin_load(10);
  mi.load_pack(id_of(10), {{BlobType::kData, false, id_of(1), 0, 5, 5}, {BlobType::kData, false, id_of(2), 5, 5, 5}});
  size_t first_end = mi.loaded();
  mi.load_pack(id_of(11), {{BlobType::kData, false, id_of(3), 0, 5, 5}});  // only in the superseded file
  size_t second_end = mi.loaded();
  mi.load_pack(id_of(10), {{BlobType::kData, false, id_of(1), 0, 5, 5}, {BlobType::kData, false, id_of(2), 5, 5, 5}});
  mi.load_pack(id_of(12), {{BlobType::kTree, true, id_of(4), 0, 6, 60}, {BlobType::kData, false, id_of(1), 6, 5, 5}});
  mi.finish_load({{first_end, second_end}});
  EXPECT_EQ(mi.blob_count(), 3u);  // 1 and 2 once though listed twice, 4; not 3
  EXPECT_FALSE(mi.contains(id_of(3)));
  EXPECT_EQ(mi.find(id_of(1))->pack, id_of(10));  // in two packs: the ID that sorts first
  EXPECT_EQ(mi.find(id_of(4))->raw_len, 60u);
  EXPECT_TRUE(mi.find(id_of(4))->compressed);
  auto packs = mi.packs();
  std::sort(packs.begin(), packs.end());
  EXPECT_EQ(packs, (std::vector<PackId>{id_of(10), id_of(12)}));
}

// The index keys blobs by their ID's first 20 bytes (docs/memory.md): two IDs equal that far are one
// entry, and a read of the one not stored fails on the full ID instead of returning the other's bytes.
TEST(Index, IdsEqualInTheirKeyAreOneEntryAndAReadChecksTheFullId) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  Bytes data = testing::pseudo_random(1000, 3);
  BlobId id = repo->blob_id(data);
  {
    WriteSession s(*repo);
    ASSERT_TRUE(s.add_blob(BlobType::kData, id, data).is_ok());
    ASSERT_TRUE(s.flush().is_ok());
  }
  BlobId twin = id;
  twin[31] ^= 1;
  EXPECT_TRUE(repo->index().contains(twin));
  ASSERT_TRUE(repo->read_blob(id).is_ok());
  auto bad = repo->read_blob(twin);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Code::kCorrupt);
  EXPECT_NE(bad.status().message().find("does not match its ID"), std::string::npos) << bad.status().message();
  BlobId other = id;
  other[MasterIndex::kKeyBytes - 1] ^= 1;
  EXPECT_FALSE(repo->index().contains(other));
}

// load_index reads one file at a time; what it ends with must be what resolve_index_state says of
// all the files together (supersedes, a pack in two files, tombstones, live wins over a tombstone).
TEST(Index, StreamedLoadEqualsTheResolvedState) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  auto entry = [](uint8_t b, uint32_t off) { return PackEntry{BlobType::kData, false, id_of(b), off, 5, 5}; };
  IndexFile a;  // superseded by b
  a.packs = {{id_of(101), {entry(1, 0), entry(2, 5)}}, {id_of(102), {entry(3, 0)}}};
  auto a_name = repo->save_file(FileType::kIndex, a.encode());
  ASSERT_TRUE(a_name.is_ok());
  IndexFile b;
  b.packs = {{id_of(101), {entry(1, 0), entry(2, 5)}}, {id_of(103), {entry(4, 0)}}};
  b.supersedes = {*a_name};
  b.tombstones = {{id_of(102), 7, {entry(3, 0)}}, {id_of(103), 7, {entry(4, 0)}}};  // 103 is live elsewhere
  ASSERT_TRUE(repo->save_file(FileType::kIndex, b.encode()).is_ok());
  IndexFile c;
  c.packs = {{id_of(103), {entry(4, 0)}}, {id_of(104), {entry(5, 0), entry(1, 5)}}};
  ASSERT_TRUE(repo->save_file(FileType::kIndex, c.encode()).is_ok());

  auto fresh = testing::open_repo(dir.path);
  ASSERT_TRUE(fresh);
  auto state = fresh->read_index_state();
  ASSERT_TRUE(state.is_ok());
  ASSERT_TRUE(fresh->load_index().is_ok());
  std::vector<PackId> live;
  for (const auto& [id, entries] : state->live) {
    live.push_back(id);
    for (const auto& e : entries) EXPECT_TRUE(fresh->index().contains(e.id));
  }
  auto packs = fresh->index().packs();
  std::sort(packs.begin(), packs.end());
  EXPECT_EQ(packs, live);
  EXPECT_EQ(live, (std::vector<PackId>{id_of(101), id_of(103), id_of(104)}));
  EXPECT_FALSE(fresh->index().contains(id_of(3)));
  EXPECT_TRUE(fresh->tombstoned().contains(id_of(3)));
  std::vector<PackId> tomb, expected_tomb;
  for (const auto& [id, t] : fresh->tombstoned_packs()) tomb.push_back(id);
  for (const auto& [id, t] : state->tombstones) expected_tomb.push_back(id);
  EXPECT_EQ(tomb, expected_tomb);
  EXPECT_EQ(tomb, (std::vector<PackId>{id_of(102)}));
  EXPECT_EQ(fresh->index().blob_count(), 4u);  // 1 (in two packs), 2, 4, 5
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

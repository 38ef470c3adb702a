// The GCS bucket source's naming: escaped tree paths give every object name one place, locations
// normalise prefixes, patterns match names or their last part; settings are checked by the kind's parser.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <random>

#include "../repo/test_repo.h"
#include "core/names.h"
#include "repo/write_session.h"
#include "sources/gcs_bucket/gcs_bucket.h"
#include "sources/registry.h"

namespace lifeboat::sources::gcs_bucket {

TEST(GcsBucketNames, EscapedPathsAreSafeAndDistinct) {
  EXPECT_EQ(gcs_tree_path("a/b/c.txt"), "a/b/c.txt");
  EXPECT_EQ(gcs_tree_path("a//b"), "a/%00/b");
  EXPECT_EQ(gcs_tree_path("dir/"), "dir/%00");
  EXPECT_EQ(gcs_tree_path("../etc/passwd"), "%2E%2E/etc/passwd");
  EXPECT_EQ(gcs_tree_path("./x"), "%2E/x");
  EXPECT_EQ(gcs_tree_path("100%/x"), "100%25/x");
  EXPECT_EQ(gcs_tree_path("%00"), "%2500");  // a literal "%00" never meets the empty component
  EXPECT_EQ(gcs_tree_path("naïve café/日本.txt"), "naïve café/日本.txt");
  EXPECT_NE(lifeboat::escape_component(""), lifeboat::escape_component("%00"));
  EXPECT_NE(lifeboat::escape_component(".."), lifeboat::escape_component("%2E%2E"));
  // The root's "%versions" folder can never be an object's escaped name.
  EXPECT_NE(lifeboat::escape_component("%versions"), std::string(kVersionsDir));
}

TEST(GcsBucketNames, Locations) {
  auto a = parse_location("gs://bucket");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->bucket, "bucket");
  EXPECT_EQ(a->prefix, "");
  auto b = parse_location("gs://bucket/storage/2026-12-02");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->prefix, "storage/2026-12-02/");
  EXPECT_EQ(b->url(), "gs://bucket/storage/2026-12-02/");
  EXPECT_FALSE(parse_location("s3://bucket").is_ok());
  EXPECT_FALSE(parse_location("gs://").is_ok());
  EXPECT_FALSE(parse_location("/tmp/x").is_ok());
}

TEST(GcsBucketNames, Patterns) {
  EXPECT_TRUE(matches_any({"models/*.onnx"}, "models/v3/face.onnx"));  // '*' crosses folders
  EXPECT_TRUE(matches_any({"*.onnx"}, "models/v3/face.onnx"));
  EXPECT_FALSE(matches_any({"*.onnx"}, "models/v3/face.onnx.bak"));
  EXPECT_FALSE(matches_any({}, "x"));
}

TEST(GcsBucketKind, SettingsAreChecked) {
  const SourceKind* k = find_source_kind("gcs_bucket");
  ASSERT_NE(k, nullptr);
  std::vector<SettingsProblem> problems;
  EXPECT_NE(k->parse({{"bucket", "gs://assets"}, {"critical", {"*.onnx"}}, {"versions", true}}, SettingsFor::kPlan, problems), nullptr);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(k->parse({{"bucket", "s3://x"}}, SettingsFor::kPlan, problems), nullptr);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems[0].key, "bucket");
  problems.clear();
  EXPECT_EQ(k->parse({{"bucket", "gs://a"}, {"to", "gs://b"}, {"target", "/tmp/x"}}, SettingsFor::kPlan, problems), nullptr);
  problems.clear();
  EXPECT_EQ(k->parse({{"versions", "gs://a"}}, SettingsFor::kPlan, problems), nullptr);  // no bucket, versions not a bool
  EXPECT_GE(problems.size(), 2u);
}

namespace {

// The reference: the whole listing held, every directory built, then stored bottom-up (how backups
// built the tree before they streamed it). Written here, in the test, as the expectation.
struct WholeDir {
  std::map<std::string, WholeDir> dirs;
  std::map<std::string, repo::Node> files;
};

repo::BlobId store_whole(repo::WriteSession& session, WholeDir& d) {
  repo::Tree t;
  for (auto& [name, sub] : d.dirs) {
    repo::Node n;
    n.kind = repo::NodeKind::kDir;
    n.name = name;
    n.mode = 0755;
    n.subtree = store_whole(session, sub);
    t.nodes.push_back(std::move(n));
  }
  for (auto& [name, node] : d.files) {
    if (d.dirs.count(name)) node.name = name + "%";
    t.nodes.push_back(std::move(node));
  }
  t.sort();
  return *session.store_tree(t);
}

repo::Node object_node(const std::string& name, int64_t generation) {
  repo::Node n;
  n.kind = repo::NodeKind::kFile;
  n.mode = 0644;
  n.size = name.size();
  n.xattrs = {{kObjectXattr, nlohmann::json{{"name", name}, {"generation", std::to_string(generation)}}.dump()}};
  return n;
}

void place_whole(WholeDir& root, const std::string& rel, repo::Node node, const std::string& suffix) {
  WholeDir* d = &root;
  size_t start = 0;
  while (true) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) break;
    d = &d->dirs[escape_component(rel.substr(start, slash - start))];
    start = slash + 1;
  }
  node.name = escape_component(rel.substr(start)) + suffix;
  d->files.emplace(node.name, std::move(node));
}

// Names a bucket may hold, chosen to cross every boundary of the streaming builder: an object named
// like a folder ("a" beside "a/b"), names that sort between a folder's name and its contents ("a-b",
// "a.b" come before "a/"), empty components, "." and "..", '%', deep paths, many in one folder.
std::vector<std::string> tricky_names() {
  std::vector<std::string> names = {"a", "a/b", "a-b", "a.b", "a/b/c", "a/b-c", "a/bc/d", "a//x", "a/./y", "a/../z", "%", "%versions",
                                    "b/", "b/c", "c/d/e/f/g", "c/d/e/h", "c/d/i", "c/j", "d%/k", "z"};
  for (int i = 0; i < 300; ++i) names.push_back(fmt::format("flat/f{:04}", i));
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    std::string n;
    for (int depth = rng() % 4; depth >= 0; --depth) n += std::string(1, "ab-/."[rng() % 5]) + std::to_string(rng() % 3) + "/";
    n += "o" + std::to_string(i);
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());  // bytewise, as GCS lists
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

// The tree built as the listing streams equals the tree built from the whole listing (same root
// ID), for live objects and for noncurrent generations under %versions.
TEST(GcsStreamingTree, EqualsTheTreeBuiltFromTheWholeListing) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  repo::WriteSession session(*repo);
  auto names = tricky_names();
  WholeDir whole, whole_versions;
  StreamingObjectTree live(session), versions(session);
  for (const auto& n : names) {
    place_whole(whole, n, object_node(n, 7), "");
    ASSERT_TRUE(live.place(n, object_node(n, 7), "").is_ok()) << n;
    for (int64_t g : {3, 5}) {  // two noncurrent generations of each, listed together as GCS lists them
      place_whole(whole_versions, n, object_node(n, g), fmt::format("%g{}", g));
      ASSERT_TRUE(versions.place(n, object_node(n, g), fmt::format("%g{}", g)).is_ok()) << n;
    }
  }
  whole.dirs[kVersionsDir] = std::move(whole_versions);
  repo::BlobId want = store_whole(session, whole);
  auto v = versions.finish();
  ASSERT_TRUE(v.is_ok());
  live.add_root_dir(kVersionsDir, *v);
  auto got = live.finish();
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(*got, want);

  // A listing out of order (a directory met again after it was stored) is refused, not half-kept.
  StreamingObjectTree bad(session);
  ASSERT_TRUE(bad.place("x/1", object_node("x/1", 1), "").is_ok());
  ASSERT_TRUE(bad.place("y", object_node("y", 1), "").is_ok());
  EXPECT_FALSE(bad.place("x/2", object_node("x/2", 1), "").is_ok());
}

// The parent's node of each generation, looked up as the listing passes, is the one the snapshot's
// tree holds for it; another generation, or a name the parent lacks, finds nothing.
TEST(GcsStreamingTree, ParentLookupsFindWhatTheParentsTreeHolds) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  repo::WriteSession session(*repo);
  auto names = tricky_names();
  StreamingObjectTree live(session), versions(session);
  for (const auto& n : names) {
    ASSERT_TRUE(live.place(n, object_node(n, 7), "").is_ok());
    ASSERT_TRUE(versions.place(n, object_node(n, 3), "%g3").is_ok());
  }
  live.add_root_dir(kVersionsDir, *versions.finish());
  auto root = live.finish();
  ASSERT_TRUE(root.is_ok());
  ASSERT_TRUE(session.flush().is_ok());
  ParentObjects parent(*repo, *root);
  std::vector<std::string> probe = names;
  probe.push_back("a/b/not-there");
  probe.push_back("never/was");
  std::sort(probe.begin(), probe.end());
  for (const auto& n : probe) {
    bool present = std::find(names.begin(), names.end(), n) != names.end();
    auto l = parent.find(n, 7, true);
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    EXPECT_EQ(l->has_value(), present) << n;
    if (present && l->has_value()) {
      EXPECT_EQ((*l)->size, n.size()) << n;
    }
    auto other = parent.find(n, 8, true);
    EXPECT_FALSE(other->has_value()) << n << ": another generation";
    auto nc = parent.find(n, 3, false);
    EXPECT_EQ(nc->has_value(), present) << n << " (noncurrent)";
  }
  ParentObjects none(*repo, std::nullopt);
  EXPECT_FALSE(none.find("a", 7, true)->has_value());
}

}  // namespace lifeboat::sources::gcs_bucket

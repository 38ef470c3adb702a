// The GCS bucket source's naming: escaped tree paths give every object name one place, locations
// normalise prefixes, patterns match names or their last part; settings are checked by the kind's parser.
#include <gtest/gtest.h>

#include "core/names.h"
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

}  // namespace lifeboat::sources::gcs_bucket

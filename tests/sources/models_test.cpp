// Models source: artifact proxy paths, and which snapshot of each version a restore as of T takes.
#include <gtest/gtest.h>

#include "cloud/mlflow_client.h"
#include "sources/models/models.h"

namespace lifeboat::sources::models {
namespace {

repo::SnapshotRef version_snap(const std::string& id, const std::string& model, const std::string& version, int64_t t,
                               std::vector<std::string> tags = {}) {
  repo::SnapshotRef r;
  r.id = id;
  r.snapshot.source = kSource;
  r.snapshot.time_ns = t;
  r.snapshot.tags = std::move(tags);
  r.snapshot.metadata = {{"model", model}, {"version", version}};
  return r;
}

TEST(Models, ArtifactProxyPath) {
  EXPECT_EQ(*cloud::artifact_proxy_path("mlflow-artifacts:/0/models/m-1/artifacts"), "0/models/m-1/artifacts");
  EXPECT_EQ(*cloud::artifact_proxy_path("mlflow-artifacts://host:5000/1/abc/artifacts/model"), "1/abc/artifacts/model");
  auto s3 = cloud::artifact_proxy_path("s3://bucket/mlflow/0/abc");
  ASSERT_FALSE(s3.is_ok());
  EXPECT_NE(s3.status().message().find("artifact proxy"), std::string::npos);
}

TEST(Models, PickNewestOfEachVersionAtT) {
  std::vector<repo::SnapshotRef> all = {
      version_snap("a1", "face", "1", 100), version_snap("a2", "face", "1", 300),  // v1 backed up twice
      version_snap("b1", "face", "2", 200), version_snap("c1", "face", "10", 250),
      version_snap("d1", "other", "1", 150, {"source:x"})};
  auto newest = pick_model_versions(all, {}, std::nullopt, "", "");
  ASSERT_EQ(newest.size(), 4u);
  // Ordered by model, then by version number (10 after 2).
  EXPECT_EQ(newest[0].id, "a2");
  EXPECT_EQ(newest[1].id, "b1");
  EXPECT_EQ(newest[2].id, "c1");
  EXPECT_EQ(newest[3].id, "d1");
  auto at = pick_model_versions(all, {}, 220, "face", "");
  ASSERT_EQ(at.size(), 2u);  // v1 as of 100 (a2 is later), v2; v10 did not exist yet
  EXPECT_EQ(at[0].id, "a1");
  EXPECT_EQ(at[1].id, "b1");
  auto tagged = pick_model_versions(all, {"source:x"}, std::nullopt, "", "");
  ASSERT_EQ(tagged.size(), 1u);
  EXPECT_EQ(tagged[0].id, "d1");
  EXPECT_TRUE(pick_model_versions(all, {}, 50, "", "").empty());
  EXPECT_EQ(pick_model_versions(all, {}, std::nullopt, "face", "2").size(), 1u);
}

}  // namespace
}  // namespace lifeboat::sources::models

// Every name a server gives becomes a path (or a request path) only through core/names.h or a
// kind's own refusing check: one table per kind, the hostile names written out by hand.
#include <gtest/gtest.h>

#include "cloud/secret_manager.h"
#include "core/names.h"
#include "sources/firestore/firestore.h"
#include "sources/gcs_bucket/gcs_bucket.h"

namespace lifeboat {
namespace {

// Firestore: a document's relative name is one tree component whatever its ids hold.
TEST(UntrustedNames, FirestoreDocumentIds) {
  using sources::firestore::escape_name;
  using sources::firestore::unescape_name;
  for (const std::string& id : std::vector<std::string>{"users/..", "users/../../etc", "..", ".", "a%2Fb", "users/bob", std::string("x\0y", 3), "tab\there"}) {
    std::string e = escape_name(id);
    EXPECT_EQ(e.find('/'), std::string::npos) << id;
    EXPECT_NE(e, "..");
    EXPECT_NE(e, ".");
    EXPECT_EQ(e.find('\0'), std::string::npos) << id;
    EXPECT_EQ(unescape_name(e), id);
  }
  // Names stored by earlier versions (only '%' and '/' escaped) read back the same.
  EXPECT_EQ(unescape_name("users%2Fb%25ob"), "users/b%ob");
}

// GCS: an object name's components are escaped one by one; none climbs out of the bucket's folder.
TEST(UntrustedNames, GcsObjectNames) {
  using sources::gcs_bucket::gcs_tree_path;
  EXPECT_EQ(gcs_tree_path("../../etc/passwd"), "%2E%2E/%2E%2E/etc/passwd");
  EXPECT_EQ(gcs_tree_path("a/./b"), "a/%2E/b");
  EXPECT_EQ(gcs_tree_path("/abs"), "%00/abs");
}

// Secret Manager: a secret id outside the API's own rule is refused before it reaches a URL or a tree.
TEST(UntrustedNames, SecretIds) {
  for (const char* ok : {"db-pass", "A_1", "x"}) EXPECT_TRUE(cloud::check_secret_id(ok, "listed")) << ok;
  for (const std::string& bad : std::vector<std::string>{"", "..", "a/b", "../../x", "a b", "a%2Fb", std::string(256, 'a')})
    EXPECT_FALSE(cloud::check_secret_id(bad, "listed")) << bad;
  EXPECT_EQ(cloud::secret_version_number(std::string("projects/p/secrets/s/versions/123456789012345678901")), 0);  // no exception
  EXPECT_EQ(cloud::secret_version_number(nlohmann::json("3")), 3);
  EXPECT_EQ(cloud::secret_version_number(nlohmann::json("3/../x")), 0);
}

// Models: versions are decimal or refused; a model's name is one escaped component of DIR/MODEL/VERSION.
TEST(UntrustedNames, ModelNamesAndVersions) {
  EXPECT_FALSE(decimal_version("1/../../../X", "model m").is_ok());
  EXPECT_EQ(escape_component("../../X"), "..%2F..%2FX");
  // Artifact paths a registry lists (and git ref names) are relative paths that stay inside.
  EXPECT_FALSE(check_relative_path("model/../../x", "artifact").is_ok());
  EXPECT_FALSE(check_relative_path("refs/heads/../../../config", "ref").is_ok());
  EXPECT_TRUE(check_relative_path("refs/heads/feature/x", "ref").is_ok());
}

}  // namespace
}  // namespace lifeboat

// SigV4 against the worked example in the S3 documentation ("GET Object" with a Range header), the
// JWT encoding used by the GCP service-account flow, and where S3 credentials come from.
#include <gtest/gtest.h>

#include <fstream>

#include "../repo/test_repo.h"
#include "cloud/gcp_auth.h"
#include "cloud/sigv4.h"
#include "core/environment.h"

namespace lifeboat::cloud {
namespace {

TEST(SigV4, MatchesTheS3DocumentationExample) {
  AwsCredentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  SigV4Request r;
  r.method = "GET";
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = "/test.txt";
  r.headers = {{"Range", "bytes=0-9"}};
  r.payload_sha256_hex = sha256_hex({});
  auto headers = sigv4_sign(r, creds, "us-east-1", "s3", "20130524T000000Z");
  std::string auth;
  for (const auto& [k, v] : headers)
    if (k == "Authorization") auth = v;
  EXPECT_EQ(auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, QueryStringIsSortedAndEncoded) {
  EXPECT_EQ(canonical_query_string({{"prefix", "a b/c"}, {"list-type", "2"}, {"uploads", ""}}),
            "list-type=2&prefix=a%20b%2Fc&uploads=");
}

TEST(GcpAuth, Base64UrlHasNoPaddingOrUnsafeCharacters) {
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url(R"({"alg":"RS256","typ":"JWT"})"), "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
}

TEST(GcpAuth, RejectsWhatIsNotAServiceAccountKey) {
  Status err;
  EXPECT_EQ(GcpAuth::from_service_account_json(R"({"type":"authorized_user"})", "s", &err), nullptr);
  EXPECT_EQ(err.code(), Code::kInvalidArgument);
  EXPECT_FALSE(sign_jwt_rs256("{}", "not a key"));
}

// Where S3 credentials come from, with an environment of the test's own (no setenv): the variables
// first, then the shared credentials file's profile; a missing profile names the file and profile.
TEST(AwsCredentials, FromTheVariablesThenTheProfileOfTheSharedFile) {
  auto direct = aws_credentials_from_environment(MapEnvironment({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"},
                                                                 {"AWS_SESSION_TOKEN", "ST"}}));
  ASSERT_TRUE(direct) << direct.status().message();
  EXPECT_EQ(direct->access_key_id, "AK");
  EXPECT_EQ(direct->session_token, "ST");

  testing::TempDir dir;
  std::string file = dir.path + "/credentials";
  std::ofstream(file) << "[default]\naws_access_key_id = nobody\n\n; a comment\n[backup]\naws_access_key_id = BK\n"
                         "aws_secret_access_key = BS \n";
  auto profile = aws_credentials_from_environment(MapEnvironment({{"AWS_SHARED_CREDENTIALS_FILE", file}, {"AWS_PROFILE", "backup"}}));
  ASSERT_TRUE(profile) << profile.status().message();
  EXPECT_EQ(profile->access_key_id, "BK");
  EXPECT_EQ(profile->secret_access_key, "BS");

  auto half = aws_credentials_from_environment(MapEnvironment({{"AWS_SHARED_CREDENTIALS_FILE", file}}));  // default: no secret
  ASSERT_FALSE(half);
  EXPECT_NE(half.status().message().find("[default]"), std::string::npos) << half.status().message();
  EXPECT_NE(half.status().message().find(file), std::string::npos) << half.status().message();
}

}  // namespace
}  // namespace lifeboat::cloud

// Names from servers become paths only through escape_component / check_relative_path; URLs are
// shown only through redact_url. Expected values are written out by hand.
#include "core/names.h"

#include <gtest/gtest.h>

namespace lifeboat {
namespace {

TEST(EscapeComponent, NamesThatWouldLeaveTheDirectoryStayOneComponent) {
  struct Case {
    std::string name, escaped;
  } cases[] = {
      {"model-a", "model-a"},
      {"../../X", "..%2F..%2FX"},
      {"..", "%2E%2E"},
      {".", "%2E"},
      {"", "%00"},
      {"/etc/passwd", "%2Fetc%2Fpasswd"},
      {"100%", "100%25"},
      {"line\nbreak", "line%0Abreak"},
      {std::string("nul\0x", 5), "nul%00x"},
      {"ünïcode ok", "ünïcode ok"},
      {"...", "..."},
  };
  for (const auto& c : cases) {
    std::string e = escape_component(c.name);
    EXPECT_EQ(e, c.escaped) << c.name;
    EXPECT_EQ(e.find('/'), std::string::npos);
    EXPECT_NE(e, "..");
    EXPECT_NE(e, ".");
    EXPECT_FALSE(e.empty());
    EXPECT_EQ(unescape_component(e), c.name) << c.name;
  }
}

TEST(EscapeComponent, UnescapeLeavesAStrayPercentAlone) {
  EXPECT_EQ(unescape_component("a%2"), "a%2");
  EXPECT_EQ(unescape_component("a%zz"), "a%zz");
  EXPECT_EQ(unescape_component("a%2fb"), "a/b");
}

TEST(CheckRelativePath, RefusesWhatLeadsOutside) {
  for (const char* bad : {"", "/etc/x", "../x", "a/../../x", "a//b", "a/./b", "a/", "..", "."})
    EXPECT_FALSE(check_relative_path(bad, "artifact")) << bad;
  EXPECT_FALSE(check_relative_path(std::string("a\0b", 3), "artifact"));
  for (const char* good : {"model/MLmodel", "a", "a/b/c.txt", "..a/b..", "refs/heads/main"})
    EXPECT_TRUE(check_relative_path(good, "artifact")) << good;
  auto s = check_relative_path("a/../../x", "model m artifact");
  EXPECT_NE(s.message().find("model m artifact \"a/../../x\""), std::string::npos) << s.message();
}

TEST(DecimalVersion, OnlyDigits) {
  EXPECT_EQ(*decimal_version("1", "v"), 1);
  EXPECT_EQ(*decimal_version("42", "v"), 42);
  for (const char* bad : {"", "1/../../../X", "-1", "+1", "1.0", "x", " 1", "1234567890123456789"}) {
    auto r = decimal_version(bad, "model m");
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_NE(r.status().message().find("model m"), std::string::npos);
  }
}

TEST(RedactUrl, UserInformationAndSecretParameters) {
  struct Case {
    std::string url, shown;
  } cases[] = {
      {"http://user:pass@127.0.0.1:5000", "http://…@127.0.0.1:5000"},
      {"http://user:pass@127.0.0.1:5000/api/2.0?x=1", "http://…@127.0.0.1:5000/api/2.0?x=1"},
      {"https://tok@github.com/o/r.git", "https://…@github.com/o/r.git"},
      {"mongodb://admin:s3cret@127.0.0.1:27017/db?authSource=admin", "mongodb://…@127.0.0.1:27017/db?authSource=admin"},
      {"https://h/hook?token=abc&channel=ops", "https://h/hook?token=…&channel=ops"},
      {"https://h/x?X-Amz-Signature=ff&X-Amz-Credential=AK&a=b", "https://h/x?X-Amz-Signature=…&X-Amz-Credential=…&a=b"},
      {"https://h/p@q", "https://h/p@q"},
      {"http://127.0.0.1:5000", "http://127.0.0.1:5000"},
      {"/local/dir", "/local/dir"},
      {"gs://bucket/prefix", "gs://bucket/prefix"},
  };
  for (const auto& c : cases) EXPECT_EQ(redact_url(c.url), c.shown) << c.url;
}

TEST(RedactUrl, InsideText) {
  EXPECT_EQ(redact_urls_in("MLflow at http://u:p@127.0.0.1:5000: HTTP 500 (see 'https://a:b@h/x')"),
            "MLflow at http://…@127.0.0.1:5000: HTTP 500 (see 'https://…@h/x')");
  EXPECT_EQ(redact_urls_in("{\"registry\":\"http://u:pw@h:1\"}"), "{\"registry\":\"http://…@h:1\"}");
  EXPECT_EQ(redact_urls_in("no urls here: a://"), "no urls here: a://");
}

}  // namespace
}  // namespace lifeboat

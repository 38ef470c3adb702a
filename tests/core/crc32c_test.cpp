// CRC32C against published check values (RFC 3720 B.4, the "123456789" check) and GCS's base64 form.
#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <vector>

namespace lifeboat {

TEST(Crc32c, KnownValues) {
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(as_bytes("")), 0u);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc), 0x46DD794Eu);
}

TEST(Crc32c, ExtendsAcrossPiecesOfAnyLength) {
  std::string s = "The quick brown fox jumps over the lazy dog, again and again and again.";
  uint32_t whole = crc32c(as_bytes(s));
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    uint32_t c = crc32c_extend(0, as_bytes(std::string_view(s).substr(0, cut)));
    EXPECT_EQ(crc32c_extend(c, as_bytes(std::string_view(s).substr(cut))), whole) << cut;
  }
}

TEST(Crc32c, GcsBase64) {
  EXPECT_EQ(crc32c_base64(0), "AAAAAA==");                      // GCS's CRC32C of an empty object
  EXPECT_EQ(crc32c_base64(crc32c(as_bytes("hello world"))), "yZRlqg==");  // as gsutil hash -c prints it
}

}  // namespace lifeboat

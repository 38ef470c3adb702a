// Time parsing for --at, durations and hex/base64 codecs.
#include "core/time.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/bytes.h"

namespace lifeboat {

TEST(Time, ParsesRfc3339WithZonesAndFractions) {
  EXPECT_EQ(*parse_time("2026-11-20T14:00:00Z"), 1795183200LL * 1000000000);
  EXPECT_EQ(*parse_time("2026-11-20T15:00:00+01:00"), 1795183200LL * 1000000000);
  EXPECT_EQ(*parse_time("2026-11-20T14:00:00.5Z"), 1795183200LL * 1000000000 + 500000000);
  EXPECT_EQ(format_rfc3339(1795183200LL * 1000000000 + 500000000), "2026-11-20T14:00:00.5Z");
}

TEST(Time, LocalFormsUseTz) {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(*parse_time("2026-11-20 14:00"), 1795183200LL * 1000000000);
  EXPECT_EQ(*parse_time("2026-11-20 14:00:05"), 1795183205LL * 1000000000);
  EXPECT_EQ(*parse_time("2026-11-20"), 1795132800LL * 1000000000);
}

TEST(Time, RejectsNonsenseWithAHelpfulMessage) {
  for (const char* bad : {"", "yesterday", "2026-13-01", "2026-11-20 25:00", "2026-11-20T14:00:00Q", "2026/11/20"}) {
    auto r = parse_time(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_NE(r.status().message().find("RFC 3339"), std::string::npos);
  }
}

TEST(Time, ImpossibleDatesAreRefused) {
  for (const char* bad : {"2026-02-30", "2026-02-29", "2026-04-31", "2026-11-31 10:00", "2100-02-29"}) EXPECT_FALSE(parse_time(bad).is_ok()) << bad;
  for (const char* good : {"2024-02-29", "2000-02-29", "2026-12-31", "2026-01-31T00:00:00Z"}) EXPECT_TRUE(parse_time(good).is_ok()) << good;
}

TEST(Time, ADayAloneMeansItsEndForAtAndDate) {
  setenv("TZ", "UTC", 1);
  tzset();
  const int64_t end = 1795219200LL * 1000000000 - 1;  // 2026-11-20T23:59:59.999999999Z
  EXPECT_EQ(*parse_instant("2026-11-20"), end);
  EXPECT_EQ(*parse_day_end("2026-11-20"), end);
  EXPECT_EQ(*parse_instant("2026-11-20 14:00"), 1795183200LL * 1000000000);  // a time is that instant
  EXPECT_FALSE(parse_day_end("2026-11-20 14:00").is_ok());                    // --date takes a day
  EXPECT_FALSE(parse_day_end("2026-02-30").is_ok());
  // A day a clock change makes 23 hours long ends 23 hours after it began.
  setenv("TZ", "Europe/Berlin", 1);
  tzset();
  EXPECT_EQ(*parse_day_end("2026-03-29") + 1 - *parse_time("2026-03-29"), 23LL * 3600 * 1000000000);
  setenv("TZ", "UTC", 1);
  tzset();
}

TEST(Time, Durations) {
  EXPECT_EQ(*parse_duration("90d"), 90LL * 86400 * 1000000000);
  EXPECT_EQ(*parse_duration("1d12h"), 36LL * 3600 * 1000000000);
  EXPECT_FALSE(parse_duration("12").is_ok());
  EXPECT_FALSE(parse_duration("3q").is_ok());
}

TEST(Bytes, HexAndBase64RoundTrip) {
  Bytes b = {0, 1, 0xfe, 0xff, 0x10};
  EXPECT_EQ(hex_encode(b), "0001feff10");
  EXPECT_EQ(*hex_decode("0001FEff10"), b);
  EXPECT_FALSE(hex_decode("0g").has_value());
  for (size_t n = 0; n < 7; ++n) {
    Bytes x(b.begin(), b.begin() + static_cast<long>(std::min(n, b.size())));
    EXPECT_EQ(*base64_decode(base64_encode(x)), x);
  }
}

TEST(Bytes, ReaderNeverOverruns) {
  Bytes data;
  ByteWriter w(data);
  w.varint(300);
  w.str("abc");
  w.svarint(-5);
  ByteReader r(data);
  EXPECT_EQ(r.varint(), 300u);
  EXPECT_EQ(r.str(), "abc");
  EXPECT_EQ(r.svarint(), -5);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_TRUE(r.failed());
}

}  // namespace lifeboat

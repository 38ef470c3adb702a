// Five-field cron expressions (minute hour day-of-month month day-of-week), as crontab(5) reads them:
// *, lists, ranges, steps, month and day names, @hourly/@daily/@weekly/@monthly/@yearly.
#pragma once

#include <bitset>
#include <string>

#include "core/status.h"

namespace lifeboat {

class CronSchedule {
 public:
  static Result<CronSchedule> parse(const std::string& text);
  // The first matching minute strictly after `after_unix_s`, in UTC; -1 if none within 5 years.
  int64_t next_after(int64_t after_unix_s) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> minute_;
  std::bitset<24> hour_;
  std::bitset<32> mday_;
  std::bitset<13> month_;
  std::bitset<8> wday_;
  bool mday_any_ = true, wday_any_ = true;
};

}  // namespace lifeboat

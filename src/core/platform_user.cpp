// Host and user lookups.
#include "core/platform_user.h"

#include <pwd.h>
#include <unistd.h>

namespace lifeboat::platform {

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string username() {
  // getpwuid_r: locks and backups on several threads ask at once (getpwuid's buffer is shared).
  struct passwd pw, *res = nullptr;
  char buf[4096];
  if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res) return res->pw_name;
  return std::to_string(getuid());
}

}  // namespace lifeboat::platform

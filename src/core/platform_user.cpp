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
  struct passwd* pw = getpwuid(getuid());
  return pw ? pw->pw_name : std::to_string(getuid());
}

}  // namespace lifeboat::platform

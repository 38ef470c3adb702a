// Safe path walking for the restorer (see safe_path.h).
#include "repo/restorer/safe_path.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>

namespace lifeboat::repo::restorer {

Status remove_existing(const std::string& at, const std::string& path) {
  struct stat st;
  if (lstat(at.c_str(), &st) != 0) return Status::ok();
  if (S_ISDIR(st.st_mode)) {
    if (rmdir(at.c_str()) != 0)
      return Error(Code::kIo, fmt::format("{} exists as a non-empty directory; restore into an empty target", path));
  } else if (unlink(at.c_str()) != 0) {
    return Error(Code::kIo, fmt::format("remove {}: {}", path, strerror(errno)));
  }
  return Status::ok();
}

size_t directory_capacity() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  uint64_t limit = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : rl.rlim_cur;
  return limit > 2048 ? static_cast<size_t>(limit / 2) : 0;
}

bool dir_is_empty(const std::string& at) {
  DIR* d = opendir(at.c_str());
  if (!d) return true;
  bool empty = true;
  while (struct dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      empty = false;
      break;
    }
  closedir(d);
  return empty;
}

}  // namespace lifeboat::repo::restorer

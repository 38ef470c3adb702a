// dlopen of libmongoc on first use; see mongoc_loader.h for why.
#include "sources/mongodb/mongoc_loader.h"

#include <dlfcn.h>
#include <unistd.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace lifeboat::sources::mongodb {

namespace {

struct Loaded {
  void* handle = nullptr;
  Status status = Status::ok();
};

const Loaded& loaded() {
  static const Loaded once = [] {
    Loaded l;
    // RTLD_NOW: a library missing a function we call fails here, with its name, not mid-backup.
    l.handle = dlopen(LB_MONGOC_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!l.handle) {
      const char* why = dlerror();
      l.status = Error(Code::kFatal, fmt::format("MongoDB support needs {} and it could not be loaded ({}); install "
                                                 "Debian's libmongoc-1.0-0 package",
                                                 LB_MONGOC_SONAME, why ? why : "unknown reason"));
      return l;
    }
    auto init = reinterpret_cast<decltype(&::mongoc_init)>(dlsym(l.handle, "mongoc_init"));
    auto set_log = reinterpret_cast<decltype(&::mongoc_log_set_handler)>(dlsym(l.handle, "mongoc_log_set_handler"));
    if (!init || !set_log) {
      l.status = Error(Code::kFatal, fmt::format("{} lacks mongoc_init or mongoc_log_set_handler: not libmongoc 1.x",
                                                 LB_MONGOC_SONAME));
      return l;
    }
    init();
    // The driver has mapped performance counters from /dev/shm/mongoc-PID. A process that is killed
    // (or ends on a second signal) would leave that file behind, and a later process given the same
    // pid would print "Falling back to malloc for counters". The mapping stays valid without its
    // name, and nothing outside reads the counters.
    unlink(fmt::format("/dev/shm/mongoc-{}", getpid()).c_str());
    // The driver logs to stderr by default; errors reach the user through Status instead.
    set_log([](mongoc_log_level_t, const char*, const char*, void*) {}, nullptr);
    return l;
  }();
  return once;
}

}  // namespace

Status load_mongoc() { return loaded().status; }

void* mongoc_symbol(const char* name) {
  const Loaded& l = loaded();
  void* fn = l.handle ? dlsym(l.handle, name) : nullptr;
  if (!fn) {
    std::fprintf(stderr, "lifeboat: fatal: %s\n",
                 l.handle ? fmt::format("{} has no function {}", LB_MONGOC_SONAME, name).c_str()
                          : l.status.message().c_str());
    std::abort();
  }
  return fn;
}

}  // namespace lifeboat::sources::mongodb

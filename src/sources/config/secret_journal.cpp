// The secret versions a backup enabled to read them, so a killed backup never leaves one enabled
// (see secret_journal.h).
#include "sources/config/secret_journal.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/bytes.h"
#include "core/time.h"
#include "crypto/crypto.h"

namespace lifeboat::sources::config {

namespace fs = std::filesystem;

namespace {

std::string this_host() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

// Whether the process that wrote a record may still be reading: on this host and alive.
bool writer_alive(const nlohmann::json& r) {
  if (r.value("host", "") != this_host()) return false;
  auto pid = r.value("pid", int64_t{0});
  if (pid <= 0 || pid == getpid()) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

EnabledVersionJournal::EnabledVersionJournal(const cloud::SecretManagerClient& client) : client_(client) {}

std::string EnabledVersionJournal::directory() {
  std::string base;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) base = x;
  else if (const char* h = std::getenv("HOME"); h && *h) base = std::string(h) + "/.local/state";
  else base = "/var/lib";
  return base + "/lifeboat/secret-versions";
}

std::string EnabledVersionJournal::path_of(const std::string& version) const {
  std::string key = client_.endpoint() + "\n" + version;
  auto d = crypto::sha256(as_bytes(key));
  return directory() + "/" + hex_encode({d.data(), 16}) + ".json";
}

Status EnabledVersionJournal::record(const std::string& version) {
  std::error_code ec;
  fs::create_directories(directory(), ec);
  if (ec) return Error(Code::kIo, fmt::format("cannot create {} (where a secrets backup records the versions it enables): {}",
                                              directory(), ec.message()));
  fs::permissions(directory(), fs::perms::owner_all, fs::perm_options::replace, ec);
  nlohmann::json r = {{"endpoint", client_.endpoint()}, {"version", version}, {"pid", static_cast<int64_t>(getpid())},
                      {"host", this_host()},           {"since", format_rfc3339(now_unix_ns())}};
  Status s = write_file_atomic(path_of(version), r.dump(2) + "\n", 0600);
  if (!s) return s.with_context(fmt::format("recording that {} is about to be enabled (it was not)", version));
  return Status::ok();
}

Status EnabledVersionJournal::forget(const std::string& version) {
  std::error_code ec;
  fs::remove(path_of(version), ec);
  if (ec) return Error(Code::kIo, fmt::format("{} is disabled again, but its record {} could not be removed: {}", version,
                                              path_of(version), ec.message()));
  return Status::ok();
}

Result<std::vector<std::string>> EnabledVersionJournal::complete() {
  std::vector<std::string> done;
  std::error_code ec;
  if (!fs::is_directory(directory(), ec)) return done;
  for (const auto& e : fs::directory_iterator(directory(), ec)) {
    if (e.path().extension() != ".json") continue;
    nlohmann::json r;
    try {
      std::ifstream in(e.path());
      r = nlohmann::json::parse(in);
    } catch (const std::exception&) {
      return Error(Code::kCorrupt, fmt::format("{} is not a record of an enabled secret version: look at it and remove it "
                                               "(it may name a version a killed backup left enabled)", e.path().string()));
    }
    if (r.value("endpoint", "") != client_.endpoint() || writer_alive(r)) continue;
    std::string version = r.value("version", "");
    auto disabled = client_.change_version(version, "disable");
    // Already disabled or destroyed (the FAILED_PRECONDITION the API answers), or gone: nothing is enabled.
    bool settled = disabled || disabled.status().code() == Code::kNotFound;
    if (!settled) {
      auto now = client_.get_version(version);
      settled = now && now->value("state", "") != "ENABLED";
    }
    if (!settled)
      return Error(Code::kFatal, fmt::format("{} was enabled by a backup that was interrupted (pid {} on {}, since {}) and could "
                                             "not be disabled again: {} — disable it by hand, then run the backup again",
                                             version, r.value("pid", int64_t{0}), r.value("host", ""), r.value("since", ""),
                                             disabled.status().message()));
    fs::remove(e.path(), ec);
    done.push_back(fmt::format("{} was left enabled by a backup interrupted since {} (pid {} on {}): disabled again", version,
                               r.value("since", ""), r.value("pid", int64_t{0}), r.value("host", "")));
  }
  return done;
}

}  // namespace lifeboat::sources::config

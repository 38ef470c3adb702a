// Backend decorators: retries with exponential backoff and jitter, and fault injection for tests.
#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/interrupt.h"
#include "storage/backend.h"

namespace lifeboat::storage {

namespace {

bool content_addressed(FileType t) { return t != FileType::kConfig && t != FileType::kPin && t != FileType::kLock; }

class RetryBackend final : public Backend {
 public:
  RetryBackend(std::unique_ptr<Backend> inner, int attempts, int64_t base_ms)
      : inner_(std::move(inner)), attempts_(attempts), base_ms_(base_ms), rng_(std::random_device{}()) {}

  std::string location() const override { return inner_->location(); }
  Status create_layout(bool lock) override { return retry<Status>([&] { return inner_->create_layout(lock); }); }

  Status save(const Handle& h, ByteView data, const SaveOptions& o) override {
    bool failed_before = false;
    return retry<Status>([&]() -> Status {
      Status s = inner_->save(h, data, o);
      // A create-only save whose reply was lost may have landed: the name is the content's hash, so
      // finding it taken on a retry means it is there, whole.
      if (!s.is_ok() && s.code() == Code::kAlreadyExists && failed_before && o.create_only && content_addressed(h.type)) {
        auto st = inner_->stat(h);
        if (st && st->size_bytes == data.size()) return Status::ok();
        if (!st && st.status().code() == Code::kUnavailable) return st.status();  // ask again
      }
      if (!s.is_ok()) failed_before = true;
      return s;
    });
  }

  Result<Bytes> load(const Handle& h, uint64_t offset, uint64_t length) override {
    return retry<Result<Bytes>>([&]() -> Result<Bytes> {
      auto r = inner_->load(h, offset, length);
      if (r && length && r->size() != length)
        return Error(Code::kUnavailable, fmt::format("{} {}: short read ({} of {} bytes)", file_type_name(h.type),
                                                     h.name, r->size(), length));
      return r;
    });
  }

  Result<FileInfo> stat(const Handle& h) override { return retry<Result<FileInfo>>([&] { return inner_->stat(h); }); }

  // A listing that fails part-way is restarted; names already passed to fn are not passed again.
  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override {
    std::set<std::string> seen;
    return retry<Status>([&] {
      return inner_->list(t, [&](const FileInfo& f) -> Status {
        if (!seen.insert(f.name).second) return Status::ok();
        return fn(f);
      });
    });
  }

  Status remove(const Handle& h) override { return retry<Status>([&] { return inner_->remove(h); }); }
  bool supports_retention() const override { return inner_->supports_retention(); }
  bool remote() const override { return inner_->remote(); }
  Status extend_retention(const Handle& h, int64_t until) override {
    return retry<Status>([&] { return inner_->extend_retention(h, until); });
  }

 private:
  template <typename R, typename F>
  R retry(F&& f) {
    for (int attempt = 1;; ++attempt) {
      R r = f();
      if (r.is_ok() || status_of(r).code() != Code::kUnavailable || attempt >= attempts_ || interrupted()) {
        if (!r.is_ok() && status_of(r).code() == Code::kUnavailable)
          return R(status_of(r).with_context(fmt::format("{} after {} attempts (the storage kept failing; check the "
                                                         "server and the network, then run the command again)",
                                                         inner_->location(), attempt)));
        return r;
      }
      // Full jitter: uniform in [0, base * 2^attempt], capped at 10 s.
      int64_t cap = std::min<int64_t>(10000, base_ms_ << std::min(attempt, 16));
      int64_t sleep_ms;
      {
        std::lock_guard lk(mu_);
        sleep_ms = std::uniform_int_distribution<int64_t>(cap / 4, cap)(rng_);
      }
      if (!sleep_unless_interrupted(sleep_ms)) return r;
    }
  }
  static const Status& status_of(const Status& s) { return s; }
  template <typename T>
  static const Status& status_of(const Result<T>& r) { return r.status(); }

  std::unique_ptr<Backend> inner_;
  int attempts_;
  int64_t base_ms_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

struct FaultSpec {
  uint64_t seed = 1;
  double fail = 0, lose = 0, truncate = 0, delay = 0;
  int64_t delay_ms = 200;
};

// Fails (before doing it), loses the reply (after doing it), truncates downloads, and delays
// operations, each with its probability; deterministic for a seed.
class FaultBackend final : public Backend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, FaultSpec spec) : inner_(std::move(inner)), spec_(spec), rng_(spec.seed) {}

  std::string location() const override { return inner_->location(); }
  Status create_layout(bool lock) override { return inner_->create_layout(lock); }

  Status save(const Handle& h, ByteView data, const SaveOptions& o) override {
    if (Status s = before("save", h); !s.is_ok()) return s;
    Status s = inner_->save(h, data, o);
    if (s.is_ok() && roll(spec_.lose)) return injected("save (reply lost after storing)", h);
    return s;
  }

  Result<Bytes> load(const Handle& h, uint64_t offset, uint64_t length) override {
    if (Status s = before("load", h); !s.is_ok()) return s;
    auto r = inner_->load(h, offset, length);
    if (r && r->size() > 1 && roll(spec_.truncate)) r->resize(r->size() / 2);  // the caller must notice
    return r;
  }

  Result<FileInfo> stat(const Handle& h) override {
    if (Status s = before("stat", h); !s.is_ok()) return s;
    return inner_->stat(h);
  }

  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override {
    if (Status s = before("list", {t, ""}); !s.is_ok()) return s;
    return inner_->list(t, fn);
  }

  Status remove(const Handle& h) override {
    if (Status s = before("remove", h); !s.is_ok()) return s;
    Status s = inner_->remove(h);
    if (s.is_ok() && roll(spec_.lose)) return injected("remove (reply lost)", h);
    return s;
  }
  bool supports_retention() const override { return inner_->supports_retention(); }
  bool remote() const override { return inner_->remote(); }
  Status extend_retention(const Handle& h, int64_t until) override { return inner_->extend_retention(h, until); }

 private:
  bool roll(double p) {
    if (p <= 0) return false;
    std::lock_guard lk(mu_);
    return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }
  Status injected(const char* what, const Handle& h) {
    return Error(Code::kUnavailable, fmt::format("injected fault: {} {} {}", what, file_type_name(h.type), h.name));
  }
  Status before(const char* what, const Handle& h) {
    if (roll(spec_.delay)) std::this_thread::sleep_for(std::chrono::milliseconds(spec_.delay_ms));
    if (roll(spec_.fail)) return injected(what, h);
    return Status::ok();
  }

  std::unique_ptr<Backend> inner_;
  FaultSpec spec_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Backend> with_retries(std::unique_ptr<Backend> inner, int max_attempts, int64_t base_delay_ms) {
  if (const char* ms = std::getenv("LIFEBOAT_RETRY_BASE_MS")) base_delay_ms = std::strtoll(ms, nullptr, 10);
  return std::make_unique<RetryBackend>(std::move(inner), max_attempts, base_delay_ms);
}

Result<std::unique_ptr<Backend>> with_fault_injection(std::unique_ptr<Backend> inner, const std::string& spec) {
  FaultSpec f;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? spec.size() : comma + 1;
    auto eq = item.find('=');
    if (eq == std::string::npos) return Error(Code::kInvalidArgument, fmt::format("LIFEBOAT_FAULTS: '{}' is not key=value", item));
    std::string k = item.substr(0, eq);
    double v = std::strtod(item.c_str() + eq + 1, nullptr);
    if (k == "seed") f.seed = static_cast<uint64_t>(v);
    else if (k == "fail") f.fail = v;
    else if (k == "lose") f.lose = v;
    else if (k == "truncate") f.truncate = v;
    else if (k == "delay") f.delay = v;
    else if (k == "delay_ms") f.delay_ms = static_cast<int64_t>(v);
    else return Error(Code::kInvalidArgument, fmt::format("LIFEBOAT_FAULTS: unknown key '{}'", k));
  }
  return std::unique_ptr<Backend>(new FaultBackend(std::move(inner), f));
}

}  // namespace lifeboat::storage

// Shared CLI plumbing.
#include "cli/context.h"

#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "core/names.h"
#include "ops/repository_set.h"
#include "plan/plan.h"
#include "core/time.h"

namespace lifeboat::cli {

std::string repository_url(const GlobalOptions& g) {
  if (!g.repo.empty()) return g.repo;
  const char* env = getenv("LIFEBOAT_REPOSITORY");
  return env ? env : "";
}

Result<std::string> read_password_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kInvalidArgument, fmt::format("cannot read password file {}", path));
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Reads a password from the terminal without echo; `missing` is the error when there is no terminal
// (it names what to set instead).
static Result<std::string> prompt_password(const char* prompt, const char* missing) {
  if (!isatty(STDIN_FILENO)) return Error(Code::kInvalidArgument, missing);
  fputs(prompt, stderr);
  struct termios old {};
  tcgetattr(STDIN_FILENO, &old);
  struct termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string line;
  std::getline(std::cin, line);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  fputs("\n", stderr);
  return line;
}

// A password being set: typed twice on a terminal, and refused when the two differ or it is empty.
static Result<std::string> prompt_new_password(const char* prompt, const char* missing) {
  LB_ASSIGN_OR_RETURN(std::string first, prompt_password(prompt, missing));
  if (first.empty()) return Error(Code::kInvalidArgument, "an empty password is not allowed; nothing was changed");
  LB_ASSIGN_OR_RETURN(std::string again, prompt_password("enter it again: ", missing));
  if (again != first) return Error(Code::kInvalidArgument, "the two passwords differ; nothing was changed (run the command again)");
  return first;
}

constexpr const char* kNoPassword = "no password given: set LIFEBOAT_PASSWORD or LIFEBOAT_PASSWORD_FILE, or pass --password-file";

Result<std::string> read_password(const GlobalOptions& g, const char* prompt) {
  if (!g.password_file.empty()) return read_password_file(g.password_file);
  if (const char* f = getenv("LIFEBOAT_PASSWORD_FILE")) return read_password_file(f);
  if (const char* p = getenv("LIFEBOAT_PASSWORD")) return std::string(p);
  return prompt_password(prompt, kNoPassword);
}

Result<std::string> read_initial_password(const GlobalOptions& g) {
  if (!g.password_file.empty()) return read_password_file(g.password_file);
  if (const char* f = getenv("LIFEBOAT_PASSWORD_FILE")) return read_password_file(f);
  if (const char* p = getenv("LIFEBOAT_PASSWORD")) return std::string(p);
  return prompt_new_password("new repository password: ", kNoPassword);
}

Result<std::unique_ptr<repo::Repository>> open_other_repository(const GlobalOptions& g, const std::string& where,
                                                                const std::string& password_file, const char* env) {
  // With a plan, `where` may name one of its repositories (its location and password come from it).
  std::string url = where;
  std::optional<plan::RepositorySpec> spec;
  if (auto file = plan_mode(g)) {
    auto loaded = plan::load_plan(*file);
    if (const auto* r = loaded ? loaded->repository(where) : nullptr) {
      url = r->url;
      spec = *r;
    }
  }
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(url));
  std::string password;
  if (!password_file.empty()) {
    LB_ASSIGN_OR_RETURN(password, read_password_file(password_file));
  } else if (const char* p = getenv(env)) {
    password = p;
  } else if (spec) {
    LB_ASSIGN_OR_RETURN(password, ops::repository_password(*spec));
  } else {
    LB_ASSIGN_OR_RETURN(password, read_password(g, "password of the other repository: "));
  }
  auto r = repo::Repository::open(std::move(backend), password);
  if (!r) return r.status().with_context(url);
  return r;
}

Result<std::string> read_new_password(const std::string& file_flag) {
  if (!file_flag.empty()) return read_password_file(file_flag);
  if (const char* p = getenv("LIFEBOAT_NEW_PASSWORD")) return std::string(p);
  return prompt_new_password("new password: ",
                             "no new password given: set LIFEBOAT_NEW_PASSWORD or pass --new-password-file (LIFEBOAT_PASSWORD "
                             "is the one that opens the repository)");
}

Result<ChosenRepository> choose_repository(const GlobalOptions& g) {
  ChosenRepository out{repository_url(g), std::nullopt};
  auto file = plan_mode(g);
  if (!file) return out;
  auto loaded = plan::load_plan(*file);
  if (!out.url.empty()) {
    // A name of the plan's, or a location of its own (which needs no plan: one that does not load
    // is then no obstacle).
    if (const auto* spec = loaded ? loaded->repository(out.url) : nullptr) out = {spec->url, *spec};
    return out;
  }
  if (!loaded) return loaded.status();
  const plan::Plan& plan = *loaded;
  if (plan.repositories.size() == 1) return ChosenRepository{plan.repositories[0].url, plan.repositories[0]};
  std::vector<std::string> names;
  for (const auto& r : plan.repositories) names.push_back(r.name);
  return Error(Code::kInvalidArgument, fmt::format("the plan {} has {} repositories ({}): say which with -r NAME", *file,
                                                   names.size(), fmt::join(names, ", ")));
}

Result<std::unique_ptr<repo::Repository>> open_repository(const GlobalOptions& g) {
  LB_ASSIGN_OR_RETURN(auto chosen, choose_repository(g));
  if (chosen.url.empty())
    return Error(Code::kInvalidArgument, "no repository given: pass -r LOCATION, set LIFEBOAT_REPOSITORY, or give a plan "
                                         "(--plan or LIFEBOAT_PLAN)");
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(chosen.url));
  std::string password;
  if (chosen.spec && g.password_file.empty()) {
    LB_ASSIGN_OR_RETURN(password, ops::repository_password(*chosen.spec));
  } else {
    LB_ASSIGN_OR_RETURN(password, read_password(g));
  }
  return repo::Repository::open(std::move(backend), password);
}

void SnapshotPick::add_flags(CLI::App* cmd, bool with_at) {
  if (with_at)
    cmd->add_option("--at", at,
                    "newest snapshot at or before this time: RFC 3339 or local '2026-11-20 14:00'; a day alone "
                    "('2026-11-20') means its end")
        ->check(time_value());
  cmd->add_option("--host", filter.host, "only snapshots from this host");
  cmd->add_option("--tag", filter.tags, "only snapshots with this tag (repeatable; all must match)");
  cmd->add_option("--path", filter.paths, "only snapshots of exactly these paths (repeatable)");
  cmd->add_option("--source", filter.source, "only snapshots made by this source (files, stdin, …)");
}

Result<std::optional<int64_t>> SnapshotPick::at_ns() const {
  if (at.empty()) return std::optional<int64_t>{};
  LB_ASSIGN_OR_RETURN(int64_t t, parse_instant(at));
  return std::optional<int64_t>{t};
}

Result<std::optional<int64_t>> requested_instant(const std::string& at, const std::string& date) {
  if (!at.empty() && !date.empty())
    return Error(Code::kInvalidArgument, "give --at TIME or --date DAY, not both");
  if (!at.empty()) {
    LB_ASSIGN_OR_RETURN(int64_t t, parse_instant(at));
    return std::optional<int64_t>{t};
  }
  if (date.empty()) return std::optional<int64_t>{};
  LB_ASSIGN_OR_RETURN(int64_t end, parse_day_end(date));
  return std::optional<int64_t>{end};
}

CLI::Validator time_value() {
  return CLI::Validator(
      [](std::string& s) { return s.empty() ? std::string("needs a value, e.g. '2026-11-20 14:00' or 2026-11-20") : std::string(); },
      "TIME");
}

Result<repo::SnapshotRef> pick_snapshot(repo::Repository& r, const std::string& spec, const SnapshotPick& pick) {
  LB_ASSIGN_OR_RETURN(auto at, pick.at_ns());
  // A damaged snapshot file is skipped with a warning naming it: it never stops another snapshot's restore.
  LB_ASSIGN_OR_RETURN(auto all, r.list_readable_snapshots());
  bool by_time = spec.empty() || spec == "latest";
  if (!by_time) {
    if (at) return Error(Code::kInvalidArgument, fmt::format("--at picks a snapshot by time and {} names one: give one of them", spec));
    return repo::select_snapshot(all, spec, at, pick.filter);
  }
  // `latest` (and --at) mean the newest snapshot of data: records (a drill's) are not candidates, and
  // when snapshots of several sources match, the user says which instead of the newest winning.
  std::vector<repo::SnapshotRef> data;
  for (auto& ref : all)
    if (!ref.snapshot.is_record() || pick.filter.source == ref.snapshot.source) data.push_back(std::move(ref));
  if (pick.filter.source.empty()) {
    std::map<std::string, int> sources;
    for (const auto& ref : repo::filter_snapshots(data, pick.filter))
      if (!at || ref.snapshot.time_ns <= *at) ++sources[ref.snapshot.source];
    if (sources.size() > 1) {
      std::vector<std::string> named;
      for (const auto& [source, n] : sources) named.push_back(fmt::format("{} ({} snapshot{})", source, n, n == 1 ? "" : "s"));
      return Error(Code::kInvalidArgument,
                   fmt::format("\"latest\" matches snapshots of {} sources: {}; say which with --source SOURCE (or --path, "
                               "--tag, or a snapshot ID from `lifeboat snapshots`)", sources.size(), fmt::join(named, ", ")));
    }
  }
  return repo::select_snapshot(data, spec, at, pick.filter);
}

nlohmann::json snapshot_json(const repo::SnapshotRef& ref) { return ref.to_json(); }

void print_json(const nlohmann::json& j) {
  std::cout << redact_urls_in_json(j).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

bool progress_enabled(const GlobalOptions& g) { return !g.json && !g.quiet && !g.no_progress; }

}  // namespace lifeboat::cli

// Shared CLI plumbing.
#include "cli/context.h"

#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/names.h"
#include "core/time.h"

namespace lifeboat::cli {

std::string repository_url(const GlobalOptions& g) {
  if (!g.repo.empty()) return g.repo;
  const char* env = getenv("LIFEBOAT_REPOSITORY");
  return env ? env : "";
}

static Result<std::string> read_password_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kInvalidArgument, fmt::format("cannot read password file {}", path));
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

static Result<std::string> prompt_password(const char* prompt) {
  if (!isatty(STDIN_FILENO))
    return Error(Code::kInvalidArgument,
                 "no password given: set LIFEBOAT_PASSWORD or LIFEBOAT_PASSWORD_FILE, or pass --password-file");
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

Result<std::string> read_password(const GlobalOptions& g, const char* prompt) {
  if (!g.password_file.empty()) return read_password_file(g.password_file);
  if (const char* f = getenv("LIFEBOAT_PASSWORD_FILE")) return read_password_file(f);
  if (const char* p = getenv("LIFEBOAT_PASSWORD")) return std::string(p);
  return prompt_password(prompt);
}

Result<std::unique_ptr<repo::Repository>> open_other_repository(const GlobalOptions& g, const std::string& url,
                                                                const std::string& password_file, const char* env) {
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(url));
  std::string password;
  if (!password_file.empty()) {
    LB_ASSIGN_OR_RETURN(password, read_password_file(password_file));
  } else if (const char* p = getenv(env)) {
    password = p;
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
  return prompt_password("new password: ");
}

Result<std::unique_ptr<repo::Repository>> open_repository(const GlobalOptions& g) {
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(repository_url(g)));
  LB_ASSIGN_OR_RETURN(std::string password, read_password(g));
  return repo::Repository::open(std::move(backend), password);
}

void SnapshotPick::add_flags(CLI::App* cmd, bool with_at) {
  if (with_at)
    cmd->add_option("--at", at,
                    "newest snapshot at or before this time: RFC 3339 or local '2026-11-20 14:00' / '2026-11-20'");
  cmd->add_option("--host", filter.host, "only snapshots from this host");
  cmd->add_option("--tag", filter.tags, "only snapshots with this tag (repeatable; all must match)");
  cmd->add_option("--path", filter.paths, "only snapshots of exactly these paths (repeatable)");
  cmd->add_option("--source", filter.source, "only snapshots made by this source (files, stdin, …)");
}

Result<std::optional<int64_t>> SnapshotPick::at_ns() const {
  if (at.empty()) return std::optional<int64_t>{};
  LB_ASSIGN_OR_RETURN(int64_t t, parse_time(at));
  return std::optional<int64_t>{t};
}

Result<std::optional<int64_t>> requested_instant(const std::string& at, const std::string& date) {
  if (!at.empty()) {
    LB_ASSIGN_OR_RETURN(int64_t t, parse_time(at));
    return std::optional<int64_t>{t};
  }
  if (date.empty()) return std::optional<int64_t>{};
  LB_ASSIGN_OR_RETURN(int64_t day, parse_time(date));
  return std::optional<int64_t>{day + 86400LL * 1000000000 - 1};
}

Result<repo::SnapshotRef> pick_snapshot(repo::Repository& r, const std::string& spec, const SnapshotPick& pick) {
  LB_ASSIGN_OR_RETURN(auto at, pick.at_ns());
  // A damaged snapshot file is skipped with a warning naming it: it never stops another snapshot's restore.
  LB_ASSIGN_OR_RETURN(auto all, r.list_readable_snapshots());
  return repo::select_snapshot(all, spec, at, pick.filter);
}

nlohmann::json snapshot_json(const repo::SnapshotRef& ref) { return ref.to_json(); }

void print_json(const nlohmann::json& j) {
  std::cout << redact_urls_in_json(j).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

bool progress_enabled(const GlobalOptions& g) { return !g.json && !g.quiet && !g.no_progress; }

}  // namespace lifeboat::cli

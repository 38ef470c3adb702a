// What every command shares: global flags, opening the repository, password input, snapshot picking, output.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"
#include "ops/plan_ops.h"
#include "plan/plan.h"
#include "repo/repository.h"
#include "repo/snapshot_select.h"

namespace lifeboat::cli {

struct GlobalOptions {
  std::string repo;
  std::string password_file;
  bool json = false;
  bool quiet = false;
  bool no_progress = false;
  std::string plan;  // --plan or LIFEBOAT_PLAN: backup/restore work on the plan's sources
};

using Action = std::function<Status()>;

// Each command file registers its subcommand and sets `action` when it is chosen.
struct CommandSet {
  CLI::App& app;
  GlobalOptions& global;
  Action& action;
};

std::string repository_url(const GlobalOptions& g);
Result<std::string> read_password(const GlobalOptions& g, const char* prompt = "repository password: ");
// The first line of a password file (a trailing CR dropped).
Result<std::string> read_password_file(const std::string& path);
// A password being set (key add, key passwd): --new-password-file, LIFEBOAT_NEW_PASSWORD, or typed
// twice on a terminal; without any, the error names LIFEBOAT_NEW_PASSWORD.
Result<std::string> read_new_password(const std::string& file_flag);
// `init`'s password: as read_password, but typed twice on a terminal.
Result<std::string> read_initial_password(const GlobalOptions& g);
// The repository a command works on: -r / LIFEBOAT_REPOSITORY — with a plan (--plan, LIFEBOAT_PLAN)
// possibly the name of one of its repositories, whose password then comes from the plan — else the
// plan's only repository (several: the command asks which).
struct ChosenRepository {
  std::string url;
  std::optional<plan::RepositorySpec> spec;  // when the plan names it
};
Result<ChosenRepository> choose_repository(const GlobalOptions& g);
Result<std::unique_ptr<repo::Repository>> open_repository(const GlobalOptions& g);
// A second repository (copy --to, init --copy-keys-from): password from `password_file`, else the
// environment variable `env`, else the main repository's password.
Result<std::unique_ptr<repo::Repository>> open_other_repository(const GlobalOptions& g, const std::string& url,
                                                                const std::string& password_file, const char* env);

// Adds --at, --host, --tag, --path filters used to pick a snapshot.
struct SnapshotPick {
  std::string at;
  repo::SnapshotFilter filter;
  void add_flags(CLI::App* cmd, bool with_at = true);
  Result<std::optional<int64_t>> at_ns() const;
};
// The instant a restore asks for: --at TIME, else --date DAY (the end of that day), else none (newest);
// both given is an error. A day alone in --at means its end too (core/time.h parse_instant).
Result<std::optional<int64_t>> requested_instant(const std::string& at, const std::string& date);
// The check on --at and --date: a value given must not be empty (`--at ""` is an error, not "now").
CLI::Validator time_value();
Result<repo::SnapshotRef> pick_snapshot(repo::Repository& r, const std::string& spec, const SnapshotPick& pick);

nlohmann::json snapshot_json(const repo::SnapshotRef& ref);
void print_json(const nlohmann::json& j);
bool progress_enabled(const GlobalOptions& g);

void register_init(CommandSet c);
void register_maintenance(CommandSet c);
void register_failover(CommandSet c);
void register_backup(CommandSet c);
void register_snapshots(CommandSet c);
void register_ls(CommandSet c);
void register_restore(CommandSet c);
void register_check(CommandSet c);
void register_key(CommandSet c);
void register_stats(CommandSet c);
void register_diff(CommandSet c);
void register_unlock(CommandSet c);
void register_repair(CommandSet c);
void register_forget(CommandSet c);
// A kind's backup on `cmd`: its declared backup flags (and --tag, --host) and the action that runs
// it through the kind's entry; `words`: what a positional "paths" option received (the top-level
// `backup` is the files kind's command, and in plan mode its words name plan sources).
struct KindBackupCommand {
  Action action;
  std::function<std::vector<std::string>()> words;
};
KindBackupCommand add_kind_backup(CommandSet c, CLI::App* cmd, const sources::SourceKind& kind);
// `backup <kind>` and `restore <kind>` for every kind that declares its options (cmd_kinds.cpp);
// after register_backup and register_restore.
void register_kinds(CommandSet c);
void register_copy(CommandSet c);
void register_plan(CommandSet c);
void register_drill(CommandSet c);
void register_report(CommandSet c);
void register_daemon(CommandSet c);
// Plan mode of `backup SOURCE…` and `restore SOURCE|--all`: the plan file when one is set.
std::optional<std::string> plan_mode(const GlobalOptions& g);
// Each plan source's outcome of a backup or restore run, as text (one line each) or JSON; fails
// when any source failed.
Status report_outcomes(const GlobalOptions& g, const char* verb, const std::vector<ops::SourceOutcome>& outcomes,
                       std::optional<int64_t> at_ns);
Status plan_backup(const GlobalOptions& g, const std::string& plan_file, const std::vector<std::string>& sources);
Status plan_restore(const GlobalOptions& g, const std::string& plan_file, const std::vector<std::string>& sources,
                    const std::string& environment, std::optional<int64_t> at_ns);

}  // namespace lifeboat::cli

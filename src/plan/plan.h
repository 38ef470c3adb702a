// lifeboat.yaml: repositories, sources (kind, connection, schedule, retention, validation,
// environments), objectives, notifications, reports and drills; ${ENV} expansion; every error
// names the file, the line and the key.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sources/source_kind.h"

namespace lifeboat::plan {

struct RepositorySpec {
  std::string name, url;
  std::string password_env = "LIFEBOAT_PASSWORD", password_file;
  std::string copy_of;  // a copy (second region) of that repository, refreshed after its backups
  std::string object_lock;  // e.g. "30d" (init --retention)
  // maintenance: {prune: CRON, check: CRON, read_data_subset: "1/30"}: run by the daemon, emitted by
  // `emit`; each check reads the next T-th of the packs (the day's, rotating), so all are read every T days.
  std::string prune_schedule, check_schedule;
  uint32_t read_data_subset = 0;  // T of "1/T"; 0: checks read structure only
  // copy_every: a copy (copy_of) is refreshed this often by the daemon besides after each backup
  // (and, for continuous sources, after each committed oplog slice); 0: after backups only.
  int64_t copy_every_ns = 0;
};

struct ScheduleSpec {
  std::string full;         // cron
  std::string incremental;  // cron (files: another backup; mongodb: unused when continuous)
  bool continuous = false;  // mongodb: oplog follower
  std::string interval = "60s";
};

struct RetentionSpec {
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  std::string within;  // keep everything newer than this ("90d")
  bool forever = false;
};

struct SourceSpec {
  std::string name, kind, repository;
  const sources::SourceKind* entry = nullptr;           // the kind's entry (null when not built)
  nlohmann::json settings = nlohmann::json::object();  // kind-specific section as written (uri, paths, …)
  sources::SettingsPtr parsed;                         // the same, parsed by the kind once
  ScheduleSpec schedule;
  RetentionSpec retention;
  std::vector<std::string> validation;                 // checks to run after restores and in drills
  double verify_sample = 0.05;                         // verify: share of the snapshot's blobs read back after a backup
  std::map<std::string, nlohmann::json> environments;  // per-environment overrides of settings
  std::map<std::string, sources::SettingsPtr> environment_parsed;  // settings merged with each override
  std::string drill_schedule;                          // drills.per_source: this source's own drill cadence
  std::vector<std::string> after;                      // failover and standby restores: these sources first
};

// environments.NAME: what a whole environment is for. `standby: true` makes the daemon keep it
// current from the copy repository (a warm standby for failover); `max_lag` is how far behind
// production it may fall before that is a problem (status, notifications).
struct EnvironmentSpec {
  std::string name;
  bool standby = false;
  int64_t max_lag_ns = 0;  // 0: the plan's RPO objective
};

// failover.steps: commands run after every source of the environment is caught up and checked
// (switch DNS, point the applications at the DR endpoints, scale up), in `after` order.
struct FailoverStep {
  std::string name, run;
  std::vector<std::string> after;
  int64_t timeout_ns = 600LL * 1000000000;
  bool rehearse = false;  // also run by `drill --failover` (a rehearsal must not switch real traffic)
};

struct FailoverSpec {
  std::string environment;  // the default --environment of `failover`
  std::vector<FailoverStep> steps;
};

struct NotificationSpec {
  nlohmann::json config;                  // type, url, from, to, command, …
  std::vector<std::string> on = {"failure"};  // failure, success, report
  std::vector<std::string> sources, kinds;    // only events about these (empty: all)
};

struct DrillSpec {
  std::string schedule;            // the whole plan's drill (cron)
  std::string environment = "test";
  std::vector<std::string> sources;  // the whole-plan drill's sources (empty: all)
  std::string after_restore;       // a command run after each source's restore, before its checks
  std::vector<std::string> allow_unvalidated;  // sources a drill may restore without a check (else it fails)
};

struct Plan {
  std::string file;
  int64_t rpo_ns = 3600LL * 1000000000, rto_ns = 4 * 3600LL * 1000000000;
  std::vector<RepositorySpec> repositories;
  std::vector<SourceSpec> sources;
  std::vector<NotificationSpec> notifications;
  std::string report_schedule;  // reports.schedule (cron)
  DrillSpec drills;
  std::vector<EnvironmentSpec> environments;
  FailoverSpec failover;
  std::map<std::string, int> lines;  // "sources.mongo.schedule.full" -> line (1-based)

  const SourceSpec* source(const std::string& name) const;
  const RepositorySpec* repository(const std::string& name) const;
  const EnvironmentSpec* environment(const std::string& name) const;
  // The repositories that copy `name` (copy_of), in plan order.
  std::vector<const RepositorySpec*> copies_of(const std::string& name) const;
  // "lifeboat.yaml:12: sources.mongo.uri: " for messages about that key (its nearest known parent).
  std::string where(const std::string& key) const;
};

// Parses and checks the whole plan; all problems at once, one per line, each with file:line: key.
Result<Plan> load_plan(const std::string& path);
Result<Plan> parse_plan(const std::string& text, const std::string& file_name);

// ${VAR} and ${VAR:-default}; an unset variable without a default is an error naming it.
Result<std::string> expand_env(const std::string& text);

}  // namespace lifeboat::plan

// The config source: configuration files (stored as the files source stores them, and checked for
// syntax at backup time), git repositories as mirrors (refs, notes, LFS objects), and every secret of
// a Secret Manager project with its versions and their states — one snapshot holds all three, so a
// configuration restores together or not at all.
//
// A snapshot (source "config") is a tree:
//   files/…                       the files, by absolute path (as a files snapshot's tree)
//   git/NAME/…                    the bare mirror's files (HEAD, config, packed-refs, refs/, objects/, lfs/objects/)
//   secrets/ID/secret.json        the secret's resource (labels, annotations, replication, versionAliases, …)
//   secrets/ID/versions/N.json    each version's resource (state, createTime, …)
//   secrets/ID/versions/N         the payload of each enabled or disabled version (never of a destroyed one)
// Its metadata records the syntax check, each mirror's refs and LFS objects, and the secret counts;
// docs/format.md has the details. Payloads are only ever in encrypted blobs: no output prints one.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "sources/config/config_check.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::config {

inline constexpr const char* kSource = "config";

struct GitSource {
  std::string name;    // the mirror's name in the snapshot (default: the repository's base name)
  std::string source;  // a path or URL
};
// "NAME=REPO" or "REPO" (named after its last path component, ".git" dropped).
GitSource parse_git_source(const std::string& arg);

struct ConfigBackupOptions {
  std::vector<std::string> paths;  // absolute
  std::vector<std::string> excludes;
  std::vector<GitSource> git;
  std::string secrets_project;  // "projects/P", or "" for none
  bool read_disabled = false;   // read DISABLED versions' payloads (enabled for the moment, journalled); else metadata only
  std::vector<CheckCommand> checks;
  std::vector<std::string> tags;
  std::string hostname;
  std::optional<repo::SnapshotRef> parent;  // its files are not read again when unchanged
};

struct ConfigBackupResult {
  std::string snapshot_id;
  repo::Snapshot snapshot;
  std::vector<ConfigProblem> problems;  // syntax and check-command problems (the snapshot records them)
  std::vector<std::string> warnings;    // unreadable files, LFS objects that could not be brought in
  bool ok() const { return problems.empty() && warnings.empty(); }
};

// Checks the files, then stores files, mirrors and secrets in one snapshot. A source that cannot be
// read (a repository that does not exist or is mid-rebase, Secret Manager refusing) fails the whole
// backup and commits nothing; files failing their syntax check are stored and reported.
Result<ConfigBackupResult> backup_config(repo::Repository& repo, const ConfigBackupOptions& options, ProgressCounters& progress);

// The newest config snapshot at or before `at_ns` among those with `tags` (and, when given, of `paths`).
Result<repo::SnapshotRef> pick_config_snapshot(const std::vector<repo::SnapshotRef>& all, const std::vector<std::string>& tags,
                                               std::optional<int64_t> at_ns);

struct ConfigRestoreOptions {
  std::string target;          // files (by absolute path) go under it
  std::string git_dir;         // bare mirrors go to GIT_DIR/NAME.git (default: TARGET/git)
  std::map<std::string, std::string> push;  // NAME → remote: push the mirror there instead
  std::string secrets_project;  // "projects/Q": restore the secrets into it
  std::set<std::string> only;   // "files", "git", "secrets" (empty: all the snapshot has)
  bool dry_run = false;
  // A standby restored before: a mirror already there is brought to this backup (files that differ
  // rewritten, extras removed) instead of refused.
  bool converge = false;
};

struct SecretRestored {
  std::string secret;                        // the target secret's name
  bool created = false;
  std::vector<std::pair<int64_t, int64_t>> versions;  // old → new version number
  std::map<std::string, int64_t> aliases;   // alias → new version number
  std::vector<int64_t> without_payload;      // DISABLED versions backed up without read_disabled: restored disabled, empty
};

struct ConfigRestoreResult {
  uint64_t files = 0, bytes = 0;
  std::vector<std::pair<std::string, std::string>> mirrors;  // name → where it went (a directory or a remote)
  std::vector<SecretRestored> secrets;
  std::vector<std::string> plan;  // --dry-run: what would change, one line each
  nlohmann::json to_json() const;
};

Result<ConfigRestoreResult> restore_config(repo::Repository& repo, const repo::SnapshotRef& snapshot,
                                           const ConfigRestoreOptions& options, ProgressCounters& progress);

// Reads the restored targets back and compares them with the snapshot: "files" (every file's bytes),
// "syntax" (the restored files parse), "git" (refs at the same objects, objects whole, LFS objects
// present), "secrets" (each restored version's state and payload, read back from the target project,
// and the aliases). One result per name asked for.
std::vector<CheckResult> check_config_target(repo::Repository& repo, const repo::SnapshotRef& snapshot,
                                             const ConfigRestoreOptions& where, const ConfigRestoreResult& restored,
                                             const std::vector<std::string>& checks);

}  // namespace lifeboat::sources::config

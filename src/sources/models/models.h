// The models source: model versions from an MLflow registry (or a directory, or a GCS prefix, for
// models kept outside one), one snapshot per version with the registry's metadata and every
// artifact, a SHA-256 manifest, and a validation command run on a copy read back from the repository.
//
// A snapshot (source "models", paths ["NAME/VERSION"]) is a tree:
//   artifacts/…             the version's artifacts, by their paths below its artifact root
//   registered_model.json   the registered model as the registry gave it (tags, aliases, description)
//   model_version.json      the version (source, run_id, tags, status, description, aliases)
// Tags: model:NAME, version:V, alias:A for each alias the version held, and the caller's.
// Metadata: model, version, registry, aliases, manifest ({path: sha256}), bytes, and the validation.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::models {

inline constexpr const char* kSource = "models";

struct ValidateCommand {
  std::string run;  // "{model_dir}" and "{version}" substituted (quoted)
  int64_t timeout_s = 300;
};

struct ModelsBackupOptions {
  std::string mlflow;               // tracking server URL, or
  std::string path;                 // a directory (or gs://BUCKET/PREFIX) holding one version
  std::vector<std::string> models;  // registered model names (empty: every one)
  std::string version;              // only this version (a deploy step)
  std::string production_alias = "production";  // versions holding it are pinned
  std::optional<ValidateCommand> validate;
  std::vector<std::string> tags;
  std::string hostname;
};

struct VersionBackup {
  std::string model, version, snapshot_id;  // snapshot_id empty when unchanged (nothing new stored)
  bool unchanged = false, pinned = false;
  uint64_t files = 0, bytes = 0, downloaded_bytes = 0;
  std::vector<std::string> aliases;
  std::optional<bool> validated;  // nullopt: no validation configured
  std::string validation_detail;
};

struct ModelsBackupResult {
  std::vector<VersionBackup> versions;
  bool all_validated() const;
};

// Backs up every (selected) version; a version whose artifacts, metadata and aliases equal the newest
// snapshot of it is skipped (nothing downloaded). A version that cannot be read fails the backup:
// versions already committed stay. Validation failures are recorded, the data stays stored.
Result<ModelsBackupResult> backup_models(repo::Repository& repo, const ModelsBackupOptions& options, ProgressCounters& progress);

// The newest snapshot of each (model, version) at or before `at_ns` among those with `tags`.
std::vector<repo::SnapshotRef> pick_model_versions(const std::vector<repo::SnapshotRef>& all, const std::vector<std::string>& tags,
                                                   std::optional<int64_t> at_ns, const std::string& model,
                                                   const std::string& version);

struct ModelsRestoreOptions {
  std::string mlflow;  // into this registry, or
  std::string to_dir;  // DIR/NAME/VERSION/…
  bool dry_run = false;
  // A standby restored before: a version directory already there is brought to this backup (files
  // that differ rewritten, extras removed) instead of refused.
  bool converge = false;
};

struct VersionRestored {
  std::string model, old_version, new_version, where;
  uint64_t files = 0, bytes = 0;
  bool reused = false;  // the registry already held the version restored from this snapshot (tag lifeboat.snapshot)
};

// Restores the versions (oldest first per model): into a registry (model created with its tags and
// description when missing; each version's artifacts uploaded into a run of the experiment
// "lifeboat-restore", the version created from them with its tags and lifeboat.snapshot naming the
// snapshot; aliases set on the new numbers) or into a directory. Into a registry it converges: a
// version already restored from the same snapshot is reused, an interrupted restore's run is reused
// for the upload, so a re-run after a kill (or a plain re-run) completes instead of duplicating.
Result<std::vector<VersionRestored>> restore_models(repo::Repository& repo, const std::vector<repo::SnapshotRef>& versions,
                                                    const ModelsRestoreOptions& options, ProgressCounters& progress);

}  // namespace lifeboat::sources::models

namespace lifeboat::sources::models {

// Reads each restored version back from the target (the directory, or the registry's new version
// through its artifact proxy) and compares it with the backup: "manifest" (every artifact's SHA-256
// equals the backed-up manifest, none missing, none extra; and the registry metadata a restore
// writes — the version's tags and description, the aliases it held, the registered model's tags and
// description — read from the registry, or from DIR/NAME/VERSION.mlflow.json), "validate" (the
// validation command run on the restored copy). One result per name.
std::vector<CheckResult> check_models_target(repo::Repository& repo, const std::vector<repo::SnapshotRef>& versions,
                                             const ModelsRestoreOptions& where, const std::vector<VersionRestored>& restored,
                                             const std::optional<ValidateCommand>& validate, const std::vector<std::string>& checks);

// Runs the validation command on a model directory: (ok, "`cmd` exited 0; output: …").
std::pair<bool, std::string> run_validate_command(const ValidateCommand& v, const std::string& model_dir, const std::string& version);

}  // namespace lifeboat::sources::models

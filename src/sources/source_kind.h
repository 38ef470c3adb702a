// The contract every source kind fulfils: typed settings parsed once, backup, restore into a target,
// validations that read the restored target back, the newest restorable point, and optional
// capabilities (a continuous follower, snapshots that depend on another). Each kind defines its
// entry in its own folder (src/sources/<kind>/<kind>_source.cpp); registry.cpp only lists them.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"

namespace lifeboat::sources {

// Every snapshot a plan source makes carries this tag, so drills, retention and reports find them.
std::string source_tag(const std::string& source_name);

// A kind's parsed settings; each kind derives its own struct and writes its functions against it
// (TypedSourceKind below casts back once, for all of them).
struct SourceSettings {
  virtual ~SourceSettings() = default;
};
using SettingsPtr = std::shared_ptr<const SourceSettings>;

// Where a problem in a settings section is: the key ("rename.a") and what is wrong with it.
struct SettingsProblem {
  std::string key, message;
};

struct CheckResult {
  std::string name;  // "counts", "hashes", …
  bool ok = false;
  std::string detail;
};

// Each of `checks` failed for one reason (the restored snapshot could not be read, …).
std::vector<CheckResult> all_failed(const std::vector<std::string>& checks, const std::string& why);

// What a backup or restore says to a person (`lines`, on stdout; `warnings` on stderr) and to a
// program (`json`, for --json). `status`: the outcome after the report is shown (a backup saved with
// unreadable files is kPartial).
struct Report {
  nlohmann::json json = nlohmann::json::object();
  std::vector<std::string> lines, warnings;
  Status status;
};

struct SourceBackup {
  std::string snapshot_id;  // the newest snapshot the backup made ("" when nothing changed)
  nlohmann::json summary;
  std::vector<std::string> warnings;
  std::vector<std::string> more_snapshots;  // kinds that make several (one per model version): the others
  Report report;
};

// What a kind keeps from a restore for its own validations (not recorded anywhere); each kind
// derives its own.
struct RestoredState {
  virtual ~RestoredState() = default;
};

// What a restore wrote and where: enough for the kind's validations to read the target back.
struct SourceRestore {
  int64_t point_ns = 0;      // the restored state is the source's state as of this instant
  std::string snapshot_id;   // the snapshot (full backup) it came from
  std::string limit;         // why point_ns lies before the requested instant, when it does
  nlohmann::json details = nlohmann::json::object();
  // The state the target must now hold, as the kind computed it from the repository (not from the
  // target): the validations compare the target against it.
  nlohmann::json expected = nlohmann::json::object();
  // The validations the settings ask a command-line restore to run (none after a dry run).
  std::vector<std::string> checks;
  bool dry_run = false;  // nothing was written: there is no target to read back
  std::shared_ptr<const RestoredState> state;
  Report report;
  // Where a later restore into the same target may continue from (a warm standby): the kind's own
  // marker, handed back in SourceContext::resume. Empty: it restores whole every time.
  nlohmann::json resume = nlohmann::json::object();
};

struct SourceContext {
  repo::Repository& repo;
  // The source's name in the plan. Empty for a command-line run: the kind then names what it backs
  // up from its settings and finds its snapshots by what they hold (a bucket, a database) instead of
  // by the plan's source tag.
  std::string name;
  ProgressCounters& progress;
  std::vector<std::string> tags;  // more tags for the snapshot (the command line's --tag)
  std::string host;               // the host name to record (default: this host)
  bool progress_shown = false;    // a person watches the progress: worth counting totals first for an ETA
  // Restores into a standby: what the previous restore into this same target returned as its
  // `resume` marker; the kind writes only what changed since (null: a restore from nothing).
  const nlohmann::json* resume = nullptr;
  // false: no validation follows this restore, so the kind need not predict the target's state
  // (SourceRestore::expected) when that costs reading what it does not write.
  bool predict = true;
};

// One option of a kind, declared once: the plan key, and the command-line flag of the generated
// `backup <kind>` / `restore <kind>` commands (--key with '-' for '_', unless `flag` names it). The
// CLI gathers the flags given into a settings section and hands it to the kind's one `parse`.
enum class OptionType { kString, kStrings, kFlag, kCount };
enum OptionUse : unsigned { kBackupOption = 1, kRestoreOption = 2, kBothOptions = 3 };
// What a settings section is read for: a plan source (everything it may do), or one command-line
// backup or restore (only what that command needs: a restore into a directory names no server).
enum class SettingsFor { kPlan, kBackup, kRestore };

struct KindOption {
  std::string key;
  OptionType type = OptionType::kString;
  std::string help;
  unsigned use = kBothOptions;
  std::string flag;          // CLI11 names when not derived: "url" (positional), "-t,--target"
  std::string default_text;  // shown in --help
  bool required = false;     // the command line must give it (a plan's parse says so itself)
  bool command_line = false;  // a command-line choice (--dry-run, --snapshot): `plan check` refuses it in a plan
};
// The flag a person types for `option` ("--to-project"), for messages.
std::string flag_of(const KindOption& option);


struct FollowHooks {
  std::function<bool()> should_stop;
  std::function<void(const std::string&)> on_warning;  // e.g. "OPLOG GAP …"
  std::function<void()> on_commit;
};

// What a verb works with: its arguments (a section, as the flags given make it; read them with
// SettingsReader), the repository (null unless the verb needs one), and `emit` for what it says while
// it runs (a follower's slices): `text` for a person (stderr when `warning`), `event` for --json.
struct VerbContext {
  repo::Repository* repo = nullptr;
  const nlohmann::json& args;
  ProgressCounters& progress;
  std::function<void(const std::string& text, const nlohmann::json& event, bool warning)> emit;
};

// A command of the kind's own that is neither a backup nor a restore (`mongodb follow`, `sync`):
// declared here, generated by the CLI like `backup <kind>`.
struct KindVerb {
  std::vector<std::string> words;  // {"sync"}, {"mongodb", "follow"}
  std::string help;
  std::vector<KindOption> options;
  bool needs_repository = true;
  bool shared_lock = true;     // held while it runs (a follower takes its own, briefly, per slice)
  std::string progress_label;  // what the progress display calls the work ("sync"; none: no display)
  std::function<Result<Report>(VerbContext&)> run;
};

// Settings problems said as the flags that set them ("--max-delete: expected …; --to: required").
std::string problems_as_flags(const std::vector<KindOption>& options, const std::vector<SettingsProblem>& problems);

struct SourceKind {
  std::string name;
  std::string summary;
  std::string command;  // the word of its generated commands, when not its name (`backup gcs`)
  // false: the kind's options belong to the top-level `backup PATH...` (files), not to a
  // generated `backup <kind>` (which would shadow a directory of that name)
  bool generated_commands = true;
  std::vector<std::string> validations;  // the check names `validation:` may list
  // The `source` field of the snapshots a plan source of this kind makes (each also carries its
  // source_tag): newest_point, when the kind leaves it unset, is the newest such snapshot's time.
  std::string snapshot_source;
  // The settings the kind takes, declared once: plan keys and command-line flags. A kind with
  // options gets generated `backup <kind>` and `restore <kind>` commands.
  std::vector<KindOption> options;
  std::vector<KindVerb> verbs;
  // Settings a standby restore lays over the environment's, so the standby ends equal to the
  // backup with the least writing (files: delete extras; Firestore: replace collections).
  nlohmann::json standby_settings = nlohmann::json::object();

  // Typed settings from the plan's section (for restores: merged with the environment's override).
  // Problems are appended with the key they concern; the result is nullptr only when there were any.
  // `plan check` and every run use this one parser.
  std::function<SettingsPtr(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems)> parse;

  std::function<Result<SourceBackup>(SourceContext&, const SourceSettings&)> backup;
  // Restores the state as of `at_ns` (default: newest) where the settings say.
  std::function<Result<SourceRestore>(SourceContext&, const SourceSettings&, std::optional<int64_t> at_ns)> restore;
  // Runs the named validations by reading the restored target (never the repository's stream alone);
  // the target is read once for all of them. One result per name, in order.
  std::function<std::vector<CheckResult>(SourceContext&, const SourceSettings&, const SourceRestore&,
                                         const std::vector<std::string>& checks)>
      validate;
  // The newest instant a restore can reach now (for RPO); nullopt without any backup.
  std::function<std::optional<int64_t>(const std::vector<repo::SnapshotRef>& all, const std::string& name)> newest_point;

  // Optional: a continuous follower (plan `schedule.continuous`), run until should_stop.
  std::function<Status(repo::Repository&, const std::string& name, const SourceSettings&, int64_t interval_ns,
                       const FollowHooks&)>
      follow;
  // Optional, with follow: the follower's command line (after `lifeboat`) for `emit`; "$VAR" words
  // stand for the environment variables the unit or pod provides.
  std::function<std::vector<std::string>(const std::string& name, const std::string& interval)> follow_args;

  // Optional: retention judges each group on its own (models: each version is kept by the policy
  // as if it were the only one); all of a source's snapshots form one group without it.
  std::function<std::string(const repo::Snapshot&)> retention_group;

  // Optional: snapshots that extend another (MongoDB oplog slices extend a full backup). Retention
  // applies the policy to the others and keeps a dependent exactly as long as its base is kept.
  std::function<bool(const repo::Snapshot&)> is_dependent;
  // The id of the snapshot a dependent extends, among `bases` (oldest first); nullopt when none.
  std::function<std::optional<std::string>(const repo::SnapshotRef& dependent, const std::vector<repo::SnapshotRef>& bases)>
      base_of;
  // Optional: housekeeping of dependents, run before retention judges them (MongoDB: compacts old
  // oplog slices into hourly ones and forgets those before the point-in-time window).
  // `default_window_ns`: how long the plan keeps daily backups (0: unknown).
  std::function<Result<nlohmann::json>(repo::Repository&, const std::string& name, const SourceSettings&,
                                       int64_t default_window_ns, const std::set<std::string>& pinned)>
      tidy;
};

// The ID a snapshot has in the repository it was first written to: a copy (repo/copy.h) records it as
// summary.copied_from. A standby's resume marker names it, so the same backup is recognised whether
// a later restore reads the repository or its copy.
inline std::string origin_id(const repo::SnapshotRef& r) {
  const auto& s = r.snapshot.summary;
  return s.is_object() && s.contains("copied_from") && s["copied_from"].is_string() ? s["copied_from"].get<std::string>() : r.id;
}

// "Check NAME: ok|FAILED|skipped — DETAIL" for one check a backup recorded in its summary's `checks`
// (`skipped`: it could not be made, e.g. an append key cannot read back what it stored).
std::string backup_check_line(const nlohmann::json& check);

// A kind's newest_point when its newest snapshot is the newest restorable point: that snapshot's time.
inline std::optional<int64_t> time_of(const std::optional<repo::SnapshotRef>& newest) {
  if (!newest) return std::nullopt;
  return newest->snapshot.time_ns;
}

// "source NAME: no backup [at or before T]": what a restore of a plan source says when it has none;
// with T, why (the oldest of its snapshots, and by how much it missed T when within that second).
Status no_backup_error(const std::string& source_name, std::optional<int64_t> at_ns, const std::vector<repo::SnapshotRef>& all,
                       const std::string& snapshot_source);

// The newest snapshot of plan source `name` (its `source` field `snapshot_source`, tagged
// source_tag(name)) at or before `at_ns` (default: the newest of all).
std::optional<repo::SnapshotRef> newest_snapshot(const std::vector<repo::SnapshotRef>& all, const std::string& snapshot_source,
                                                 const std::string& name, std::optional<int64_t> at_ns);

// A kind written against its own settings type S (restic's generic backend factory is the model):
// the same entries as SourceKind with `const S&` where SourceKind has `const SourceSettings&`.
// erase() casts back in one place; the kind's functions never do.
template <class S>
struct TypedSourceKind {
  std::string name, summary, command;
  bool generated_commands = true;
  std::vector<std::string> validations;
  std::string snapshot_source;
  std::vector<KindOption> options;
  std::vector<KindVerb> verbs;
  nlohmann::json standby_settings = nlohmann::json::object();
  std::function<std::shared_ptr<const S>(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems)>
      parse;
  std::function<Result<SourceBackup>(SourceContext&, const S&)> backup;
  std::function<Result<SourceRestore>(SourceContext&, const S&, std::optional<int64_t> at_ns)> restore;
  std::function<std::vector<CheckResult>(SourceContext&, const S&, const SourceRestore&, const std::vector<std::string>& checks)>
      validate;
  std::function<std::optional<int64_t>(const std::vector<repo::SnapshotRef>& all, const std::string& name)> newest_point;
  std::function<Status(repo::Repository&, const std::string& name, const S&, int64_t interval_ns, const FollowHooks&)> follow;
  std::function<std::vector<std::string>(const std::string& name, const std::string& interval)> follow_args;
  std::function<std::string(const repo::Snapshot&)> retention_group;
  std::function<bool(const repo::Snapshot&)> is_dependent;
  std::function<std::optional<std::string>(const repo::SnapshotRef& dependent, const std::vector<repo::SnapshotRef>& bases)>
      base_of;
  std::function<Result<nlohmann::json>(repo::Repository&, const std::string& name, const S&, int64_t default_window_ns,
                                       const std::set<std::string>& pinned)>
      tidy;

  SourceKind erase() const {
    auto as = [](const SourceSettings& s) -> const S& { return static_cast<const S&>(s); };
    SourceKind k{.name = name, .summary = summary, .command = command, .generated_commands = generated_commands,
                 .validations = validations, .snapshot_source = snapshot_source,
                 .options = options, .verbs = verbs, .standby_settings = standby_settings};
    k.parse = [f = parse](const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems) -> SettingsPtr {
      return f(section, purpose, problems);
    };
    k.backup = [f = backup, as](SourceContext& c, const SourceSettings& s) { return f(c, as(s)); };
    k.restore = [f = restore, as](SourceContext& c, const SourceSettings& s, std::optional<int64_t> at) { return f(c, as(s), at); };
    k.validate = [f = validate, as](SourceContext& c, const SourceSettings& s, const SourceRestore& r,
                                    const std::vector<std::string>& checks) { return f(c, as(s), r, checks); };
    k.newest_point = newest_point;
    if (!k.newest_point && !snapshot_source.empty())
      k.newest_point = [src = snapshot_source](const std::vector<repo::SnapshotRef>& all, const std::string& n) {
        return time_of(newest_snapshot(all, src, n, std::nullopt));
      };
    if (follow)
      k.follow = [f = follow, as](repo::Repository& r, const std::string& n, const SourceSettings& s, int64_t interval_ns,
                                  const FollowHooks& hooks) { return f(r, n, as(s), interval_ns, hooks); };
    k.follow_args = follow_args;
    k.retention_group = retention_group;
    k.is_dependent = is_dependent;
    k.base_of = base_of;
    if (tidy)
      k.tidy = [f = tidy, as](repo::Repository& r, const std::string& n, const SourceSettings& s, int64_t window_ns,
                              const std::set<std::string>& pinned) { return f(r, n, as(s), window_ns, pinned); };
    return k;
  }
};

}  // namespace lifeboat::sources

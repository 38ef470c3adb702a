// Config backups: syntax check of the files, then files, git mirrors and secrets stored by one write
// session and committed as one snapshot — or, when a source cannot be read, nothing committed.
#include <fmt/format.h>

#include <filesystem>

#include "cloud/secret_manager.h"
#include "core/names.h"
#include "core/time.h"
#include "repo/node_io.h"
#include "repo/snapshot_select.h"
#include "repo/write_session.h"
#include "sources/config/config.h"
#include "sources/config/git_mirror.h"
#include "sources/config/secret_journal.h"
#include "repo/archiver/archiver.h"
#include "repo/restorer/restorer.h"

namespace lifeboat::sources::config {

namespace fs = std::filesystem;

namespace {

// Directories of a config snapshot: owner only, like the secrets they hold.
repo::Node dir_node(const std::string& name, const repo::BlobId& subtree) { return repo::dir_node(name, subtree, 0700); }

Result<repo::Node> data_node(repo::WriteSession& session, const std::string& name, ByteView data, int64_t mtime_ns) {
  return repo::store_bytes_node(session, name, data, 0600, mtime_ns);  // secrets and their metadata: owner only
}

Result<repo::BlobId> store_nodes(repo::WriteSession& session, std::vector<repo::Node> nodes) {
  repo::Tree t;
  t.nodes = std::move(nodes);
  t.sort();
  return session.store_tree(t);
}

// The subtree of `path` (absolute) inside a files root tree.
Result<repo::BlobId> subtree_at(repo::Repository& repo, const repo::BlobId& root, const std::string& path) {
  repo::BlobId cur = root;
  for (const auto& part : fs::path(path)) {
    std::string name = part.string();
    if (name == "/" || name.empty()) continue;
    LB_ASSIGN_OR_RETURN(auto tree, repo.load_tree(cur));
    const repo::Node* n = tree.find(name);
    if (!n || n->kind != repo::NodeKind::kDir || !n->subtree)
      return Error(Code::kFatal, fmt::format("stored tree lacks {} (component {})", path, name));
    cur = *n->subtree;
  }
  return cur;
}

struct SecretsStored {
  repo::BlobId tree{};
  uint64_t secrets = 0, versions = 0, destroyed = 0, disabled = 0, disabled_unread = 0, bytes = 0;
  std::vector<std::string> warnings;
};

// The state each version of the previous snapshot recorded ("S/N" → "DISABLED"), from its N.json nodes.
std::map<std::string, std::string> previous_states(repo::Repository& repo, const std::optional<repo::SnapshotRef>& parent) {
  std::map<std::string, std::string> out;
  if (!parent) return out;
  auto root = repo.load_tree(parent->snapshot.tree);
  const repo::Node* secrets = root ? root->find("secrets") : nullptr;
  auto secrets_tree = secrets && secrets->subtree ? repo.load_tree(*secrets->subtree) : Result<repo::Tree>(Error(Code::kNotFound, ""));
  if (!secrets_tree) return out;
  for (const auto& sn : secrets_tree->nodes) {
    auto st = sn.subtree ? repo.load_tree(*sn.subtree) : Result<repo::Tree>(Error(Code::kNotFound, ""));
    const repo::Node* versions = st ? st->find("versions") : nullptr;
    auto vt = versions && versions->subtree ? repo.load_tree(*versions->subtree) : Result<repo::Tree>(Error(Code::kNotFound, ""));
    if (!vt) continue;
    for (const auto& vn : vt->nodes) {
      if (!vn.name.ends_with(".json")) continue;
      auto bytes = repo::read_node_bytes(repo, vn);
      if (!bytes) continue;
      auto j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
      if (j.is_object()) out[sn.name + "/" + vn.name.substr(0, vn.name.size() - 5)] = j.value("state", "");
    }
  }
  return out;
}

// Every secret of the project with each version. The API serves no payload of a DISABLED version:
// without read_disabled its metadata is stored and its payload is not; with it, the version is
// enabled for the moment of reading (recorded first in the EnabledVersionJournal, so a kill never
// leaves it enabled) and disabled again whatever happens. Records an interrupted backup left are
// completed first, before anything is read.
Result<SecretsStored> store_secrets(repo::Repository& repo, repo::WriteSession& session, const ConfigBackupOptions& options,
                                    ProgressCounters& progress) {
  const std::string& project = options.secrets_project;
  LB_ASSIGN_OR_RETURN(auto client, cloud::SecretManagerClient::from_environment());
  SecretsStored out;
  EnabledVersionJournal journal(*client);
  LB_ASSIGN_OR_RETURN(out.warnings, journal.complete());
  auto before = previous_states(repo, options.parent);
  std::vector<nlohmann::json> secrets;
  LB_RETURN_IF_ERROR(client->list_secrets(project, [&](const nlohmann::json& s) {
    secrets.push_back(s);
    return Status::ok();
  }));
  std::vector<repo::Node> secret_dirs;
  int64_t now = now_unix_ns();
  for (const auto& secret : secrets) {
    std::string name = secret.value("name", "");
    std::string id = cloud::resource_id(name);
    LB_RETURN_IF_ERROR(cloud::check_secret_id(id, "the Secret Manager lists a secret"));
    std::vector<nlohmann::json> versions;
    LB_RETURN_IF_ERROR(client->list_versions(name, [&](const nlohmann::json& v) {
      versions.push_back(v);
      return Status::ok();
    }));
    std::vector<repo::Node> version_nodes;
    for (const auto& v : versions) {
      std::string vname = v.value("name", "");
      int64_t number = cloud::secret_version_number(vname);
      if (number <= 0) return Error(Code::kInvalidArgument, fmt::format("secret {}: the API lists a version named {:?}, not …/versions/N", id, vname));
      std::string state = v.value("state", "");
      ++out.versions;
      if (auto it = before.find(fmt::format("{}/{}", id, number)); it != before.end() && it->second == "DISABLED" && state == "ENABLED")
        out.warnings.push_back(fmt::format("{} was DISABLED at the previous backup (snapshot {}) and is ENABLED now: if no one "
                                           "re-enabled it on purpose, disable it (a revoked credential may be valid again)",
                                           vname, options.parent->short_id()));
      std::string meta = v.dump(2);
      LB_ASSIGN_OR_RETURN(auto mnode, data_node(session, fmt::format("{}.json", number), as_bytes(meta), now));
      version_nodes.push_back(std::move(mnode));
      if (state == "DESTROYED") {
        ++out.destroyed;
        continue;
      }
      if (state == "DISABLED") ++out.disabled;
      if (state == "DISABLED" && !options.read_disabled) {
        ++out.disabled_unread;  // its metadata only: reading it would mean enabling a revoked version
        continue;
      }
      auto read_payload = [&]() -> Result<Bytes> {
        if (state != "DISABLED") return client->access(vname);
        LB_RETURN_IF_ERROR(journal.record(vname));
        auto enabled = client->change_version(vname, "enable");
        if (!enabled) {
          (void)journal.forget(vname);
          return enabled.status();
        }
        auto got = client->access(vname);
        auto again = client->change_version(vname, "disable");
        if (!again)
          return Error(Code::kFatal, fmt::format("{} was enabled to read it and could not be disabled again: {} — disable it by hand "
                                                 "(the next secrets backup tries again first)",
                                                 vname, again.status().message()));
        LB_RETURN_IF_ERROR(journal.forget(vname));
        return got;
      };
      auto payload = read_payload();
      if (!payload) return payload.status();
      out.bytes += payload->size();
      progress.bytes_done += payload->size();
      LB_ASSIGN_OR_RETURN(auto pnode, data_node(session, std::to_string(number), *payload, now));
      version_nodes.push_back(std::move(pnode));
    }
    LB_ASSIGN_OR_RETURN(auto vtree, store_nodes(session, std::move(version_nodes)));
    std::string resource = secret.dump(2);
    LB_ASSIGN_OR_RETURN(auto snode, data_node(session, "secret.json", as_bytes(resource), now));
    LB_ASSIGN_OR_RETURN(auto stree, store_nodes(session, {snode, dir_node("versions", vtree)}));
    secret_dirs.push_back(dir_node(id, stree));
    ++out.secrets;
    progress.files_done++;
  }
  LB_ASSIGN_OR_RETURN(out.tree, store_nodes(session, std::move(secret_dirs)));
  return out;
}

}  // namespace

GitSource parse_git_source(const std::string& arg) {
  GitSource g;
  size_t eq = arg.find('=');
  if (eq != std::string::npos && arg.find('/') > eq && arg.find(':') > eq) {
    g.name = arg.substr(0, eq);
    g.source = arg.substr(eq + 1);
    return g;
  }
  g.source = arg;
  std::string s = arg;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  size_t slash = s.find_last_of("/:");
  g.name = slash == std::string::npos ? s : s.substr(slash + 1);
  if (g.name.size() > 4 && g.name.compare(g.name.size() - 4, 4, ".git") == 0) g.name.resize(g.name.size() - 4);
  if (g.name == ".git") g.name = fs::path(s).parent_path().filename().string();
  return g;
}

Result<ConfigBackupResult> backup_config(repo::Repository& repo, const ConfigBackupOptions& options, ProgressCounters& progress) {
  if (options.paths.empty() && options.git.empty() && options.secrets_project.empty())
    return Error(Code::kInvalidArgument, "nothing to back up: give config paths, --git REPO or --secrets projects/P");
  if (!options.secrets_project.empty() && options.secrets_project.rfind("projects/", 0) != 0)
    return Error(Code::kInvalidArgument, fmt::format("--secrets wants projects/PROJECT, not {}", options.secrets_project));
  std::set<std::string> names;
  for (const auto& g : options.git)
    if (!names.insert(g.name).second || g.name.empty() || g.name == "." || g.name == "..")
      return Error(Code::kInvalidArgument, fmt::format("two git repositories named {}: name them (--git NAME=REPO)", g.name));
  int64_t start_mono = monotonic_ns();
  int64_t start_ns = now_unix_ns();
  ConfigBackupResult result;

  // 1. Syntax: the files as they are now (stored whatever the outcome).
  ConfigCheckReport report;
  if (!options.paths.empty()) report = check_tree(options.paths, options.excludes, options.checks);
  result.problems = report.problems;

  // 2. Git mirrors, brought up to date before anything is stored: a source that fails stops here.
  // A mirror missing from the cache (a new machine) starts from the previous backup's copy, so the
  // fetch still brings only new objects.
  LB_RETURN_IF_ERROR(repo.load_index());
  std::optional<repo::Tree> parent_git;
  if (options.parent && !options.git.empty()) {
    auto root = repo.load_tree(options.parent->snapshot.tree);
    if (root)
      if (const auto* n = root->find("git"); n && n->subtree)
        if (auto t = repo.load_tree(*n->subtree)) parent_git = std::move(*t);
  }
  std::vector<MirrorState> mirrors;
  std::vector<MirrorLock> held;  // each mirror stays locked until its files are stored
  for (const auto& g : options.git) {
    std::string dir = mirror_cache_dir(g.source);
    LB_ASSIGN_OR_RETURN(auto lock, MirrorLock::acquire(dir));
    held.push_back(std::move(lock));
    std::error_code ec;
    const repo::Node* previous = parent_git ? parent_git->find(g.name) : nullptr;
    // (An append key cannot read the previous copy: its fetch brings everything, stored once.)
    if (previous && previous->subtree && !repo.append_only() && !fs::exists(dir, ec)) {
      std::string tmp = dir + ".seeding";
      fs::remove_all(tmp, ec);
      fs::create_directories(tmp, ec);
      repo::TreeRestoreOptions ro;
      ro.target = tmp;
      auto seeded = repo::restore_tree(repo, *previous->subtree, ro, progress);
      if (seeded && seeded->errors.empty()) fs::rename(tmp, dir, ec);
      else fs::remove_all(tmp, ec);  // only a cost: the fetch brings everything
    }
    LB_ASSIGN_OR_RETURN(auto m, update_mirror(g.source, dir));
    for (const auto& miss : m.lfs_missing) result.warnings.push_back(fmt::format("git {}: LFS object {}", g.name, miss));
    mirrors.push_back(std::move(m));
  }

  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());
  repo::WriteSession session(repo);
  std::vector<repo::Node> root;
  nlohmann::json summary = nlohmann::json::object();

  // 3. Files.
  if (!options.paths.empty()) {
    repo::ArchiveOptions fo;
    fo.paths = options.paths;
    fo.excludes = options.excludes;
    if (options.parent) {
      LB_ASSIGN_OR_RETURN(auto ptree, repo.load_tree(options.parent->snapshot.tree));
      if (const auto* n = ptree.find("files"); n && n->subtree) fo.parent_tree = *n->subtree;
    }
    auto stored = repo::archive_paths(repo, session, fo, progress);
    if (!stored) {
      (void)session.flush();
      return stored.status();
    }
    for (const auto& u : stored->unreadable) result.warnings.push_back("unreadable: " + u);
    summary["files"] = stored->summary;
    root.push_back(dir_node("files", stored->tree));
  }

  // 4. Mirrors: each directory stored, then its subtree taken from the stored tree.
  nlohmann::json git_meta = nlohmann::json::array();
  if (!mirrors.empty()) {
    std::vector<repo::Node> repos;
    for (size_t i = 0; i < mirrors.size(); ++i) {
      repo::ArchiveOptions fo;
      fo.paths = {mirrors[i].dir};
      auto stored = repo::archive_paths(repo, session, fo, progress);
      if (!stored) {
        (void)session.flush();
        return stored.status();
      }
      if (!stored->unreadable.empty())
        return Error(Code::kIo, fmt::format("git {}: the mirror in {} could not be read: {}", options.git[i].name, mirrors[i].dir,
                                            stored->unreadable[0]));
      LB_RETURN_IF_ERROR(session.flush());
      LB_ASSIGN_OR_RETURN(auto sub, subtree_at(repo, stored->tree, mirrors[i].dir));
      repos.push_back(dir_node(options.git[i].name, sub));
      nlohmann::json lfs = nlohmann::json::array();
      for (const auto& p : mirrors[i].lfs) lfs.push_back({{"oid", p.oid}, {"size", p.size}});
      git_meta.push_back({{"name", options.git[i].name}, {"source", redact_url(options.git[i].source)}, {"head", mirrors[i].head},
                          {"refs", mirrors[i].refs}, {"lfs", lfs}, {"lfs_missing", mirrors[i].lfs_missing.size()}});
    }
    LB_ASSIGN_OR_RETURN(auto gtree, store_nodes(session, std::move(repos)));
    root.push_back(dir_node("git", gtree));
    summary["git"] = {{"repositories", mirrors.size()}};
  }

  // 5. Secrets.
  nlohmann::json secrets_meta;
  if (!options.secrets_project.empty()) {
    auto stored = store_secrets(repo, session, options, progress);
    if (!stored) {
      (void)session.flush();  // what was stored is reused next time; no snapshot refers to it
      return stored.status();
    }
    root.push_back(dir_node("secrets", stored->tree));
    secrets_meta = {{"project", options.secrets_project}, {"secrets", stored->secrets}, {"versions", stored->versions},
                    {"disabled", stored->disabled}, {"disabled_unread", stored->disabled_unread}, {"destroyed", stored->destroyed}};
    for (auto& w : stored->warnings) result.warnings.push_back(std::move(w));
    summary["secrets"] = secrets_meta;
  }

  LB_ASSIGN_OR_RETURN(auto root_id, store_nodes(session, std::move(root)));
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& p : result.problems) problems.push_back(p.to_string());
  repo::Snapshot snap;
  snap.time_ns = start_ns;
  snap.hostname = options.hostname;
  snap.source = kSource;
  snap.paths = options.paths;
  for (const auto& g : options.git) snap.paths.push_back(redact_url(g.source));  // a token in a URL is never shown
  if (!options.secrets_project.empty()) snap.paths.push_back(options.secrets_project);
  snap.tags = options.tags;
  snap.tree = root_id;
  if (options.parent) snap.parent = options.parent->id;
  snap.metadata = {{"files", options.paths},
                   {"git", git_meta},
                   {"validation", {{"ok", result.problems.empty()}, {"files_checked", report.files_checked}, {"problems", problems}}},
                   {"finished_ns", now_unix_ns()}};
  if (!secrets_meta.is_null()) snap.metadata["secrets"] = secrets_meta;
  snap.summary = repo::session_summary(session, start_mono);
  for (auto& [k, v] : summary.items()) snap.summary[k] = v;
  if (!options.paths.empty())  // shown by `report` under "Validation after the last backup"
    snap.summary["checks"] = nlohmann::json::array(
        {{{"check", "syntax"},
          {"ok", result.problems.empty()},
          {"detail", result.problems.empty()
                         ? fmt::format("{} config file(s) parsed{}", report.files_checked,
                                       options.checks.empty() ? "" : " and checked by the plan's commands")
                         : fmt::format("{} problem(s) in {} config file(s); first: {}", result.problems.size(),
                                       report.files_checked, result.problems[0].to_string())}}});
  snap.summary["validation_ok"] = result.problems.empty();
  snap.summary["validation_problems"] = result.problems.size();
  LB_ASSIGN_OR_RETURN(result.snapshot_id, session.commit(snap));
  result.snapshot = std::move(snap);
  return result;
}

Result<repo::SnapshotRef> pick_config_snapshot(const std::vector<repo::SnapshotRef>& all, const std::vector<std::string>& tags,
                                               std::optional<int64_t> at_ns) {
  repo::SnapshotFilter f;
  f.source = kSource;
  f.tags = tags;
  return repo::select_snapshot(all, "latest", at_ns, f);
}

}  // namespace lifeboat::sources::config

// Config restores: files under the target, mirrors as bare repositories or pushed to a remote,
// secrets into a project (versions added in order, states and aliases set); and the checks that read
// each restored target back.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "cloud/secret_manager.h"
#include "core/names.h"
#include "crypto/crypto.h"
#include "repo/node_io.h"
#include "repo/tree_walk.h"
#include "sources/config/config.h"
#include "sources/config/git_mirror.h"
#include "repo/restorer/restorer.h"
#include "repo/restorer/verify.h"

namespace lifeboat::sources::config {

namespace fs = std::filesystem;

namespace {

bool wanted(const ConfigRestoreOptions& o, const std::string& part) { return o.only.empty() || o.only.count(part); }

std::optional<repo::BlobId> part_tree(repo::Repository& repo, const repo::Snapshot& snap, const std::string& part) {
  auto root = repo.load_tree(snap.tree);
  if (!root) return std::nullopt;
  const auto* n = root->find(part);
  if (!n || !n->subtree) return std::nullopt;
  return *n->subtree;
}

Result<nlohmann::json> read_json(repo::Repository& repo, const repo::Node& n) {
  LB_ASSIGN_OR_RETURN(auto data, repo::read_node_bytes(repo, n));
  try {
    return nlohmann::json::parse(data.begin(), data.end());
  } catch (const std::exception& e) {
    return Error(Code::kCorrupt, fmt::format("stored {} is not JSON", n.name));
  }
}

// One stored secret: its resource and versions (oldest first), payload nodes where kept.
struct StoredSecret {
  std::string id;
  nlohmann::json resource;
  struct Version {
    int64_t number = 0;
    nlohmann::json resource;
    std::optional<repo::Node> payload;
  };
  std::vector<Version> versions;
};

Result<std::vector<StoredSecret>> stored_secrets(repo::Repository& repo, const repo::BlobId& tree) {
  std::vector<StoredSecret> out;
  LB_ASSIGN_OR_RETURN(auto root, repo.load_tree(tree));
  for (const auto& sn : root.nodes) {
    if (!sn.subtree) continue;
    StoredSecret s;
    s.id = sn.name;
    LB_RETURN_IF_ERROR(cloud::check_secret_id(s.id, "the snapshot holds a secret"));
    LB_ASSIGN_OR_RETURN(auto st, repo.load_tree(*sn.subtree));
    const auto* res = st.find("secret.json");
    const auto* vers = st.find("versions");
    if (!res || !vers || !vers->subtree) return Error(Code::kCorrupt, fmt::format("stored secret {} is incomplete", s.id));
    LB_ASSIGN_OR_RETURN(s.resource, read_json(repo, *res));
    LB_ASSIGN_OR_RETURN(auto vt, repo.load_tree(*vers->subtree));
    std::map<int64_t, StoredSecret::Version> by_number;
    for (const auto& vn : vt.nodes) {
      bool meta = vn.name.size() > 5 && vn.name.compare(vn.name.size() - 5, 5, ".json") == 0;
      int64_t number = std::strtoll(vn.name.c_str(), nullptr, 10);
      auto& v = by_number[number];
      v.number = number;
      if (meta) {
        LB_ASSIGN_OR_RETURN(v.resource, read_json(repo, vn));
      } else {
        v.payload = vn;
      }
    }
    for (auto& [n, v] : by_number) s.versions.push_back(std::move(v));
    out.push_back(std::move(s));
  }
  return out;
}

// The fields a new secret is created with: what the backup recorded, less what the server assigns.
nlohmann::json creatable(const nlohmann::json& resource) {
  nlohmann::json out = resource;
  for (const char* k : {"name", "createTime", "etag", "versionAliases"}) out.erase(k);
  return out;
}

Status restore_secrets(repo::Repository& repo, const repo::BlobId& tree, const ConfigRestoreOptions& o, ConfigRestoreResult& result) {
  LB_ASSIGN_OR_RETURN(auto secrets, stored_secrets(repo, tree));
  LB_ASSIGN_OR_RETURN(auto client, cloud::SecretManagerClient::from_environment());
  for (const auto& s : secrets) {
    SecretRestored r;
    r.secret = o.secrets_project + "/secrets/" + s.id;
    auto existing = client->get_secret(r.secret);
    if (!existing && existing.status().code() != Code::kNotFound) return existing.status();
    r.created = !existing;
    if (o.dry_run) {
      result.plan.push_back(r.created ? fmt::format("create secret {} with {} version(s)", r.secret, s.versions.size())
                                      : fmt::format("add {} version(s) to secret {} (it exists: after its own versions)",
                                                    s.versions.size(), r.secret));
      continue;
    }
    if (r.created) {
      LB_RETURN_IF_ERROR(client->create_secret(o.secrets_project, s.id, creatable(s.resource)).status());
    } else {
      nlohmann::json patch = {{"labels", s.resource.value("labels", nlohmann::json::object())},
                              {"annotations", s.resource.value("annotations", nlohmann::json::object())}};
      LB_RETURN_IF_ERROR(client->patch_secret(r.secret, patch, "labels,annotations").status());
    }
    std::map<int64_t, int64_t> renumber;
    for (const auto& v : s.versions) {
      std::string state = v.resource.value("state", "ENABLED");
      Bytes payload;
      // A destroyed version comes back destroyed (an empty placeholder, destroyed at once), so the
      // numbers after it line up with the backup's.
      // A disabled version backed up without read_disabled has no payload: it comes back disabled and
      // empty (its number kept), and the result says so.
      if (state == "DISABLED" && !v.payload) {
        r.without_payload.push_back(v.number);
      } else if (state != "DESTROYED") {
        if (!v.payload) return Error(Code::kCorrupt, fmt::format("stored secret {} version {} has no payload", s.id, v.number));
        LB_ASSIGN_OR_RETURN(payload, repo::read_node_bytes(repo, *v.payload));
      }
      LB_ASSIGN_OR_RETURN(auto added, client->add_version(r.secret, payload));
      std::string vname = added.value("name", "");
      if (state == "DISABLED") LB_RETURN_IF_ERROR(client->change_version(vname, "disable").status());
      if (state == "DESTROYED") LB_RETURN_IF_ERROR(client->change_version(vname, "destroy").status());
      int64_t now = cloud::secret_version_number(vname);
      renumber[v.number] = now;
      r.versions.emplace_back(v.number, now);
    }
    nlohmann::json aliases = nlohmann::json::object();
    const nlohmann::json recorded = s.resource.value("versionAliases", nlohmann::json::object());
    for (const auto& [alias, num] : recorded.items()) {
      int64_t old = cloud::secret_version_number(num);
      auto it = renumber.find(old);
      if (it == renumber.end()) continue;
      aliases[alias] = std::to_string(it->second);
      r.aliases[alias] = it->second;
    }
    if (!aliases.empty()) LB_RETURN_IF_ERROR(client->patch_secret(r.secret, {{"versionAliases", aliases}}, "versionAliases").status());
    result.secrets.push_back(std::move(r));
  }
  return Status::ok();
}

std::string mirror_dir_for(const ConfigRestoreOptions& o, const std::string& name) {
  std::string base = o.git_dir.empty() ? o.target + "/git" : o.git_dir;
  return base + "/" + escape_component(name + ".git");
}

}  // namespace

nlohmann::json ConfigRestoreResult::to_json() const {
  nlohmann::json m = nlohmann::json::array();
  for (const auto& [name, where] : mirrors) m.push_back({{"name", name}, {"to", where}});
  nlohmann::json s = nlohmann::json::array();
  for (const auto& r : secrets) {
    nlohmann::json v = nlohmann::json::array();
    for (const auto& [a, b] : r.versions) v.push_back({{"from", a}, {"to", b}});
    s.push_back({{"secret", r.secret}, {"created", r.created}, {"versions", v}, {"aliases", r.aliases},
                 {"disabled_without_payload", r.without_payload}});
  }
  nlohmann::json out = {{"files", files}, {"bytes", bytes}, {"mirrors", m}, {"secrets", s}};
  if (!plan.empty()) out["would"] = plan;
  return out;
}

Result<ConfigRestoreResult> restore_config(repo::Repository& repo, const repo::SnapshotRef& snapshot, const ConfigRestoreOptions& o,
                                           ProgressCounters& progress) {
  for (const auto& part : o.only)
    if (part != "files" && part != "git" && part != "secrets")
      return Error(Code::kInvalidArgument, fmt::format("--only takes files, git or secrets, not {}", part));
  ConfigRestoreResult result;
  const auto& snap = snapshot.snapshot;
  auto files_tree = wanted(o, "files") ? part_tree(repo, snap, "files") : std::nullopt;
  auto git_tree = wanted(o, "git") ? part_tree(repo, snap, "git") : std::nullopt;
  auto secrets_tree = wanted(o, "secrets") ? part_tree(repo, snap, "secrets") : std::nullopt;
  // Every destination is known before anything is written.
  if ((files_tree || (git_tree && o.git_dir.empty())) && o.target.empty())
    return Error(Code::kInvalidArgument, "the snapshot has files or git mirrors: give a target directory (target: / --target DIR)");
  if (secrets_tree && o.secrets_project.empty())
    return Error(Code::kInvalidArgument, "the snapshot has secrets: give the project to restore them into (secrets: projects/P / "
                                         "--secrets projects/P), or leave them out with --only files,git");
  if (!o.secrets_project.empty() && o.secrets_project.rfind("projects/", 0) != 0)
    return Error(Code::kInvalidArgument, fmt::format("secrets go into projects/PROJECT, not {}", o.secrets_project));
  if (!files_tree && !git_tree && !secrets_tree) {
    std::vector<std::string> has;
    for (const char* part : {"files", "git", "secrets"})
      if (part_tree(repo, snap, part)) has.push_back(part);
    return Error(Code::kNotFound, fmt::format("snapshot {} holds none of the parts asked for (it has: {})", snapshot.short_id(),
                                              has.empty() ? "nothing" : fmt::format("{}", fmt::join(has, ", "))));
  }

  if (files_tree) {
    if (o.dry_run) {
      LB_RETURN_IF_ERROR(repo::walk_tree(repo, *files_tree, [&](const std::string& path, const repo::Node& n) {
        if (n.kind != repo::NodeKind::kFile) return Status::ok();
        std::string at = o.target + "/" + path;
        struct stat st;
        if (lstat(at.c_str(), &st) != 0) result.plan.push_back("create " + at);
        else if (static_cast<uint64_t>(st.st_size) != n.size || st.st_mtim.tv_sec != n.mtime_ns / 1000000000)
          result.plan.push_back("replace " + at);
        return Status::ok();
      }));
    } else {
      repo::TreeRestoreOptions fo;
      fo.target = o.target;
      LB_ASSIGN_OR_RETURN(auto r, repo::restore_tree(repo, *files_tree, fo, progress));
      if (!r.errors.empty()) return Error(Code::kFatal, fmt::format("{} file(s) failed: {}", r.errors.size(), r.errors[0]));
      result.files = r.files;
      result.bytes = r.bytes;
    }
  }
  if (git_tree) {
    LB_ASSIGN_OR_RETURN(auto repos, repo.load_tree(*git_tree));
    for (const auto& n : repos.nodes) {
      if (!n.subtree) continue;
      auto push = o.push.find(n.name);
      std::string dir = mirror_dir_for(o, n.name);
      std::string where = push == o.push.end() ? dir : push->second;
      if (o.dry_run) {
        result.plan.push_back(push == o.push.end() ? fmt::format("write mirror {} to {}", n.name, dir)
                                                   : fmt::format("push every ref of {} to {}", n.name, push->second));
        continue;
      }
      std::error_code ec;
      if (push != o.push.end()) dir = fmt::format("{}/.lifeboat-push-{}-{}.git", o.target.empty() ? "/tmp" : o.target, n.name, getpid());
      else if (!o.converge && fs::exists(dir, ec) && !fs::is_empty(dir, ec))
        return Error(Code::kAlreadyExists, fmt::format("git {}: {} exists and is not empty: remove it or restore elsewhere", n.name, dir));
      fs::create_directories(dir, ec);
      if (ec) return Error(Code::kIo, fmt::format("git {}: cannot create {}: {}", n.name, dir, ec.message()));
      repo::TreeRestoreOptions fo;
      fo.target = dir;
      if (o.converge && push == o.push.end()) {
        fo.overwrite = repo::Overwrite::kIfChanged;
        fo.delete_extra = true;
      }
      LB_ASSIGN_OR_RETURN(auto r, repo::restore_tree(repo, *n.subtree, fo, progress));
      if (!r.errors.empty()) return Error(Code::kFatal, fmt::format("git {}: {}", n.name, r.errors[0]));
      if (push != o.push.end()) {
        Status s = push_mirror(dir, push->second);
        fs::remove_all(dir, ec);
        LB_RETURN_IF_ERROR(s);
      }
      result.mirrors.emplace_back(n.name, where);
    }
  }
  if (secrets_tree) LB_RETURN_IF_ERROR(restore_secrets(repo, *secrets_tree, o, result));
  return result;
}

std::vector<CheckResult> check_config_target(repo::Repository& repo, const repo::SnapshotRef& snapshot, const ConfigRestoreOptions& o,
                                             const ConfigRestoreResult& restored, const std::vector<std::string>& checks) {
  std::vector<CheckResult> out;
  const auto& snap = snapshot.snapshot;
  // The part a check reads, or why there is none: a check with nothing to read proves nothing, so
  // that fails it (a part the snapshot lacks, a tree that cannot be read). A part the restore was told
  // to leave out (`only`) is not checked, and the result says so.
  auto part_for_check = [&](const std::string& part) -> Result<repo::BlobId> {
    auto root = repo.load_tree(snap.tree);
    if (!root) return root.status().with_context(fmt::format("reading snapshot {}", snapshot.short_id()));
    const auto* n = root->find(part);
    if (!n || !n->subtree)
      return Error(Code::kNotFound, fmt::format("snapshot {} holds no {} part: nothing to check (back the {} up, or drop the "
                                                "check from the source's validation)",
                                                snapshot.short_id(), part, part));
    return *n->subtree;
  };
  for (const auto& check : checks) {
    CheckResult c{check, false, ""};
    std::string part = check == "syntax" ? "files" : check;
    if ((part == "files" || part == "git" || part == "secrets") && !wanted(o, part)) {
      c.ok = true;
      c.detail = fmt::format("not checked: the {} part was not restored (only: {})", part, fmt::join(o.only, ", "));
      out.push_back(std::move(c));
      continue;
    }
    if (check == "files" || check == "syntax") {
      auto tree = part_for_check("files");
      if (!tree) {
        c.detail = tree.status().message();
      } else if (check == "files") {
        std::vector<std::string> roots;  // the backed-up files and directories
        for (const auto& f : snap.metadata.value("files", nlohmann::json::array()))
          if (f.is_string()) roots.push_back(f.get<std::string>());
        auto v = repo::verify_restored_tree(repo, *tree, o.target, roots);
        if (!v) c.detail = v.status().message();
        else {
          c.ok = v->files_verified == v->files_expected && v->files_found == v->files_expected && v->metadata_count == 0;
          c.detail = fmt::format("{} of {} files read back from {} equal the backup{}{}", v->files_verified, v->files_expected, o.target,
                                 v->problems.empty() ? (v->missing.empty() ? "" : "; first missing: " + v->missing[0])
                                                     : "; first problem: " + v->problems[0],
                                 v->metadata_count == 0 ? ", metadata too"
                                                        : fmt::format("; {} with other metadata, first: {}", v->metadata_count, v->metadata[0]));
          // A restore overwrites and removes nothing: what the target holds beyond the backup is named.
          if (v->extra_count)
            c.detail += fmt::format("; {} entr(ies) in the target the backup does not have (kept), first: {}", v->extra_count,
                                    v->extra[0]);
        }
      } else {
        uint64_t checked = 0;
        std::vector<std::string> problems;
        (void)repo::walk_tree(repo, *tree, [&](const std::string& path, const repo::Node& n) {
          if (n.kind != repo::NodeKind::kFile) return Status::ok();
          Syntax syntax = syntax_of(path);
          if (syntax == Syntax::kNone) return Status::ok();
          std::string at = o.target + "/" + path;
          std::ifstream in(at, std::ios::binary);
          ++checked;
          if (!in) {
            problems.push_back(at + ": missing");
            return Status::ok();
          }
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          // Named by the path it was backed up from, so each problem compares with the backup's own.
          for (const auto& p : check_text("/" + path, syntax, text)) problems.push_back(p.to_string());
          return Status::ok();
        });
        // Files that were broken when backed up stay broken: a problem the backup recorded (file, line
        // and message) is expected; any other one is new and fails the check.
        std::set<std::string> known;
        for (const auto& p : snap.metadata.value("validation", nlohmann::json::object()).value("problems", nlohmann::json::array()))
          if (p.is_string()) known.insert(p.get<std::string>());
        std::vector<std::string> fresh;
        for (const auto& p : problems)
          if (!known.count(p)) fresh.push_back(p);
        c.ok = fresh.empty();
        c.detail = fmt::format("{} restored config file(s) parsed, {} problem(s), {} of them recorded by the backup{}", checked,
                               problems.size(), problems.size() - fresh.size(), fresh.empty() ? "" : "; new: " + fresh[0]);
      }
    } else if (check == "git") {
      std::vector<std::string> problems;
      size_t n = 0;
      if (auto tree = part_for_check("git"); !tree) problems.push_back(tree.status().message());
      for (const auto& g : snap.metadata.value("git", nlohmann::json::array())) {
        std::string name = g.value("name", "");
        if (!wanted(o, "git")) break;
        ++n;
        std::map<std::string, std::string> refs = g.value("refs", std::map<std::string, std::string>{});
        std::vector<LfsPointer> lfs;
        for (const auto& p : g.value("lfs", nlohmann::json::array())) lfs.push_back({p.value("oid", ""), p.value("size", uint64_t{0})});
        auto push = o.push.find(name);
        std::string where = push == o.push.end() ? mirror_dir_for(o, name) : push->second;
        if (push != o.push.end() && where.find("://") != std::string::npos && where.rfind("file://", 0) != 0) {
          problems.push_back(fmt::format("{}: pushed to {}, which cannot be read back here", name, where));
          continue;
        }
        if (where.rfind("file://", 0) == 0) where = where.substr(7);
        for (const auto& p : verify_mirror(where, refs, lfs)) problems.push_back(fmt::format("{}: {}", name, p));
      }
      c.ok = problems.empty();
      c.detail = problems.empty() ? fmt::format("{} mirror(s): every ref at the backed-up commit, every object whole, LFS objects present", n)
                                  : fmt::format("{} problem(s): {}", problems.size(), problems[0]);
    } else if (check == "secrets") {
      auto tree = part_for_check("secrets");
      if (!tree) {
        c.detail = tree.status().message();
      } else {
        std::vector<std::string> problems;
        uint64_t versions = 0;
        auto stored = stored_secrets(repo, *tree);
        auto client = cloud::SecretManagerClient::from_environment();
        if (!stored || !client) problems.push_back(!stored ? stored.status().message() : client.status().message());
        for (const auto& s : stored ? *stored : std::vector<StoredSecret>{}) {
          if (!client) break;
          auto r = std::find_if(restored.secrets.begin(), restored.secrets.end(),
                                [&](const SecretRestored& x) { return cloud::resource_id(x.secret) == s.id; });
          if (r == restored.secrets.end()) {
            problems.push_back(s.id + ": not restored");
            continue;
          }
          std::map<int64_t, int64_t> renumber(r->versions.begin(), r->versions.end());
          std::map<int64_t, std::string> states;
          auto listed = (*client)->list_versions(r->secret, [&](const nlohmann::json& v) {
            states[cloud::secret_version_number(v.value("name", ""))] = v.value("state", "");
            return Status::ok();
          });
          if (!listed) {
            problems.push_back(listed.message());
            continue;
          }
          for (const auto& v : s.versions) {
            ++versions;
            int64_t now = renumber.count(v.number) ? renumber[v.number] : 0;
            std::string want = v.resource.value("state", "");
            std::string vname = fmt::format("{}/versions/{}", r->secret, now);
            if (!states.count(now)) {
              problems.push_back(fmt::format("{} version {} is not in the target", s.id, v.number));
              continue;
            }
            if (states[now] != want) {
              problems.push_back(fmt::format("{} version {} is {}, the backup has {}", s.id, v.number, states[now], want));
              continue;
            }
            if (want != "ENABLED") continue;  // the API serves no payload of a disabled or destroyed version
            auto got = (*client)->access(vname);
            auto stored_payload = v.payload ? repo::read_node_bytes(repo, *v.payload) : Result<Bytes>(Error(Code::kCorrupt, "no payload stored"));
            if (!got || !stored_payload) problems.push_back(fmt::format("{} version {}: {}", s.id, v.number,
                                                                        !got ? got.status().message() : stored_payload.status().message()));
            else if (*got != *stored_payload) problems.push_back(fmt::format("{} version {}: the payload differs from the backup", s.id, v.number));
          }
          auto target = (*client)->get_secret(r->secret);
          if (!target) {
            problems.push_back(target.status().message());
            continue;
          }
          const nlohmann::json recorded = s.resource.value("versionAliases", nlohmann::json::object());
          const nlohmann::json a = target->value("versionAliases", nlohmann::json::object());
          for (const auto& [alias, num] : recorded.items()) {
            int64_t old = cloud::secret_version_number(num);
            int64_t have = !a.contains(alias) ? -1 : cloud::secret_version_number(a[alias]);
            if (!renumber.count(old) || have != renumber[old])
              problems.push_back(fmt::format("{}: alias {} points at version {}, expected {}", s.id, alias, have, renumber[old]));
          }
          if (target->value("labels", nlohmann::json::object()) != s.resource.value("labels", nlohmann::json::object()))
            problems.push_back(fmt::format("{}: labels differ from the backup", s.id));
          if (target->value("annotations", nlohmann::json::object()) != s.resource.value("annotations", nlohmann::json::object()))
            problems.push_back(fmt::format("{}: annotations differ from the backup", s.id));
          // A secret the restore created holds exactly the backed-up versions; one that existed keeps its own before them.
          if (r->created)
            for (const auto& kv : states) {
              const int64_t number = kv.first;  // clang before 16 cannot capture a structured binding
              bool restored_here = std::any_of(renumber.begin(), renumber.end(), [&](const auto& rn) { return rn.second == number; });
              if (!restored_here) problems.push_back(fmt::format("{}: version {} is in the target and not in the backup", s.id, number));
            }
        }
        // Secrets the project holds beyond the backup are named (a project may hold others), never counted as restored.
        std::vector<std::string> others;
        if (client && stored) {
          std::set<std::string> ids;
          for (const auto& st : *stored) ids.insert(st.id);
          auto listed = (*client)->list_secrets(o.secrets_project, [&](const nlohmann::json& x) {
            std::string id = cloud::resource_id(x.value("name", ""));
            if (!ids.count(id)) others.push_back(id);
            return Status::ok();
          });
          if (!listed) problems.push_back(listed.message());
        }
        std::string note = others.empty() ? "" : fmt::format("; {} other secret(s) in the project, first: {}", others.size(), others[0]);
        c.ok = problems.empty();
        c.detail = problems.empty()
                       ? fmt::format("{} secret(s), {} version(s) read back from {}: states, payloads, aliases, labels and "
                                     "annotations equal the backup{}",
                                     stored ? stored->size() : 0, versions, o.secrets_project, note)
                       : fmt::format("{} problem(s): {}{}", problems.size(), problems[0], note);
      }
    } else {
      c.detail = "unknown check";
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace lifeboat::sources::config

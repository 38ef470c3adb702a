// Model version restores: into a directory (DIR/NAME/VERSION, loadable as it was logged) or into an
// MLflow registry, where each version's artifacts are uploaded into a run of the experiment
// "lifeboat-restore" and the version created from them (MLflow accepts a proxy source only inside a
// run's artifacts), then the aliases set on the new version numbers.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "cloud/mlflow_client.h"
#include "core/atomic_file.h"
#include "core/names.h"
#include "crypto/crypto.h"
#include "core/time.h"
#include "repo/node_io.h"
#include "repo/tree_walk.h"
#include "repo/restorer/restorer.h"
#include "sources/models/models.h"

namespace lifeboat::sources::models {

namespace fs = std::filesystem;

namespace {

struct StoredVersion {
  const repo::SnapshotRef* ref;
  nlohmann::json registered_model, model_version;
  repo::BlobId artifacts{};
  int64_t number = 0;  // the version, checked decimal
};

// DIR/MODEL/VERSION: the model's name escaped into one component (a registry may name a model
// "../../x"), the version a decimal number.
std::string version_dir(const std::string& to_dir, const std::string& model, const std::string& version) {
  return fmt::format("{}/{}/{}", to_dir, escape_component(model), escape_component(version));
}

Result<StoredVersion> load_version(repo::Repository& repo, const repo::SnapshotRef& ref) {
  StoredVersion v{&ref, {}, {}, {}, 0};
  LB_ASSIGN_OR_RETURN(v.number, decimal_version(ref.snapshot.metadata.value("version", ""),
                                                 fmt::format("snapshot {} (model {:?})", ref.short_id(),
                                                             ref.snapshot.metadata.value("model", ""))));
  LB_ASSIGN_OR_RETURN(auto root, repo.load_tree(ref.snapshot.tree));
  const auto* rm = root.find("registered_model.json");
  const auto* mv = root.find("model_version.json");
  const auto* art = root.find("artifacts");
  if (!rm || !mv || !art || !art->subtree) return Error(Code::kCorrupt, fmt::format("snapshot {} is not a model version", ref.short_id()));
  LB_ASSIGN_OR_RETURN(auto rmb, repo::read_node_bytes(repo, *rm));
  LB_ASSIGN_OR_RETURN(auto mvb, repo::read_node_bytes(repo, *mv));
  try {
    v.registered_model = nlohmann::json::parse(rmb.begin(), rmb.end());
    v.model_version = nlohmann::json::parse(mvb.begin(), mvb.end());
  } catch (const std::exception&) {
    return Error(Code::kCorrupt, fmt::format("snapshot {}: stored registry metadata is not JSON", ref.short_id()));
  }
  v.artifacts = *art->subtree;
  return v;
}

// The tag a restored version and its run carry: the snapshot it came from. A restore that finds a
// version with it has made that version already (a re-run after a kill, or a plain re-run) and reuses
// it; a run with it and no version yet is reused for the upload, so nothing is duplicated.
constexpr const char* kRestoredFrom = "lifeboat.snapshot";

nlohmann::json tags_of(const nlohmann::json& resource) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : resource.value("tags", nlohmann::json::array()))
    if (t.value("key", "") != kRestoredFrom) out.push_back({{"key", t.value("key", "")}, {"value", t.value("value", "")}});
  return out;
}

// Tags as a map, without the one a restore adds (lifeboat.snapshot).
std::map<std::string, std::string> tag_map(const nlohmann::json& resource) {
  std::map<std::string, std::string> out;
  for (const auto& t : resource.value("tags", nlohmann::json::array()))
    if (t.value("key", "") != kRestoredFrom) out[t.value("key", "")] = t.value("value", "");
  return out;
}

// A model or version a restore wrote earlier (a re-run, or a drill into a standing registry) is made
// to hold the backup's description and tags again, whatever changed there since. `what` is
// "registered-models" or "model-versions"; `id` names it ({name} or {name, version}).
Status put_back_metadata(const cloud::MlflowClient& c, const std::string& what, const nlohmann::json& id,
                         const nlohmann::json& want, const nlohmann::json& have) {
  auto with = [&](nlohmann::json fields) {
    for (const auto& [k, v] : id.items()) fields[k] = v;
    return fields;
  };
  std::string description = want.value("description", "");
  if (description != have.value("description", ""))
    LB_RETURN_IF_ERROR(c.send("PATCH", what + "/update", with({{"description", description}})).status());
  auto want_tags = tag_map(want), have_tags = tag_map(have);
  for (const auto& [k, v] : want_tags)
    if (auto it = have_tags.find(k); it == have_tags.end() || it->second != v)
      LB_RETURN_IF_ERROR(c.post(what + "/set-tag", with({{"key", k}, {"value", v}})).status());
  for (const auto& [k, v] : have_tags)
    if (!want_tags.count(k)) LB_RETURN_IF_ERROR(c.send("DELETE", what + "/delete-tag", with({{"key", k}})).status());
  return Status::ok();
}

nlohmann::json restored_tags(const StoredVersion& v) {
  nlohmann::json t = tags_of(v.model_version);
  t.push_back({{"key", kRestoredFrom}, {"value", v.ref->id}});
  return t;
}

// snapshot id → the version of `model` restored from it (its kRestoredFrom tag).
Result<std::map<std::string, std::string>> restored_versions(const cloud::MlflowClient& c, const std::string& model) {
  std::map<std::string, std::string> out;
  Status s = c.model_versions(model, [&](const nlohmann::json& v) {
    for (const auto& t : v.value("tags", nlohmann::json::array()))
      if (t.value("key", "") == kRestoredFrom) out[t.value("value", "")] = v.value("version", "");
    return Status::ok();
  });
  if (!s && s.code() != Code::kNotFound) return s;
  return out;
}

// A run of an earlier, interrupted restore of `snapshot_id` (no version made from it yet), or none.
Result<std::optional<nlohmann::json>> unfinished_run(const cloud::MlflowClient& c, const std::string& experiment,
                                                     const std::string& snapshot_id) {
  LB_ASSIGN_OR_RETURN(auto found, c.post("runs/search", {{"experiment_ids", {experiment}},
                                                         {"filter", fmt::format("tags.`{}` = '{}'", kRestoredFrom, snapshot_id)},
                                                         {"max_results", 10}}));
  for (const auto& run : found.value("runs", nlohmann::json::array()))
    if (run["info"].value("status", "") != "FINISHED") return std::optional<nlohmann::json>(run);
  return std::optional<nlohmann::json>();
}

Result<std::string> restore_experiment(const cloud::MlflowClient& c) {
  auto e = c.get("experiments/get-by-name", {{"experiment_name", "lifeboat-restore"}});
  if (e) return e->value("experiment", nlohmann::json::object()).value("experiment_id", "");
  if (e.status().code() != Code::kNotFound) return e.status();
  LB_ASSIGN_OR_RETURN(auto created, c.post("experiments/create", {{"name", "lifeboat-restore"}}));
  return created.value("experiment_id", "");
}

}  // namespace

Result<std::vector<VersionRestored>> restore_models(repo::Repository& repo, const std::vector<repo::SnapshotRef>& refs,
                                                    const ModelsRestoreOptions& o, ProgressCounters& progress) {
  if (o.mlflow.empty() == o.to_dir.empty()) return Error(Code::kInvalidArgument, "restore models needs --mlflow URL or --to-dir DIR");
  if (refs.empty()) return Error(Code::kNotFound, "no model version backup matches");
  std::vector<StoredVersion> versions;
  for (const auto& r : refs) {
    LB_ASSIGN_OR_RETURN(auto v, load_version(repo, r));
    versions.push_back(std::move(v));
  }
  std::sort(versions.begin(), versions.end(), [](const StoredVersion& a, const StoredVersion& b) {
    std::string ma = a.ref->snapshot.metadata.value("model", ""), mb = b.ref->snapshot.metadata.value("model", "");
    if (ma != mb) return ma < mb;
    return a.number < b.number;
  });
  std::vector<VersionRestored> out;
  if (!o.to_dir.empty()) {
    for (const auto& v : versions) {
      VersionRestored r{v.ref->snapshot.metadata.value("model", ""), v.ref->snapshot.metadata.value("version", ""), "", "", 0, 0};
      r.new_version = r.old_version;
      r.where = version_dir(o.to_dir, r.model, r.old_version);
      std::error_code ec;
      if (!o.converge && fs::exists(r.where, ec) && !fs::is_empty(r.where, ec))
        return Error(Code::kAlreadyExists, fmt::format("{} exists and is not empty: restore elsewhere", r.where));
      if (!o.dry_run) {
        fs::create_directories(r.where, ec);
        repo::TreeRestoreOptions fo;
        fo.target = r.where;
        if (o.converge) {
          fo.overwrite = repo::Overwrite::kIfChanged;
          fo.delete_extra = true;
        }
        LB_ASSIGN_OR_RETURN(auto res, repo::restore_tree(repo, v.artifacts, fo, progress));
        if (!res.errors.empty()) return Error(Code::kFatal, fmt::format("{}: {}", r.where, res.errors[0]));
        r.files = res.files;
        r.bytes = res.bytes;
        nlohmann::json meta = {{"registered_model", v.registered_model}, {"model_version", v.model_version}};
        LB_RETURN_IF_ERROR(write_file_atomic(r.where + ".mlflow.json", meta.dump(2) + "\n"));
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  cloud::MlflowClient c(o.mlflow);
  std::string experiment;
  std::map<std::string, std::map<std::string, std::string>> renumber;  // model → old → new
  std::map<std::string, const StoredVersion*> newest_of;               // model → its newest snapshot
  std::map<std::string, std::map<std::string, std::string>> already;   // model → snapshot id → version restored from it
  for (const auto& v : versions) {
    std::string model = v.ref->snapshot.metadata.value("model", ""), old = v.ref->snapshot.metadata.value("version", "");
    VersionRestored r{model, old, "", redact_url(o.mlflow), 0, 0};
    auto& nw = newest_of[model];
    if (!nw || nw->ref->snapshot.time_ns < v.ref->snapshot.time_ns) nw = &v;
    if (!renumber.count(model)) {
      auto existing = c.registered_model(model);
      if (!existing && existing.status().code() != Code::kNotFound) return existing.status();
      if (!existing && !o.dry_run)
        LB_RETURN_IF_ERROR(c.post("registered-models/create", {{"name", model}, {"tags", tags_of(v.registered_model)},
                                                               {"description", v.registered_model.value("description", "")}})
                               .status());
      renumber[model];
      if (existing) {
        LB_ASSIGN_OR_RETURN(already[model], restored_versions(c, model));
      }
    }
    if (auto done = already[model].find(v.ref->id); done != already[model].end()) {
      r.new_version = done->second;
      r.reused = true;
      renumber[model][old] = r.new_version;
      if (!o.dry_run) {
        LB_ASSIGN_OR_RETURN(auto have, c.get("model-versions/get", {{"name", model}, {"version", r.new_version}}));
        LB_RETURN_IF_ERROR(put_back_metadata(c, "model-versions", {{"name", model}, {"version", r.new_version}}, v.model_version,
                                             have.value("model_version", nlohmann::json::object())));
      }
      out.push_back(std::move(r));
      continue;
    }
    if (o.dry_run) {
      r.new_version = "(new)";
      out.push_back(std::move(r));
      continue;
    }
    if (experiment.empty()) {
      LB_ASSIGN_OR_RETURN(experiment, restore_experiment(c));
    }
    LB_ASSIGN_OR_RETURN(auto earlier, unfinished_run(c, experiment, v.ref->id));
    nlohmann::json run;
    if (earlier) {
      run = {{"run", *earlier}};
    } else {
      LB_ASSIGN_OR_RETURN(run, c.post("runs/create", {{"experiment_id", experiment},
                                                      {"run_name", fmt::format("restore {} v{}", model, old)},
                                                      {"start_time", now_unix_ns() / 1000000},
                                                      {"tags", nlohmann::json::array({{{"key", kRestoredFrom}, {"value", v.ref->id}}})}}));
    }
    const auto& info = run["run"]["info"];
    std::string run_id = info.value("run_id", ""), artifact_uri = info.value("artifact_uri", "");
    LB_ASSIGN_OR_RETURN(auto root, cloud::artifact_proxy_path(artifact_uri));
    LB_RETURN_IF_ERROR(repo::walk_tree(repo, v.artifacts, [&](const std::string& path, const repo::Node& n) -> Status {
      if (n.kind != repo::NodeKind::kFile) return Status::ok();
      // Streamed from the repository, one blob at a time: a large artifact never sits in memory whole.
      repo::NodeReader reader(repo, n);
      LB_RETURN_IF_ERROR(c.upload_stream(root + "/model/" + path, n.size, [&](uint8_t* buf, size_t max) -> Result<size_t> {
        LB_ASSIGN_OR_RETURN(size_t got, reader.read(buf, max));
        progress.bytes_done += got;
        return got;
      }));
      r.files++;
      r.bytes += n.size;
      progress.files_done++;
      return Status::ok();
    }));
    LB_ASSIGN_OR_RETURN(auto created, c.post("model-versions/create", {{"name", model}, {"source", artifact_uri + "/model"}, {"run_id", run_id},
                                                                      {"tags", restored_tags(v)},
                                                                      {"description", v.model_version.value("description", "")}}));
    (void)c.post("runs/update", {{"run_id", run_id}, {"status", "FINISHED"}, {"end_time", now_unix_ns() / 1000000}});
    r.new_version = created["model_version"].value("version", "");
    renumber[model][old] = r.new_version;
    out.push_back(std::move(r));
  }
  if (o.dry_run) return out;
  // Each model's description and tags as its newest backup recorded them; aliases on the versions this
  // restore wrote that the backup does not give them are removed; then the backup's aliases are set, on
  // the new numbers.
  for (const auto& [model, v] : newest_of) {
    LB_ASSIGN_OR_RETURN(auto have, c.registered_model(model));
    LB_RETURN_IF_ERROR(put_back_metadata(c, "registered-models", {{"name", model}}, v->registered_model, have));
    std::set<std::pair<std::string, std::string>> wanted;  // (alias, new version)
    for (const auto& a : v->registered_model.value("aliases", nlohmann::json::array()))
      if (auto it = renumber[model].find(a.value("version", "")); it != renumber[model].end())
        wanted.emplace(a.value("alias", ""), it->second);
    std::set<std::string> written;
    for (const auto& [old, now] : renumber[model]) written.insert(now);
    for (const auto& a : have.value("aliases", nlohmann::json::array())) {
      std::string alias = a.value("alias", ""), version = a.value("version", "");
      if (written.count(version) && !wanted.count({alias, version}))
        LB_RETURN_IF_ERROR(c.send("DELETE", "registered-models/alias", {{"name", model}, {"alias", alias}}).status());
    }
  }
  for (const auto& [model, v] : newest_of) {
    for (const auto& a : v->registered_model.value("aliases", nlohmann::json::array())) {
      auto it = renumber[model].find(a.value("version", ""));
      if (it == renumber[model].end()) continue;
      LB_RETURN_IF_ERROR(c.post("registered-models/alias", {{"name", model}, {"alias", a.value("alias", "")}, {"version", it->second}}).status());
    }
  }
  return out;
}

}  // namespace lifeboat::sources::models

namespace lifeboat::sources::models {

namespace {

// The registry metadata a restore writes, the backup's against the target's: "" when equal, else what differs.
std::string metadata_difference(const nlohmann::json& want_rm, const nlohmann::json& want_mv, const std::vector<std::string>& want_aliases,
                                const nlohmann::json& have_rm, const nlohmann::json& have_mv, const std::vector<std::string>& have_aliases) {
  std::vector<std::string> what;
  if (tag_map(want_mv) != tag_map(have_mv)) what.push_back("the version's tags");
  if (want_mv.value("description", "") != have_mv.value("description", "")) what.push_back("the version's description");
  if (tag_map(want_rm) != tag_map(have_rm)) what.push_back("the model's tags");
  if (want_rm.value("description", "") != have_rm.value("description", "")) what.push_back("the model's description");
  if (want_aliases != have_aliases)
    what.push_back(fmt::format("aliases [{}], the backup has [{}]", fmt::join(have_aliases, ", "), fmt::join(want_aliases, ", ")));
  return what.empty() ? "" : fmt::format("{} differ", fmt::join(what, ", "));
}

}  // namespace

std::vector<CheckResult> check_models_target(repo::Repository& repo, const std::vector<repo::SnapshotRef>& versions,
                                             const ModelsRestoreOptions& where, const std::vector<VersionRestored>& restored,
                                             const std::optional<ValidateCommand>& validate, const std::vector<std::string>& checks) {
  std::vector<std::string> manifest_problems, validate_problems;
  uint64_t files = 0;
  cloud::MlflowClient client(where.mlflow);
  // The newest backup of each model says which aliases its versions hold (as the restore sets them).
  std::map<std::string, const repo::SnapshotRef*> newest;
  for (const auto& ref : versions) {
    auto& n = newest[ref.snapshot.metadata.value("model", "")];
    if (!n || n->snapshot.time_ns < ref.snapshot.time_ns) n = &ref;
  }
  std::map<std::string, Result<StoredVersion>> newest_loaded;
  for (const auto& ref : versions) {
    std::string model = ref.snapshot.metadata.value("model", ""), old = ref.snapshot.metadata.value("version", "");
    auto r = std::find_if(restored.begin(), restored.end(), [&](const VersionRestored& x) { return x.model == model && x.old_version == old; });
    if (r == restored.end()) {
      manifest_problems.push_back(fmt::format("{} v{}: not restored", model, old));
      continue;
    }
    // The registry metadata, as stored, against the target's: the registry's own answers, or the
    // DIR/NAME/VERSION.mlflow.json a directory restore wrote.
    auto stored = load_version(repo, ref);
    // The newest backup's registry metadata, read once per model however many versions it has.
    auto cached = newest_loaded.find(model);
    if (cached == newest_loaded.end())
      cached = newest_loaded.emplace(model, newest[model] == &ref ? stored : load_version(repo, *newest[model])).first;
    const auto& newest_stored = cached->second;
    if (!stored || !newest_stored) {
      manifest_problems.push_back(fmt::format("{} v{}: {}", model, old, (!stored ? stored : newest_stored).status().message()));
    } else {
      auto aliases_of = [](const nlohmann::json& rm, const std::string& version) {
        std::vector<std::string> out;
        for (const auto& a : rm.value("aliases", nlohmann::json::array()))
          if (a.value("version", "") == version) out.push_back(a.value("alias", ""));
        std::sort(out.begin(), out.end());
        return out;
      };
      std::string differs;
      if (where.to_dir.empty()) {
        auto rm = client.registered_model(model);
        auto mv = client.get("model-versions/get", {{"name", model}, {"version", r->new_version}});
        if (!rm || !mv) {
          differs = (!rm ? rm.status() : mv.status()).message();
        } else {
          nlohmann::json have_mv = mv->value("model_version", nlohmann::json::object());
          differs = metadata_difference(newest_stored->registered_model, stored->model_version,
                                        aliases_of(newest_stored->registered_model, old), *rm, have_mv,
                                        aliases_of(*rm, r->new_version));
        }
      } else {
        std::ifstream in(version_dir(where.to_dir, model, old) + ".mlflow.json");
        auto j = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
        if (!j.is_object()) {
          differs = version_dir(where.to_dir, model, old) + ".mlflow.json is missing or not JSON";
        } else {
          nlohmann::json have_rm = j.value("registered_model", nlohmann::json::object());
          differs = metadata_difference(stored->registered_model, stored->model_version, aliases_of(stored->registered_model, old),
                                        have_rm, j.value("model_version", nlohmann::json::object()), aliases_of(have_rm, old));
        }
      }
      if (!differs.empty()) manifest_problems.push_back(fmt::format("{} v{}: {}", model, r->new_version, differs));
    }
    // The restored copy as a directory: the target itself, or the registry's artifacts downloaded.
    std::string dir = where.to_dir.empty() ? "" : version_dir(where.to_dir, model, old);
    std::string temp;
    if (dir.empty()) {
      char tmpl[] = "/tmp/lifeboat-check-XXXXXX";
      if (!mkdtemp(tmpl)) {
        manifest_problems.push_back("cannot create a temporary directory");
        continue;
      }
      temp = dir = tmpl;
      auto root = client.artifact_root(model, r->new_version);
      auto listed = root ? client.list_artifacts(*root) : Result<std::vector<cloud::ArtifactFile>>(root.status());
      if (!listed) manifest_problems.push_back(fmt::format("{} v{}: {}", model, r->new_version, listed.status().message()));
      for (const auto& f : listed ? *listed : std::vector<cloud::ArtifactFile>{}) {
        if (auto bad = check_relative_path(f.path, "the registry lists an artifact"); !bad) {
          manifest_problems.push_back(fmt::format("{} v{}: {}", model, r->new_version, bad.message()));
          continue;
        }
        // Streamed to the file (an artifact of many GB never sits in memory).
        std::error_code ec;
        fs::create_directories(fs::path(dir + "/" + f.path).parent_path(), ec);
        auto out = AtomicFileWriter::open(dir + "/" + f.path);
        Status got = out ? Status::ok() : out.status();
        if (got) {
          auto size = client.download(*root + "/" + f.path, [&](ByteView piece) { return out->write(piece); });
          got = size ? out->commit() : size.status();
        }
        if (!got)
          manifest_problems.push_back(fmt::format("{} v{}: {} could not be downloaded: {}", model, r->new_version, f.path, got.message()));
      }
    }
    const auto manifest = ref.snapshot.metadata.value("manifest", nlohmann::json::object());
    // Artifacts the restored copy holds beyond the backup's (the restore writes into a new directory or
    // a new run: it promises exactly the backup's).
    std::error_code walk_ec;
    for (auto it = fs::recursive_directory_iterator(dir, walk_ec); !walk_ec && it != fs::recursive_directory_iterator();
         it.increment(walk_ec)) {
      if (it->is_directory(walk_ec) && !it->is_symlink(walk_ec)) continue;
      std::string rel = fs::relative(it->path(), dir, walk_ec).string();
      if (!manifest.contains(rel)) manifest_problems.push_back(fmt::format("{} v{}: {} is not in the backup", model, r->new_version, rel));
    }
    for (const auto& [path, sha] : manifest.items()) {
      ++files;
      std::ifstream in(dir + "/" + path, std::ios::binary);
      if (!in) {
        manifest_problems.push_back(fmt::format("{} v{}: {} is missing", model, r->new_version, path));
        continue;
      }
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto d = crypto::sha256(as_bytes(data));
      if (hex_encode({d.data(), d.size()}) != sha.get<std::string>())
        manifest_problems.push_back(fmt::format("{} v{}: {} differs from the backup (SHA-256)", model, r->new_version, path));
    }
    if (validate && std::find(checks.begin(), checks.end(), "validate") != checks.end()) {
      auto [ok, detail] = run_validate_command(*validate, dir, r->new_version);
      if (!ok) validate_problems.push_back(fmt::format("{} v{}: {}", model, r->new_version, detail));
    }
    if (!temp.empty()) {
      std::error_code ec;
      fs::remove_all(temp, ec);
    }
  }
  std::vector<CheckResult> out;
  std::string target = where.to_dir.empty() ? redact_url(where.mlflow) : where.to_dir;
  for (const auto& c : checks) {
    if (c == "manifest")
      out.push_back({c, manifest_problems.empty(),
                     manifest_problems.empty()
                         ? fmt::format("{} artifact(s) of {} version(s) read back from {} match the backup's SHA-256 manifest, none "
                                       "extra; tags, descriptions and aliases equal the backup's",
                                       files, versions.size(), target)
                         : fmt::format("{} problem(s): {}", manifest_problems.size(), manifest_problems[0])});
    else if (c == "validate")
      out.push_back({c, validate && validate_problems.empty(),
                     !validate ? "no validation command in the plan (validate:)"
                     : validate_problems.empty()
                         ? fmt::format("the validation command passed on each of {} restored version(s) in {}", versions.size(), target)
                         : fmt::format("{} version(s) failed: {}", validate_problems.size(), validate_problems[0])});
    else
      out.push_back({c, false, "unknown check"});
  }
  return out;
}

}  // namespace lifeboat::sources::models

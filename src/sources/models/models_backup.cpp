// Model version backups: registry metadata and artifacts into one snapshot per version, a SHA-256
// manifest, the plan's validation command on a copy read back from the repository, pins for the
// versions holding the production alias.
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <fstream>

#include "cloud/gcs_client.h"
#include "cloud/mlflow_client.h"
#include "core/names.h"
#include "core/subprocess.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "repo/node_io.h"
#include "repo/snapshot_select.h"
#include "repo/write_session.h"
#include "repo/restorer/restorer.h"
#include "sources/models/models.h"

namespace lifeboat::sources::models {

namespace fs = std::filesystem;

namespace {

std::string hex_sha256(ByteView data) {
  auto d = crypto::sha256(data);
  return hex_encode({d.data(), d.size()});
}

// One version to back up, wherever it comes from.
struct VersionSource {
  std::string model, version;
  nlohmann::json registered_model = nlohmann::json::object(), model_version = nlohmann::json::object();
  std::vector<std::string> aliases;
  std::vector<cloud::ArtifactFile> files;
  // Hands an artifact's bytes to `sink` piece by piece (never whole in memory); returns its size.
  std::function<Result<uint64_t>(const std::string& path, const repo::Push& sink)> read;
  int64_t mtime_ns = 0;
  nlohmann::json listing() const {
    nlohmann::json l = nlohmann::json::array();
    for (const auto& f : files) l.push_back({f.path, f.size});
    return l;
  }
  std::string fingerprint() const {
    nlohmann::json j = {{"rm", registered_model}, {"mv", model_version}, {"aliases", aliases}, {"files", listing()}};
    return hex_sha256(as_bytes(j.dump()));
  }
};

// The artifacts read back from the repository into a temporary directory, the command run on them.
Result<std::pair<bool, std::string>> run_validation(repo::Repository& repo, const repo::BlobId& artifacts, const std::string& version,
                                                    const ValidateCommand& v, ProgressCounters& progress) {
  char tmpl[] = "/tmp/lifeboat-model-XXXXXX";
  if (!mkdtemp(tmpl)) return Error(Code::kIo, "cannot create a temporary directory for the validation");
  std::string dir = tmpl;
  repo::TreeRestoreOptions ro;
  ro.target = dir;
  auto restored = repo::restore_tree(repo, artifacts, ro, progress);
  std::pair<bool, std::string> out{false, ""};
  if (!restored || !restored->errors.empty())
    out.second = "the artifacts could not be read back from the repository: " +
                 (!restored ? restored.status().message() : restored->errors[0]);
  else
    out = run_validate_command(v, dir, version);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

Result<VersionBackup> backup_version(repo::Repository& repo, const ModelsBackupOptions& o, const VersionSource& v,
                                     const std::vector<repo::SnapshotRef>& all, ProgressCounters& progress) {
  VersionBackup out;
  out.model = v.model;
  out.version = v.version;
  out.aliases = v.aliases;
  std::string fingerprint = v.fingerprint();
  auto previous = pick_model_versions(all, o.tags, std::nullopt, v.model, v.version);
  const repo::SnapshotRef* prev = previous.empty() ? nullptr : &previous[0];
  bool holds_production = std::find(v.aliases.begin(), v.aliases.end(), o.production_alias) != v.aliases.end();
  if (prev && prev->snapshot.metadata.value("fingerprint", "") == fingerprint) {
    out.unchanged = true;
    out.snapshot_id = prev->id;
    out.files = v.files.size();
    out.bytes = prev->snapshot.metadata.value("bytes", uint64_t{0});
    const auto& val = prev->snapshot.metadata.value("validation", nlohmann::json::object());
    if (val.contains("ok")) out.validated = val["ok"].get<bool>(), out.validation_detail = val.value("detail", "");
    if (holds_production) {
      LB_RETURN_IF_ERROR(repo.pin(prev->id, fmt::format("model {} version {} holds alias {}", v.model, v.version, o.production_alias)));
      out.pinned = true;
    }
    return out;
  }
  int64_t start_mono = monotonic_ns();
  int64_t start_ns = now_unix_ns();
  repo::WriteSession session(repo);
  nlohmann::json manifest = nlohmann::json::object();
  std::optional<repo::BlobId> artifacts;
  // Same files as the previous snapshot of this version (only metadata or aliases changed): reused.
  if (prev && prev->snapshot.metadata.value("listing", nlohmann::json()) == v.listing()) {
    if (auto root = repo.load_tree(prev->snapshot.tree))
      if (const auto* n = root->find("artifacts"); n && n->subtree) {
        artifacts = *n->subtree;
        manifest = prev->snapshot.metadata.value("manifest", nlohmann::json::object());
      }
  }
  if (!artifacts) {
    repo::DirBuilder tree;
    // Downloads in parallel (the server's proxy serves one file per request), each stored as it arrives.
    std::vector<std::optional<repo::Node>> nodes(v.files.size());
    std::vector<std::string> hashes(v.files.size());
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status failed;
    auto worker = [&] {
      for (size_t i = next++; i < v.files.size(); i = next++) {
        const auto& f = v.files[i];
        // Streamed: each piece is hashed and handed to the chunker as it arrives (memory per
        // download: the pipe's window, whatever the artifact's size).
        crypto::Sha256Stream sha;
        uint64_t got = 0;
        auto node = repo::store_pushed_node(session, "", 0644, v.mtime_ns, [&](const repo::Push& push) -> Status {
          auto size = v.read(f.path, [&](ByteView piece) {
            sha.update(piece);
            got += piece.size();
            progress.bytes_done += piece.size();
            return push(piece);
          });
          return size.status();
        });
        Status s;
        if (!node) {
          s = node.status().with_context(fmt::format("model {} version {}: artifact {}", v.model, v.version, f.path));
        } else if (got != f.size && f.size != 0) {
          s = Error(Code::kUnavailable, fmt::format("model {} version {}: artifact {} is {} bytes, the listing said {} "
                                                    "(changed while being read: back up again)", v.model, v.version, f.path,
                                                    got, f.size));
        } else {
          hashes[i] = sha.finish_hex();
          nodes[i] = std::move(*node);
          progress.files_done++;
        }
        if (!s) {
          std::lock_guard l(mu);
          if (failed) failed = s;
          next = v.files.size();
        }
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 0; t < std::min<size_t>(4, v.files.size()); ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (!failed) {
      (void)session.flush();
      return failed;
    }
    for (size_t i = 0; i < v.files.size(); ++i) {
      manifest[v.files[i].path] = hashes[i];
      out.downloaded_bytes += nodes[i]->size;
      tree.place(v.files[i].path, std::move(*nodes[i]));
    }
    LB_ASSIGN_OR_RETURN(artifacts, tree.store(session));
  }
  for (const auto& f : v.files) out.bytes += f.size;
  out.files = v.files.size();
  std::string rm = v.registered_model.dump(2), mv = v.model_version.dump(2);
  repo::Tree t;
  LB_ASSIGN_OR_RETURN(auto rm_node, repo::store_bytes_node(session, "registered_model.json", as_bytes(rm), 0644, v.mtime_ns));
  LB_ASSIGN_OR_RETURN(auto mv_node, repo::store_bytes_node(session, "model_version.json", as_bytes(mv), 0644, v.mtime_ns));
  t.nodes.push_back(std::move(rm_node));
  t.nodes.push_back(std::move(mv_node));
  t.nodes.push_back(repo::dir_node("artifacts", *artifacts));
  t.sort();
  LB_ASSIGN_OR_RETURN(auto root_id, session.store_tree(t));

  nlohmann::json validation = nlohmann::json::object();
  if (o.validate) {
    LB_RETURN_IF_ERROR(session.flush());
    LB_ASSIGN_OR_RETURN(auto result, run_validation(repo, *artifacts, v.version, *o.validate, progress));
    out.validated = result.first;
    out.validation_detail = result.second;
    validation = {{"ok", result.first}, {"detail", result.second}};
  }
  repo::Snapshot snap;
  snap.time_ns = start_ns;
  snap.hostname = o.hostname;
  snap.source = kSource;
  snap.paths = {v.model + "/" + v.version};
  snap.tags = {"model:" + v.model, "version:" + v.version};
  for (const auto& a : v.aliases) snap.tags.push_back("alias:" + a);
  for (const auto& tg : o.tags) snap.tags.push_back(tg);
  if (prev) snap.parent = prev->id;
  snap.tree = root_id;
  snap.metadata = {{"model", v.model},      {"version", v.version},   {"registry", o.mlflow.empty() ? o.path : redact_url(o.mlflow)},
                   {"aliases", v.aliases},  {"manifest", manifest},   {"listing", v.listing()},
                   {"bytes", out.bytes},    {"files", out.files},     {"fingerprint", fingerprint},
                   {"validation", validation}, {"finished_ns", now_unix_ns()}};
  snap.summary = repo::session_summary(session, start_mono);
  snap.summary["files"] = out.files;
  snap.summary["total_bytes"] = out.bytes;
  snap.summary["downloaded_bytes"] = out.downloaded_bytes;
  if (out.validated)
    snap.summary["checks"] = nlohmann::json::array({{{"check", "validate"}, {"ok", *out.validated}, {"detail", out.validation_detail}}});
  LB_ASSIGN_OR_RETURN(out.snapshot_id, session.commit(snap));
  if (holds_production) {
    LB_RETURN_IF_ERROR(repo.pin(out.snapshot_id, fmt::format("model {} version {} holds alias {}", v.model, v.version, o.production_alias)));
    out.pinned = true;
  }
  return out;
}

// Every selected version of a registry, oldest first per model.
Result<std::vector<VersionSource>> registry_versions(const ModelsBackupOptions& o) {
  auto client = std::make_shared<cloud::MlflowClient>(o.mlflow);
  std::vector<nlohmann::json> models;
  if (o.models.empty()) {
    LB_RETURN_IF_ERROR(client->registered_models([&](const nlohmann::json& m) {
      models.push_back(m);
      return Status::ok();
    }));
  } else {
    for (const auto& name : o.models) {
      auto m = client->registered_model(name);
      if (!m) return m.status().with_context(fmt::format("registered model {}", name));
      models.push_back(*m);
    }
  }
  std::vector<VersionSource> out;
  for (const auto& m : models) {
    std::string name = m.value("name", "");
    nlohmann::json rm = m;
    rm.erase("latest_versions");  // changes with every new version; each version has its own snapshot
    std::vector<nlohmann::json> versions;
    LB_RETURN_IF_ERROR(client->model_versions(name, [&](const nlohmann::json& v) {
      if (o.version.empty() || v.value("version", "") == o.version) versions.push_back(v);
      return Status::ok();
    }));
    if (!o.version.empty() && versions.empty())
      return Error(Code::kNotFound, fmt::format("model {} has no version {}", name, o.version));
    // A version becomes a directory name at restore and is sorted as a number: only a decimal one is taken.
    std::vector<std::pair<int64_t, nlohmann::json>> numbered;
    for (auto& v : versions) {
      LB_ASSIGN_OR_RETURN(auto number, decimal_version(v.value("version", ""), fmt::format("model {:?} in {}", name, redact_url(o.mlflow))));
      numbered.emplace_back(number, std::move(v));
    }
    std::sort(numbered.begin(), numbered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    versions.clear();
    for (auto& [n, v] : numbered) versions.push_back(std::move(v));
    for (auto& v : versions) {
      VersionSource s;
      s.model = name;
      s.version = v.value("version", "");
      for (const auto& a : m.value("aliases", nlohmann::json::array()))
        if (a.value("version", "") == s.version) s.aliases.push_back(a.value("alias", ""));
      std::sort(s.aliases.begin(), s.aliases.end());
      v.erase("aliases");
      s.registered_model = rm;
      s.model_version = v;
      s.mtime_ns = v.value("last_updated_timestamp", int64_t{0}) * 1000000;
      auto root = client->artifact_root(name, s.version);
      if (!root) return root.status().with_context(fmt::format("model {} version {}", name, s.version));
      auto files = client->list_artifacts(*root);
      if (!files) return files.status().with_context(fmt::format("model {} version {}", name, s.version));
      if (files->empty())
        return Error(Code::kNotFound, fmt::format("model {} version {}: no artifacts at {} (deleted on the server?)", name, s.version, *root));
      for (const auto& f : *files)
        LB_RETURN_IF_ERROR(check_relative_path(f.path, fmt::format("model {} version {}: the registry lists an artifact", name, s.version)));
      s.files = std::move(*files);
      std::string r = *root;
      s.read = [client, r](const std::string& path, const repo::Push& sink) { return client->download(r + "/" + path, sink); };
      out.push_back(std::move(s));
    }
  }
  return out;
}

// One version kept outside a registry: a directory, or a GCS prefix.
Result<VersionSource> path_version(const ModelsBackupOptions& o) {
  if (o.models.size() != 1 || o.version.empty())
    return Error(Code::kInvalidArgument, "--path needs one --model NAME and --version V");
  LB_RETURN_IF_ERROR(decimal_version(o.version, fmt::format("--path {} --version", o.path)).status());
  VersionSource s;
  s.model = o.models[0];
  s.version = o.version;
  s.mtime_ns = now_unix_ns();
  s.model_version = {{"name", s.model}, {"version", s.version}, {"source", o.path}};
  s.registered_model = {{"name", s.model}};
  if (o.path.rfind("gs://", 0) == 0) {
    LB_ASSIGN_OR_RETURN(auto loc, cloud::parse_gs_url(o.path));
    std::string prefix = loc.second.empty() || loc.second.back() == '/' ? loc.second : loc.second + "/";
    LB_ASSIGN_OR_RETURN(auto client, cloud::GcsClient::from_environment("https://www.googleapis.com/auth/devstorage.read_only"));
    std::map<std::string, cloud::GcsObject> objects;
    LB_RETURN_IF_ERROR(client->list_objects(loc.first, prefix, false, [&](const cloud::GcsObject& obj) {
      if (obj.name.size() > prefix.size() && obj.name.back() != '/') {
        s.files.push_back({obj.name.substr(prefix.size()), obj.size_bytes});
        objects[obj.name.substr(prefix.size())] = obj;
      }
      return Status::ok();
    }));
    std::string bucket = loc.first;
    s.read = [client, bucket, objects](const std::string& path, const repo::Push& sink) -> Result<uint64_t> {
      const auto& obj = objects.at(path);
      constexpr uint64_t kPiece = 8 << 20;  // one ranged read at a time
      for (uint64_t at = 0; at < obj.size_bytes; at += kPiece) {
        LB_ASSIGN_OR_RETURN(auto piece, client->read_range(bucket, obj.name, obj.generation, at,
                                                           std::min(kPiece, obj.size_bytes - at), obj.size_bytes));
        LB_RETURN_IF_ERROR(sink(piece));
      }
      return obj.size_bytes;
    };
  } else {
    std::error_code ec;
    if (!fs::is_directory(o.path, ec)) return Error(Code::kInvalidArgument, fmt::format("--path {}: not a directory", o.path));
    for (auto it = fs::recursive_directory_iterator(o.path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec) && !it->is_symlink(ec))
        s.files.push_back({fs::relative(it->path(), o.path).string(), static_cast<uint64_t>(it->file_size(ec))});
    if (ec) return Error(Code::kIo, fmt::format("--path {}: {}", o.path, ec.message()));
    std::string base = o.path;
    s.read = [base](const std::string& path, const repo::Push& sink) -> Result<uint64_t> {
      std::ifstream in(base + "/" + path, std::ios::binary);
      if (!in) return Error(Code::kIo, fmt::format("cannot read {}/{}", base, path));
      std::vector<char> buf(1 << 20);
      uint64_t total = 0;
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        auto n = static_cast<size_t>(in.gcount());
        if (n) LB_RETURN_IF_ERROR(sink(ByteView(reinterpret_cast<const uint8_t*>(buf.data()), n)));
        total += n;
      }
      if (in.bad()) return Error(Code::kIo, fmt::format("cannot read {}/{}", base, path));
      return total;
    };
  }
  std::sort(s.files.begin(), s.files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  if (s.files.empty()) return Error(Code::kNotFound, fmt::format("--path {}: no files", o.path));
  return s;
}

}  // namespace

std::pair<bool, std::string> run_validate_command(const ValidateCommand& v, const std::string& model_dir, const std::string& version) {
  auto cmd = fill_command(v.run, {{"{model_dir}", model_dir}, {"{version}", version}});
  if (!cmd) return {false, cmd.status().message()};
  auto r = run_command({"/bin/sh", "-c", *cmd}, v.timeout_s, 2000);
  if (!r) return {false, r.status().message()};
  std::string tail = r->output_tail;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  if (tail.size() > 600) tail = "…" + tail.substr(tail.size() - 600);
  std::string how = r->timed_out ? fmt::format("ran past its {} s limit and was killed", v.timeout_s) : r->describe();
  return {r->ok(), fmt::format("`{}` {}{}", v.run, how, tail.empty() ? "" : "; output: " + tail)};
}

bool ModelsBackupResult::all_validated() const {
  for (const auto& v : versions)
    if (v.validated && !*v.validated) return false;
  return true;
}

Result<ModelsBackupResult> backup_models(repo::Repository& repo, const ModelsBackupOptions& o, ProgressCounters& progress) {
  if (o.mlflow.empty() == o.path.empty()) return Error(Code::kInvalidArgument, "give --mlflow URL or --path DIR|gs://BUCKET/PREFIX");
  std::vector<VersionSource> versions;
  if (!o.mlflow.empty()) {
    LB_ASSIGN_OR_RETURN(versions, registry_versions(o));
  } else {
    LB_ASSIGN_OR_RETURN(auto one, path_version(o));
    versions.push_back(std::move(one));
  }
  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  ModelsBackupResult result;
  for (const auto& v : versions) {
    LB_ASSIGN_OR_RETURN(auto b, backup_version(repo, o, v, all, progress));
    result.versions.push_back(std::move(b));
  }
  return result;
}

std::vector<repo::SnapshotRef> pick_model_versions(const std::vector<repo::SnapshotRef>& all, const std::vector<std::string>& tags,
                                                   std::optional<int64_t> at_ns, const std::string& model,
                                                   const std::string& version) {
  std::map<std::pair<std::string, int64_t>, repo::SnapshotRef> newest;
  for (const auto& s : all) {
    if (s.snapshot.source != kSource) continue;
    if (at_ns && s.snapshot.time_ns > *at_ns) continue;
    bool ok = true;
    for (const auto& t : tags) ok = ok && s.snapshot.has_tag(t);
    std::string m = s.snapshot.metadata.value("model", ""), v = s.snapshot.metadata.value("version", "");
    if (!ok || (!model.empty() && m != model) || (!version.empty() && v != version)) continue;
    int64_t vn = std::strtoll(v.c_str(), nullptr, 10);
    auto key = std::make_pair(m, vn);
    auto it = newest.find(key);
    if (it == newest.end() || it->second.snapshot.time_ns < s.snapshot.time_ns) newest[key] = s;
  }
  std::vector<repo::SnapshotRef> out;
  for (auto& [k, s] : newest) out.push_back(std::move(s));
  return out;
}

}  // namespace lifeboat::sources::models

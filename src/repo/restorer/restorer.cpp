// The restorer: plans the tree, creates directories, writes the files' data pack by pack, then links
// and metadata (see restorer.h).
#include "repo/restorer/restorer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>

#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "core/interrupt.h"
#include "repo/file_metadata.h"
#include "repo/pack_reader.h"
#include "repo/restorer/assembler.h"
#include "repo/restorer/safe_path.h"

namespace lifeboat::repo {

using restorer::Action;

std::optional<Overwrite> parse_overwrite(const std::string& name) {
  if (name == "always") return Overwrite::kAlways;
  if (name == "if-changed") return Overwrite::kIfChanged;
  if (name == "if-newer") return Overwrite::kIfNewer;
  if (name == "never") return Overwrite::kNever;
  return std::nullopt;
}

namespace {

bool matches_any(const std::vector<std::string>& patterns, const std::string& rel) {
  for (const auto& p : patterns) {
    std::string pat = p.size() > 1 && p[0] == '/' ? p.substr(1) : p;
    if (fnmatch(pat.c_str(), rel.c_str(), 0) == 0) return true;
    size_t slash = rel.rfind('/');
    if (fnmatch(pat.c_str(), rel.c_str() + (slash == std::string::npos ? 0 : slash + 1), 0) == 0) return true;
  }
  return false;
}

// Collects actions in pre-order; returns whether anything below (or the node itself) was selected.
Status plan(repo::Repository& repo, const repo::BlobId& tree_id, const std::string& prefix, bool selected_above,
            const std::vector<std::string>& includes, std::vector<Action>& out,
            std::map<std::pair<uint64_t, uint64_t>, std::string>& first_links, bool& any) {
  LB_ASSIGN_OR_RETURN(repo::Tree tree, repo.load_tree(tree_id));
  for (auto& n : tree.nodes) {
    std::string rel = prefix.empty() ? n.name : prefix + "/" + n.name;
    bool selected = selected_above || includes.empty() || matches_any(includes, rel);
    if (n.kind == NodeKind::kDir) {
      size_t at = out.size();
      out.push_back({rel, n, ""});
      bool below = false;
      if (n.subtree) LB_RETURN_IF_ERROR(plan(repo, *n.subtree, rel, selected, includes, out, first_links, below));
      if (!selected && !below) out.resize(at);  // nothing here was asked for
      if (selected || below) any = true;
      continue;
    }
    if (!selected) continue;
    any = true;
    Action a{rel, n, ""};
    if (n.kind == NodeKind::kFile && n.links > 1) {
      auto key = std::make_pair(n.device, n.inode);
      auto it = first_links.find(key);
      if (it != first_links.end()) a.link_to = it->second;
      else first_links.emplace(key, rel);
    }
    out.push_back(std::move(a));
  }
  return Status::ok();
}

enum class Decision { kCreate, kReplace, kKeep };

// What to do with one entry, from what the target holds there (nothing written yet).
Decision decide(const Node& n, const struct stat& st, Overwrite mode, const std::string& at) {
  if (n.kind == NodeKind::kDir) return mode == Overwrite::kNever ? Decision::kKeep : Decision::kReplace;
  switch (mode) {
    case Overwrite::kAlways: return Decision::kReplace;
    case Overwrite::kNever: return Decision::kKeep;
    case Overwrite::kIfNewer: {
      int64_t have = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      return n.mtime_ns > have ? Decision::kReplace : Decision::kKeep;
    }
    case Overwrite::kIfChanged: {
      int64_t have = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      if (n.kind == NodeKind::kSymlink) {
        char buf[4096];
        ssize_t len = S_ISLNK(st.st_mode) ? readlink(at.c_str(), buf, sizeof buf) : -1;
        return len >= 0 && std::string(buf, static_cast<size_t>(len)) == n.link_target ? Decision::kKeep : Decision::kReplace;
      }
      bool same_type = n.kind == NodeKind::kFile ? S_ISREG(st.st_mode) : !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
      return same_type && static_cast<uint64_t>(st.st_size) == n.size && have == n.mtime_ns ? Decision::kKeep : Decision::kReplace;
    }
  }
  return Decision::kReplace;
}

}  // namespace

std::string default_refusal_message(RestoreRefusal why, const std::string& target) {
  switch (why) {
    case RestoreRefusal::kNoTarget: return "a restore needs a target directory";
    case RestoreRefusal::kNoIncludeMatch: return "no path in the tree matches the include patterns";
    case RestoreRefusal::kDeleteWithIncludes:
      return "deleting what the tree lacks restores whole directories: it cannot be combined with include patterns";
    case RestoreRefusal::kTargetNotEmpty:
      return fmt::format("target {} is not empty: choose what happens to what it holds (an overwrite mode)", target);
  }
  return "refused";
}

Result<TreeRestoreResult> restore_tree(Repository& repo, const BlobId& tree, const TreeRestoreOptions& options,
                                       ProgressCounters& progress) {
  auto refuse = [&](Code code, RestoreRefusal why, const std::string& target) -> Status {
    return Error(code, options.explain ? options.explain(why, target) : default_refusal_message(why, target));
  };
  LB_RETURN_IF_ERROR(repo.load_index());
  std::string target = options.target;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty()) return refuse(Code::kInvalidArgument, RestoreRefusal::kNoTarget, target);
  std::vector<Action> actions;
  std::map<std::pair<uint64_t, uint64_t>, std::string> first_links;
  bool any = false;
  LB_RETURN_IF_ERROR(plan(repo, tree, "", false, options.includes, actions, first_links, any));
  if (!options.includes.empty() && !any)
    return refuse(Code::kNotFound, RestoreRefusal::kNoIncludeMatch, target);
  for (const auto& a : actions)
    if (a.node.kind == NodeKind::kFile && a.link_to.empty()) {
      progress.files_total++;
      progress.bytes_total += a.node.size;
    }
  progress.totals_final = true;

  TreeRestoreResult result;
  std::mutex mu;
  auto fail = [&](const Status& s) {
    std::lock_guard l(mu);
    result.errors.push_back(s.message());
    progress.errors++;
  };
  if (options.delete_extra && !options.includes.empty())
    return refuse(Code::kInvalidArgument, RestoreRefusal::kDeleteWithIncludes, target);
  struct stat target_st;
  bool target_exists = lstat(target.c_str(), &target_st) == 0;
  if (target_exists && options.refuse_non_empty && S_ISDIR(target_st.st_mode) && !restorer::dir_is_empty(target))
    return refuse(Code::kInvalidArgument, RestoreRefusal::kTargetNotEmpty, target);
  if (!options.dry_run && mkdir(target.c_str(), 0700) != 0 && errno != EEXIST)
    return Error(Code::kIo, fmt::format("create target {}: {}", target, strerror(errno)));
  // A target this user may not write into fails once, here, not once per file.
  if (!options.dry_run && access(target.c_str(), W_OK | X_OK) != 0)
    return Error(Code::kIo, fmt::format("cannot write into target {}: {}; restore as a user who may write there, or choose "
                                        "another --target (nothing was written)", target, strerror(errno)));

  // Before anything is written: what each entry meets in the target, the conflicts, what --delete
  // removes. A target that does not exist yet (dry run) meets nothing.
  std::vector<Decision> decisions(actions.size(), Decision::kCreate);
  std::vector<std::string> conflicts, doomed;
  std::unique_ptr<restorer::Beneath> beneath;
  if (!options.dry_run) {
    LB_ASSIGN_OR_RETURN(beneath, restorer::Beneath::open(target));
  }
  // An empty target meets nothing: each entry would only be looked up to find it absent.
  if (target_exists && !(S_ISDIR(target_st.st_mode) && restorer::dir_is_empty(target))) {
    if (!beneath) {
      LB_ASSIGN_OR_RETURN(beneath, restorer::Beneath::open(target));
    }
    std::set<std::string> planned;
    for (const auto& a : actions) planned.insert(a.rel);
    for (size_t i = 0; i < actions.size(); ++i) {
      const auto& a = actions[i];
      if (a.node.kind == NodeKind::kSocket) continue;
      std::string path = target + "/" + a.rel;
      auto entry = beneath->entry(a.rel);
      if (!entry) {
        // Below a directory that does not exist yet there is nothing to meet; a link or file in the way is a conflict.
        if (entry.status().code() == Code::kAlreadyExists) conflicts.push_back(entry.status().message());
        continue;
      }
      struct stat st;
      if (lstat((*entry)->at().c_str(), &st) != 0) continue;  // nothing there: create
      bool is_dir = S_ISDIR(st.st_mode);
      if (a.node.kind == NodeKind::kDir && !is_dir) {
        conflicts.push_back(S_ISLNK(st.st_mode)
                                ? fmt::format("{}: a symbolic link is in the way where the snapshot has a directory; "
                                              "restore never follows links it did not create: remove it, or restore "
                                              "into an empty directory",
                                              path)
                                : fmt::format("{}: the snapshot has a directory here, the target something else", path));
        continue;
      }
      if (a.node.kind != NodeKind::kDir && is_dir && !restorer::dir_is_empty((*entry)->at())) {
        conflicts.push_back(fmt::format("{}: the snapshot has a file here, the target a non-empty directory", path));
        continue;
      }
      decisions[i] = decide(a.node, st, options.overwrite, (*entry)->at());
      if (options.delete_extra && a.node.kind == NodeKind::kDir && is_dir) {
        DIR* d = opendir((*entry)->at().c_str());
        while (d) {
          struct dirent* e = readdir(d);
          if (!e) break;
          if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
          std::string rel = a.rel + "/" + e->d_name;
          if (!planned.count(rel)) doomed.push_back(rel);
        }
        if (d) closedir(d);
      }
    }
  }
  if (!conflicts.empty())
    return Error(Code::kInvalidArgument,
                 fmt::format("{} conflict(s) in the target, nothing was written; the first: {}", conflicts.size(),
                             conflicts.front()));
  for (size_t i = 0; i < actions.size(); ++i) {
    if (actions[i].node.kind == NodeKind::kSocket) continue;
    const char* what = decisions[i] == Decision::kCreate ? "+" : decisions[i] == Decision::kReplace ? "M" : "=";
    if (actions[i].node.kind == NodeKind::kDir && decisions[i] != Decision::kCreate) continue;  // not news
    result.changes.emplace_back(what, target + "/" + actions[i].rel);
    if (decisions[i] == Decision::kKeep) result.skipped++;
  }
  for (const auto& rel : doomed) result.changes.emplace_back("-", target + "/" + rel);
  if (options.dry_run) return result;
  for (const auto& rel : doomed) {
    auto entry = beneath->entry(rel);
    std::error_code ec;
    if (entry) std::filesystem::remove_all((*entry)->at(), ec);  // never follows a link: removes the link
    if (!entry || ec) fail(Error(Code::kIo, fmt::format("delete {}/{}: {}", target, rel, entry ? ec.message() : entry.status().message())));
    else result.deleted++;
  }

  // Files are created with their recorded mode; restore the caller's umask when done.
  struct UmaskScope {
    mode_t old = umask(0);
    ~UmaskScope() { umask(old); }
  } umask_scope;

  // Directories first, in tree order (each through its parent), then links and special files, then
  // the files' data pack by pack; hard links, and directory metadata deepest first, last.
  restorer::DirHandles dirs(*beneath, restorer::directory_capacity());
  restorer::FileAssembler assembler(repo, dirs, options.verify, progress);
  std::deque<restorer::FileJob> jobs;
  std::vector<repo::BlobId> blobs;  // every blob of every file, in tree order
  struct Use {
    restorer::FileJob* job;
    uint64_t offset;
    size_t next_same;  // the next use of the same blob, or kNone
  };
  constexpr size_t kNone = SIZE_MAX;
  std::vector<Use> uses;
  for (const auto& a : actions) {
    if (interrupted()) break;
    size_t i = &a - actions.data();
    if (a.node.kind == NodeKind::kSocket || (a.node.kind == NodeKind::kFile && !a.link_to.empty())) continue;
    if (decisions[i] == Decision::kKeep && a.node.kind != NodeKind::kDir) continue;
    std::string path = target + "/" + a.rel;
    if (a.node.kind == NodeKind::kDir) {
      if (Status s = dirs.make(a.rel); !s) fail(s);
      else result.dirs++;
      continue;
    }
    if (a.node.kind == NodeKind::kFile) {
      restorer::FileJob& job = jobs.emplace_back(a, path, a.node.content.size());
      uint64_t offset = 0;
      for (const auto& id : a.node.content) {
        auto loc = repo.index().find(id);
        if (!loc) loc = repo.tombstoned().find(id);
        blobs.push_back(id);
        uses.push_back({&job, offset, kNone});
        offset += loc ? loc->raw_len : 0;  // an unknown blob fails the file before its offset matters
      }
      if (offset != a.node.size && !a.node.content.empty())
        job.failed = true, job.error = fmt::format("restoring {}: content adds up to {} bytes, the snapshot says {}",
                                                    path, offset, a.node.size);
      continue;
    }
    auto entry = dirs.entry(a.rel);
    if (!entry) {
      fail(entry.status());
      continue;
    }
    const std::string at = (*entry)->at();
    // In a target that held nothing there, nothing can be in the way: no need to look.
    Status s = decisions[i] == Decision::kCreate ? Status::ok() : restorer::remove_existing(at, path);
    if (a.node.kind == NodeKind::kSymlink) {
      if (s && symlinkat(a.node.link_target.c_str(), (*entry)->dir, (*entry)->name.c_str()) != 0)
        s = Error(Code::kIo, fmt::format("symlink {}: {}", path, strerror(errno)));
    } else {
      mode_t type = a.node.kind == NodeKind::kFifo ? S_IFIFO : a.node.kind == NodeKind::kCharDev ? S_IFCHR : S_IFBLK;
      if (s && mknodat((*entry)->dir, (*entry)->name.c_str(), type | (a.node.mode & 07777), static_cast<dev_t>(a.node.rdev)) != 0)
        s = Error(Code::kIo, fmt::format("mknod {}: {}", path, strerror(errno)));
    }
    if (s) s = apply_metadata(at, -1, a.node);
    if (!s) fail(s);
    else result.others++;
  }
  if (interrupted()) return Error(Code::kInterrupted, "interrupted");
  {
    std::unordered_map<repo::BlobId, size_t, repo::BlobIdHash> last_use;
    for (size_t k = 0; k < blobs.size(); ++k) {
      auto [it, first] = last_use.emplace(blobs[k], k);
      if (!first) uses[it->second].next_same = k, it->second = k;
    }
  }
  for (auto& job : jobs)
    if (job.action.node.content.empty()) assembler.finish(job);
  repo::PackOrderOptions read_options;
  read_options.threads = options.threads;
  Status read = repo::read_in_pack_order(repo, blobs, read_options, [&](size_t k, Result<Bytes> data) {
    for (; k != kNone; k = uses[k].next_same) assembler.put(*uses[k].job, uses[k].offset, data);
  });
  assembler.add_to(result);
  if (!read || interrupted()) {
    for (auto& job : jobs) assembler.abandon(job);
    return Error(Code::kInterrupted, "interrupted");
  }
  for (const auto& a : actions) {
    if (a.link_to.empty() || decisions[&a - actions.data()] == Decision::kKeep) continue;
    std::string path = target + "/" + a.rel;
    auto to = dirs.entry(a.rel);
    auto from = to ? dirs.entry(a.link_to) : to;
    Status s = from ? restorer::remove_existing((*to)->at(), path) : from.status();
    if (s && linkat((*from)->dir, (*from)->name.c_str(), (*to)->dir, (*to)->name.c_str(), 0) != 0)
      s = Error(Code::kIo, fmt::format("hard link {}: {}", path, strerror(errno)));
    if (!s) fail(s);
    else result.files++;
  }
  // Directory metadata last and deepest first, so writing contents does not disturb their mtimes.
  // Each directory is opened through its parent without following links, and changed through its
  // descriptor.
  for (auto it = actions.rbegin(); it != actions.rend(); ++it) {
    if (it->node.kind != NodeKind::kDir || decisions[&*it - actions.data()] == Decision::kKeep) continue;
    std::string path = target + "/" + it->rel;
    auto entry = dirs.entry(it->rel);
    if (!entry) {
      fail(entry.status());
      continue;
    }
    int fd = openat((*entry)->dir, (*entry)->name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      fail(Error(Code::kIo, fmt::format("{}: {}", path, strerror(errno))));
      continue;
    }
    Status s = apply_metadata(path, fd, it->node);
    close(fd);
    if (!s) fail(s);
  }
  return result;
}

}  // namespace lifeboat::repo

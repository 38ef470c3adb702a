// The restorer: walks the tree a batch at a time (TreeWalk) twice — first to compare every entry with
// the target, then to write: directories, links and special files, the files' data pack by pack, hard
// links — and applies directory metadata last (see restorer.h).
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
#include <optional>
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

// The entries to restore, in pre-order, a batch at a time: memory holds one loaded tree per level of
// the path being walked, the batch, and the first path of each file with several links; never the
// whole snapshot. A directory is yielded when it is selected itself, or just before the first entry
// below it that is (so with include patterns only the directories leading to a match appear).
class TreeWalk {
 public:
  // `child_names`: each directory's Action carries its entries' names (what --delete keeps).
  TreeWalk(Repository& repo, const std::vector<std::string>& includes, bool child_names = false)
      : repo_(repo), includes_(includes), child_names_(child_names) {}
  Status start(const BlobId& root) {
    LB_ASSIGN_OR_RETURN(Tree t, repo_.load_tree(root));
    stack_.push_back(Frame{std::move(t), 0, "", false, std::nullopt});
    return Status::ok();
  }
  // Appends entries to `out` until it holds `max_entries` or their files `max_blobs` blobs; returns
  // false once the walk is over (`out` may then hold its last entries).
  Result<bool> next(std::vector<Action>& out, size_t max_entries, size_t max_blobs) {
    size_t blobs = 0;
    while (!stack_.empty()) {
      if (out.size() >= max_entries || blobs >= max_blobs) return true;
      Frame& f = stack_.back();
      if (f.next == f.tree.nodes.size()) {
        stack_.pop_back();  // a directory still pending had nothing selected below it
        continue;
      }
      Node n = std::move(f.tree.nodes[f.next++]);
      std::string rel = f.prefix.empty() ? n.name : f.prefix + "/" + n.name;
      bool selected = f.selected || includes_.empty() || matches_any(includes_, rel);
      if (n.kind == NodeKind::kDir) {
        Tree below;
        if (n.subtree) {
          LB_ASSIGN_OR_RETURN(below, repo_.load_tree(*n.subtree));
        }
        bool has_subtree = n.subtree.has_value();
        Action me{rel, std::move(n), "", {}};
        if (child_names_)
          for (const auto& c : below.nodes) me.children.push_back(c.name);
        std::optional<Action> pending;
        if (selected) {
          emit_pending(out);
          out.push_back(std::move(me));
          any_ = true;
        } else {
          pending = std::move(me);
        }
        if (has_subtree) stack_.push_back(Frame{std::move(below), 0, rel, selected, std::move(pending)});
        continue;
      }
      if (!selected) continue;
      emit_pending(out);
      any_ = true;
      Action a{rel, std::move(n), "", {}};
      if (a.node.kind == NodeKind::kFile && a.node.links > 1) {
        auto key = std::make_pair(a.node.device, a.node.inode);
        auto it = first_links_.find(key);
        if (it != first_links_.end()) a.link_to = it->second;
        else first_links_.emplace(key, rel);
      }
      if (a.node.kind == NodeKind::kFile && a.link_to.empty()) blobs += a.node.content.size();
      out.push_back(std::move(a));
    }
    return false;
  }
  bool any() const { return any_; }

 private:
  struct Frame {
    Tree tree;
    size_t next;
    std::string prefix;
    bool selected;
    std::optional<Action> dir;  // this level's directory, not yielded yet (nothing below selected so far)
  };
  void emit_pending(std::vector<Action>& out) {
    for (auto& f : stack_)
      if (f.dir) {
        out.push_back(std::move(*f.dir));
        f.dir.reset();
      }
  }
  Repository& repo_;
  const std::vector<std::string>& includes_;
  bool child_names_;
  std::vector<Frame> stack_;
  std::map<std::pair<uint64_t, uint64_t>, std::string> first_links_;
  bool any_ = false;
};

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
  // Before any location is looked up: an append key's index knows which blobs exist, not where.
  LB_RETURN_IF_ERROR(repo.require_reader("restoring"));
  auto refuse = [&](Code code, RestoreRefusal why, const std::string& target) -> Status {
    return Error(code, options.explain ? options.explain(why, target) : default_refusal_message(why, target));
  };
  LB_RETURN_IF_ERROR(repo.load_index());
  std::string target = options.target;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty()) return refuse(Code::kInvalidArgument, RestoreRefusal::kNoTarget, target);
  if (options.delete_extra && !options.includes.empty())
    return refuse(Code::kInvalidArgument, RestoreRefusal::kDeleteWithIncludes, target);
  const size_t batch_entries = std::max<size_t>(1, options.batch_entries), batch_blobs = std::max<size_t>(1, options.batch_blobs);

  TreeRestoreResult result;
  std::mutex mu;
  auto fail = [&](const Status& s) {
    std::lock_guard l(mu);
    result.errors.push_back(s.message());
    progress.errors++;
  };
  struct stat target_st;
  bool target_exists = lstat(target.c_str(), &target_st) == 0;
  if (target_exists && options.refuse_non_empty && S_ISDIR(target_st.st_mode) && !restorer::dir_is_empty(target))
    return refuse(Code::kInvalidArgument, RestoreRefusal::kTargetNotEmpty, target);
  // An empty target meets nothing: each entry would only be looked up to find it absent.
  const bool meets = target_exists && !(S_ISDIR(target_st.st_mode) && restorer::dir_is_empty(target));
  std::unique_ptr<restorer::Beneath> beneath;
  if (meets) {
    LB_ASSIGN_OR_RETURN(beneath, restorer::Beneath::open(target));
  }

  // Pass 1, before anything is written: the whole tree walked a batch at a time for the totals, what
  // each entry meets in the target (one byte each), the conflicts, what --delete removes.
  std::vector<uint8_t> decisions;  // Decision per entry, in walk order; empty when the target meets nothing
  std::vector<std::string> conflicts, doomed;
  auto note_change = [&](const char* what, std::string path) {
    if (options.dry_run || result.changes.size() < kChangesListed) result.changes.emplace_back(what, std::move(path));
    else result.changes_omitted++;
  };
  {
    TreeWalk walk(repo, options.includes, options.delete_extra && meets);
    LB_RETURN_IF_ERROR(walk.start(tree));
    std::vector<Action> batch;
    for (bool more = true; more;) {
      batch.clear();
      LB_ASSIGN_OR_RETURN(more, walk.next(batch, batch_entries, batch_blobs));
      if (interrupted()) return Error(Code::kInterrupted, "interrupted");
      for (const auto& a : batch) {
        Decision d = Decision::kCreate;
        std::string path = target + "/" + a.rel;
        if (meets && a.node.kind != NodeKind::kSocket) {
          auto entry = beneath->entry(a.rel);
          struct stat st;
          if (!entry) {
            // Below a directory that does not exist yet there is nothing to meet; a link or file in the way is a conflict.
            if (entry.status().code() == Code::kAlreadyExists) conflicts.push_back(entry.status().message());
          } else if (lstat((*entry)->at().c_str(), &st) == 0) {
            bool is_dir = S_ISDIR(st.st_mode);
            if (a.node.kind == NodeKind::kDir && !is_dir) {
              conflicts.push_back(S_ISLNK(st.st_mode)
                                      ? fmt::format("{}: a symbolic link is in the way where the snapshot has a directory; "
                                                    "restore never follows links it did not create: remove it, or restore "
                                                    "into an empty directory",
                                                    path)
                                      : fmt::format("{}: the snapshot has a directory here, the target something else", path));
            } else if (a.node.kind != NodeKind::kDir && is_dir && !restorer::dir_is_empty((*entry)->at())) {
              conflicts.push_back(fmt::format("{}: the snapshot has a file here, the target a non-empty directory", path));
            } else {
              d = decide(a.node, st, options.overwrite, (*entry)->at());
              if (options.delete_extra && a.node.kind == NodeKind::kDir && is_dir) {
                // Without include patterns every entry of the directory's tree is restored: what the
                // target holds beyond them goes.
                std::set<std::string> names(a.children.begin(), a.children.end());
                DIR* dh = opendir((*entry)->at().c_str());
                while (dh) {
                  struct dirent* e = readdir(dh);
                  if (!e) break;
                  if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                  if (!names.count(e->d_name)) doomed.push_back(a.rel + "/" + e->d_name);
                }
                if (dh) closedir(dh);
              }
            }
          }
        }
        if (meets) decisions.push_back(static_cast<uint8_t>(d));
        if (a.node.kind == NodeKind::kFile && a.link_to.empty() && d != Decision::kKeep) {  // what will be written
          progress.files_total++;
          progress.bytes_total += a.node.size;
        }
        if (a.node.kind == NodeKind::kSocket) continue;
        if (a.node.kind == NodeKind::kDir && d != Decision::kCreate) continue;  // not news
        note_change(d == Decision::kCreate ? "+" : d == Decision::kReplace ? "M" : "=", std::move(path));
        if (d == Decision::kKeep) result.skipped++;
      }
    }
    if (!options.includes.empty() && !walk.any()) return refuse(Code::kNotFound, RestoreRefusal::kNoIncludeMatch, target);
  }
  progress.totals_final = true;
  if (!conflicts.empty())
    return Error(Code::kInvalidArgument,
                 fmt::format("{} conflict(s) in the target, nothing was written; the first: {}", conflicts.size(),
                             conflicts.front()));
  for (const auto& rel : doomed) note_change("-", target + "/" + rel);
  if (options.dry_run) return result;
  if (mkdir(target.c_str(), 0700) != 0 && errno != EEXIST)
    return Error(Code::kIo, fmt::format("create target {}: {}", target, strerror(errno)));
  // A target this user may not write into fails once, here, not once per file.
  if (access(target.c_str(), W_OK | X_OK) != 0)
    return Error(Code::kIo, fmt::format("cannot write into target {}: {}; restore as a user who may write there, or choose "
                                        "another --target (nothing was written)", target, strerror(errno)));
  if (!beneath) {
    LB_ASSIGN_OR_RETURN(beneath, restorer::Beneath::open(target));
  }
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

  // Pass 2, a batch at a time: directories first, in tree order (each through its parent), then links
  // and special files, then the files' data pack by pack, then hard links. Directory metadata comes
  // last of all, deepest first, so writing their contents does not disturb their mtimes.
  restorer::DirHandles dirs(*beneath, restorer::directory_capacity());
  restorer::FileAssembler assembler(repo, dirs, options.verify, progress);
  std::vector<std::pair<std::string, Node>> dir_metadata;  // every directory written, in tree order
  TreeWalk walk(repo, options.includes);
  LB_RETURN_IF_ERROR(walk.start(tree));
  size_t ordinal = 0;  // the entry's place in the walk (decisions)
  std::vector<Action> actions;
  for (bool more = true; more;) {
    actions.clear();
    LB_ASSIGN_OR_RETURN(more, walk.next(actions, batch_entries, batch_blobs));
    auto decision = [&](size_t i) { return meets ? static_cast<Decision>(decisions[ordinal + i]) : Decision::kCreate; };
    std::deque<restorer::FileJob> jobs;
    std::vector<repo::BlobId> blobs;  // every blob of the batch's files, in tree order
    struct Use {
      restorer::FileJob* job;
      uint64_t offset;
      size_t next_same;  // the next use of the same blob, or kNone
    };
    constexpr size_t kNone = SIZE_MAX;
    std::vector<Use> uses;
    for (size_t i = 0; i < actions.size(); ++i) {
      if (interrupted()) break;
      const Action& a = actions[i];
      if (a.node.kind == NodeKind::kSocket || (a.node.kind == NodeKind::kFile && !a.link_to.empty())) continue;
      if (decision(i) == Decision::kKeep && a.node.kind != NodeKind::kDir) continue;
      std::string path = target + "/" + a.rel;
      if (a.node.kind == NodeKind::kDir) {
        if (Status s = dirs.make(a.rel); !s) fail(s);
        else result.dirs++;
        if (decision(i) != Decision::kKeep) {
          Node n = a.node;
          n.content.clear();
          dir_metadata.emplace_back(a.rel, std::move(n));
        }
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
      Status s = decision(i) == Decision::kCreate ? Status::ok() : restorer::remove_existing(at, path);
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
    if (interrupted()) {
      for (auto& job : jobs) assembler.abandon(job);
      assembler.add_to(result);
      return Error(Code::kInterrupted, "interrupted");
    }
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
    if (!read || interrupted()) {
      for (auto& job : jobs) assembler.abandon(job);
      assembler.add_to(result);
      return Error(Code::kInterrupted, "interrupted");
    }
    // Hard links: the first copy is in this batch or an earlier one, complete by now.
    for (size_t i = 0; i < actions.size(); ++i) {
      const Action& a = actions[i];
      if (a.link_to.empty() || decision(i) == Decision::kKeep) continue;
      std::string path = target + "/" + a.rel;
      auto to = dirs.entry(a.rel);
      auto from = to ? dirs.entry(a.link_to) : to;
      Status s = from ? restorer::remove_existing((*to)->at(), path) : from.status();
      if (s && linkat((*from)->dir, (*from)->name.c_str(), (*to)->dir, (*to)->name.c_str(), 0) != 0)
        s = Error(Code::kIo, fmt::format("hard link {}: {}", path, strerror(errno)));
      if (!s) fail(s);
      else result.files++;
    }
    ordinal += actions.size();
  }
  assembler.add_to(result);
  // Directory metadata last and deepest first. Each directory is opened through its parent without
  // following links, and changed through its descriptor.
  for (auto it = dir_metadata.rbegin(); it != dir_metadata.rend(); ++it) {
    std::string path = target + "/" + it->first;
    auto entry = dirs.entry(it->first);
    if (!entry) {
      fail(entry.status());
      continue;
    }
    int fd = openat((*entry)->dir, (*entry)->name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      fail(Error(Code::kIo, fmt::format("{}: {}", path, strerror(errno))));
      continue;
    }
    Status s = apply_metadata(path, fd, it->second);
    close(fd);
    if (!s) fail(s);
  }
  return result;
}

}  // namespace lifeboat::repo

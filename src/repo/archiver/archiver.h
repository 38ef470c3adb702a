// The archiver: stores paths of the local file system as a tree through a write session, reading only
// what changed since a parent tree. It commits nothing: the kind that calls it (files, config, models)
// makes the snapshot.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "repo/write_session.h"

namespace lifeboat::repo {

struct ArchiveOptions {
  std::vector<std::string> paths;     // absolute, normalized (absolute_path)
  std::vector<std::string> excludes;  // fnmatch patterns on the base name or the full path
  std::optional<BlobId> parent_tree;  // unchanged files (size, mtime, ctime, inode) are not read
  size_t threads = 0;                 // 0: one per core
};

// The tree of the paths stored through `session`, counted as a files snapshot's summary says.
struct ArchivedTree {
  BlobId tree{};
  nlohmann::json summary = nlohmann::json::object();  // files_new, files_changed, files_unmodified, dirs, total_bytes
  std::vector<std::string> unreadable;                // "path: reason" for each skipped entry
};
Result<ArchivedTree> archive_paths(Repository& repo, WriteSession& session, const ArchiveOptions& options,
                                   ProgressCounters& progress);

// Counts the files and bytes below `paths` into progress totals (for an ETA), until `stop`.
void count_path_totals(const std::vector<std::string>& paths, ProgressCounters& progress, const std::atomic<bool>& stop);

// Normalizes a user-given path into an absolute one without "." / ".." / duplicate slashes.
std::string absolute_path(const std::string& path);

// Reads a file descriptor as a byte stream.
class FdSource final : public ByteSource {
 public:
  // `waits`: the fd is a pipe that may stay silent; an interrupt must not wait for its next byte.
  FdSource(int fd, std::string path, bool waits = false) : fd_(fd), path_(std::move(path)), waits_(waits) {}
  Result<size_t> read(uint8_t* buf, size_t n) override;

 private:
  int fd_;
  std::string path_;
  bool waits_;
};

}  // namespace lifeboat::repo

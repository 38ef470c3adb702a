// The file assembler: a file's blobs arrive in pack order, from several threads, in any order; each
// file is written under no name (or a temporary one) and linked into place only when complete and
// authenticated.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "repo/restorer/restorer.h"
#include "repo/restorer/safe_path.h"

namespace lifeboat::repo::restorer {

// One entry of the tree to restore, in pre-order.
struct Action {
  std::string rel;  // path relative to the snapshot root
  Node node;
  std::string link_to;  // for a hard link: the relative path of the first copy
  std::vector<std::string> children;  // a directory's entry names, when the walk was asked for them
};

// A file being restored. Its blobs arrive in pack order, from several threads, in any order: the
// first opens an unnamed file (O_TMPFILE) in the parent directory, each is written at its offset,
// and the last one to arrive links the complete, authenticated file into place (atomic like
// temp+rename). Filesystems without O_TMPFILE get a temporary name instead.
struct FileJob {
  FileJob(const Action& a, std::string path, size_t blobs) : action(a), path(std::move(path)), pending(blobs) {}
  const Action& action;
  std::string path;            // for messages
  std::mutex mu;               // opening, the first error
  int fd = -1;
  std::shared_ptr<Beneath::Entry> place;
  std::string tmp;             // the temporary name, when O_TMPFILE is not supported
  std::string error;           // the first failure; the file is then never linked
  std::atomic<bool> failed{false};
  std::atomic<size_t> pending;              // blobs still to write
  std::atomic<uint64_t> data_end{0};        // where the furthest data write ended; past it, a hole
};

class FileAssembler {
 public:
  FileAssembler(Repository& repo, const DirHandles& dirs, bool verify, ProgressCounters& progress)
      : repo_(repo), dirs_(dirs), verify_(verify), progress_(progress) {}

  // One blob's bytes for the file at `offset` (or the reason they cannot be had). Thread-safe.
  void put(FileJob& job, uint64_t offset, const Result<Bytes>& data);
  // Called once all blobs were put (or at once for an empty file): links the file or reports why not.
  void finish(FileJob& job);
  // An interrupted restore: a file still waiting for blobs is dropped (an unnamed file vanishes on
  // close; a temporary name is removed), so nothing partial is left behind.
  void abandon(FileJob& job);
  void add_to(TreeRestoreResult& result);

 private:
  Status open(FileJob& job);
  void fail(FileJob& job, const Status& s);
  // Zero blocks are skipped, leaving holes: sparse files stay sparse. Runs of data are written at once.
  Status write_sparse(FileJob& job, const Bytes& data, uint64_t offset);
  Status link_into_place(FileJob& job);

  Repository& repo_;
  const DirHandles& dirs_;
  bool verify_;
  ProgressCounters& progress_;
  std::mutex mu_;
  uint64_t files_ = 0, bytes_ = 0, verified_ = 0;
  std::vector<std::string> errors_;
};

}  // namespace lifeboat::repo::restorer

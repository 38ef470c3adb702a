// Git repositories as mirrors, through libgit2: every ref (branches, tags, notes, anything under
// refs/), HEAD, and the Git LFS objects the history points to. A mirror is kept in the cache directory
// and fetched into, so a backup reads only new objects and stores only the new pack; its files are
// then stored like any directory.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace lifeboat::sources::config {

struct LfsPointer {
  std::string oid;  // SHA-256, hex
  uint64_t size = 0;
};

struct MirrorState {
  std::string dir;                          // the bare mirror
  std::string head;                         // HEAD's target ("refs/heads/main"), or "" when detached/unknown
  std::map<std::string, std::string> refs;  // ref name → object id (hex), every ref under refs/
  std::vector<LfsPointer> lfs;              // every LFS object the mirror's blobs point to
  uint64_t lfs_bytes = 0;
  std::vector<std::string> lfs_missing;     // "oid: why", objects that could not be brought in
};

// The cache folder for one source (a path or URL): $XDG_CACHE_HOME/lifeboat/git (or ~/.cache/…),
// named by a hash of the source without its credentials. The cache is private (0700); a URL's user
// and password are given per fetch and never written into a mirror's config.
std::string mirror_cache_dir(const std::string& source);

// Held while a mirror is seeded, fetched and stored: one process at a time per mirror (a second backup
// of the same repository waits, then fetches what is new). flock on DIR.lock, released by the kernel
// when the holder exits however it exits.
class MirrorLock {
 public:
  static Result<MirrorLock> acquire(const std::string& dir);
  MirrorLock(MirrorLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  MirrorLock& operator=(MirrorLock&&) = delete;
  ~MirrorLock();

 private:
  MirrorLock() = default;
  int fd_ = -1;
};

// Creates or updates the mirror of `source` in `dir` (the caller holds its MirrorLock): a URL's +refs/*:refs/* fetched with pruning, a
// local repository's new objects packed directly and its refs copied; HEAD set
// like the source's, LFS objects copied from a local source's LFS store and checked against their
// SHA-256, or for a URL source downloaded from its Git LFS server (lfs.url in the .lfsconfig at HEAD,
// else the endpoint derived from an http(s) URL; batch API, basic transfer) and checked the same
// way. A source that is not a repository, or a local one in the middle of a rebase, merge or
// cherry-pick, is an error naming it.
Result<MirrorState> update_mirror(const std::string& source, const std::string& dir);

// What a mirror directory holds now (refs, HEAD, LFS pointers found and which objects are present).
Result<MirrorState> read_mirror(const std::string& dir);

// Pushes every ref of the mirror in `dir` to `remote` (a URL or a path; a missing local path is
// created as a bare repository), forced, and copies LFS objects when the remote is local.
Status push_mirror(const std::string& dir, const std::string& remote);

// Checks a restored mirror: each of `refs` at the same object, every object readable (libgit2
// verifies each object's hash as it reads it), every LFS object present with its SHA-256.
// Returns the problems found (empty: equal).
std::vector<std::string> verify_mirror(const std::string& dir, const std::map<std::string, std::string>& refs,
                                       const std::vector<LfsPointer>& lfs);

}  // namespace lifeboat::sources::config

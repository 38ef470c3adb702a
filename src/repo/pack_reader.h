// Reads many blobs pack by pack (restore's read path): each pack once, one ranged read per run of needed blobs.
#pragma once

#include <functional>
#include <vector>

#include "core/status.h"
#include "repo/repository.h"

namespace lifeboat::repo {

struct PackOrderOptions {
  size_t threads = 0;  // packs read at once; 0: two per core on local storage, at least 8 on remote storage
};

// Groups `ids` by the pack that holds each (live index first, then tombstoned packs), takes the packs
// in the order of their first needed blob, and reads each pack's needed blobs in runs: neighbours
// closer than a gap (small on local disk, larger on object storage where a request costs a round
// trip) share one ranged read. Every blob is authenticated, decompressed and checked against its ID
// (Repository::open_blob) before `deliver` sees it; a run that cannot be read or a blob that does
// not decode falls back to Repository::read_blob for that blob, which fetches it once more and
// finds another copy when its pack is gone.
//
// `deliver(i, data)` is called exactly once per distinct ID, with `i` the position of its first
// occurrence in `ids`, on one of the reading threads (so it must be thread-safe), with the verified
// plaintext or the error that made the blob unreadable. Blobs the index does not know are delivered
// as errors before any pack is read. Returns an error only when interrupted.
Status read_in_pack_order(Repository& repo, const std::vector<BlobId>& ids, const PackOrderOptions& options,
                          const std::function<void(size_t, Result<Bytes>)>& deliver);

}  // namespace lifeboat::repo

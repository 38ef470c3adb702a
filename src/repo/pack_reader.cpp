// Pack-ordered blob reading: group by pack, merge neighbours into runs, read packs in parallel.
#include "repo/pack_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/interrupt.h"
#include "core/worker_pool.h"
#include "repo/backend_access.h"

namespace lifeboat::repo {

namespace {

// Kept small (no pack ID per blob): a restore of millions of blobs holds one of these for each.
struct Wanted {
  BlobId id;
  uint32_t offset, stored_len, raw_len;
  bool compressed;
  size_t first_use;  // position in the caller's list
};

struct PackGroup {
  PackId pack;
  std::vector<Wanted> blobs;
};

// Local disk: a syscall costs about what copying 32 KiB does, so only small gaps are read through.
// Object storage: a request costs a round trip, worth a megabyte of transfer on a fast link.
struct RunShape {
  uint64_t max_gap_bytes;
  uint64_t max_run_bytes;
};

void read_pack(Repository& repo, PackGroup& group, const RunShape& shape,
               const std::function<void(size_t, Result<Bytes>)>& deliver) {
  auto& blobs = group.blobs;
  std::sort(blobs.begin(), blobs.end(), [](const Wanted& a, const Wanted& b) { return a.offset < b.offset; });
  const std::string pack = to_hex(group.pack);
  for (size_t begin = 0; begin < blobs.size();) {
    uint64_t start = blobs[begin].offset;
    uint64_t end = start + blobs[begin].stored_len;
    size_t stop = begin + 1;
    while (stop < blobs.size()) {
      const auto& next = blobs[stop];
      uint64_t next_end = std::max<uint64_t>(end, uint64_t{next.offset} + next.stored_len);
      if (next.offset > end + shape.max_gap_bytes || next_end - start > shape.max_run_bytes) break;
      end = next_end;
      ++stop;
    }
    if (interrupted()) return;
    auto run = BackendAccess::of(repo).load({storage::FileType::kPack, pack}, start, end - start);
    for (size_t i = begin; i < stop; ++i) {
      const Wanted& w = blobs[i];
      Result<Bytes> data = Error(Code::kIo, "unread");
      if (run) {
        const BlobLocation loc{.pack = group.pack, .compressed = w.compressed, .offset = w.offset,
                               .stored_len = w.stored_len, .raw_len = w.raw_len};
        data = repo.open_blob(w.id, loc, ByteView(run->data() + (w.offset - start), w.stored_len));
      }
      // The run could not be read or this blob did not decode: the one-blob path fetches it again
      // and, when the pack is gone, looks for another copy.
      if (!data) data = repo.read_blob(w.id);
      deliver(w.first_use, std::move(data));
    }
    begin = stop;
  }
}

}  // namespace

Status read_in_pack_order(Repository& repo, const std::vector<BlobId>& ids, const PackOrderOptions& options,
                          const std::function<void(size_t, Result<Bytes>)>& deliver) {
  LB_RETURN_IF_ERROR(repo.load_index());
  std::vector<PackGroup> packs;
  {
    std::unordered_map<PackId, size_t, BlobIdHash> slot_of_pack;
    std::unordered_set<BlobId, BlobIdHash> seen;
    for (size_t i = 0; i < ids.size(); ++i) {
      const BlobId& id = ids[i];
      if (!seen.insert(id).second) continue;
      auto loc = repo.index().find(id);
      if (!loc) loc = repo.tombstoned().find(id);
      if (!loc) {
        deliver(i, Error(Code::kCorrupt, fmt::format("blob {} is not in the index (missing data; run 'lifeboat check')",
                                                     short_hex(id))));
        continue;
      }
      auto [it, fresh] = slot_of_pack.emplace(loc->pack, packs.size());
      if (fresh) packs.push_back({loc->pack, {}});
      packs[it->second].blobs.push_back({id, loc->offset, loc->stored_len, loc->raw_len, loc->compressed, i});
    }
  }
  const bool remote = BackendAccess::of(repo).remote();
  const RunShape shape = remote ? RunShape{1 << 20, 16 << 20} : RunShape{32 << 10, 4 << 20};
  size_t threads = options.threads;
  if (!threads) threads = remote ? std::max<size_t>(8, 2 * WorkerPool::default_threads()) : 2 * WorkerPool::default_threads();
  threads = std::max<size_t>(1, std::min(threads, packs.size()));

  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < packs.size() && !interrupted();) read_pack(repo, packs[k], shape, deliver);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (interrupted()) return Error(Code::kInterrupted, "interrupted");
  return Status::ok();
}

}  // namespace lifeboat::repo

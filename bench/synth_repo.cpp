// Builds a synthetic repository for the prune/check benchmark: N small unique blobs and S snapshots,
// each snapshot covering a sliding window of the blobs (so forgetting old ones frees whole packs and
// leaves others partly used). `synth_repo --measure-index REPO` measures the in-memory index's bytes
// per entry in a process that does nothing else (opens the repository, loads its index): measured in
// the process that built the repository, freed build buffers would count as index. It prints what
// the loaded index kept (resident after minus before) and the peak while loading (VmHWM minus the
// resident size before). `synth_repo --index-only REPO BLOBS` writes only index files (200,000
// entries each, 4,000 per pack, packs that do not exist): enough for --measure-index at 50 M blobs
// without writing the data.
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/time.h"
#include "repo/index.h"
#include "repo/repository.h"
#include "repo/write_session.h"
#include "storage/local_backend.h"

using namespace lifeboat;

static long status_kib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  return 0;
}

static long rss_kib() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  f >> pages_total >> pages_resident;
  return pages_resident * sysconf(_SC_PAGESIZE) / 1024;
}

int main(int argc, char** argv) {
  if (argc < 3 || (argc < 4 && std::string(argv[1]) != "--measure-index")) {
    fmt::print(stderr, "usage: synth_repo REPO BLOBS SNAPSHOTS | synth_repo --index-only REPO BLOBS | synth_repo "
                       "--measure-index REPO   (password from LIFEBOAT_PASSWORD)\n");
    return 2;
  }
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);  // as the lifeboat binary does
  const char* pw = getenv("LIFEBOAT_PASSWORD");
  if (std::string(argv[1]) == "--measure-index") {
    auto again = repo::Repository::open(std::make_unique<storage::LocalBackend>(argv[2]), pw ? pw : "bench");
    if (!again) {
      fmt::print(stderr, "{}\n", again.status().message());
      return 1;
    }
    long before = rss_kib();
    int64_t t0 = monotonic_ns();
    if (!(*again)->load_index()) return 1;
    double secs = static_cast<double>(monotonic_ns() - t0) / 1e9;
    long after = rss_kib(), peak = status_kib("VmHWM:");
    size_t n = (*again)->index().blob_count();
    fmt::print("{{\"index_entries\": {}, \"index_rss_bytes\": {}, \"bytes_per_entry\": {:.1f}, "
               "\"load_peak_bytes_per_entry\": {:.1f}, \"load_seconds\": {:.1f}}}\n",
               n, (after - before) * 1024, static_cast<double>(after - before) * 1024 / static_cast<double>(n),
               static_cast<double>(peak - before) * 1024 / static_cast<double>(n), secs);
    return 0;
  }
  if (std::string(argv[1]) == "--index-only") {
    repo::InitOptions o;
    o.kdf = {1024, 1, 1};
    auto r = repo::Repository::init(std::make_unique<storage::LocalBackend>(argv[2]), pw ? pw : "bench", o);
    if (!r) {
      fmt::print(stderr, "{}\n", r.status().message());
      return 1;
    }
    size_t blobs = std::stoul(argv[3]);
    uint64_t x = 0x2545F4914F6CDD1Dull;
    auto next = [&] {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      return x;
    };
    repo::IndexFile file;
    size_t in_file = 0;
    for (size_t i = 0; i < blobs;) {
      repo::IndexFile::Pack pack;
      for (size_t k = 0; k < pack.id.size(); k += 8) {
        uint64_t v = next();
        memcpy(pack.id.data() + k, &v, 8);
      }
      uint32_t offset = 0;
      for (size_t k = 0; k < 4000 && i < blobs; ++k, ++i) {
        repo::PackEntry e;
        for (size_t b = 0; b < e.id.size(); b += 8) {
          uint64_t v = next();
          memcpy(e.id.data() + b, &v, 8);
        }
        e.compressed = (i & 1) != 0;
        e.offset = offset;
        e.stored_len = 1000 + static_cast<uint32_t>(next() % 60000);
        e.raw_len = e.stored_len + 500;
        offset += e.stored_len;
        pack.entries.push_back(e);
      }
      in_file += pack.entries.size();
      file.packs.push_back(std::move(pack));
      if (in_file >= 200000 || i == blobs) {
        if (auto n = (*r)->save_file(repo::FileType::kIndex, file.encode()); !n) {
          fmt::print(stderr, "{}\n", n.status().message());
          return 1;
        }
        file = {};
        in_file = 0;
      }
    }
    fmt::print("{{\"index_only_blobs\": {}}}\n", blobs);
    return 0;
  }
  std::string dir = argv[1];
  size_t blobs = std::stoul(argv[2]), snapshots = std::stoul(argv[3]);
  repo::InitOptions o;
  o.kdf = {1024, 1, 1};
  auto r = repo::Repository::init(std::make_unique<storage::LocalBackend>(dir), pw ? pw : "bench", o);
  if (!r) {
    fmt::print(stderr, "{}\n", r.status().message());
    return 1;
  }
  auto& repo = **r;
  std::vector<repo::BlobId> ids(blobs);
  {
    repo::WriteSession s(repo);
    uint8_t buf[128];
    for (size_t i = 0; i < blobs; ++i) {
      uint64_t x = i * 0x9E3779B97F4A7C15ull + 7;
      for (size_t k = 0; k < sizeof buf; k += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(buf + k, &x, 8);
      }
      ids[i] = repo.blob_id({buf, sizeof buf});
      if (auto st = s.add_blob(repo::BlobType::kData, ids[i], {buf, sizeof buf}); !st) {
        fmt::print(stderr, "{}\n", st.message());
        return 1;
      }
    }
    size_t window = std::min(blobs, blobs / 5 + 1);
    size_t step = snapshots > 1 ? (blobs - window) / (snapshots - 1) : 0;
    int64_t now = now_unix_ns();
    for (size_t sn = 0; sn < snapshots; ++sn) {
      repo::Tree tree;
      size_t start = sn * step;
      for (size_t f = 0; f * 1000 < window; ++f) {
        repo::Node n;
        n.name = fmt::format("file{:05}", f);
        n.mode = 0644;
        for (size_t b = start + f * 1000; b < std::min(start + window, start + (f + 1) * 1000); ++b)
          n.content.push_back(ids[b]);
        n.size = n.content.size() * 128;
        tree.nodes.push_back(std::move(n));
      }
      auto tid = s.store_tree(tree);
      repo::Snapshot snap;
      snap.time_ns = now - static_cast<int64_t>(snapshots - sn) * 86400LL * 1000000000;
      snap.hostname = "synthetic";
      snap.paths = {"/synthetic"};
      snap.tree = *tid;
      if (auto c = s.commit(snap); !c) {
        fmt::print(stderr, "{}\n", c.status().message());
        return 1;
      }
    }
  }
  fmt::print("{{\"blobs\": {}, \"snapshots\": {}}}\n", blobs, snapshots);
  return 0;
}

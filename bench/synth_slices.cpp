// Builds a repository holding a simulated year of continuous MongoDB capture for one deployment, as
// `lifeboat mongodb follow` and the plan's backups would leave it without any tidying: a daily full
// backup (empty collections) for every day, one-minute oplog slices (one entry each) for the newest
// `minute_days` days and, for the older days, the hourly slices such a year would hold at least (a
// year of minute slices is 525,600 snapshot files; writing them all would only measure this
// generator). Used by bench/slices_bench.py.
#include <bson/bson.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "core/time.h"
#include "repo/repository.h"
#include "repo/write_session.h"
#include "sources/mongodb/mongo_backup.h"
#include "storage/local_backend.h"

using namespace lifeboat;
namespace mdb = lifeboat::sources::mongodb;

static Bytes entry(uint32_t t, uint32_t i) {
  bson_t* d = BCON_NEW("ts", BCON_TIMESTAMP(t, i), "op", BCON_UTF8("i"), "ns", BCON_UTF8("shop.orders"), "o", "{", "_id",
                       BCON_INT64(int64_t{t} * 1000 + i), "}");
  Bytes out(bson_get_data(d), bson_get_data(d) + d->len);
  bson_destroy(d);
  return out;
}

static Status commit(repo::Repository& repo, const char* source, nlohmann::json meta, const Bytes& oplog, int64_t time_ns,
                     const std::string& name) {
  repo::WriteSession session(repo);
  repo::MemorySource src(ByteView(oplog.data(), oplog.size()));
  LB_ASSIGN_OR_RETURN(auto stored, session.store_stream(src, nullptr, false));
  repo::Tree root;
  if (std::string(source) == mdb::kFullSource) {
    repo::Node dir;
    dir.kind = repo::NodeKind::kDir;
    dir.name = "shop";
    dir.mode = 0755;
    LB_ASSIGN_OR_RETURN(auto empty, session.store_tree(repo::Tree{}));
    dir.subtree = empty;
    root.nodes.push_back(std::move(dir));
  }
  repo::Node n;
  n.kind = repo::NodeKind::kFile;
  n.name = mdb::kOplogFile;
  n.mode = 0644;
  n.size = stored.size_bytes;
  n.content = stored.content;
  root.nodes.push_back(std::move(n));
  root.sort();
  LB_ASSIGN_OR_RETURN(auto root_id, session.store_tree(root));
  repo::Snapshot snap;
  snap.time_ns = time_ns;
  snap.hostname = "synthetic";
  snap.username = "bench";
  snap.source = source;
  snap.paths = {name};
  snap.tags = {"source:" + name};
  snap.tree = root_id;
  snap.metadata = std::move(meta);
  return session.commit(snap).status();
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: synth_slices REPO DAYS [MINUTE_DAYS]   (password from LIFEBOAT_PASSWORD)\n");
    return 2;
  }
  std::string dir = argv[1];
  int days = std::atoi(argv[2]), minute_days = argc > 3 ? std::atoi(argv[3]) : 2;
  const char* pw = getenv("LIFEBOAT_PASSWORD");
  repo::InitOptions io;
  io.kdf = {1024, 1, 1};
  auto r = repo::Repository::init(std::make_unique<storage::LocalBackend>(dir), pw ? pw : "bench", io);
  if (!r) {
    fmt::print(stderr, "{}\n", r.status().message());
    return 1;
  }
  auto& repo = **r;
  const std::string name = "eyewear-mongo";
  uint32_t now_s = static_cast<uint32_t>(now_unix_ns() / 1000000000) / 60 * 60;
  uint32_t start_s = now_s - static_cast<uint32_t>(days) * 86400;
  mdb::OplogTime pos{start_s, 1};
  uint64_t fulls = 0, slices = 0;
  auto slice = [&](uint32_t until_s) -> Status {
    mdb::OplogTime to{until_s, 1};
    nlohmann::json m = {{"kind", "oplog-slice"}, {"from", mdb::oplog_time_json(pos)}, {"to", mdb::oplog_time_json(to)},
                        {"entries", 1}, {"gap", false}, {"proved_through_s", until_s + 30},
                        {"proof", "server clock (hello.localTime) with no newer oplog entry"}};
    LB_RETURN_IF_ERROR(commit(repo, mdb::kSliceSource, m, entry(until_s, 1), int64_t{until_s} * 1000000000, name));
    pos = to;
    ++slices;
    return Status::ok();
  };
  for (int d = 0; d < days; ++d) {
    uint32_t day = start_s + static_cast<uint32_t>(d) * 86400;
    nlohmann::json fm = {{"kind", "full"},
                         {"server", "mongodb://synthetic"},
                         {"databases", {"shop"}},
                         {"collections", nlohmann::json::array()},
                         {"oplog_entries", 0},
                         {"oplog_start", mdb::oplog_time_json(pos)},
                         {"oplog_end", mdb::oplog_time_json(pos)},
                         {"proved_through_s", pos.t},
                         {"finished_ns", int64_t{day} * 1000000000}};
    if (auto s = commit(repo, mdb::kFullSource, fm, {}, int64_t{day} * 1000000000, name); !s) {
      fmt::print(stderr, "{}\n", s.message());
      return 1;
    }
    ++fulls;
    bool minutes = d >= days - minute_days;
    uint32_t step = minutes ? 60 : 3600;
    for (uint32_t t = day + step; t <= day + 86400; t += step)
      if (auto s = slice(t); !s) {
        fmt::print(stderr, "{}\n", s.message());
        return 1;
      }
  }
  fmt::print("{{\"fulls\": {}, \"slices\": {}, \"first_s\": {}, \"last_s\": {}}}\n", fulls, slices, start_s, pos.t);
  return 0;
}

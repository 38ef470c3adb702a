// Appends to a repository one oplog slice in the shapes a production MongoDB writes and FerretDB
// cannot (its oplog refuses field names starting with '$'): $v:2 delta updates and multi-document
// transactions (applyOps), continuing the newest full backup of a deployment whose collection
// bench.items holds documents _id 0..DOCS-1 shaped as bench/mongo_bench.py seeds them. Used by
// bench/mongo_bench.py's replay phase and by tests/e2e/test_mongodb_production_oplog.py, which reads
// the entries back from OPLOG_OUT (when given) to compute the expected state itself. Prints
// {"entries": N, "operations": M, "from": t, "to": t}.
#include <bson/bson.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "core/time.h"
#include "repo/repository.h"
#include "repo/write_session.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/source_kind.h"
#include "storage/local_backend.h"

using namespace lifeboat;
namespace mdb = lifeboat::sources::mongodb;

namespace {

void append(Bytes& out, bson_t* d) {
  out.insert(out.end(), bson_get_data(d), bson_get_data(d) + d->len);
  bson_destroy(d);
}

// A delta update of item `id`: a new price and quantity, a tag rewritten in place, one field added.
bson_t* delta(int64_t id, uint32_t n) {
  return BCON_NEW("op", BCON_UTF8("u"), "ns", BCON_UTF8("bench.items"), "o", "{", "$v", BCON_INT32(2), "diff", "{", "u",
                  "{", "price", BCON_DOUBLE(n % 1000 / 10.0), "qty", BCON_INT32(static_cast<int32_t>(n % 17)), "}", "i",
                  "{", "seen", BCON_INT32(static_cast<int32_t>(n)), "}", "stags", "{", "a", BCON_BOOL(true), "u1",
                  BCON_UTF8(n % 2 ? "lens" : "case"), "}", "}", "}", "o2", "{", "_id",
                  BCON_INT32(static_cast<int32_t>(id)), "}");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    fmt::print(stderr,
               "usage: synth_oplog REPO NAME DOCS DELTAS TXNS OPS_PER_TXN [OPLOG_OUT]   (password from "
               "LIFEBOAT_PASSWORD)\n");
    return 2;
  }
  std::string dir = argv[1], name = argv[2];
  int64_t docs = std::atoll(argv[3]);
  uint32_t deltas = static_cast<uint32_t>(std::atol(argv[4])), txns = static_cast<uint32_t>(std::atol(argv[5]));
  uint32_t per_txn = static_cast<uint32_t>(std::atol(argv[6]));
  const char* pw = getenv("LIFEBOAT_PASSWORD");
  auto opened = repo::Repository::open(std::make_unique<storage::LocalBackend>(dir), pw ? pw : "bench");
  if (!opened) {
    fmt::print(stderr, "{}\n", opened.status().message());
    return 1;
  }
  auto& repo = **opened;
  auto fail = [](const Status& s) {
    fmt::print(stderr, "{}\n", s.message());
    return 1;
  };
  auto snaps = repo.list_snapshots();
  if (!snaps) return fail(snaps.status());
  std::optional<mdb::OplogTime> end;
  for (const auto& s : *snaps)
    if (s.snapshot.source == mdb::kFullSource && !s.snapshot.paths.empty() && s.snapshot.paths[0] == name)
      end = mdb::oplog_time_from_json(s.snapshot.metadata.value("oplog_end", nlohmann::json()));
  if (!end) return fail(Error(Code::kNotFound, "no full backup with an oplog named " + name));

  // Entries one second after the backup's end, 1000 to a second; the transactions' inserts make new
  // items and their updates touch existing ones.
  std::mt19937_64 rng(42);
  Bytes oplog;
  uint32_t t = end->t + 1, i = 0, entries = 0;
  uint64_t operations = 0;
  auto next_ts = [&] {
    if (++i > 1000) {
      ++t;
      i = 1;
    }
    ++entries;
    return mdb::OplogTime{t, i};
  };
  uint32_t every = txns ? std::max<uint32_t>(1, deltas / txns) : deltas + 1;
  int64_t new_id = docs;
  for (uint32_t n = 0, done_txns = 0; n < deltas || done_txns < txns; ++n) {
    if (n < deltas) {
      auto ts = next_ts();
      bson_t* d = delta(static_cast<int64_t>(rng() % static_cast<uint64_t>(docs)), n);
      BSON_APPEND_TIMESTAMP(d, "ts", ts.t, ts.i);
      append(oplog, d);
      ++operations;
    }
    if (done_txns < txns && (n % every == every - 1 || n >= deltas)) {
      auto ts = next_ts();
      bson_t* e = BCON_NEW("op", BCON_UTF8("c"), "ns", BCON_UTF8("admin.$cmd"), "lsid", "{", "id",
                           BCON_INT64(static_cast<int64_t>(done_txns)), "}", "txnNumber", BCON_INT64(1));
      bson_t o, ops;
      BSON_APPEND_DOCUMENT_BEGIN(e, "o", &o);
      BSON_APPEND_ARRAY_BEGIN(&o, "applyOps", &ops);
      for (uint32_t k = 0; k < per_txn; ++k) {
        bson_t* op = k % 2 ? delta(static_cast<int64_t>(rng() % static_cast<uint64_t>(docs)), n + k)
                           : BCON_NEW("op", BCON_UTF8("i"), "ns", BCON_UTF8("bench.items"), "o", "{", "_id",
                                      BCON_INT32(static_cast<int32_t>(new_id++)), "sku", BCON_UTF8("NEW"), "qty",
                                      BCON_INT32(1), "}");
        BSON_APPEND_DOCUMENT(&ops, std::to_string(k).c_str(), op);
        bson_destroy(op);
        ++operations;
      }
      bson_append_array_end(&o, &ops);
      bson_append_document_end(e, &o);
      BSON_APPEND_TIMESTAMP(e, "ts", ts.t, ts.i);
      append(oplog, e);
      ++done_txns;
    }
  }

  if (argc > 7) {
    FILE* out = std::fopen(argv[7], "wb");
    if (!out || std::fwrite(oplog.data(), 1, oplog.size(), out) != oplog.size() || std::fclose(out) != 0)
      return fail(Error(Code::kIo, fmt::format("writing {}", argv[7])));
  }
  repo::WriteSession session(repo);
  repo::MemorySource src(ByteView(oplog.data(), oplog.size()));
  auto stored = session.store_stream(src, nullptr, false);
  if (!stored) return fail(stored.status());
  repo::Tree root;
  repo::Node node;
  node.kind = repo::NodeKind::kFile;
  node.name = mdb::kOplogFile;
  node.mode = 0644;
  node.size = stored->size_bytes;
  node.content = stored->content;
  root.nodes.push_back(std::move(node));
  auto root_id = session.store_tree(root);
  if (!root_id) return fail(root_id.status());
  mdb::OplogTime to{t, i};
  repo::Snapshot snap;
  snap.time_ns = int64_t{t} * kNsPerSecond;
  snap.hostname = "synthetic";
  snap.username = "bench";
  snap.source = mdb::kSliceSource;
  snap.paths = {name};
  snap.tags = {sources::source_tag(name)};
  snap.tree = *root_id;
  snap.metadata = {{"kind", "oplog-slice"},
                   {"from", mdb::oplog_time_json(*end)},
                   {"to", mdb::oplog_time_json(to)},
                   {"entries", entries},
                   {"gap", false},
                   {"proved_through_s", t + 1},
                   {"proof", "synthetic (bench/synth_oplog.cpp)"}};
  if (auto c = session.commit(snap); !c) return fail(c.status());
  fmt::print("{{\"entries\": {}, \"operations\": {}, \"from\": {}, \"to\": {}}}\n", entries, operations, end->t, t);
  return 0;
}

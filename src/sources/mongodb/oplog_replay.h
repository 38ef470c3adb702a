// What a restore replays from a stored oplog: every entry shape MongoDB 4.4-8.0 writes, read in
// order and turned into the changes it commits (transactions unpacked at their commit point), with
// anything we do not know stopping the replay before it (docs/mongodb-oplog.md lists the shapes).
#pragma once

#include <bson/bson.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sources/mongodb/mongo_client.h"
#include "sources/mongodb/restore_sink.h"

namespace lifeboat::sources::mongodb {

// An entry the replay does not know: where it is and why it was refused.
struct UnknownEntry {
  OplogTime ts;
  std::string op, first_key, why;
  std::string describe() const;  // "ts 1732540000:3, op c, o.fooCommand: a command this version does not know"
};

// Turns the stored oplog, entry by entry and in order, into the changes a sink applies. Each change
// is an oplog-shaped document (op, ns, o, o2, ts) whose namespaces are already mapped to the target;
// commands reach the sink only when they are in the list the sinks replay.
// - applyOps (a transaction's commit, or the command itself): its inner operations, at its ts;
// - a partialTxn chain (o.partialTxn: true, linked by prevOpTime): held until the entry that ends it;
// - a prepared transaction (o.prepare: true): held until commitTransaction, which applies it at the
//   commit entry's position; abortTransaction drops it;
// - entries for config.*, local.*, admin.* (but admin.$cmd's transactions), *.system.* and
//   databases not restored are skipped by rule, as are no-op (n) entries and dbCheck;
// - anything else is unknown: feed returns it, and the caller stops before the entry (or, told to
//   skip unknown entries, counts it in skipped() and goes on).
class OplogUnpacker {
 public:
  OplogUnpacker(const NsFilter& filter, bool skip_unknown) : filter_(filter), skip_unknown_(skip_unknown) {}

  using Apply = std::function<Status(const BsonDoc& change)>;
  // Feeds the next stored entry. An unknown entry sets `unknown` (and applies nothing of it) unless
  // skipping them; errors are the sink's, or a damaged stream.
  Status feed(const bson_t* entry, const Apply& apply, std::optional<UnknownEntry>& unknown);

  // Unknown entries skipped because the caller asked to, in order (at most the first 20 described).
  const std::vector<std::string>& skipped() const { return skipped_; }
  uint64_t skipped_count() const { return skipped_count_; }
  // The first entry of the oldest transaction still open (a partialTxn chain or a prepared
  // transaction not yet committed): a replay resumed later must read from there to apply it whole.
  std::optional<OplogTime> oldest_open() const;

 private:
  struct OpenTxn {
    std::vector<BsonDoc> ops;  // inner operations, as logged
    bool prepared = false;
    OplogTime first;  // its first entry
  };
  // The operations of an applyOps, as logged; a malformed one sets `bad` (or is skipped and counted).
  void unpack_apply_ops(const bson_t* o, OplogTime ts, std::vector<BsonDoc>& into, std::optional<UnknownEntry>& bad);
  // One operation (top-level or inside applyOps) checked and mapped; nullopt: skipped by rule, or
  // unknown (then `bad` is set unless skipping them).
  std::optional<BsonDoc> map_change(const bson_t* op, OplogTime ts, std::optional<UnknownEntry>& bad);
  // Records an unknown entry: the first one in `unknown`, or counted and named when skipping them.
  void refuse(UnknownEntry e, std::optional<UnknownEntry>& unknown);

  const NsFilter& filter_;
  bool skip_unknown_;
  std::map<std::string, OpenTxn> open_;  // by session: lsid + txnNumber
  std::vector<std::string> skipped_;
  uint64_t skipped_count_ = 0;
};

// The commands a sink must replay, by o's first key.
bool is_replayed_command(const std::string& name);

}  // namespace lifeboat::sources::mongodb

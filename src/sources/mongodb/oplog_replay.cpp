// Stored oplog entries turned into the changes a restore applies (rules in oplog_replay.h).
#include "sources/mongodb/oplog_replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace lifeboat::sources::mongodb {

namespace {

// The commands the sinks replay (first key of o). applyOps, commitTransaction and abortTransaction
// are the unpacker's own.
constexpr std::array<const char*, 13> kReplayedCommands = {"create",           "drop",
                                                           "dropDatabase",     "renameCollection",
                                                           "createIndexes",    "startIndexBuild",
                                                           "commitIndexBuild", "abortIndexBuild",
                                                           "dropIndexes",      "deleteIndexes",
                                                           "collMod",          "convertToCapped",
                                                           "emptycapped"};

// Commands that change no data and no collection: skipped by rule, never refused.
constexpr std::array<const char*, 1> kNoDataCommands = {"dbCheck"};

template <size_t N>
bool listed(const std::array<const char*, N>& list, const std::string& name) {
  return std::any_of(list.begin(), list.end(), [&](const char* c) { return name == c; });
}

bool bool_field(const bson_t* doc, const char* field) {
  bson_iter_t it;
  return bson_iter_init_find(&it, doc, field) && bson_iter_as_bool(&it);
}

// A transaction's session: lsid and txnNumber, as bytes.
std::string session_key(const bson_t* entry) {
  std::string key;
  bson_iter_t it;
  if (bson_iter_init_find(&it, entry, "lsid") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&it, &len, &data);
    key.assign(reinterpret_cast<const char*>(data), len);
  }
  if (bson_iter_init_find(&it, entry, "txnNumber")) key += fmt::format("#{}", bson_iter_as_int64(&it));
  return key;
}

// `op` with its ns replaced, its o replaced when `o` is given, and ts set to `ts`.
BsonDoc rewrite(const bson_t* op, const std::string& ns, const bson_t* o, OplogTime ts) {
  BsonDoc out;
  bson_iter_t it;
  bson_iter_init(&it, op);
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (k == "ts") continue;
    if (k == "ns")
      bson_append_utf8(out.get(), "ns", 2, ns.c_str(), -1);
    else if (k == "o" && o)
      bson_append_document(out.get(), "o", 1, o);
    else
      bson_append_iter(out.get(), k.c_str(), static_cast<int>(k.size()), &it);
  }
  bson_append_timestamp(out.get(), "ts", 2, ts.t, ts.i);
  return out;
}

// `o` with the string fields named in `values` replaced by theirs (the full namespaces of a rename).
BsonDoc with_strings(const bson_t* o, const std::map<std::string, std::string>& values) {
  BsonDoc out;
  bson_iter_t it;
  bson_iter_init(&it, o);
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    auto v = values.find(k);
    if (v != values.end())
      bson_append_utf8(out.get(), k.c_str(), static_cast<int>(k.size()), v->second.c_str(), -1);
    else
      bson_append_iter(out.get(), k.c_str(), static_cast<int>(k.size()), &it);
  }
  return out;
}

bool system_collection(const std::string& coll) {
  return coll.starts_with("system.");
}

}  // namespace

bool is_replayed_command(const std::string& name) {
  return listed(kReplayedCommands, name);
}

std::string UnknownEntry::describe() const {
  return fmt::format("ts {}, op {}{}: {}", ts.to_string(), op.empty() ? "(none)" : op,
                     first_key.empty() ? "" : ", o." + first_key, why);
}

void OplogUnpacker::refuse(UnknownEntry e, std::optional<UnknownEntry>& unknown) {
  if (!skip_unknown_) {
    if (!unknown) unknown = std::move(e);
    return;
  }
  ++skipped_count_;
  if (skipped_.size() < 20) skipped_.push_back(e.describe());
}

std::optional<BsonDoc> OplogUnpacker::map_change(const bson_t* op, OplogTime ts, std::optional<UnknownEntry>& bad) {
  std::string name = bson_string(op, "op");
  auto [db, coll] = split_namespace(bson_string(op, "ns"));
  auto o = bson_sub_document(op, "o");
  auto unknown = [&](std::string why) -> std::optional<BsonDoc> {
    refuse(UnknownEntry{ts, name, o ? bson_first_key(o->get()) : "", std::move(why)}, bad);
    return std::nullopt;
  };
  if (name == "n") return std::nullopt;
  if (name != "i" && name != "u" && name != "d" && name != "c")
    return unknown("an operation type this version does not know");
  if (!o) return unknown("the entry has no o document");
  if (name != "c") {
    if (coll.empty()) return unknown("a data change without a collection in ns");
    if (!filter_.selected(db) || system_collection(coll)) return std::nullopt;
    if (name == "u") {
      auto o2 = bson_sub_document(op, "o2");
      if (!o2 || !bson_has_field(o2->get(), "_id")) return unknown("an update without o2._id");
      bson_iter_t v;
      if (bson_iter_init_find(&v, o->get(), "$v")) {
        int64_t version = bson_iter_as_int64(&v);
        if (version == 2 && !bson_sub_document(o->get(), "diff"))
          return unknown("a $v:2 update without a diff document");
        if (version != 1 && version != 2)
          return unknown(fmt::format("an update format $v:{} this version does not know", version));
      }
    } else if (!bson_has_field(o->get(), "_id")) {
      return unknown(name == "i" ? "an insert without _id" : "a delete without _id");
    }
    return rewrite(op, filter_.target(db) + "." + coll, nullptr, ts);
  }
  std::string cmd = bson_first_key(o->get());
  if (listed(kNoDataCommands, cmd)) return std::nullopt;
  if (!is_replayed_command(cmd)) return unknown("a command this version does not know");
  if (cmd == "renameCollection") {
    std::string from = bson_string(o->get(), "renameCollection"), to = bson_string(o->get(), "to");
    auto [from_db, from_coll] = split_namespace(from);
    auto [to_db, to_coll] = split_namespace(to);
    if (from_coll.empty() || to_coll.empty()) return unknown("a rename without full source and target names");
    bool from_kept = filter_.selected(from_db) && !system_collection(from_coll);
    bool to_kept = filter_.selected(to_db) && !system_collection(to_coll);
    if (!from_kept && !to_kept) return std::nullopt;
    if (!from_kept)
      return unknown(fmt::format("a rename into {} from {}, whose documents this restore does not hold", to, from));
    if (!to_kept) {
      // The collection leaves what is restored: for the target, a drop.
      BsonDoc drop;
      bson_append_utf8(drop.get(), "drop", 4, from_coll.c_str(), -1);
      return rewrite(op, filter_.target(from_db) + ".$cmd", drop.get(), ts);
    }
    BsonDoc mapped = with_strings(o->get(), {{"renameCollection", filter_.target(from_db) + "." + from_coll},
                                             {"to", filter_.target(to_db) + "." + to_coll}});
    return rewrite(op, filter_.target(from_db) + ".$cmd", mapped.get(), ts);
  }
  if (!filter_.selected(db)) return std::nullopt;
  if (cmd != "dropDatabase") {
    bson_iter_t target;
    if (!bson_iter_init_find(&target, o->get(), cmd.c_str()) || !BSON_ITER_HOLDS_UTF8(&target))
      return unknown(fmt::format("{} without a collection name", cmd));
    if (system_collection(bson_iter_utf8(&target, nullptr))) return std::nullopt;
  }
  return rewrite(op, filter_.target(db) + ".$cmd", nullptr, ts);
}

void OplogUnpacker::unpack_apply_ops(const bson_t* o, OplogTime ts, std::vector<BsonDoc>& into,
                                     std::optional<UnknownEntry>& bad) {
  bson_iter_t it, arr;
  if (!bson_iter_init_find(&it, o, "applyOps") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
    return refuse(UnknownEntry{ts, "c", "applyOps", "applyOps is not an array of operations"}, bad);
  while (bson_iter_next(&arr)) {
    auto inner = BSON_ITER_HOLDS_DOCUMENT(&arr) ? [&] {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&arr, &len, &data);
      bson_t* d = bson_new_from_data(data, len);
      return d ? std::optional<BsonDoc>(BsonDoc(d)) : std::optional<BsonDoc>();
    }() : std::optional<BsonDoc>();
    if (!inner) {
      refuse(UnknownEntry{ts, "c", "applyOps", "an element of applyOps is not a document"}, bad);
      if (bad) return;
      continue;
    }
    std::string name = bson_string(inner->get(), "op");
    if (name == "c") {
      auto io = bson_sub_document(inner->get(), "o");
      std::string cmd = io ? bson_first_key(io->get()) : "";
      if (cmd == "applyOps" || cmd == "commitTransaction" || cmd == "abortTransaction") {
        refuse(UnknownEntry{ts, "c", "applyOps", fmt::format("{} nested inside applyOps", cmd)}, bad);
        if (bad) return;
        continue;
      }
    }
    into.push_back(std::move(*inner));
  }
}

std::optional<OplogTime> OplogUnpacker::oldest_open() const {
  std::optional<OplogTime> out;
  for (const auto& [key, txn] : open_)
    if (!out || txn.first < *out) out = txn.first;
  return out;
}

Status OplogUnpacker::feed(const bson_t* entry, const Apply& apply, std::optional<UnknownEntry>& unknown) {
  auto ts = bson_timestamp(entry, "ts").value_or(OplogTime{});
  std::string name = bson_string(entry, "op");
  auto o = bson_sub_document(entry, "o");
  std::string cmd = name == "c" && o ? bson_first_key(o->get()) : "";
  // Applies `ops` (as logged) at `at`, each checked and mapped; an unknown one stops all of them
  // before anything is applied, so a transaction is applied whole or not at all.
  auto apply_all = [&](const std::vector<BsonDoc>& ops, OplogTime at) -> Status {
    std::vector<BsonDoc> mapped;
    for (const auto& op : ops) {
      auto m = map_change(op.get(), at, unknown);
      if (unknown) return Status::ok();
      if (m) mapped.push_back(std::move(*m));
    }
    for (const auto& m : mapped) LB_RETURN_IF_ERROR(apply(m));
    return Status::ok();
  };
  if (cmd == "applyOps") {
    std::vector<BsonDoc> ops;
    unpack_apply_ops(o->get(), ts, ops, unknown);
    if (unknown) return Status::ok();
    std::string key = session_key(entry);
    if (bool_field(o->get(), "partialTxn") || bool_field(o->get(), "prepare")) {
      auto [it, fresh] = open_.try_emplace(key);
      auto& txn = it->second;
      if (fresh) txn.first = ts;
      for (auto& op : ops) txn.ops.push_back(std::move(op));
      txn.prepared = bool_field(o->get(), "prepare");
      return Status::ok();
    }
    auto open = open_.find(key);
    if (open != open_.end() && !key.empty()) {
      // The entry that ends a partialTxn chain: the chain's operations first, in order.
      std::vector<BsonDoc> all = std::move(open->second.ops);
      open_.erase(open);
      for (auto& op : ops) all.push_back(std::move(op));
      return apply_all(all, ts);
    }
    return apply_all(ops, ts);
  }
  if (cmd == "commitTransaction" || cmd == "abortTransaction") {
    auto open = open_.find(session_key(entry));
    if (open == open_.end() || !open->second.prepared) {
      if (cmd == "abortTransaction") {
        if (open != open_.end()) open_.erase(open);  // an unprepared chain abandoned
        return Status::ok();
      }
      refuse(UnknownEntry{ts, name, cmd,
                          "a commit of a prepared transaction whose prepare entry this replay has not read "
                          "(prepared before the oplog the backup holds)"},
             unknown);
      return Status::ok();
    }
    std::vector<BsonDoc> ops = std::move(open->second.ops);
    open_.erase(open);
    if (cmd == "abortTransaction") return Status::ok();
    return apply_all(ops, ts);
  }
  std::vector<BsonDoc> one;
  one.push_back(BsonDoc(bson_copy(entry)));
  return apply_all(one, ts);
}

}  // namespace lifeboat::sources::mongodb

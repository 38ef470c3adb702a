// The oplog follower.
#include "sources/mongodb/oplog_follow.h"

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "core/interrupt.h"
#include "core/time.h"
#include "repo/lock.h"
#include "repo/write_session.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::mongodb {

Result<std::optional<OplogTime>> follow_resume_point(repo::Repository& repo, const std::string& name) {
  LB_ASSIGN_OR_RETURN(auto snaps, repo.list_snapshots());
  std::optional<OplogTime> slice_end, full_start;
  for (const auto& s : snaps) {
    if (s.snapshot.paths.empty() || s.snapshot.paths[0] != name) continue;
    if (s.snapshot.source == kSliceSource) {
      auto to = oplog_time_from_json(s.snapshot.metadata.value("to", nlohmann::json()));
      if (to && (!slice_end || *to > *slice_end)) slice_end = to;
    } else if (s.snapshot.source == kFullSource) {
      auto st = oplog_time_from_json(s.snapshot.metadata.value("oplog_start", nlohmann::json()));
      if (st && (!full_start || *st > *full_start)) full_start = st;
    }
  }
  if (slice_end) return slice_end;
  return full_start;
}

namespace {

class Follower {
 public:
  Follower(repo::Repository& repo, const FollowOptions& o, const FollowEvents& e) : repo_(repo), o_(o), events_(e) {}

  Status run() {
    LB_ASSIGN_OR_RETURN(conn_, MongoConnection::connect(o_.uri, 2));
    name_ = o_.name.empty() ? conn_->display_name() : o_.name;
    // One follower per deployment and repository: a second would store every slice twice.
    LB_ASSIGN_OR_RETURN(lease_, repo::RepoLock::acquire(repo_, repo::LockKind::kLease, "mongodb-follow:" + name_));
    LB_ASSIGN_OR_RETURN(bool has, conn_->has_oplog());
    if (!has)
      return Error(Code::kInvalidArgument,
                   fmt::format("{} has no local.oplog.rs: run MongoDB as a replica set (FerretDB: create the capped "
                               "collection local.oplog.rs) to capture changes",
                               conn_->display_name()));
    LB_ASSIGN_OR_RETURN(auto resume, follow_resume_point(repo_, name_));
    if (resume) {
      pos_ = *resume;
    } else {
      LB_ASSIGN_OR_RETURN(auto newest, conn_->oplog_edge(true));
      pos_ = newest.value_or(OplogTime{});
      warn(fmt::format("no full backup or slice of {} yet: following from {}; take a full backup for point-in-time "
                       "restores", name_, pos_.to_string()));
    }
    slice_from_ = pos_;
    LB_RETURN_IF_ERROR(check_gap());
    int64_t idle_ns = o_.idle_commit_ns > 0 ? o_.idle_commit_ns : 10 * o_.interval_ns;
    last_commit_mono_ = monotonic_ns();
    int64_t failing_since = 0;
    while (true) {
      bool stop = interrupted() || (o_.should_stop && o_.should_stop());
      Status s = stop ? Status::ok() : tail_once();
      if (!s.is_ok()) {
        if (s.code() == Code::kInterrupted) {
          stop = true;
        } else {
          if (failing_since == 0) {
            failing_since = monotonic_ns();
            warn(fmt::format("{}; retrying", s.message()));
          }
          if (monotonic_ns() - failing_since > o_.reconnect_for_ns) {
            LB_RETURN_IF_ERROR(commit_slice());
            return s;
          }
          sleep_unless_interrupted(1000);
        }
      } else if (!stop) {
        if (failing_since != 0) {
          failing_since = 0;
          LB_RETURN_IF_ERROR(check_gap());
        }
      }
      if (stop && failing_since == 0) settle_proof();
      int64_t since = monotonic_ns() - last_commit_mono_;
      if (stop || (entries_ > 0 && since >= o_.interval_ns) || since >= idle_ns) LB_RETURN_IF_ERROR(commit_slice());
      if (stop) return Status::ok();
    }
  }

 private:
  void warn(const std::string& msg) {
    if (events_.on_warning) events_.on_warning(msg);
  }

  // The resume position must still be in the oplog; else entries were lost and only a new full
  // backup restores the chain.
  Status check_gap() {
    LB_ASSIGN_OR_RETURN(auto oldest, conn_->oplog_edge(false));
    bool lost = !pos_.is_zero() && (!oldest || *oldest > pos_);
    if (lost && !gap_) {
      gap_ = true;
      gap_until_ = oldest.value_or(OplogTime{UINT32_MAX, 0});
      warn(fmt::format("OPLOG GAP: position {} of {} is no longer in the oplog (oldest entry: {}); changes in between "
                       "are lost. Point-in-time restores across the gap are impossible: take a new full backup now",
                       pos_.to_string(), name_, oldest ? oldest->to_string() : "none"));
    }
    return Status::ok();
  }

  // Before the last commit: the second of the newest entry read is proved complete only once the
  // server's clock has moved past it, so wait for that (a few seconds at most) instead of leaving
  // the newest changes outside what restores may claim.
  void settle_proof() {
    int64_t deadline = monotonic_ns() + 4 * 1000000000LL;
    while (proof_.through_s < pos_.t && monotonic_ns() < deadline) {
      auto proof = conn_->prove_read_through(pos_);
      if (!proof.is_ok() || proof->unread) return;
      keep_stronger(proof_, std::move(*proof));
      if (proof_.through_s >= pos_.t) return;
      // Runs after the stop was asked for, bounded by the deadline: a plain sleep (a second signal ends it).
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  // Reads what the tailing cursor has until it waits with nothing new (or the commit interval passes).
  Status tail_once() {
    auto lease = conn_->lease();
    mongoc_collection_t* coll = MONGOC(mongoc_client_get_collection)(lease.get(), "local", "oplog.rs");
    bson_t* filter = BCON_NEW("ts", "{", "$gt", BCON_TIMESTAMP(pos_.t, pos_.i), "}");
    // A large first batch: FerretDB may answer the awaited getMores after it with empty batches
    // while a big oplog is rescanned, so a fresh cursor's first batch is where catching up happens.
    bson_t* opts = BCON_NEW("tailable", BCON_BOOL(true), "awaitData", BCON_BOOL(true), "maxAwaitTimeMS",
                            BCON_INT64(1000), "batchSize", BCON_INT32(5000), "sort", "{", "$natural", BCON_INT32(1), "}");
    mongoc_cursor_t* cursor = MONGOC(mongoc_collection_find_with_opts)(coll, filter, opts, nullptr);
    Status result;
    int64_t deadline = last_commit_mono_ + o_.interval_ns;
    while (true) {
      const bson_t* doc;
      bool got = MONGOC(mongoc_cursor_next)(cursor, &doc);
      if (got) {
        auto ts = bson_timestamp(doc, "ts");
        if (!ts) continue;
        buf_.insert(buf_.end(), bson_get_data(doc), bson_get_data(doc) + doc->len);
        pos_ = *ts;
        ++entries_;
        if (entries_ == 1 && events_.on_held) events_.on_held(entries_, pos_);
      } else {
        bson_error_t error;
        if (MONGOC(mongoc_cursor_error)(cursor, &error)) {
          result = mongo_error(error, "tailing local.oplog.rs");
          break;
        }
        // An empty batch is no proof: FerretDB answers one when its await time runs out while it
        // is still scanning. Only the server's own time and newest position prove how far the
        // oplog has been read (docs/format.md); entries it holds unread need a fresh cursor.
        auto proof = conn_->prove_read_through(pos_);
        if (!proof.is_ok()) {
          result = proof.status();
          break;
        }
        if (proof->unread) break;
        keep_stronger(proof_, std::move(*proof));
        if (!MONGOC(mongoc_cursor_more)(cursor)) break;  // cursor closed (empty collection): open a new one
      }
      if (interrupted() || (o_.should_stop && o_.should_stop())) break;
      if (monotonic_ns() >= deadline || (!got && entries_ == 0 &&
                                         monotonic_ns() - last_commit_mono_ >= o_.interval_ns))
        break;
    }
    MONGOC(mongoc_cursor_destroy)(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    MONGOC(mongoc_collection_destroy)(coll);
    return result;
  }

  Status commit_slice() {
    if (entries_ == 0 && proof_.through_s <= committed_through_s_) {
      last_commit_mono_ = monotonic_ns();
      return Status::ok();
    }
    LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(repo_, repo::LockKind::kShared));
    LB_RETURN_IF_ERROR(repo_.reload_index());
    int64_t start = monotonic_ns();
    repo::WriteSession session(repo_);
    repo::MemorySource src(ByteView(buf_.data(), buf_.size()));
    // Not interruptible: a stop signal asks for this last commit, not for losing the held entries.
    LB_ASSIGN_OR_RETURN(auto stored, session.store_stream(src, nullptr, false));
    repo::Node n;
    n.kind = repo::NodeKind::kFile;
    n.name = kOplogFile;
    n.mode = 0644;
    n.size = stored.size_bytes;
    n.content = stored.content;
    n.mtime_ns = now_unix_ns();
    repo::Tree root;
    root.nodes.push_back(std::move(n));
    LB_ASSIGN_OR_RETURN(auto root_id, session.store_tree(root));
    repo::Snapshot snap;
    snap.time_ns = now_unix_ns();
    snap.hostname = o_.hostname;
    snap.source = kSliceSource;
    snap.paths = {name_};
    // Tagged like the full backups of a plan source of that name, so retention and copies find it.
    snap.tags = {source_tag(name_)};
    snap.tree = root_id;
    snap.metadata = {{"kind", "oplog-slice"},
                     {"from", oplog_time_json(slice_from_)},
                     {"to", oplog_time_json(pos_)},
                     {"entries", entries_},
                     {"gap", gap_}};
    // Entries arrive in position order, so the seconds before the newest one read are whole; the
    // server's evidence at an empty poll may prove more.
    OplogProof proved = proof_;
    keep_stronger(proved, position_proof(pos_));
    snap.metadata["proved_through_s"] = proved.through_s;
    snap.metadata["proof"] = proved.how;
    if (gap_) snap.metadata["gap_until"] = oplog_time_json(gap_until_);
    snap.summary = repo::session_summary(session, start);
    snap.summary["entries"] = entries_;
    LB_ASSIGN_OR_RETURN(std::string id, session.commit(snap));
    if (events_.on_commit) events_.on_commit(SliceCommitted{id, slice_from_, pos_, entries_, gap_});
    slice_from_ = pos_;
    committed_through_s_ = proved.through_s;
    buf_.clear();
    entries_ = 0;
    gap_ = false;
    last_commit_mono_ = monotonic_ns();
    return Status::ok();
  }

  repo::Repository& repo_;
  const FollowOptions& o_;
  const FollowEvents& events_;
  std::unique_ptr<MongoConnection> conn_;
  std::string name_;
  std::unique_ptr<repo::RepoLock> lease_;  // held while following: one follower per deployment
  OplogTime pos_, slice_from_;
  Bytes buf_;
  uint64_t entries_ = 0;
  OplogProof proof_;                 // the best server evidence since the follower started
  uint32_t committed_through_s_ = 0;  // what the last committed slice proved
  int64_t last_commit_mono_ = 0;
  bool gap_ = false;
  OplogTime gap_until_;  // entries after slice_from_ and before this were lost
};

}  // namespace

Status follow_oplog(repo::Repository& repo, const FollowOptions& options, const FollowEvents& events) {
  Follower f(repo, options, events);
  return f.run();
}

}  // namespace lifeboat::sources::mongodb

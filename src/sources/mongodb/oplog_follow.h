// Continuous oplog capture: tails local.oplog.rs and commits an OplogSlice snapshot at least every
// interval, resuming from the last committed position and reporting gaps.
#pragma once

#include <functional>
#include <string>

#include "repo/repository.h"
#include "sources/mongodb/mongo_client.h"

namespace lifeboat::sources::mongodb {

struct FollowOptions {
  std::string uri;
  std::string name;  // deployment name (must match the full backups'); default: redacted URI
  std::string hostname;
  int64_t interval_ns = 60LL * 1000000000;  // commit a slice at least this often when entries arrived
  int64_t idle_commit_ns = 0;               // commit an empty slice after this long without entries (0: 10 intervals)
  int64_t reconnect_for_ns = 120LL * 1000000000;  // give up after the server is gone this long
  std::function<bool()> should_stop;        // polled about once a second, besides SIGINT/SIGTERM
};

struct SliceCommitted {
  std::string snapshot_id;
  OplogTime from, to;
  uint64_t entries = 0;
  bool gap = false;
};

struct FollowEvents {
  std::function<void(const SliceCommitted&)> on_commit;
  std::function<void(const std::string&)> on_warning;  // gaps, reconnects
  // The first entry read after a commit: a slice has begun and is held, not yet committed.
  std::function<void(uint64_t entries, const OplogTime& through)> on_held;
};

// Where the follower for `name` resumes: the newest committed slice's end, else the newest full
// backup's start position, else nullopt (start from the oplog's newest entry).
Result<std::optional<OplogTime>> follow_resume_point(repo::Repository& repo, const std::string& name);

// Runs until stopped (then commits what it holds and returns OK) or until the server stays
// unreachable for reconnect_for_ns.
Status follow_oplog(repo::Repository& repo, const FollowOptions& options, const FollowEvents& events);

}  // namespace lifeboat::sources::mongodb

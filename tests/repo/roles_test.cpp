// Keys with roles: what an append key can write and never read or delete, what a restore key can
// read and never delete, and that an admin key reads everything an append key wrote.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "repo/backend_access.h"
#include "core/time.h"
#include "repo/check.h"
#include "repo/retention.h"
#include "repo/lock.h"
#include "repo/prune.h"
#include "repo/repair.h"
#include "repo/repository.h"
#include "repo/write_session.h"
#include "test_repo.h"

namespace lifeboat::repo {

using testing::TempDir;

namespace {

std::unique_ptr<Repository> open_as(const std::string& dir, const std::string& pw) {
  auto r = Repository::open(std::make_unique<storage::LocalBackend>(dir), pw);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : nullptr;
}

struct Written {
  StoredStream stream;
  BlobId tree{};
  std::string snapshot;
  uint64_t blobs_new = 0;
};

Written write_one(Repository& repo, const Bytes& data, int64_t time_ns) {
  Written w;
  EXPECT_TRUE(repo.load_index().is_ok());
  WriteSession s(repo);
  MemorySource src(data);
  auto st = s.store_stream(src);
  EXPECT_TRUE(st.is_ok()) << st.status().message();
  if (!st) return w;
  w.stream = *st;
  Tree t;
  Node n;
  n.name = "file";
  n.kind = NodeKind::kFile;
  n.size = data.size();
  n.content = st->content;
  t.nodes.push_back(n);
  w.tree = *s.store_tree(t);
  Snapshot snap;
  snap.time_ns = time_ns;
  snap.tree = w.tree;
  snap.paths = {"/data"};
  snap.hostname = "backup-host";  // the host the append key is bound to
  auto id = s.commit(snap);
  EXPECT_TRUE(id.is_ok()) << id.status().message();
  w.snapshot = id.is_ok() ? *id : "";
  w.blobs_new = s.stats().blobs_new;
  return w;
}

std::vector<std::filesystem::path> files_under(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  return out;
}

Bytes read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

class Roles : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_CACHE_DIR", (cache.path + "/cache").c_str(), 1);
    auto admin = testing::init_repo(repo.path);
    ASSERT_TRUE(admin->add_key("append-pw", {64, 1, 1}, crypto::Role::kAppend, "backup-host").is_ok());
    ASSERT_TRUE(admin->add_key("restore-pw", {64, 1, 1}, crypto::Role::kRestore).is_ok());
  }
  void TearDown() override { unsetenv("LIFEBOAT_CACHE_DIR"); }
  TempDir repo, cache;
};

TEST_F(Roles, AppendKeyWritesWhatItCannotReadAndAdminReadsIt) {
  Bytes data = testing::pseudo_random(3 << 20, 11);
  auto app = open_as(repo.path, "append-pw");
  ASSERT_EQ(app->role(), crypto::Role::kAppend);
  EXPECT_EQ(app->master_key(), crypto::Key{});
  Written w = write_one(*app, data, now_unix_ns());
  ASSERT_FALSE(w.snapshot.empty());
  EXPECT_GT(w.blobs_new, 10u);

  // Every read of stored data is refused before it is tried, naming the role.
  auto blob = app->read_blob(w.stream.content[0]);
  EXPECT_EQ(blob.status().code(), Code::kForbidden);
  EXPECT_NE(blob.status().message().find("append key"), std::string::npos) << blob.status().message();
  EXPECT_EQ(app->load_file(FileType::kSnapshot, w.snapshot).status().code(), Code::kForbidden);
  EXPECT_EQ(app->read_index_state().status().code(), Code::kForbidden);
  EXPECT_EQ(check_repository(*app, {}, nullptr).status().code(), Code::kForbidden);
  // ... and every deletion.
  EXPECT_EQ(app->forget_snapshot(w.snapshot).status().code(), Code::kForbidden);
  EXPECT_EQ(app->add_key("x", {64, 1, 1}).status().code(), Code::kForbidden);
  EXPECT_EQ(repair_index(*app).status().code(), Code::kForbidden);
  EXPECT_EQ(RepoLock::remove_locks(*app, true).status().code(), Code::kForbidden);
  EXPECT_EQ(BackendAccess::of(*app).remove({FileType::kSnapshot, w.snapshot}).code(), Code::kForbidden);

  // It sees the snapshot it wrote, from its own cache, and its trees.
  auto mine = app->list_snapshots();
  ASSERT_TRUE(mine.is_ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].id, w.snapshot);
  EXPECT_TRUE(app->load_tree(w.tree).is_ok());

  // Nothing it stored opens with any key it holds (only the ID lists, with the key derived for them).
  const crypto::KeySecrets& held = app->secrets();
  for (const auto& p : files_under(repo.path + "/data")) {
    Bytes pack = read_all(p);
    for (const crypto::Key& k : {held.content_id, held.chunker, held.cache_key, *held.signing_seed})
      EXPECT_FALSE(read_pack_header(pack, crypto::Aead(k)).is_ok()) << p;
  }
  for (const auto& p : files_under(repo.path + "/snapshots")) {
    Bytes sealed = read_all(p);
    ASSERT_TRUE(crypto::has_capsule_magic(sealed));
    auto parts = crypto::split_capsule_file(sealed);
    for (const crypto::Key& k : {held.content_id, held.chunker, held.cache_key, *held.signing_seed})
      EXPECT_FALSE(crypto::Aead(k).open(parts->second).is_ok());
  }

  // A second backup of the same data with the append key stores nothing new: the ID lists dedup.
  auto app2 = open_as(repo.path, "append-pw");
  Written again = write_one(*app2, data, now_unix_ns());
  EXPECT_EQ(again.blobs_new, 0u);
  EXPECT_EQ(app2->list_snapshots()->size(), 2u);

  // An admin key lists both snapshots and reads every byte back; check --read-data passes.
  auto admin = open_as(repo.path, "pw");
  auto all = admin->list_snapshots();
  ASSERT_TRUE(all.is_ok()) << all.status().message();
  ASSERT_EQ(all->size(), 2u);
  auto tree = admin->load_tree(w.tree);
  ASSERT_TRUE(tree.is_ok()) << tree.status().message();
  Bytes back;
  for (const auto& id : tree->nodes[0].content) {
    auto b = admin->read_blob(id);
    ASSERT_TRUE(b.is_ok()) << b.status().message();
    back.insert(back.end(), b->begin(), b->end());
  }
  EXPECT_EQ(back, data);
  auto report = check_repository(*admin, {true, 0, 0}, nullptr);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_TRUE(report->ok()) << (report->errors.empty() ? "" : report->errors[0]);

  // An admin rewriting the index (repair) keeps the capsules: a fresh reader still opens everything.
  ASSERT_TRUE(repair_index(*admin).is_ok());
  auto fresh = open_as(repo.path, "pw");
  EXPECT_TRUE(fresh->read_blob(w.stream.content.back()).is_ok());
  auto report2 = check_repository(*fresh, {true, 0, 0}, nullptr);
  ASSERT_TRUE(report2.is_ok());
  EXPECT_TRUE(report2->ok()) << (report2->errors.empty() ? "" : report2->errors[0]);
  // And an append key still dedups against the rewritten index.
  auto app3 = open_as(repo.path, "append-pw");
  EXPECT_EQ(write_one(*app3, data, now_unix_ns()).blobs_new, 0u);
}

TEST_F(Roles, RestoreKeyReadsButNeverDeletes) {
  Bytes data = testing::pseudo_random(200000, 3);
  Written w = write_one(*open_as(repo.path, "pw"), data, 1000);
  auto rs = open_as(repo.path, "restore-pw");
  ASSERT_EQ(rs->role(), crypto::Role::kRestore);
  EXPECT_TRUE(rs->list_snapshots().is_ok());
  EXPECT_TRUE(rs->read_blob(w.stream.content[0]).is_ok());
  auto report = check_repository(*rs, {true, 0, 0}, nullptr);
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->ok());
  auto forget = rs->forget_snapshot(w.snapshot);
  EXPECT_EQ(forget.status().code(), Code::kForbidden);
  EXPECT_NE(forget.status().message().find("restore key"), std::string::npos) << forget.status().message();
  EXPECT_EQ(rs->remove_key(rs->key_name()).code(), Code::kForbidden);
  EXPECT_EQ(rs->replace_current_key("new", {64, 1, 1}).status().code(), Code::kForbidden);
  EXPECT_EQ(repair_index(*rs).status().code(), Code::kForbidden);
  EXPECT_EQ(BackendAccess::of(*rs).remove({FileType::kSnapshot, w.snapshot}).code(), Code::kForbidden);
  EXPECT_TRUE(open_as(repo.path, "pw")->load_snapshot(w.snapshot).is_ok());  // still there
}

TEST_F(Roles, AppendKeyWithALostCacheRescansButStillDedups) {
  Bytes data = testing::pseudo_random(1 << 20, 5);
  EXPECT_GT(write_one(*open_as(repo.path, "append-pw"), data, 1000).blobs_new, 0u);
  std::filesystem::remove_all(cache.path + "/cache");
  auto app = open_as(repo.path, "append-pw");
  EXPECT_TRUE(app->list_snapshots()->empty());
  EXPECT_EQ(write_one(*app, data, 2000).blobs_new, 0u);
}

TEST_F(Roles, LocksOfEveryRoleAreSeenByEveryRole) {
  auto app = open_as(repo.path, "append-pw");
  auto held = RepoLock::acquire(*app, LockKind::kShared);
  ASSERT_TRUE(held.is_ok()) << held.status().message();
  auto admin = open_as(repo.path, "pw");
  auto excl = RepoLock::acquire(*admin, LockKind::kExclusive);
  EXPECT_EQ(excl.status().code(), Code::kLockFailed);
  held->reset();
  EXPECT_TRUE(RepoLock::acquire(*admin, LockKind::kExclusive).is_ok());
}

}  // namespace lifeboat::repo

namespace lifeboat::repo {

namespace {
std::string commit_snapshot(Repository& repo, int64_t time_ns, const std::string& host) {
  EXPECT_TRUE(repo.load_index().is_ok());
  WriteSession s(repo);
  Tree t;
  auto tid = s.store_tree(t);
  Snapshot snap;
  snap.time_ns = time_ns;
  snap.tree = *tid;
  snap.hostname = host;
  snap.paths = {"/data"};
  auto id = s.commit(snap);
  EXPECT_TRUE(id.is_ok()) << id.status().message();
  return id.is_ok() ? *id : "";
}

const SnapshotRef* find_ref(const std::vector<SnapshotRef>& all, const std::string& id) {
  for (const auto& r : all)
    if (r.id == id) return &r;
  return nullptr;
}
}  // namespace

TEST_F(Roles, ForgedSnapshotsAreFlaggedAndNeverOffered) {
  int64_t now = now_unix_ns();
  auto app = open_as(repo.path, "append-pw");
  std::string genuine = commit_snapshot(*app, now, "backup-host");
  std::string backdated = commit_snapshot(*app, now - 365LL * 86400 * kNsPerSecond, "backup-host");
  std::string other_host = commit_snapshot(*app, now, "db-primary");
  // Signed, but the bytes changed after signing: a snapshot naming the key with a signature that is not its.
  Snapshot altered;
  altered.time_ns = now;
  altered.hostname = "backup-host";
  altered.writer_key = app->key_name();
  altered.writer_signature = base64_encode(Bytes(64, 7));
  auto altered_id = app->save_file(FileType::kSnapshot, as_bytes(altered.to_json()));
  ASSERT_TRUE(altered_id.is_ok());
  // A key file planted by whoever can write to storage: valid JSON, its own signing key, no endorsement.
  {
    crypto::KeySecrets planted = app->secrets();
    planted.signing_seed.reset();
    auto kf = crypto::KeyFile::create(planted, "planted-pw", {64, 1, 1}, "");
    std::string json = kf->to_json();
    auto digest = crypto::sha256(as_bytes(json));
    ASSERT_TRUE(BackendAccess::of(*app).save({FileType::kKey, hex_encode({digest.data(), 32})}, as_bytes(json), {}).is_ok());
  }
  std::string planted = commit_snapshot(*open_as(repo.path, "planted-pw"), now, "backup-host");

  auto admin = open_as(repo.path, "pw");
  auto offered = admin->list_snapshots();
  ASSERT_TRUE(offered.is_ok());
  ASSERT_EQ(offered->size(), 1u);  // only the genuine one is offered to restores and retention
  EXPECT_EQ((*offered)[0].id, genuine);
  EXPECT_EQ((*offered)[0].snapshot.writer_key, app->key_name());
  EXPECT_TRUE((*offered)[0].snapshot.appended);
  auto all = admin->list_snapshots(/*include_untrusted=*/true);
  ASSERT_EQ(all->size(), 5u);
  auto why = [&](const std::string& id) { return find_ref(*all, id)->snapshot.untrusted; };
  EXPECT_EQ(why(genuine), "");
  EXPECT_NE(why(backdated).find("before its key"), std::string::npos) << why(backdated);
  EXPECT_NE(why(other_host).find("bound to host backup-host"), std::string::npos) << why(other_host);
  EXPECT_NE(why(*altered_id).find("does not verify"), std::string::npos) << why(*altered_id);
  EXPECT_NE(why(planted).find("not endorsed"), std::string::npos) << why(planted);
}

TEST_F(Roles, RetentionJudgesEachAppendKeyOnItsOwn) {
  int64_t day = 86400 * kNsPerSecond, now = now_unix_ns();
  auto admin = open_as(repo.path, "pw");
  std::vector<std::string> genuine;
  for (int i = 3; i >= 1; --i) genuine.push_back(commit_snapshot(*admin, now - i * day, "db-primary"));
  // A stolen append key floods the repository with newer snapshots, and some dated a year back.
  auto app = open_as(repo.path, "append-pw");
  for (int i = 0; i < 6; ++i) commit_snapshot(*app, now + i * kNsPerSecond, "backup-host");
  for (int i = 0; i < 4; ++i) commit_snapshot(*app, now - (400 + i) * day, "backup-host");
  auto all = open_as(repo.path, "pw")->list_snapshots(true);
  ASSERT_EQ(all->size(), 13u);
  RetentionPolicy keep3;
  keep3.keep_last = 3;
  auto decisions = apply_retention(*all, keep3, {});
  size_t kept_genuine = 0, kept_flood = 0, untrusted_kept = 0;
  for (const auto& d : decisions) {
    bool is_genuine = std::find(genuine.begin(), genuine.end(), d.ref.id) != genuine.end();
    if (!d.ref.snapshot.untrusted.empty()) {
      EXPECT_TRUE(d.keep);
      ++untrusted_kept;
    } else if (d.keep) {
      ++(is_genuine ? kept_genuine : kept_flood);
    }
  }
  EXPECT_EQ(kept_genuine, 3u);  // every genuine snapshot survives the flood
  EXPECT_EQ(kept_flood, 3u);    // the append key's own are judged among themselves
  EXPECT_EQ(untrusted_kept, 4u);
}

TEST_F(Roles, RemovingAnAppendKeyDistrustsWhatItWritesAfter) {
  auto app = open_as(repo.path, "append-pw");
  std::string before = commit_snapshot(*app, now_unix_ns(), "backup-host");
  auto admin = open_as(repo.path, "pw");
  ASSERT_TRUE(admin->remove_key(app->key_name()).is_ok());
  // Its password opens nothing any more ...
  EXPECT_EQ(Repository::open(std::make_unique<storage::LocalBackend>(repo.path), "append-pw").status().code(),
            Code::kWrongPassword);
  // ... and a thief still holding its secrets (here: the open handle) writes only untrusted snapshots.
  std::string after = commit_snapshot(*app, now_unix_ns(), "backup-host");
  auto all = open_as(repo.path, "pw")->list_snapshots(true);
  EXPECT_EQ(find_ref(*all, before)->snapshot.untrusted, "");
  EXPECT_NE(find_ref(*all, after)->snapshot.untrusted.find("was removed"), std::string::npos);
  // `key list` shows the revocation; a copy of the old key file put back does not undo it.
  auto keys = open_as(repo.path, "pw")->list_keys();
  bool revoked = false;
  for (const auto& k : *keys) revoked |= k.file.revoked.has_value();
  EXPECT_TRUE(revoked);
}

}  // namespace lifeboat::repo

namespace lifeboat::repo {

namespace {
// Storage that counts deletions asked of it (the role guard sits above it: a refused deletion
// never reaches here, so this counts what an append key's code tried and the guard let through).
class CountingBackend final : public storage::ForwardingBackend {
 public:
  CountingBackend(std::unique_ptr<storage::Backend> inner, int* removes) : ForwardingBackend(std::move(inner)), removes_(removes) {}
  Status remove(const storage::Handle& h) override {
    ++*removes_;
    return inner_->remove(h);
  }

 private:
  int* removes_;
};
}  // namespace

TEST_F(Roles, AnAppendKeyNeverDeletesNotEvenItsLocks) {
  int removes = 0;
  {
    auto r = Repository::open(std::make_unique<CountingBackend>(std::make_unique<storage::LocalBackend>(repo.path), &removes),
                              "append-pw");
    ASSERT_TRUE(r.is_ok());
    auto app = std::move(*r);
    for (int i = 0; i < 2; ++i) {
      auto lock = RepoLock::acquire(*app, LockKind::kShared);
      ASSERT_TRUE(lock.is_ok()) << lock.status().message();
      write_one(*app, testing::pseudo_random(100000, i), now_unix_ns());
    }
  }
  EXPECT_EQ(removes, 0);
  // Its released locks hold nothing up: an exclusive lock is free at once.
  auto admin = open_as(repo.path, "pw");
  auto locks = RepoLock::list(*admin);
  ASSERT_EQ(locks->size(), 4u);  // two locks, two markers
  for (const auto& l : *locks) EXPECT_TRUE(l.stale) << l.name;
  EXPECT_TRUE(RepoLock::acquire(*admin, LockKind::kExclusive).is_ok());
  // An admin's unlock removes them (locks before markers); an append key's unlock is refused.
  EXPECT_EQ(RepoLock::remove_locks(*open_as(repo.path, "append-pw"), false).status().code(), Code::kForbidden);
  auto n = RepoLock::remove_locks(*admin, false);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 4);
  EXPECT_TRUE(RepoLock::list(*admin)->empty());
  // A refresh by a key that deletes nothing writes a lock that replaces the last: only the new one is live.
  auto held = RepoLock::acquire(*admin, LockKind::kShared);
  ASSERT_TRUE(held.is_ok());
  nlohmann::json refreshed = {{"time_ns", now_unix_ns()}, {"started_ns", now_unix_ns()}, {"kind", "shared"},
                              {"hostname", "elsewhere"}, {"pid", 1}, {"replaces", (*held)->name()}};
  auto fresh = admin->save_file(FileType::kLock, as_bytes(refreshed.dump()));
  ASSERT_TRUE(fresh.is_ok());
  auto now_listed = RepoLock::list(*admin);
  ASSERT_TRUE(now_listed.is_ok());
  for (const auto& l : *now_listed) EXPECT_EQ(l.stale, l.name != *fresh) << l.name;
}

}  // namespace lifeboat::repo

#include "repo/node_io.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace lifeboat::repo {

namespace {

// The file node of a stored stream.
Node file_node(const std::string& name, uint32_t mode, int64_t mtime_ns, StoredStream stored) {
  Node n;
  n.kind = NodeKind::kFile;
  n.name = name;
  n.mode = mode;
  n.mtime_ns = n.ctime_ns = n.atime_ns = mtime_ns;
  n.links = 1;
  n.size = stored.size_bytes;
  n.content = std::move(stored.content);
  return n;
}

}  // namespace

Result<Node> store_bytes_node(WriteSession& session, const std::string& name, ByteView data, uint32_t mode, int64_t mtime_ns) {
  MemorySource src(data);
  LB_ASSIGN_OR_RETURN(auto stored, session.store_stream(src));
  return file_node(name, mode, mtime_ns, std::move(stored));
}

namespace {

// The bytes between a producer that pushes and WriteSession::store_stream, which pulls.
class PushedBytes final : public ByteSource {
 public:
  explicit PushedBytes(size_t window) : window_(window) {}
  // Producer: blocks while the window is full; the consumer's error once it stopped.
  Status push(ByteView piece) {
    std::unique_lock lk(mu_);
    while (!piece.empty()) {
      cv_.wait(lk, [&] { return held_ < window_ || !consumer_.is_ok(); });
      if (!consumer_.is_ok()) return consumer_;
      size_t take = std::min(piece.size(), std::max<size_t>(window_ - held_, 1));
      queue_.emplace_back(piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(take));
      held_ += take;
      piece = piece.subspan(take);
      cv_.notify_all();
    }
    return Status::ok();
  }
  void close(Status producer) {
    std::lock_guard lk(mu_);
    closed_ = true;
    producer_ = std::move(producer);
    cv_.notify_all();
  }
  void stop(Status consumer) {
    std::lock_guard lk(mu_);
    consumer_ = consumer.is_ok() ? Error(Code::kFatal, "internal error: the store stopped reading") : std::move(consumer);
    cv_.notify_all();
  }
  // Consumer (store_stream).
  Result<size_t> read(uint8_t* buf, size_t n) override {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) {
      if (!producer_.is_ok()) return producer_;
      return size_t{0};
    }
    Bytes& front = queue_.front();
    size_t take = std::min(n, front.size() - front_pos_);
    std::memcpy(buf, front.data() + front_pos_, take);
    front_pos_ += take;
    if (front_pos_ == front.size()) {
      held_ -= front.size();
      queue_.pop_front();
      front_pos_ = 0;
      cv_.notify_all();
    }
    return take;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Bytes> queue_;
  size_t front_pos_ = 0, held_ = 0;
  const size_t window_;
  bool closed_ = false;
  Status producer_, consumer_;
};

}  // namespace

Result<Node> store_pushed_node(WriteSession& session, const std::string& name, uint32_t mode, int64_t mtime_ns,
                               const std::function<Status(const Push& push)>& produce, size_t window) {
  PushedBytes pipe(window);
  Result<StoredStream> stored = Error(Code::kFatal, "not stored");
  std::thread store([&] {
    stored = session.store_stream(pipe);
    // Stops the producer if the store failed (or ended before the producer did).
    pipe.stop(stored.is_ok() ? Status::ok() : stored.status());
  });
  Status produced = produce([&](ByteView piece) { return pipe.push(piece); });
  pipe.close(produced);
  store.join();
  if (!produced) return produced;
  if (!stored) return stored.status();
  return file_node(name, mode, mtime_ns, std::move(*stored));
}

Result<Bytes> read_node_bytes(Repository& repo, const Node& node) {
  Bytes out;
  out.reserve(node.size);
  for (const auto& b : node.content) {
    LB_ASSIGN_OR_RETURN(auto data, repo.read_blob(b));
    append_bytes(out, data);
  }
  return out;
}

Result<size_t> NodeReader::read(uint8_t* buf, size_t max) {
  while (pos_ == blob_.size()) {
    if (next_blob_ == node_.content.size()) return size_t{0};
    LB_ASSIGN_OR_RETURN(blob_, repo_.read_blob(node_.content[next_blob_++]));
    pos_ = 0;
  }
  size_t take = std::min(max, blob_.size() - pos_);
  std::memcpy(buf, blob_.data() + pos_, take);
  pos_ += take;
  return take;
}

void DirBuilder::place(const std::string& relative_path, Node node) {
  DirBuilder* d = this;
  size_t start = 0;
  while (true) {
    size_t slash = relative_path.find('/', start);
    if (slash == std::string::npos) break;
    d = &d->dirs[relative_path.substr(start, slash - start)];
    start = slash + 1;
  }
  node.name = relative_path.substr(start);
  d->files[node.name] = std::move(node);
}

Node dir_node(std::string name, const BlobId& subtree, uint32_t mode, int64_t mtime_ns) {
  Node n;
  n.kind = NodeKind::kDir;
  n.name = std::move(name);
  n.mode = mode;
  n.subtree = subtree;
  n.mtime_ns = mtime_ns;
  return n;
}

Result<BlobId> DirBuilder::store(WriteSession& session) const {
  Tree t;
  for (const auto& [name, sub] : dirs) {
    LB_ASSIGN_OR_RETURN(auto id, sub.store(session));
    t.nodes.push_back(dir_node(name, id));
  }
  for (const auto& [name, node] : files) t.nodes.push_back(node);
  t.sort();
  return session.store_tree(t);
}

}  // namespace lifeboat::repo

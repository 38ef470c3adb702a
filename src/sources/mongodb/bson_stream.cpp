// Stored BSON streams and the collection digest.
#include "sources/mongodb/bson_stream.h"

#include <fmt/format.h>

#include <cstring>

#include "crypto/crypto.h"

namespace lifeboat::sources::mongodb {

void CollectionDigest::add(ByteView document) {
  auto d = crypto::sha256(document);
  unsigned __int128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | d[static_cast<size_t>(i)];
  sum_ += v;
  ++count_;
  bytes_ += document.size();
}

void CollectionDigest::merge(const CollectionDigest& other) {
  sum_ += other.sum_;
  count_ += other.count_;
  bytes_ += other.bytes_;
}

void CollectionDigest::subtract(const CollectionDigest& other) {
  sum_ -= other.sum_;
  count_ -= other.count_;
  bytes_ -= other.bytes_;
}

std::string CollectionDigest::hash_hex() const {
  return fmt::format("{:016x}{:016x}", static_cast<uint64_t>(sum_ >> 64), static_cast<uint64_t>(sum_));
}

StoredDocReader::StoredDocReader(repo::Repository& repo, std::vector<repo::BlobId> content, std::string what)
    : repo_(repo), content_(std::move(content)), what_(std::move(what)) {}

Status StoredDocReader::fill(size_t need) {
  while (buf_.size() - pos_ < need) {
    if (next_blob_ >= content_.size())
      return Error(Code::kCorrupt, fmt::format("{}: stream ends inside a document", what_));
    auto blob = repo_.read_blob(content_[next_blob_++]);
    if (!blob) return blob.status().with_context(what_);
    if (pos_ > 0) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
      pos_ = 0;
    }
    buf_.insert(buf_.end(), blob->begin(), blob->end());
  }
  return Status::ok();
}

Result<size_t> bson_frame_length(ByteView head, const std::string& what) {
  if (head.size() < 4) return Error(Code::kCorrupt, fmt::format("{}: stream ends inside a document", what));
  int32_t len;
  std::memcpy(&len, head.data(), 4);  // BSON lengths are little-endian, as is this machine
  if (len < 5 || len > 48 * 1024 * 1024)
    return Error(Code::kCorrupt, fmt::format("{}: bad BSON document length {}", what, len));
  return static_cast<size_t>(len);
}

bool bson_framed(ByteView doc) {
  if (doc.size() < 5) return false;
  int32_t len;
  std::memcpy(&len, doc.data(), 4);
  return len >= 5 && static_cast<size_t>(len) == doc.size() && doc[doc.size() - 1] == 0;
}

Result<bool> StoredDocReader::next(ByteView& doc) {
  if (buf_.size() == pos_ && next_blob_ >= content_.size()) return false;
  LB_RETURN_IF_ERROR(fill(4));
  LB_ASSIGN_OR_RETURN(size_t len, bson_frame_length(ByteView(buf_.data() + pos_, 4), what_));
  LB_RETURN_IF_ERROR(fill(len));
  doc = ByteView(buf_.data() + pos_, len);
  if (!bson_framed(doc))
    return Error(Code::kCorrupt, fmt::format("{}: a document of {} bytes does not end where its length says", what_, len));
  pos_ += len;
  return true;
}

Result<Bytes> read_stored(repo::Repository& repo, const std::vector<repo::BlobId>& content) {
  Bytes out;
  for (const auto& id : content) {
    LB_ASSIGN_OR_RETURN(auto blob, repo.read_blob(id));
    out.insert(out.end(), blob.begin(), blob.end());
  }
  return out;
}

}  // namespace lifeboat::sources::mongodb

// Concatenated BSON documents (the mongodump .bson layout): reading them back out of stored
// blobs, and the order-independent digest that proves a collection came back whole.
#pragma once

#include <string>
#include <vector>

#include "core/bytes.h"
#include "repo/repository.h"

namespace lifeboat::sources::mongodb {

// Count, bytes and an order-independent hash of a set of documents: the sum, modulo 2^128, of the
// first 16 bytes of each document's SHA-256. Insertion order and parallel reads do not change it.
class CollectionDigest {
 public:
  void add(ByteView document);
  void merge(const CollectionDigest& other);
  // Takes documents out again (their digest was merged or added before).
  void subtract(const CollectionDigest& other);
  uint64_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  std::string hash_hex() const;

 private:
  uint64_t count_ = 0, bytes_ = 0;
  unsigned __int128 sum_ = 0;
};

// A BSON document's frame: `head` starts with its 4-byte length, which must be at least 5 and at most
// 48 MiB (the server's limit is 16 MiB). Documents read back from storage or a dump directory pass
// through these before libbson iterates them; libbson's iterators then keep inside the frame.
Result<size_t> bson_frame_length(ByteView head, const std::string& what);
// `doc` is exactly one framed document: its length field equals its size and it ends in a zero byte.
bool bson_framed(ByteView doc);

// Yields the documents of a stored stream one by one; a document may span blobs.
class StoredDocReader {
 public:
  StoredDocReader(repo::Repository& repo, std::vector<repo::BlobId> content, std::string what);
  // Sets `doc` to the next document; false at the end. Errors on truncated or malformed data.
  Result<bool> next(ByteView& doc);

 private:
  Status fill(size_t need);
  repo::Repository& repo_;
  std::vector<repo::BlobId> content_;
  std::string what_;
  size_t next_blob_ = 0;
  Bytes buf_;
  size_t pos_ = 0;
};

// Reads a whole stored stream (small files: metadata.json, oplog slices).
Result<Bytes> read_stored(repo::Repository& repo, const std::vector<repo::BlobId>& content);

}  // namespace lifeboat::sources::mongodb

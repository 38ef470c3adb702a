// zstd compression of blobs and index files; incompressible data is stored raw.
#pragma once

#include <optional>

#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::repo {

// Compresses into `out` and returns true, or returns false when compression would not save at least
// 1/64 of the size (then the caller stores the plaintext raw). Uses a per-thread context.
bool compress_blob(ByteView in, int level, Bytes& out);
// Decompresses data whose plaintext must be exactly `raw_len` bytes.
Result<Bytes> decompress_blob(ByteView in, size_t raw_len);

Bytes compress_frame(ByteView in, int level);
// Decompresses a whole frame whose content size is recorded in the frame; at most max_len bytes.
Result<Bytes> decompress_frame(ByteView in, size_t max_len);

}  // namespace lifeboat::repo

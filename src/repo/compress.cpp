// zstd wrappers with thread-local contexts.
#include "repo/compress.h"

#include <zstd.h>

#include <memory>

namespace lifeboat::repo {

namespace {
struct CCtx {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ~CCtx() { ZSTD_freeCCtx(ctx); }
};
struct DCtx {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  ~DCtx() { ZSTD_freeDCtx(ctx); }
};
thread_local CCtx t_cctx;
thread_local DCtx t_dctx;
}  // namespace

bool compress_blob(ByteView in, int level, Bytes& out) {
  size_t limit = in.size() - in.size() / 64;
  if (in.size() < 64) return false;
  out.resize(ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compressCCtx(t_cctx.ctx, out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n) || n >= limit) return false;
  out.resize(n);
  return true;
}

Result<Bytes> decompress_blob(ByteView in, size_t raw_len) {
  Bytes out(raw_len);
  size_t n = ZSTD_decompressDCtx(t_dctx.ctx, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n) || n != raw_len)
    return Error(Code::kCorrupt, std::string("blob does not decompress to its recorded length: ") +
                                     (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "length mismatch"));
  return out;
}

Bytes compress_frame(ByteView in, int level) {
  Bytes out(ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compressCCtx(t_cctx.ctx, out.data(), out.size(), in.data(), in.size(), level);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

Result<Bytes> decompress_frame(ByteView in, size_t max_len) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > max_len)
    return Error(Code::kCorrupt, "compressed frame has no valid content size");
  return decompress_blob(in, static_cast<size_t>(size));
}

}  // namespace lifeboat::repo

// Byte buffers, hex, little-endian and varint encoding, and a bounds-checked reader for parsers.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace lifeboat {

// Resizing a byte buffer does not zero it: every buffer here is filled right after it grows, and
// zeroing megabytes per blob showed up in profiles.
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using Bytes = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;
using ByteView = std::span<const uint8_t>;

// Appends with one memcpy. vector::insert on Bytes constructs element by element (the allocator's
// construct() keeps the library from using memmove): 7% of a restore from object storage.
inline void append_bytes(Bytes& out, ByteView in) {
  if (in.empty()) return;
  size_t at = out.size();
  out.resize(at + in.size());
  std::memcpy(out.data() + at, in.data(), in.size());
}

inline ByteView as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
inline std::string to_string(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string hex_encode(ByteView data);
std::optional<Bytes> hex_decode(std::string_view hex);

std::string base64_encode(ByteView data);
std::optional<Bytes> base64_decode(std::string_view text);

// Appends fixed-width little-endian integers and LEB128 varints.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<uint8_t>(v));
  }
  void svarint(int64_t v) { varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void raw(ByteView b) { append_bytes(out_, b); }
  // Length-prefixed byte string.
  void str(std::string_view s) {
    varint(s.size());
    raw(as_bytes(s));
  }

 private:
  Bytes& out_;
};

// Reads what ByteWriter wrote; every read is bounds-checked and sets failed() instead of overrunning.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}
  bool failed() const { return failed_; }
  bool done() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }
  uint8_t u8() {
    if (!need(1)) return 0;
    return data_[pos_++];
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(data_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!need(1)) return 0;
      uint8_t b = data_[pos_++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    failed_ = true;
    return 0;
  }
  int64_t svarint() {
    uint64_t u = varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  ByteView raw(size_t n) {
    if (!need(n)) return {};
    ByteView v = data_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  std::string str(size_t max_len = 1 << 24) {
    uint64_t n = varint();
    if (n > max_len) {
      failed_ = true;
      return {};
    }
    return to_string(raw(static_cast<size_t>(n)));
  }

 private:
  bool need(size_t n) {
    if (failed_ || data_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  ByteView data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace lifeboat

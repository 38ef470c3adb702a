// CRC32C (Castagnoli), as GCS, Secret Manager and LevelDB logs use it: hardware instruction when the
// CPU has SSE 4.2, a table otherwise. Debian 12 ships no CRC32C library (google/crc32c is not packaged).
#pragma once

#include <cstdint>
#include <string>

#include "core/bytes.h"

namespace lifeboat {

// Extends `crc` (0 to start) over `data`.
uint32_t crc32c_extend(uint32_t crc, ByteView data);
inline uint32_t crc32c(ByteView data) { return crc32c_extend(0, data); }
// GCS's form: the four bytes big-endian, base64.
std::string crc32c_base64(uint32_t crc);

}  // namespace lifeboat

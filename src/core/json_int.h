// Integers read from stored JSON (snapshots, key files, the config, locks). nlohmann's get<int>() on a
// float, or on a number outside the type's range, is undefined behaviour; json_int refuses both with
// a json exception, which every reader of stored JSON already turns into "damaged" (kCorrupt).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <utility>

namespace lifeboat {

template <typename T>
T json_int(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (std::cmp_less_equal(u, std::numeric_limits<T>::max())) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (std::in_range<T>(s)) return static_cast<T>(s);
  }
  throw nlohmann::json::out_of_range::create(406, "not an integer in range", &v);
}

// The integer at `key`, or `fallback` when the key is absent.
template <typename T>
T json_int(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  return it == j.end() ? fallback : json_int<T>(*it);
}

}  // namespace lifeboat

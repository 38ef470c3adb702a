// SettingsReader: type checks with the key named.
#include "sources/settings_reader.h"

#include <fmt/format.h>

#include <algorithm>

namespace lifeboat::sources {

SettingsReader::SettingsReader(const nlohmann::json& section, std::vector<SettingsProblem>& problems)
    : section_(section), problems_(problems), start_(problems.size()) {
  if (!section_.is_object()) problem("", "expected a mapping of settings");
}

void SettingsReader::problem(const std::string& key, const std::string& message) { problems_.push_back({key, message}); }

std::string SettingsReader::string(const std::string& key, bool required) {
  if (!section_.is_object() || !section_.contains(key)) {
    if (required) problem(key, "required");
    return "";
  }
  const auto& v = section_[key];
  if (!v.is_string() || v.get<std::string>().empty()) {
    problem(key, "expected a non-empty string");
    return "";
  }
  return v.get<std::string>();
}

std::vector<std::string> SettingsReader::strings(const std::string& key, bool required) {
  std::vector<std::string> out;
  if (!section_.is_object() || !section_.contains(key)) {
    if (required) problem(key, "required (a list)");
    return out;
  }
  const auto& v = section_[key];
  if (!v.is_array() || (required && v.empty())) {
    problem(key, fmt::format("expected a {}list of strings", required ? "non-empty " : ""));
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string() || v[i].get<std::string>().empty()) {
      problem(fmt::format("{}.{}", key, i), "expected a non-empty string");
      continue;
    }
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> SettingsReader::string_map(const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!section_.is_object() || !section_.contains(key)) return out;
  const auto& v = section_[key];
  if (!v.is_object()) {
    problem(key, "expected a map OLD: NEW");
    return out;
  }
  for (const auto& [k, x] : v.items()) {
    if (!x.is_string() || x.get<std::string>().empty()) {
      problem(key + "." + k, "expected a non-empty string");
      continue;
    }
    out.emplace_back(k, x.get<std::string>());
  }
  return out;
}

bool SettingsReader::boolean(const std::string& key, bool fallback) {
  if (!section_.is_object() || !section_.contains(key)) return fallback;
  if (!section_[key].is_boolean()) {
    problem(key, "expected true or false");
    return fallback;
  }
  return section_[key].get<bool>();
}

int64_t SettingsReader::count(const std::string& key, int64_t fallback) {
  if (!section_.is_object() || !section_.contains(key)) return fallback;
  if (!section_[key].is_number_integer() || section_[key].get<int64_t>() < 0) {
    problem(key, "expected a whole number (0 or more)");
    return fallback;
  }
  return section_[key].get<int64_t>();
}

void SettingsReader::only(const std::vector<std::string>& known) {
  if (!section_.is_object()) return;
  for (const auto& [k, v] : section_.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      problem(k, fmt::format("unknown setting (known: {})", fmt::join(known, ", ")));
}

void SettingsReader::only(const std::vector<KindOption>& declared) {
  std::vector<std::string> known;
  for (const auto& o : declared) known.push_back(o.key);
  only(known);
}

}  // namespace lifeboat::sources

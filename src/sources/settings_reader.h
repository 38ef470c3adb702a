// Typed reads of a source's settings section that record "key: problem" instead of throwing, so
// `plan check` reports every wrong type and a run never meets one.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sources/source_kind.h"

namespace lifeboat::sources {

class SettingsReader {
 public:
  SettingsReader(const nlohmann::json& section, std::vector<SettingsProblem>& problems);

  std::string string(const std::string& key, bool required = false);
  std::vector<std::string> strings(const std::string& key, bool required = false);
  std::vector<std::pair<std::string, std::string>> string_map(const std::string& key);
  bool boolean(const std::string& key, bool fallback);
  int64_t count(const std::string& key, int64_t fallback);
  // Every key not in `known` is a problem.
  void only(const std::vector<std::string>& known);
  // Every key the kind did not declare is a problem.
  void only(const std::vector<KindOption>& declared);
  bool ok() const { return problems_.size() == start_; }

 private:
  void problem(const std::string& key, const std::string& message);
  const nlohmann::json& section_;
  std::vector<SettingsProblem>& problems_;
  size_t start_;
};

}  // namespace lifeboat::sources

// The source kinds a plan may name: which are built, and how each checks its own plan section. A new
// source joins by adding its entry here; plan, daemon, drill and report code stay as they are.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lifeboat::sources {

struct SourceKind {
  std::string name;
  bool built = false;
  std::string summary;
  // Appends "key: problem" lines for the kind-specific settings of one source (or of an environment
  // override when `environment` is true: then nothing is required).
  std::function<void(const nlohmann::json& settings, bool environment, std::vector<std::string>& problems)> check;
};

const std::vector<SourceKind>& source_kinds();
const SourceKind* find_source_kind(const std::string& name);

}  // namespace lifeboat::sources

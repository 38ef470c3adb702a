// The environment variables a component reads, passed in rather than taken from the process where a
// test needs to give its own (credentials, endpoints): the process's by default.
#pragma once

#include <map>
#include <string>

namespace lifeboat {

class Environment {
 public:
  virtual ~Environment() = default;
  virtual std::string get(const std::string& name) const = 0;  // "" when unset
};

// The process's environment (getenv).
const Environment& process_environment();

// A fixed set of variables (tests).
class MapEnvironment final : public Environment {
 public:
  explicit MapEnvironment(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  std::string get(const std::string& name) const override {
    auto it = vars_.find(name);
    return it == vars_.end() ? std::string() : it->second;
  }

 private:
  std::map<std::string, std::string> vars_;
};

}  // namespace lifeboat

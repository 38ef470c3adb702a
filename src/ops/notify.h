// Notifications from the plan: JSON webhook, Slack-compatible webhook, SMTP mail, or a command; each
// chooses the events it wants (failure — the default —, success, report).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace lifeboat::ops {

struct Event {
  std::string kind;  // "backup", "drill", "report"
  bool ok = true;
  std::string title;
  std::string text;
  nlohmann::json details = nlohmann::json::object();
};

// Sends the event to every notifier that wants it; returns the failures (never throws them: a dead
// receiver must not fail a backup).
std::vector<std::string> notify(const plan::Plan& plan, const Event& event);

}  // namespace lifeboat::ops

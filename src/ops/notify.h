// Notifications from the plan: JSON webhook, Slack-compatible webhook, SMTP mail, or a command; each
// chooses the events it wants (failure — the default —, success, report) and, optionally, the
// sources or source kinds it hears about (the plan's roles: data engineers, ML engineers, operations).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace lifeboat::ops {

struct Event {
  std::string kind;  // "backup", "drill", "maintenance", "report", "standby", "failover"
  bool ok = true;
  std::string title;
  std::string text;
  nlohmann::json details = nlohmann::json::object();
  std::string source, source_kind;  // what it is about; empty for the whole plan (drills, reports)
};

// A notifier with `sources:`/`kinds:` hears only about those; one without hears about everything.
bool notifier_wants(const plan::NotificationSpec& n, const Event& event);

// Sends the event to every notifier that wants it; returns the failures (never throws them: a dead
// receiver must not fail a backup).
std::vector<std::string> notify(const plan::Plan& plan, const Event& event);

}  // namespace lifeboat::ops

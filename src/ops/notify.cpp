// Notifiers.
#include "ops/notify.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cloud/http.h"
#include "cloud/smtp.h"
#include "core/names.h"
#include "core/time.h"

namespace lifeboat::ops {

namespace {

Status post_json(const std::string& url, const nlohmann::json& body) {
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  cloud::HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = as_bytes(text);
  req.timeout_s = 30;
  LB_ASSIGN_OR_RETURN(auto r, cloud::http_send(req));
  if (r.status < 200 || r.status >= 300) return cloud::http_status_error(r, "webhook " + url);
  return Status::ok();
}

Status run_command(const std::string& command, const std::string& input) {
  FILE* p = popen(command.c_str(), "w");
  if (!p) return Error(Code::kIo, fmt::format("cannot run {}", command));
  fwrite(input.data(), 1, input.size(), p);
  int rc = pclose(p);
  if (rc != 0) return Error(Code::kIo, fmt::format("notification command '{}' exited {}", command, WEXITSTATUS(rc)));
  return Status::ok();
}

}  // namespace

bool notifier_wants(const plan::NotificationSpec& n, const Event& e) {
  auto has = [](const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  bool event = e.kind == "report" ? has(n.on, "report") : e.ok ? has(n.on, "success") : has(n.on, "failure");
  if (!event) return false;
  if (n.sources.empty() && n.kinds.empty()) return true;
  return (!e.source.empty() && has(n.sources, e.source)) || (!e.source_kind.empty() && has(n.kinds, e.source_kind));
}

std::vector<std::string> notify(const plan::Plan& plan, const Event& e) {
  std::vector<std::string> failures;
  nlohmann::json payload = {{"event", e.kind}, {"ok", e.ok}, {"title", e.title}, {"text", e.text},
                            {"details", e.details}, {"plan", plan.file}, {"time", format_rfc3339(now_unix_ns())}};
  if (!e.source.empty()) payload["source"] = e.source, payload["source_kind"] = e.source_kind;
  payload = redact_urls_in_json(payload);  // a URL's credentials never leave in a notification
  const std::string title = payload["title"], text = payload["text"];
  for (const auto& spec : plan.notifications) {
    if (!notifier_wants(spec, e)) continue;
    const nlohmann::json& n = spec.config;
    std::string type = n.value("type", "");
    Status s;
    if (type == "webhook") s = post_json(n["url"], payload);
    else if (type == "slack") s = post_json(n["url"], {{"text", fmt::format("*{}*\n{}", title, text)}});
    else if (type == "smtp")
      s = cloud::smtp_send(n["url"], n.value("user", ""), n.value("password", ""),
                           {n["from"], n["to"].is_array() ? n["to"].get<std::vector<std::string>>() : std::vector<std::string>{n["to"]},
                            "[lifeboat] " + title, text});
    else if (type == "command") s = run_command(n["command"], payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (!s.is_ok()) failures.push_back(fmt::format("{} notification: {}", type, s.message()));
  }
  return failures;
}

}  // namespace lifeboat::ops

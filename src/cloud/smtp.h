// Sending one mail over SMTP with libcurl (smtp:// or smtps://, optional STARTTLS and login).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace lifeboat::cloud {

struct MailMessage {
  std::string from;
  std::vector<std::string> to;
  std::string subject, body;
};

Status smtp_send(const std::string& url, const std::string& user, const std::string& password, const MailMessage& m);

}  // namespace lifeboat::cloud

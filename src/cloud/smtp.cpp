// SMTP through libcurl.
#include "cloud/smtp.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <cstring>
#include <ctime>

namespace lifeboat::cloud {

namespace {

struct Reader {
  std::string data;
  size_t pos = 0;
};

size_t read_cb(char* buf, size_t size, size_t n, void* user) {
  auto* r = static_cast<Reader*>(user);
  size_t take = std::min(size * n, r->data.size() - r->pos);
  std::memcpy(buf, r->data.data() + r->pos, take);
  r->pos += take;
  return take;
}

}  // namespace

Status smtp_send(const std::string& url, const std::string& user, const std::string& password, const MailMessage& m) {
  CURL* curl = curl_easy_init();
  if (!curl) return Error(Code::kFatal, "libcurl could not be initialised");
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  Reader r;
  std::string to_line;
  for (const auto& t : m.to) to_line += (to_line.empty() ? "" : ", ") + t;
  r.data = fmt::format("Date: {}\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                       date, m.from, to_line, m.subject);
  for (size_t i = 0; i < m.body.size(); ++i) {  // CRLF line ends; a leading dot is doubled (RFC 5321)
    if (m.body[i] == '\n' && (i == 0 || m.body[i - 1] != '\r')) r.data += '\r';
    if (m.body[i] == '.' && (i == 0 || m.body[i - 1] == '\n')) r.data += '.';
    r.data += m.body[i];
  }
  r.data += "\r\n";
  struct curl_slist* rcpt = nullptr;
  for (const auto& t : m.to) rcpt = curl_slist_append(rcpt, ("<" + t + ">").c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, ("<" + m.from + ">").c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(curl, CURLOPT_READDATA, &r);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (!user.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, password.c_str());
    curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) return Error(Code::kIo, fmt::format("sending mail via {}: {}", url, curl_easy_strerror(rc)));
  return Status::ok();
}

}  // namespace lifeboat::cloud

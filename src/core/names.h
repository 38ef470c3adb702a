// Names and URLs that come from outside Lifeboat — a server's model names and versions, document ids,
// object names, ref names, secret ids, the URLs a plan gives — on their way into a path on this
// machine or into text Lifeboat prints, records or sends. Every such name becomes a path only
// through escape_component or check_relative_path, and every URL is shown only through redact_url.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace lifeboat {

// One path component that stays one: '%' , '/', control bytes and DEL written %XX (upper-case hex),
// and the whole names "", "." and ".." written %00, %2E and %2E%2E. Never empty, never "." or "..",
// never holds '/'. (A name that is one NUL byte reads back as "": no service allows either.)
std::string escape_component(std::string_view name);
// The inverse: every %XX decoded; a '%' not followed by two hex digits stays as it is.
std::string unescape_component(std::string_view escaped);

// A relative path as a server gave it, refused (kInvalidArgument, naming `what`) when it is empty,
// starts with '/', or has an empty, "." or ".." component or a NUL byte: it never leads outside the
// directory it is joined to.
Status check_relative_path(std::string_view path, std::string_view what);

// A version number as registries give them ("1", "12"): decimal digits only, at most 18, no sign.
// Anything else is refused (kInvalidArgument) naming `what` and the text.
Result<int64_t> decimal_version(std::string_view text, std::string_view what);

// A URL as it may be shown: its user information ("user:password@") replaced by "…@", and the
// values of query parameters that carry credentials (token, key, secret, password, signature, …)
// replaced by "…". Text that is not a URL comes back as it is.
std::string redact_url(std::string_view url);
// Every URL inside `text` (scheme://…, up to a space, quote or bracket) redacted as redact_url does.
std::string redact_urls_in(std::string_view text);
// Every string (and key) inside `j`, redacted as redact_urls_in does: the last step before a record,
// report, notification or --json answer leaves Lifeboat.
nlohmann::json redact_urls_in_json(const nlohmann::json& j);

}  // namespace lifeboat

// One way to replace a file so that a crash leaves either the old or the new content, never a mix.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace lifeboat {

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the
// directory; every step is checked and a failure removes the temporary file and names the step.
Status write_file_atomic(const std::string& path, std::string_view data, unsigned mode = 0644);

}  // namespace lifeboat

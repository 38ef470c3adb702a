// Host and user names of this process, for key files, locks and snapshots.
#pragma once

#include <string>

namespace lifeboat::platform {

std::string hostname();
std::string username();

}  // namespace lifeboat::platform

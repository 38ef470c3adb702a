// The config source kind's entry.
#pragma once

#include "sources/config/config.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::config {

const SourceKind& config_source_kind();

}  // namespace lifeboat::sources::config

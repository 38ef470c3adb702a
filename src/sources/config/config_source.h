// The config source kind's entry.
#pragma once

#include "sources/config/config.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::config {

const SourceKind& config_source_kind();
// Where a config source's settings (merged with an environment's) restore to.
ConfigRestoreOptions restore_options_of(const SourceSettings& settings);

}  // namespace lifeboat::sources::config

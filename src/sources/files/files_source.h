// The files source kind's entry for the registry.
#pragma once

#include "sources/source_kind.h"

namespace lifeboat::sources::files {

const SourceKind& files_source_kind();

}  // namespace lifeboat::sources::files

// The MongoDB source kind's entry for the registry.
#pragma once

#include "sources/source_kind.h"

namespace lifeboat::sources::mongodb {

const SourceKind& mongodb_source_kind();

}  // namespace lifeboat::sources::mongodb

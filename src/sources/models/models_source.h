// The models source kind's entry.
#pragma once

#include "sources/source_kind.h"

namespace lifeboat::sources::models {

const SourceKind& models_source_kind();

}  // namespace lifeboat::sources::models

// The firestore source kind's entry.
#pragma once

#include "sources/source_kind.h"

namespace lifeboat::sources::firestore {

const SourceKind& firestore_source_kind();

}  // namespace lifeboat::sources::firestore

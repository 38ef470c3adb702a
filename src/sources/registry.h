// The list of source kinds. Each kind defines its entry in its own folder (see source_kind.h);
// nothing outside a kind's folder names a kind.
#pragma once

#include <string>
#include <vector>

#include "sources/source_kind.h"

namespace lifeboat::sources {

// Kinds this Lifeboat can back up and restore.
const std::vector<const SourceKind*>& source_kinds();
const SourceKind* find_source_kind(const std::string& name);
// Kinds a plan may name that are not built yet (plan check says so instead of "unknown").
const std::vector<std::string>& planned_source_kinds();

}  // namespace lifeboat::sources

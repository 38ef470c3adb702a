// The gcs_bucket source kind's entry.
#pragma once

#include "sources/source_kind.h"

namespace lifeboat::sources::gcs_bucket {

const SourceKind& gcs_bucket_source_kind();

}  // namespace lifeboat::sources::gcs_bucket

// MongoDB's $v:2 delta updates (the oplog's update format since 5.0) applied in our own code, so
// replay needs no applyOps on the target: into any server, a mongodump directory, or a prediction.
#pragma once

#include <bson/bson.h>

#include "core/status.h"
#include "sources/mongodb/mongo_client.h"

namespace lifeboat::sources::mongodb {

// The document `pre` becomes once `diff` (an entry's o.diff) is applied, field order included, as
// the server's own applier (document_diff_applier.cpp) leaves it:
// - a document diff holds sections in the order d (delete: {f: false}), u (update: {f: value}),
//   i (insert: {f: value}), then s<f> sub-diffs; fields of pre keep their place unless deleted or
//   re-inserted; updated fields pre lacked, then inserted ones, are appended in the diff's order;
// - an array diff starts {a: true}, may resize with l: <int32> (truncated, or padded with null),
//   then u<index> (new value) and s<index> (sub-diff) in increasing index order;
// - a sub-diff whose field is absent changes nothing; one whose value has another type, or an array
//   index past the end, becomes null (a later entry rewrites it: replay is idempotent).
// A section we do not know (b: binary diffs, written by servers newer than 8.0) or a malformed diff
// is an error naming it; nothing is guessed.
Result<BsonDoc> apply_delta(const bson_t* pre, const bson_t* diff);

}  // namespace lifeboat::sources::mongodb

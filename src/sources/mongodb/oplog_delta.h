// The oplog's two update formats applied in our own code, so replay needs no applyOps on the target
// and works alike into any server, a mongodump directory, or the drills' prediction: MongoDB's $v:2
// delta updates (since 5.0) and the $v:1 $set/$unset with dotted paths (4.4).
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

// The document `pre` becomes once a $v:1 update (o = {$v: 1, $set: {path: value}, $unset: {path: 1}})
// is applied, as the server's update system leaves it:
// - a path is dotted ("a.b.3.c"); through a document it names a field, through an array an index;
// - an existing field is set in place; missing fields, and the documents on the way to them, are
//   appended in the server's order (field names sorted, numeric names by number);
// - a set past an array's end pads it with null; an unset of an array element leaves null there;
//   an unset of something absent changes nothing;
// - a path through a value that is neither document nor array, two paths where one is the prefix
//   of the other, or any operator but $set/$unset is an error naming it.
Result<BsonDoc> apply_modifiers(const bson_t* pre, const bson_t* update);

}  // namespace lifeboat::sources::mongodb

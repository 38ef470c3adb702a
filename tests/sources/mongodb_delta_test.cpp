// The oplog's update formats: $v:2 delta updates as a table of (document, diff, result) cases in the
// shapes MongoDB's own applier tests and jstests/.../v2_delta_oplog_entries.js exercise, and $v:1
// $set/$unset with dotted paths as 4.4 logs them; each result written out by hand from the format's
// rules (field order included), and the inputs we must refuse.
#include <gtest/gtest.h>

#include "sources/mongodb/oplog_delta.h"

namespace lifeboat::sources::mongodb {
namespace {

struct DeltaCase {
  const char* name;
  const char* pre;
  const char* diff;
  const char* want;
};

// Every field kind and nesting: d/u/i at the top and nested, s<field> into documents and arrays at
// any depth, array resize (shrink, grow), u<index>/s<index>, type mismatches, absent paths.
const DeltaCase kCases[] = {
    {"update existing keeps its place", R"({"_id":1,"a":1,"b":2})", R"({"u":{"a":10}})", R"({"_id":1,"a":10,"b":2})"},
    {"update absent appends", R"({"_id":1,"a":1})", R"({"u":{"z":5}})", R"({"_id":1,"a":1,"z":5})"},
    {"updates keep the diff's order for absent fields", R"({"_id":1})", R"({"u":{"y":1,"x":2}})",
     R"({"_id":1,"y":1,"x":2})"},
    {"update mixed present and absent", R"({"f1":0,"foo":2,"f2":3})", R"({"u":{"f1":1,"newField":2}})",
     R"({"f1":1,"foo":2,"f2":3,"newField":2})"},
    {"update changes the type", R"({"_id":1,"a":"s"})", R"({"u":{"a":{"n":1}}})", R"({"_id":1,"a":{"n":1}})"},
    {"update to null", R"({"_id":1,"a":1})", R"({"u":{"a":null}})", R"({"_id":1,"a":null})"},
    {"update to an array", R"({"_id":1,"a":1,"b":1})", R"({"u":{"a":[1,2]}})", R"({"_id":1,"a":[1,2],"b":1})"},
    {"delete one", R"({"_id":1,"a":1,"b":2})", R"({"d":{"a":false}})", R"({"_id":1,"b":2})"},
    {"delete several", R"({"_id":1,"a":1,"b":2,"c":3})", R"({"d":{"a":false,"c":false}})", R"({"_id":1,"b":2})"},
    {"delete absent is a no-op", R"({"_id":1,"a":1})", R"({"d":{"zz":false}})", R"({"_id":1,"a":1})"},
    {"insert new appends", R"({"_id":1,"a":1})", R"({"i":{"n":1}})", R"({"_id":1,"a":1,"n":1})"},
    {"insert existing moves it to the end", R"({"f1":1,"foo":2,"f2":3})", R"({"i":{"f1":1,"newField":2}})",
     R"({"foo":2,"f2":3,"f1":1,"newField":2})"},
    {"inserts come after updates", R"({"_id":1})", R"({"u":{"u1":1},"i":{"i1":2}})", R"({"_id":1,"u1":1,"i1":2})"},
    {"delete, update and insert together", R"({"_id":1,"a":1,"b":2,"c":3})",
     R"({"d":{"a":false},"u":{"b":20},"i":{"d":4}})", R"({"_id":1,"b":20,"c":3,"d":4})"},
    {"insert a document value", R"({"_id":1})", R"({"i":{"o":{"x":{"y":1}}}})", R"({"_id":1,"o":{"x":{"y":1}}})"},
    {"sub-diff of a document", R"({"obj":{"dField":0,"iField":0,"uField":0},"otherField":0})",
     R"({"sobj":{"d":{"dField":false},"u":{"uField":2},"i":{"iField":1}}})",
     R"({"obj":{"uField":2,"iField":1},"otherField":0})"},
    {"sub-diff two levels deep", R"({"s":{"s":{"a":0}}})", R"({"ss":{"ss":{"u":{"a":1}}}})", R"({"s":{"s":{"a":1}}})"},
    {"sub-diff three levels deep inserts", R"({"a":{"b":{"c":{}}}})", R"({"sa":{"sb":{"sc":{"i":{"x":1}}}}})",
     R"({"a":{"b":{"c":{"x":1}}}})"},
    {"sub-diff of an absent field is a no-op", R"({"someOtherField":1})", R"({"ssubObj":{"ssubObj":{"u":{"a":1}}}})",
     R"({"someOtherField":1})"},
    {"sub-diff of a scalar becomes null in place", R"({"A":1,"subObj":"scalar!","C":3})",
     R"({"ssubObj":{"ssubObj":{"u":{"a":1}}}})", R"({"A":1,"subObj":null,"C":3})"},
    {"nested sub-diff of a scalar becomes null", R"({"subObj":{"x":1,"subObj":"scalar!","y":2}})",
     R"({"ssubObj":{"ssubObj":{"u":{"a":1}}}})", R"({"subObj":{"x":1,"subObj":null,"y":2}})"},
    {"document sub-diff on an array becomes null", R"({"a":[1,2]})", R"({"sa":{"u":{"x":1}}})", R"({"a":null})"},
    {"array sub-diff on a document becomes null", R"({"a":{"x":1},"b":1})", R"({"sa":{"a":true,"u0":1}})",
     R"({"a":null,"b":1})"},
    {"several sub-diffs", R"({"a":{"x":1},"b":{"y":1}})", R"({"sa":{"u":{"x":2}},"sb":{"d":{"y":false}}})",
     R"({"a":{"x":2},"b":{}})"},
    {"top-level sections with a sub-diff", R"({"_id":1,"a":1,"o":{"p":1}})",
     R"({"u":{"a":2},"i":{"n":3},"so":{"u":{"p":2}}})", R"({"_id":1,"a":2,"o":{"p":2},"n":3})"},
    {"field names with dots and dollars inside", R"({"_id":1,"a.b":1})", R"({"u":{"a.b":2}})", R"({"_id":1,"a.b":2})"},
    {"field named like a section", R"({"_id":1,"d":1,"u":2})", R"({"u":{"d":3,"u":4}})", R"({"_id":1,"d":3,"u":4})"},
    {"sub-diff of a field named s", R"({"s":{"x":1}})", R"({"ss":{"u":{"x":2}}})", R"({"s":{"x":2}})"},
    {"array update one index", R"({"arr":[1,2,3]})", R"({"sarr":{"a":true,"u1":20}})", R"({"arr":[1,20,3]})"},
    {"array update past the end pads with null", R"({"arr":[0]})", R"({"sarr":{"a":true,"u3":1}})",
     R"({"arr":[0,null,null,1]})"},
    {"array append", R"({"arr":[999,999,999,999]})", R"({"sarr":{"a":true,"u1":1,"u4":2}})",
     R"({"arr":[999,1,999,999,2]})"},
    {"array truncate with an update", R"({"arr":[999,999,999,999]})", R"({"sarr":{"a":true,"l":3,"u1":1}})",
     R"({"arr":[999,1,999]})"},
    {"array shrink to empty", R"({"arr":[1,2,3]})", R"({"sarr":{"a":true,"l":0}})", R"({"arr":[]})"},
    {"array grow by resize pads with null", R"({"arr":[1]})", R"({"sarr":{"a":true,"l":3}})",
     R"({"arr":[1,null,null]})"},
    {"array grow by resize with the last set", R"({"arr":[1]})", R"({"sarr":{"a":true,"l":3,"u2":7}})",
     R"({"arr":[1,null,7]})"},
    {"array sub-diff of an element document", R"({"arr":[{"a":0},{"b":0}]})",
     R"({"sarr":{"a":true,"s1":{"u":{"b":5}}}})", R"({"arr":[{"a":0},{"b":5}]})"},
    {"array of documents, several sub-diffs and an append",
     R"({"uField":1,"dFieldA":1,"arr":[null,{"a":0},{"b":0},{"c":0}],"dFieldB":1})",
     R"({"d":{"dFieldA":false,"dFieldB":false},"u":{"uField":999},"sarr":{"a":true,"s1":{"u":{"a":1}},"s2":{"u":{"b":2}},"s3":{"u":{"c":3}},"u4":{"x":1}}})",
     R"({"uField":999,"arr":[null,{"a":1},{"b":2},{"c":3},{"x":1}]})"},
    {"array element sub-diff on a scalar becomes null", R"({"arr":[0,0,{"x":2}]})",
     R"({"sarr":{"a":true,"s1":{"u":{"a":1}},"u2":{"x":1}}})", R"({"arr":[0,null,{"x":1}]})"},
    {"array element sub-diff past the end becomes null", R"({"arr":[]})", R"({"sarr":{"a":true,"s1":{"u":{"a":1}}}})",
     R"({"arr":[null,null]})"},
    {"array sub-diff keeps elements after the last change", R"({"arr":[0,{},{},{},4,5,6]})",
     R"({"sarr":{"a":true,"s1":{"u":{"a":1}},"u4":{"x":1}}})", R"({"arr":[0,{"a":1},{},{},{"x":1},5,6]})"},
    {"nested arrays", R"({"m":[[1,2],[3,4]]})", R"({"sm":{"a":true,"s1":{"a":true,"u0":30}}})",
     R"({"m":[[1,2],[30,4]]})"},
    {"nested array resize", R"({"m":[[1,2,3]]})", R"({"sm":{"a":true,"s0":{"a":true,"l":1}}})", R"({"m":[[1]]})"},
    {"array inside a document inside an array", R"({"a":[{"b":[1,2]}]})",
     R"({"sa":{"a":true,"s0":{"sb":{"a":true,"u2":3}}}})", R"({"a":[{"b":[1,2,3]}]})"},
    {"document inside an array inside a document", R"({"o":{"list":[{"k":1,"v":1}]}})",
     R"({"so":{"slist":{"a":true,"s0":{"d":{"v":false},"i":{"w":2}}}}})", R"({"o":{"list":[{"k":1,"w":2}]}})"},
    {"array sub-diff on an array whose element is an array", R"({"a":[[0]]})",
     R"({"sa":{"a":true,"s0":{"u":{"x":1}}}})", R"({"a":[null]})"},
    {"array diff applied twice is idempotent", R"({"arr":[0,1,2,3,4,5,6]})", R"({"sarr":{"a":true,"u1":997,"u5":999}})",
     R"({"arr":[0,997,2,3,4,999,6]})"},
    {"update with every BSON type", R"({"_id":1})",
     R"({"u":{"d":{"$numberDouble":"1.5"},"l":{"$numberLong":"9"},"t":{"$date":{"$numberLong":"0"}},"b":true,"x":{"$numberDecimal":"1.1"}}})",
     R"({"_id":1,"d":{"$numberDouble":"1.5"},"l":{"$numberLong":"9"},"t":{"$date":{"$numberLong":"0"}},"b":true,"x":{"$numberDecimal":"1.1"}})"},
    {"array update with a document value", R"({"arr":[1]})", R"({"sarr":{"a":true,"u0":{"n":{"m":1}}}})",
     R"({"arr":[{"n":{"m":1}}]})"},
    {"delete a nested field leaves an empty document", R"({"o":{"x":1}})", R"({"so":{"d":{"x":false}}})",
     R"({"o":{}})"},
    {"delete _id-free document fields only", R"({"_id":7,"a":{"b":1},"c":2})", R"({"d":{"a":false,"c":false}})",
     R"({"_id":7})"},
};

std::string canonical(const bson_t* doc) {
  char* json = bson_as_canonical_extended_json(doc, nullptr);
  std::string out = json;
  bson_free(json);
  return out;
}

BsonDoc parse(const char* json) {
  auto doc = BsonDoc::from_json(json);
  EXPECT_TRUE(doc.is_ok()) << json << ": " << doc.status().message();
  return doc.is_ok() ? std::move(*doc) : BsonDoc();
}

// Applies each case's change with `apply` and compares the result, field order and types included.
template <size_t N>
void expect_table(const DeltaCase (&cases)[N], Result<BsonDoc> (*apply)(const bson_t*, const bson_t*)) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    BsonDoc pre = parse(c.pre), change = parse(c.diff), want = parse(c.want);
    auto got = apply(pre.get(), change.get());
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    EXPECT_EQ(canonical(got->get()), canonical(want.get()));
  }
}

// Each (change, why) of `bad` applied to `pre` must fail with a message naming the format and why.
template <size_t N>
void expect_refusals(const char* pre_json, const std::pair<const char*, const char*> (&bad)[N],
                     Result<BsonDoc> (*apply)(const bson_t*, const bson_t*), const char* format) {
  BsonDoc pre = parse(pre_json);
  for (const auto& [change_json, why] : bad) {
    SCOPED_TRACE(change_json);
    BsonDoc change = parse(change_json);
    auto got = apply(pre.get(), change.get());
    ASSERT_FALSE(got.is_ok());
    EXPECT_NE(got.status().message().find(why), std::string::npos) << got.status().message();
    EXPECT_NE(got.status().message().find(format), std::string::npos) << got.status().message();
  }
}

TEST(DeltaUpdate, TableOfServerShapes) {
  ASSERT_GE(std::size(kCases), 40u);
  expect_table(kCases, apply_delta);
}

TEST(DeltaUpdate, ReapplyingADiffGivesTheSameDocument) {
  // Oplog replay is idempotent: an entry applied to a document that already holds its result (a
  // full backup taken while the change ran) must leave it as it is.
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    BsonDoc diff = parse(c.diff), want = parse(c.want);
    auto again = apply_delta(want.get(), diff.get());
    ASSERT_TRUE(again.is_ok()) << again.status().message();
    std::string name = c.name;
    // Sub-diffs into a value that has become null by a type mismatch stay null; appending to an
    // array that already grew is the only shape where a second application differs, and the server
    // shares that (a later entry rewrites the value).
    if (name.find("becomes null") != std::string::npos || name.find("past the end") != std::string::npos) continue;
    EXPECT_EQ(canonical(again->get()), canonical(want.get()));
  }
}

TEST(DeltaUpdate, RefusesWhatItDoesNotKnowNamingIt) {
  const std::pair<const char*, const char*> bad[] = {
      {R"({})", "empty diff"},
      {R"({"b":{"f":{"o":1}}})", "binary section 'b'"},
      {R"({"x":{"f":1}})", "unexpected section 'x'"},
      {R"({"u":{"a":1},"d":{"b":false}})", "unexpected section 'd'"},
      {R"({"sa":{"u":{"x":1}},"u":{"b":1}})", "unexpected section 'u'"},
      {R"({"u":{"a":1},"i":{"a":2}})", "field 'a' changed twice"},
      {R"({"u":1})", "section 'u' is not a document"},
      {R"({"sa":1})", "sub-diff 'sa' is not a document"},
      {R"({"del":{"a":false}})", "unexpected section 'del'"},
      {R"({"sarr":{"a":true,"x1":1}})", "unexpected array change 'x1'"},
      {R"({"sarr":{"a":true,"u2":1,"u1":1}})", "out of order"},
      {R"({"sarr":{"a":true,"uq":1}})", "is not a number"},
      {R"({"sarr":{"a":true,"l":"3"}})", "resize 'l'"},
      {R"({"sarr":{"a":true,"l":1,"u3":1}})", "past the resize"},
      {R"({"sarr":{"a":false,"u0":1}})", "must start with a: true"},
      {R"({"sarr":{}})", "an empty sub-diff"},
  };
  expect_refusals(R"({"_id":1,"a":{"x":1},"arr":[1,2,3]})", bad, apply_delta, "$v:2");
}

// $v:1 (MongoDB 4.4): {$v:1, $set:{path:value}, $unset:{path:true}}.
const DeltaCase kModifierCases[] = {
    {"set top level in place", R"({"_id":1,"a":1,"b":2})", R"({"$v":1,"$set":{"a":5}})", R"({"_id":1,"a":5,"b":2})"},
    {"set new fields in the server's order", R"({"_id":1})", R"({"$v":1,"$set":{"z":1,"b":2,"a":3}})",
     R"({"_id":1,"a":3,"b":2,"z":1})"},
    {"numeric names by number", R"({"_id":1})", R"({"$set":{"10":1,"9":2,"a":3}})", R"({"_id":1,"9":2,"10":1,"a":3})"},
    {"unset top level", R"({"_id":1,"a":1,"b":2})", R"({"$v":1,"$unset":{"a":true}})", R"({"_id":1,"b":2})"},
    {"unset absent", R"({"_id":1})", R"({"$unset":{"a":true,"b.c":true}})", R"({"_id":1})"},
    {"set nested in place", R"({"_id":1,"a":{"b":1,"c":2}})", R"({"$set":{"a.b":9}})",
     R"({"_id":1,"a":{"b":9,"c":2}})"},
    {"set nested creates the way", R"({"_id":1})", R"({"$set":{"a.b.c":1}})", R"({"_id":1,"a":{"b":{"c":1}}})"},
    {"set nested new field appended", R"({"a":{"x":1}})", R"({"$set":{"a.y":2}})", R"({"a":{"x":1,"y":2}})"},
    {"unset nested", R"({"a":{"x":1,"y":2}})", R"({"$unset":{"a.x":1}})", R"({"a":{"y":2}})"},
    {"set array element", R"({"arr":[1,2,3]})", R"({"$set":{"arr.1":20}})", R"({"arr":[1,20,3]})"},
    {"set past the end pads with null", R"({"arr":[1]})", R"({"$set":{"arr.3":4}})", R"({"arr":[1,null,null,4]})"},
    {"unset array element leaves null", R"({"arr":[1,2,3]})", R"({"$unset":{"arr.1":true}})", R"({"arr":[1,null,3]})"},
    {"unset past the end changes nothing", R"({"arr":[1]})", R"({"$unset":{"arr.5":true}})", R"({"arr":[1]})"},
    {"set inside an array element document", R"({"arr":[{"a":1},{"b":1}]})", R"({"$set":{"arr.1.b":2,"arr.1.c":3}})",
     R"({"arr":[{"a":1},{"b":2,"c":3}]})"},
    {"set through padding creates a document", R"({"arr":[]})", R"({"$set":{"arr.1.x":1}})",
     R"({"arr":[null,{"x":1}]})"},
    {"numeric component of a document is a field", R"({"a":{"0":{"b":1}}})", R"({"$set":{"a.0.b":2}})",
     R"({"a":{"0":{"b":2}}})"},
    {"numeric component of a missing field makes a document", R"({"_id":1})", R"({"$set":{"a.0":1}})",
     R"({"_id":1,"a":{"0":1}})"},
    {"set and unset together", R"({"_id":1,"a":1,"b":{"c":1,"d":2}})",
     R"({"$v":1,"$set":{"e":1,"b.c":5},"$unset":{"a":true,"b.d":true}})", R"({"_id":1,"b":{"c":5},"e":1})"},
    {"nested arrays", R"({"m":[[1,2],[3]]})", R"({"$set":{"m.1.1":4}})", R"({"m":[[1,2],[3,4]]})"},
    {"unset below a scalar changes nothing", R"({"a":1})", R"({"$unset":{"a.b":true}})", R"({"a":1})"},
    {"set a whole subdocument", R"({"a":{"x":1}})", R"({"$set":{"a":{"y":2}}})", R"({"a":{"y":2}})"},
};

TEST(ModifierUpdate, TableOfServerShapes) { expect_table(kModifierCases, apply_modifiers); }

TEST(ModifierUpdate, RefusesWhatTheServerWouldNotHaveLogged) {
  const std::pair<const char*, const char*> bad[] = {
      {R"({"$inc":{"a":1}})", "operator $inc"},
      {R"({"$set":{"a.b":1}})", "neither document nor array"},
      {R"({"$set":{"arr.x":1}})", "names a field of an array"},
      {R"({"$set":{"o.p":1,"o":2}})", "paths conflict"},
      {R"({"$set":{"a..b":1}})", "empty component"},
      {R"({"$set":1})", "not a document"},
  };
  expect_refusals(R"({"_id":1,"a":1,"arr":[1],"o":{"p":0}})", bad, apply_modifiers, "$v:1");
}

}  // namespace
}  // namespace lifeboat::sources::mongodb

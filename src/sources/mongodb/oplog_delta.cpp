// The oplog's update formats applied to a document in our own code (format notes in oplog_delta.h).
#include "sources/mongodb/oplog_delta.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace lifeboat::sources::mongodb {

namespace {

// BSON nests at most 100 deep in the server; a diff deeper than this is not one the server wrote.
constexpr int kMaxDeltaDepth = 200;

Status delta_error(const std::string& path, const std::string& what) {
  return Error(Code::kCorrupt,
               fmt::format("delta update ($v:2) at {}: {}", path.empty() ? "the document" : path, what));
}

std::string join_path(const std::string& path, std::string_view field) {
  return path.empty() ? std::string(field) : path + "." + std::string(field);
}

// A diff is an array diff when its first field is the array header `a`.
bool is_array_delta(const bson_t* diff) {
  bson_iter_t it;
  return bson_iter_init(&it, diff) && bson_iter_next(&it) && std::strcmp(bson_iter_key(&it), "a") == 0;
}

// A sub-document or array value as a bson_t view (the iterator's bytes outlive it).
bool view_of(const bson_iter_t* it, bson_t* out) {
  uint32_t len = 0;
  const uint8_t* data = nullptr;
  if (BSON_ITER_HOLDS_DOCUMENT(it))
    bson_iter_document(it, &len, &data);
  else if (BSON_ITER_HOLDS_ARRAY(it))
    bson_iter_array(it, &len, &data);
  else
    return false;
  return bson_init_static(out, data, len);
}

Status apply_object_delta(const bson_t* pre, const bson_t* diff, bson_t* out, const std::string& path, int depth);
Status apply_array_delta(const bson_t* pre, const bson_t* diff, bson_t* out, const std::string& path, int depth);

// Applies sub-diff `sub` (a document value of the diff) to the value at `pre` (null when absent),
// appending the result under `key`. A value whose type does not fit the diff becomes null.
Status append_sub_delta(const bson_iter_t* pre, const bson_iter_t* sub, bson_t* out, const char* key,
                        const std::string& path, int depth) {
  bson_t sub_diff;
  if (!BSON_ITER_HOLDS_DOCUMENT(sub) || !view_of(sub, &sub_diff))
    return delta_error(path, "a sub-diff is not a document");
  if (bson_empty(&sub_diff)) return delta_error(path, "an empty sub-diff");
  bool array_diff = is_array_delta(&sub_diff);
  bson_t pre_value;
  if (pre && array_diff && BSON_ITER_HOLDS_ARRAY(pre) && view_of(pre, &pre_value)) {
    bson_t child;
    bson_append_array_begin(out, key, -1, &child);
    Status s = apply_array_delta(&pre_value, &sub_diff, &child, path, depth + 1);
    bson_append_array_end(out, &child);
    return s;
  }
  if (pre && !array_diff && BSON_ITER_HOLDS_DOCUMENT(pre) && view_of(pre, &pre_value)) {
    bson_t child;
    bson_append_document_begin(out, key, -1, &child);
    Status s = apply_object_delta(&pre_value, &sub_diff, &child, path, depth + 1);
    bson_append_document_end(out, &child);
    return s;
  }
  bson_append_null(out, key, -1);
  return Status::ok();
}

struct FieldChange {
  enum Kind { kDelete, kUpdate, kInsert, kSubDiff } kind;
  bson_iter_t value;
};

Status apply_object_delta(const bson_t* pre, const bson_t* diff, bson_t* out, const std::string& path, int depth) {
  if (depth > kMaxDeltaDepth) return delta_error(path, "nested deeper than any document");
  // The sections, in the only order the server writes them: d, u, i, then s<field> sub-diffs.
  std::map<std::string, FieldChange, std::less<>> changes;
  std::vector<bson_iter_t> appended;  // updates, then inserts: added at the end unless already placed
  int previous = 0;
  bson_iter_t it;
  if (!bson_iter_init(&it, diff)) return delta_error(path, "the diff is not a document");
  bool any = false;
  while (bson_iter_next(&it)) {
    any = true;
    std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    if (key.empty()) return delta_error(path, "a section with an empty name");
    int order = key[0] == 'd' ? 1 : key[0] == 'u' ? 2 : key[0] == 'i' ? 3 : key[0] == 'b' ? 4 : key[0] == 's' ? 5 : 0;
    if (order == 4)
      return delta_error(path,
                         "binary section 'b' (bit-level diffs of binData, written by servers newer than 8.0) "
                         "is not supported");
    if (order == 0 || (order != 5 && (key.size() != 1 || order <= previous)) || order < previous)
      return delta_error(path, fmt::format("unexpected section '{}'", key));
    previous = order;
    if (order == 5) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) return delta_error(path, fmt::format("sub-diff '{}' is not a document", key));
      auto [pos, fresh] = changes.try_emplace(std::string(key.substr(1)), FieldChange{FieldChange::kSubDiff, it});
      if (!fresh) return delta_error(path, fmt::format("field '{}' changed twice", pos->first));
      continue;
    }
    bson_t section;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !view_of(&it, &section))
      return delta_error(path, fmt::format("section '{}' is not a document", key));
    auto kind = order == 1 ? FieldChange::kDelete : order == 2 ? FieldChange::kUpdate : FieldChange::kInsert;
    bson_iter_t field;
    bson_iter_init(&field, &section);
    while (bson_iter_next(&field)) {
      auto [pos, fresh] = changes.try_emplace(bson_iter_key(&field), FieldChange{kind, field});
      if (!fresh) return delta_error(path, fmt::format("field '{}' changed twice", pos->first));
      if (kind != FieldChange::kDelete) appended.push_back(field);
    }
  }
  if (!any) return delta_error(path, "an empty diff");

  std::map<std::string, bool, std::less<>> placed;  // updated fields pre already had
  bson_iter_t field;
  if (!bson_iter_init(&field, pre)) return delta_error(path, "the document is not well formed");
  while (bson_iter_next(&field)) {
    const char* name = bson_iter_key(&field);
    auto change = changes.find(std::string_view(name, bson_iter_key_len(&field)));
    if (change == changes.end()) {
      bson_append_iter(out, name, -1, &field);
      continue;
    }
    switch (change->second.kind) {
      case FieldChange::kDelete:
      case FieldChange::kInsert:  // re-added at the end
        break;
      case FieldChange::kUpdate:
        bson_append_iter(out, name, -1, &change->second.value);
        placed[name] = true;
        break;
      case FieldChange::kSubDiff:
        LB_RETURN_IF_ERROR(append_sub_delta(&field, &change->second.value, out, name, join_path(path, name), depth));
        break;
    }
  }
  for (auto& value : appended) {
    const char* name = bson_iter_key(&value);
    if (!placed.count(std::string_view(name))) bson_append_iter(out, name, -1, &value);
  }
  return Status::ok();
}

Result<uint32_t> array_index(std::string_view digits, const std::string& path) {
  if (digits.empty() || digits.size() > 9) return delta_error(path, fmt::format("array index '{}'", digits));
  uint32_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return delta_error(path, fmt::format("array index '{}' is not a number", digits));
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

Status apply_array_delta(const bson_t* pre, const bson_t* diff, bson_t* out, const std::string& path, int depth) {
  if (depth > kMaxDeltaDepth) return delta_error(path, "nested deeper than any document");
  bson_iter_t it;
  bson_iter_init(&it, diff);
  if (!bson_iter_next(&it) || std::strcmp(bson_iter_key(&it), "a") != 0 || !BSON_ITER_HOLDS_BOOL(&it) ||
      !bson_iter_bool(&it))
    return delta_error(path, "an array diff must start with a: true");
  std::optional<uint32_t> resize;
  struct Change {
    uint32_t index;
    bool sub;
    bson_iter_t value;
  };
  std::vector<Change> changes;
  while (bson_iter_next(&it)) {
    std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    if (key == "l" && changes.empty() && !resize) {
      if (!BSON_ITER_HOLDS_INT32(&it) || bson_iter_int32(&it) < 0)
        return delta_error(path, "the array resize 'l' is not a non-negative int32");
      resize = static_cast<uint32_t>(bson_iter_int32(&it));
      continue;
    }
    if (key.size() < 2 || (key[0] != 'u' && key[0] != 's'))
      return delta_error(path, fmt::format("unexpected array change '{}'", key));
    LB_ASSIGN_OR_RETURN(uint32_t index, array_index(key.substr(1), path));
    if (!changes.empty() && index <= changes.back().index)
      return delta_error(path, fmt::format("array changes out of order at '{}'", key));
    changes.push_back({index, key[0] == 's', it});
  }
  // Elements are rebuilt in order: changed ones from the diff, the rest from pre; the array ends at
  // the resize, or after the last change when that lies beyond pre's end (null fills the gaps).
  uint32_t out_index = 0;
  size_t next = 0;
  char key_buf[16];
  auto append_change = [&](const Change& c, const bson_iter_t* pre_value) -> Status {
    const char* key;
    bson_uint32_to_string(out_index, &key, key_buf, sizeof key_buf);
    std::string at = join_path(path, key);
    if (!c.sub) {
      bson_append_iter(out, key, -1, &c.value);
      return Status::ok();
    }
    return append_sub_delta(pre_value, &c.value, out, key, at, depth);
  };
  bson_iter_t element;
  bson_iter_init(&element, pre);
  while ((!resize || out_index < *resize) && bson_iter_next(&element)) {
    if (next < changes.size() && changes[next].index == out_index) {
      LB_RETURN_IF_ERROR(append_change(changes[next], &element));
      ++next;
    } else {
      const char* key;
      bson_uint32_to_string(out_index, &key, key_buf, sizeof key_buf);
      bson_append_iter(out, key, -1, &element);
    }
    ++out_index;
  }
  for (; (resize && out_index < *resize) || next < changes.size(); ++out_index) {
    if (resize && out_index >= *resize)
      return delta_error(path,
                         fmt::format("a change at index {} lies past the resize to {}", changes[next].index, *resize));
    if (next < changes.size() && changes[next].index == out_index) {
      LB_RETURN_IF_ERROR(append_change(changes[next], nullptr));
      ++next;
    } else {
      const char* key;
      bson_uint32_to_string(out_index, &key, key_buf, sizeof key_buf);
      bson_append_null(out, key, -1);
    }
  }
  return Status::ok();
}

}  // namespace

Result<BsonDoc> apply_delta(const bson_t* pre, const bson_t* diff) {
  BsonDoc out;
  LB_RETURN_IF_ERROR(apply_object_delta(pre, diff, out.get(), "", 0));
  return out;
}

namespace {

// One $set or $unset, with the path still to walk below the current level.
struct PathChange {
  std::vector<std::string> path;
  size_t depth = 0;  // components already walked
  bool unset = false;
  bson_iter_t value;
  const std::string& head() const { return path[depth]; }
  bool leaf() const { return depth + 1 == path.size(); }
  std::string full() const {
    std::string out;
    for (const auto& p : path) out += (out.empty() ? "" : ".") + p;
    return out;
  }
};

Status modifier_error(const std::string& what) {
  return Error(Code::kCorrupt, fmt::format("$v:1 update: {}", what));
}

// The order the server's update system creates fields in (pathsupport::cmpPathsAndArrayIndexes):
// names that are numbers without leading zeros by number, the rest as strings.
bool server_field_order(const std::string& a, const std::string& b) {
  auto number = [](const std::string& s) {
    return !s.empty() && s[0] >= '0' && s[0] <= '9' && !(s[0] == '0' && s.size() > 1);
  };
  if (!number(a) || !number(b)) return a < b;
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

std::optional<uint32_t> index_of(const std::string& s) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return static_cast<uint32_t>(std::stoul(s));
}

// Groups changes by their next path component; a leaf and a deeper change of one name conflict.
Result<std::map<std::string, std::vector<PathChange*>, decltype(&server_field_order)>> group(
    std::vector<PathChange*>& changes) {
  std::map<std::string, std::vector<PathChange*>, decltype(&server_field_order)> out(&server_field_order);
  for (auto* c : changes) out[c->head()].push_back(c);
  for (auto& [name, list] : out)
    if (list.size() > 1 && std::any_of(list.begin(), list.end(), [](PathChange* c) { return c->leaf(); }))
      return modifier_error(fmt::format("paths conflict at '{}'", list.front()->full()));
  return out;
}

Status modify_array(const bson_t* pre, std::vector<PathChange*>& changes, bson_t* out);
Status modify_document(const bson_t* pre, std::vector<PathChange*>& changes, bson_t* out);

// Appends under `key` what `changes` (all with this name as their next component) make of `value`
// (absent: nullptr).
Status modify_value(const bson_iter_t* value, std::vector<PathChange*>& changes, bson_t* out, const char* key) {
  if (changes.front()->leaf()) {
    PathChange* c = changes.front();
    if (!c->unset) bson_append_iter(out, key, -1, &c->value);  // an unset leaf is its caller's: it appends nothing
    return Status::ok();
  }
  bool only_unsets = std::all_of(changes.begin(), changes.end(), [](PathChange* c) { return c->unset; });
  if (value && only_unsets && !BSON_ITER_HOLDS_DOCUMENT(value) && !BSON_ITER_HOLDS_ARRAY(value)) {
    bson_append_iter(out, key, -1, value);  // nothing below a scalar to unset
    return Status::ok();
  }
  for (auto* c : changes) ++c->depth;
  Status s;
  bson_t child, pre_value;
  bool array = value && BSON_ITER_HOLDS_ARRAY(value);
  if (value && !BSON_ITER_HOLDS_DOCUMENT(value) && !array) {
    s = modifier_error(
        fmt::format("'{}' goes through a value that is neither document nor array", changes.front()->full()));
  } else if (array) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_array(value, &len, &data);
    bson_init_static(&pre_value, data, len);
    bson_append_array_begin(out, key, -1, &child);
    s = modify_array(&pre_value, changes, &child);
    bson_append_array_end(out, &child);
  } else {
    bson_append_document_begin(out, key, -1, &child);
    if (value) {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(value, &len, &data);
      bson_init_static(&pre_value, data, len);
    } else {
      bson_init(&pre_value);
    }
    s = modify_document(&pre_value, changes, &child);
    bson_append_document_end(out, &child);
  }
  for (auto* c : changes) --c->depth;
  return s;
}

Status modify_array(const bson_t* pre, std::vector<PathChange*>& changes, bson_t* out) {
  std::map<uint32_t, std::vector<PathChange*>> by_index;
  for (auto* c : changes) {
    auto index = index_of(c->head());
    if (!index) return modifier_error(fmt::format("'{}' names a field of an array", c->full()));
    by_index[*index].push_back(c);
  }
  for (auto& [index, list] : by_index)
    if (list.size() > 1 && std::any_of(list.begin(), list.end(), [](PathChange* c) { return c->leaf(); }))
      return modifier_error(fmt::format("paths conflict at '{}'", list.front()->full()));
  uint32_t length = 0;
  bson_iter_t it;
  bson_iter_init(&it, pre);
  while (bson_iter_next(&it)) ++length;
  uint32_t end = length;
  for (auto& [index, list] : by_index)
    if (!std::all_of(list.begin(), list.end(), [](PathChange* c) { return c->unset; })) end = std::max(end, index + 1);
  char key_buf[16];
  bson_iter_init(&it, pre);
  for (uint32_t i = 0; i < end; ++i) {
    bool present = i < length && bson_iter_next(&it);
    const char* key;
    bson_uint32_to_string(i, &key, key_buf, sizeof key_buf);
    auto change = by_index.find(i);
    if (change == by_index.end()) {
      if (present)
        bson_append_iter(out, key, -1, &it);
      else
        bson_append_null(out, key, -1);
      continue;
    }
    PathChange* first = change->second.front();
    if (first->leaf() && first->unset) {
      bson_append_null(out, key, -1);  // an unset array element stays, as null
      continue;
    }
    LB_RETURN_IF_ERROR(modify_value(present ? &it : nullptr, change->second, out, key));
  }
  return Status::ok();
}

Status modify_document(const bson_t* pre, std::vector<PathChange*>& changes, bson_t* out) {
  LB_ASSIGN_OR_RETURN(auto groups, group(changes));
  bson_iter_t it;
  bson_iter_init(&it, pre);
  while (bson_iter_next(&it)) {
    const char* name = bson_iter_key(&it);
    auto change = groups.find(name);
    if (change == groups.end()) {
      bson_append_iter(out, name, -1, &it);
      continue;
    }
    PathChange* first = change->second.front();
    if (!(first->leaf() && first->unset)) LB_RETURN_IF_ERROR(modify_value(&it, change->second, out, name));
    groups.erase(change);
  }
  for (auto& [name, list] : groups) {
    PathChange* first = list.front();
    if (first->leaf() && first->unset) continue;  // nothing to unset
    bool only_unsets = std::all_of(list.begin(), list.end(), [](PathChange* c) { return c->unset; });
    if (only_unsets) continue;
    std::vector<PathChange*> sets;
    for (auto* c : list)
      if (!c->unset) sets.push_back(c);
    LB_RETURN_IF_ERROR(modify_value(nullptr, sets, out, name.c_str()));
  }
  return Status::ok();
}

}  // namespace

Result<BsonDoc> apply_modifiers(const bson_t* pre, const bson_t* update) {
  std::vector<PathChange> changes;
  bson_iter_t it;
  bson_iter_init(&it, update);
  while (bson_iter_next(&it)) {
    std::string op = bson_iter_key(&it);
    if (op == "$v") continue;
    if (op != "$set" && op != "$unset")
      return modifier_error(fmt::format("operator {} is not one the oplog writes", op));
    bson_iter_t field;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &field))
      return modifier_error(op + " is not a document");
    while (bson_iter_next(&field)) {
      PathChange c;
      std::string path = bson_iter_key(&field);
      for (size_t start = 0;;) {
        size_t dot = path.find('.', start);
        c.path.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (c.path.back().empty()) return modifier_error(fmt::format("path '{}' has an empty component", path));
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
      c.unset = op == "$unset";
      c.value = field;
      changes.push_back(std::move(c));
    }
  }
  std::vector<PathChange*> all;
  for (auto& c : changes) all.push_back(&c);
  BsonDoc out;
  LB_RETURN_IF_ERROR(modify_document(pre, all, out.get()));
  return out;
}

}  // namespace lifeboat::sources::mongodb

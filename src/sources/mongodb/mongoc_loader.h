// libmongoc loaded on first use (dlopen), not with the program. The library initialises itself the
// moment it is loaded (OpenSSL, Cyrus SASL and its eight plug-ins, ICU, a shared-memory counter
// segment): linked normally, that cost every command ~3 MiB of resident memory and ~5 ms before main,
// whether or not it ever talks to MongoDB. libbson, which has no such start-up, stays linked.
//
// Calls go through MONGOC(name)(args...): the function's type comes from <mongoc/mongoc.h>, its
// address from the loaded library, looked up once per call site.
#pragma once

#include <mongoc/mongoc.h>

#include "core/status.h"

namespace lifeboat::sources::mongodb {

// Loads libmongoc (once; later calls return the first outcome). An error names the library and says
// which package provides it.
Status load_mongoc();

// The address of `name` in libmongoc, loading it first. A library that cannot be loaded or lacks the
// symbol ends the process with a message: MongoConnection::connect calls load_mongoc() first and
// returns its error, so only code that skipped it gets here.
void* mongoc_symbol(const char* name);

}  // namespace lifeboat::sources::mongodb

#define MONGOC(name)                                                                               \
  ([]() {                                                                                          \
    static const auto fn = reinterpret_cast<decltype(&::name)>(                                     \
        ::lifeboat::sources::mongodb::mongoc_symbol(#name));                                        \
    return fn;                                                                                     \
  }())

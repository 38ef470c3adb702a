// Reading and applying POSIX metadata (mode, owner, times, xattrs): the archiver reads it, the restorer applies it.
#pragma once

#include <sys/stat.h>

#include <string>

#include "core/status.h"
#include "repo/tree.h"

namespace lifeboat::repo {

// Fills a node from lstat() data, owner names and extended attributes (not content).
repo::Node node_from_stat(const std::string& path, std::string name, const struct stat& st);

// Applies owner (when running as root or the owner), mode, xattrs and times to an open file or a path.
// Symlinks get owner and times only. Returns the first failure that matters; EPERM on chown as a
// non-root user is not one.
// `mode_is_set`: the file was created with node.mode under umask 0, so only a chown (which clears
// setuid/setgid) makes a chmod necessary.
Status apply_metadata(const std::string& path, int fd, const repo::Node& node, bool mode_is_set = false);

}  // namespace lifeboat::repo

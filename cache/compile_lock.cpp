#include "cache/compile_lock.hpp"

#include <unistd.h>

namespace marlinrt::detail {

CompileLock& CompileLock::operator=(CompileLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void CompileLock::release() noexcept {
  if (fd_ >= 0) {
    // The lock file is never unlinked here: a waiter may already hold an open
    // descriptor to it (gc removes idle lock files under the lock, see there).
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace marlinrt::detail

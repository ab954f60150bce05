// Cross-process ownership of one cache key while it is being compiled.
#pragma once

namespace marlinrt::detail {

// Holds an exclusive flock() on a per-key lock file until destroyed (or
// released). A default-constructed lock holds nothing: that is what a cache
// that cannot lock hands out, and the caller then simply compiles on its own.
class CompileLock {
 public:
  CompileLock() noexcept = default;
  // Takes ownership of `fd`, on which the caller already holds LOCK_EX.
  explicit CompileLock(int fd) noexcept : fd_(fd) {}
  CompileLock(CompileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  CompileLock& operator=(CompileLock&& other) noexcept;
  CompileLock(const CompileLock&) = delete;
  CompileLock& operator=(const CompileLock&) = delete;
  ~CompileLock() { release(); }

  bool held() const noexcept { return fd_ >= 0; }
  void release() noexcept;  // closing the descriptor drops the flock

 private:
  int fd_ = -1;
};

}  // namespace marlinrt::detail

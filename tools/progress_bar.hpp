// A one-line progress bar for long runs (prebuild), drawn only on a terminal.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

namespace marlinrt::cli {

class ProgressBar {
 public:
  // `enabled` is usually "stdout is a terminal": when false every call is a no-op
  // except note(), which then just prints its line.
  ProgressBar(std::size_t total, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Thread-safe. `status` is a short text after the counter, e.g. "3 compiled, 1 cached".
  void update(std::size_t done, std::string_view status);
  // Prints `line` (to stderr unless told otherwise) without tearing the bar: the bar is
  // redrawn below it.
  void note(std::string_view line, std::FILE* stream = stderr);
  // Ends the bar line so that later output starts on a fresh line.
  void finish();

 private:
  void draw_locked();
  void clear_locked();

  std::mutex mutex_;
  std::size_t total_;
  std::size_t done_ = 0;
  std::string status_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

// True when stdout is an interactive terminal.
bool stdout_is_terminal();

}  // namespace marlinrt::cli

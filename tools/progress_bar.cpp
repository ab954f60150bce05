#include "tools/progress_bar.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace marlinrt::cli {

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

ProgressBar::ProgressBar(std::size_t total, bool enabled)
    : total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()) {
  std::lock_guard lock(mutex_);
  draw_locked();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::size_t done, std::string_view status) {
  std::lock_guard lock(mutex_);
  done_ = done;
  status_ = status;
  draw_locked();
}

void ProgressBar::note(std::string_view line, std::FILE* stream) {
  std::lock_guard lock(mutex_);
  clear_locked();
  fmt::print(stream, "{}\n", line);
  std::fflush(stream);
  draw_locked();
}

void ProgressBar::finish() {
  std::lock_guard lock(mutex_);
  if (enabled_ && drawn_) {
    std::fputs("\n", stdout);
    std::fflush(stdout);
  }
  enabled_ = false;
  drawn_ = false;
}

void ProgressBar::clear_locked() {
  if (!enabled_ || !drawn_) return;
  std::fputs("\r\033[K", stdout);  // carriage return + erase to end of line
  std::fflush(stdout);
  drawn_ = false;
}

void ProgressBar::draw_locked() {
  if (!enabled_) return;
  constexpr std::size_t kWidth = 30;
  const std::size_t filled = total_ ? done_ * kWidth / total_ : kWidth;
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_)
          .count();
  fmt::print(stdout, "\r\033[K[{}] {}/{}  {}  {}:{:02}", bar, done_, total_, status_, seconds / 60,
             seconds % 60);
  std::fflush(stdout);
  drawn_ = true;
}

}  // namespace marlinrt::cli

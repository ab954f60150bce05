#include "tools/gemm_trace_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "kernel_templates/gemm_params.h"
#include "marlinrt/error.hpp"

namespace marlinrt::cli {
namespace {

using Block = const unsigned long long*;  // one block's kTraceSlots values

bool is_time(int slot) { return slot <= kern::kTraceEnd; }

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Median over the blocks that wrote `slot` of its time after the block's own entry, in us.
double median_since_entry(const std::vector<Block>& blocks, int slot) {
  std::vector<double> v;
  for (Block b : blocks) {
    if (b[slot] != 0) v.push_back(static_cast<double>(b[slot] - b[kern::kTraceEntry]) / 1e3);
  }
  return median(v);
}

// The smallest step between distinct timestamps: a coarse timer shows up here.
double timer_step_ns(const std::vector<Block>& blocks) {
  std::vector<unsigned long long> times;
  for (Block b : blocks) {
    for (int s = 0; is_time(s); ++s) {
      if (b[s] != 0) times.push_back(b[s]);
    }
  }
  std::sort(times.begin(), times.end());
  double step = NAN;
  for (std::size_t i = 1; i < times.size(); ++i) {
    const auto d = static_cast<double>(times[i] - times[i - 1]);
    if (d > 0 && !(step <= d)) step = d;
  }
  return step;
}

// Blocks that summed and stored a tile as its last arriver, and the median of that work
// (done - arrived) in us.
std::pair<int, double> last_arrivers(const std::vector<Block>& blocks) {
  std::vector<double> v;
  for (Block b : blocks) {
    for (int s = 0; s < kern::kTraceTimedSegments; ++s) {
      const int arrived = kern::kTraceSegArrived + 3 * s, done = kern::kTraceSegDone + 3 * s;
      if ((b[kern::kTraceLastMask] >> s & 1) && b[arrived] != 0 && b[done] != 0) {
        v.push_back(static_cast<double>(b[done] - b[arrived]) / 1e3);
      }
    }
  }
  return {static_cast<int>(v.size()), median(v)};
}

std::string since(double us) { return std::isnan(us) ? "-" : fmt::format("+{:.2f}", us); }

}  // namespace

void enable_gemm_trace_build() {
  const std::string flag = "-DMARLINRT_GEMM_TRACE";
  const char* current = std::getenv("MARLINRT_NVRTC_OPTIONS");
  std::string options = current != nullptr ? current : "";
  std::istringstream words(options);  // split on whitespace, as the runtime does
  for (std::string word; words >> word;) {
    if (word == flag) return;
  }
  options += options.empty() ? flag : " " + flag;
  setenv("MARLINRT_NVRTC_OPTIONS", options.c_str(), 1);
}

GemmTraceReport::GemmTraceReport(const std::filesystem::path& csv_path)
    : path_(csv_path), csv_(csv_path) {
  csv_ << "shape,m,dtype,block,event,t_ns\n";
  if (!csv_) throw Error(Status::invalid_argument, "bench dense: cannot write " + path_.string());
}

void GemmTraceReport::add(std::int64_t n, std::int64_t k, std::int64_t m, DType dtype,
                          const std::vector<unsigned long long>& slots) {
  const std::string shape = fmt::format("{}x{}", n, k);
  const std::string_view dt = dtype_name(dtype);
  std::vector<Block> blocks;
  std::vector<std::size_t> ids;
  for (std::size_t b = 0; (b + 1) * kern::kTraceSlots <= slots.size(); ++b) {
    if (slots[b * kern::kTraceSlots + kern::kTraceEntry] == 0) continue;  // not launched
    blocks.push_back(slots.data() + b * kern::kTraceSlots);
    ids.push_back(b);
  }
  if (blocks.empty()) {
    throw Error(Status::internal,
                "bench dense --trace: the kernel wrote no trace: it was not compiled with "
                "-DMARLINRT_GEMM_TRACE (was MARLINRT_NVRTC_OPTIONS read before --trace set it?)");
  }
  unsigned long long t0 = blocks[0][kern::kTraceEntry], last_entry = t0, t_end = 0;
  for (Block b : blocks) {
    t0 = std::min(t0, b[kern::kTraceEntry]);
    last_entry = std::max(last_entry, b[kern::kTraceEntry]);
    t_end = std::max(t_end, b[kern::kTraceEnd]);
  }

  for (std::size_t i = 0; i < blocks.size(); ++i) {
    for (int s = 0; s <= kern::kTraceSegments; ++s) {
      const unsigned long long v = blocks[i][s];
      if (is_time(s) && v == 0) continue;
      csv_ << shape << ',' << m << ',' << dt << ',' << ids[i] << ',' << s << ','
           << (is_time(s) ? v - t0 : v) << '\n';
    }
  }
  csv_.flush();
  if (!csv_) throw Error(Status::invalid_argument, "bench dense: cannot write " + path_.string());

  auto at = [&](int slot) { return since(median_since_entry(blocks, slot)); };
  const auto [last_count, last_us] = last_arrivers(blocks);
  const double step = timer_step_ns(blocks);
  fmt::print(
      "trace {} M={} {} [traced build, not the normal kernel]: blocks {}, timer step {} ns, "
      "entry spread {:.2f} us, loads issued {}, first data {}, seg0 finish start {}, arrived {}, "
      "done {}, seg1 finish start {}, arrived {}, done {}, end {}, kernel span {:.2f} us, last "
      "arrivers {} sum+store {} us (medians over blocks, us from the block's own entry except "
      "spread, span and sum+store)\n",
      shape, m, dt, blocks.size(), std::isnan(step) ? "-" : fmt::format("{:.0f}", step),
      static_cast<double>(last_entry - t0) / 1e3, at(kern::kTraceLoadsIssued),
      at(kern::kTraceFirstData), at(kern::kTraceSegStart), at(kern::kTraceSegArrived),
      at(kern::kTraceSegDone), at(kern::kTraceSegStart + 3), at(kern::kTraceSegArrived + 3),
      at(kern::kTraceSegDone + 3), at(kern::kTraceEnd),
      t_end > t0 ? static_cast<double>(t_end - t0) / 1e3 : NAN, last_count,
      std::isnan(last_us) ? "-" : fmt::format("{:.2f}", last_us));
  std::fflush(stdout);
}

}  // namespace marlinrt::cli

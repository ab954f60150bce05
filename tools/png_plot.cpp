#include "tools/png_plot.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "marlinrt/error.hpp"

namespace marlinrt::cli {
namespace {

// ---- the font ----

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;
constexpr int kGlyphAdvance = 6;  // one column of spacing

struct Glyph {
  char c;
  std::array<std::uint8_t, kGlyphHeight> rows;  // bit 4 = leftmost column
};

// Drawn for this project: digits, capitals, a lower-case x (for "NxK") and punctuation.
constexpr Glyph kGlyphs[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1E, 0x01, 0x01, 0x0E, 0x01, 0x01, 0x1E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}},
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
};

const Glyph& glyph_for(char c) {
  if (c >= 'a' && c <= 'z' && c != 'x') c = static_cast<char>(c - 'a' + 'A');
  for (const Glyph& g : kGlyphs) {
    if (g.c == c) return g;
  }
  for (const Glyph& g : kGlyphs) {
    if (g.c == '?') return g;
  }
  return kGlyphs[0];
}

// ---- PNG pieces ----

void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

void put_chunk(std::vector<std::uint8_t>& out, const char type[4],
               const std::vector<std::uint8_t>& data) {
  put_be32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  // The CRC covers the chunk type and data, not the length.
  put_be32(out, crc32(out.data() + type_at, 4 + data.size()));
}

// A zlib stream of deflate "stored" (uncompressed) blocks of at most 65535 bytes.
std::vector<std::uint8_t> zlib_stored(const std::vector<std::uint8_t>& raw) {
  std::vector<std::uint8_t> z = {0x78, 0x01};  // deflate, 32K window; (0x7801 % 31) == 0
  std::size_t at = 0;
  do {
    const std::size_t length = std::min<std::size_t>(65535, raw.size() - at);
    const bool final_block = at + length == raw.size();
    z.push_back(final_block ? 0x01 : 0x00);  // BFINAL, BTYPE = 00 (stored)
    z.push_back(static_cast<std::uint8_t>(length));
    z.push_back(static_cast<std::uint8_t>(length >> 8));
    z.push_back(static_cast<std::uint8_t>(~length));
    z.push_back(static_cast<std::uint8_t>(~length >> 8));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(at),
             raw.begin() + static_cast<std::ptrdiff_t>(at + length));
    at += length;
  } while (at < raw.size());
  put_be32(z, adler32(raw.data(), raw.size()));
  return z;
}

// ---- chart helpers ----

// A "nice" tick step (1, 2 or 5 times a power of ten) giving at most `max_ticks` ticks.
double nice_step(double span, int max_ticks) {
  if (!(span > 0)) return 1.0;
  const double raw = span / max_ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10.0 * power;
}

std::string format_tick(double v) {
  char buffer[32];
  if (std::fabs(v) >= 1e5 || (std::fabs(v) < 1e-3 && v != 0.0)) {
    std::snprintf(buffer, sizeof buffer, "%.3g", v);
  } else {
    std::snprintf(buffer, sizeof buffer, "%g", std::round(v * 1e6) / 1e6);
  }
  return buffer;
}

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kMarker{120, 120, 120};
// Distinguishable line colours; cycled (with dashes on the second round) past the end.
constexpr Rgb kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                            {188, 189, 34},  {23, 190, 207}, {0, 0, 128},     {128, 0, 0},
                            {0, 100, 0},     {255, 215, 0}};
constexpr int kPaletteSize = static_cast<int>(sizeof kPalette / sizeof kPalette[0]);

}  // namespace

// ---- Canvas ----

Canvas::Canvas(int width, int height, Rgb background)
    : width_(std::max(1, width)), height_(std::max(1, height)) {
  pixels_.resize(static_cast<std::size_t>(width_) * height_ * 3);
  for (std::size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Canvas::at(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return {};
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

void Canvas::set(int x, int y, Rgb color) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  pixels_[i] = color.r;
  pixels_[i + 1] = color.g;
  pixels_[i + 2] = color.b;
}

void Canvas::fill_rect(int x, int y, int width, int height, Rgb color) {
  for (int yy = std::max(0, y); yy < std::min(height_, y + height); ++yy) {
    for (int xx = std::max(0, x); xx < std::min(width_, x + width); ++xx) set(xx, yy, color);
  }
}

void Canvas::line(int x0, int y0, int x1, int y1, Rgb color, int thickness, int dash) {
  // Bresenham; each step stamps a thickness x thickness square.
  const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  const int half = (thickness - 1) / 2;
  int error = dx + dy;
  for (int step = 0;; ++step) {
    if (dash <= 0 || (step / dash) % 2 == 0) {
      fill_rect(x0 - half, y0 - half, thickness, thickness, color);
    }
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * error;
    if (e2 >= dy) {
      error += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      error += dx;
      y0 += sy;
    }
  }
}

void Canvas::text(int x, int y, std::string_view s, Rgb color, int scale) {
  for (const char c : s) {
    if (c != ' ') {
      const Glyph& g = glyph_for(c);
      for (int row = 0; row < kGlyphHeight; ++row) {
        for (int col = 0; col < kGlyphWidth; ++col) {
          if (g.rows[static_cast<std::size_t>(row)] & (0x10 >> col)) {
            fill_rect(x + col * scale, y + row * scale, scale, scale, color);
          }
        }
      }
    }
    x += kGlyphAdvance * scale;
  }
}

int Canvas::text_width(std::string_view s, int scale) {
  return s.empty() ? 0 : (static_cast<int>(s.size()) * kGlyphAdvance - 1) * scale;
}

int Canvas::text_height(int scale) { return kGlyphHeight * scale; }

// ---- PNG ----

std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t previous) noexcept {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  std::uint32_t c = previous ^ 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t adler32(const std::uint8_t* data, std::size_t size) noexcept {
  constexpr std::uint32_t kMod = 65521;
  std::uint32_t a = 1, b = 0;
  while (size > 0) {
    // 5552 bytes is the longest run whose sums cannot overflow 32 bits before the modulo.
    const std::size_t run = std::min<std::size_t>(size, 5552);
    for (std::size_t i = 0; i < run; ++i) {
      a += data[i];
      b += a;
    }
    a %= kMod;
    b %= kMod;
    data += run;
    size -= run;
  }
  return (b << 16) | a;
}

std::vector<std::uint8_t> encode_png(const Canvas& canvas) {
  const int w = canvas.width(), h = canvas.height();
  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<std::uint8_t> header;
  put_be32(header, static_cast<std::uint32_t>(w));
  put_be32(header, static_cast<std::uint32_t>(h));
  header.insert(header.end(), {8, 2, 0, 0, 0});  // 8-bit, RGB, deflate, no filter, no interlace
  put_chunk(out, "IHDR", header);
  // Scanlines: filter type 0 (none) then the row's RGB bytes.
  std::vector<std::uint8_t> raw;
  raw.reserve(static_cast<std::size_t>(h) * (1 + 3 * static_cast<std::size_t>(w)));
  const std::vector<std::uint8_t>& px = canvas.pixels();
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);
    const auto row = px.begin() + static_cast<std::ptrdiff_t>(y) * w * 3;
    raw.insert(raw.end(), row, row + static_cast<std::ptrdiff_t>(w) * 3);
  }
  put_chunk(out, "IDAT", zlib_stored(raw));
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, const Canvas& canvas) {
  const std::vector<std::uint8_t> bytes = encode_png(canvas);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (file)
    file.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  if (!file) {
    throw Error(Status::invalid_argument,
                "cannot write the PNG file '" + path + "': " + std::strerror(errno));
  }
}

// ---- the line chart ----

Canvas render_line_chart(const LineChart& chart) {
  Canvas canvas(chart.width, chart.height, kWhite);
  const auto map_x_value = [&](double x) { return chart.log_x ? std::log2(x) : x; };

  // Data ranges (non-positive x cannot be placed on a log axis and is skipped).
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = 0.0, y_hi = 0.0;
  std::set<double> data_xs;
  for (const LineSeries& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      if ((chart.log_x && !(x > 0)) || !std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, map_x_value(x));
      x_hi = std::max(x_hi, map_x_value(x));
      y_lo = std::min(y_lo, y);
      y_hi = std::max(y_hi, y);
      data_xs.insert(x);
    }
  }
  for (const auto& marker : chart.horizontal_markers) y_hi = std::max(y_hi, marker.first);
  if (!(x_lo <= x_hi)) {
    x_lo = 0.0;
    x_hi = 1.0;
  }
  if (x_hi - x_lo < 1e-12) {
    x_lo -= 1.0;
    x_hi += 1.0;
  }
  if (y_hi - y_lo < 1e-12) y_hi = y_lo + 1.0;
  const double y_step = nice_step((y_hi - y_lo) * 1.05, 8);
  y_lo = std::floor(y_lo / y_step) * y_step;
  y_hi = std::ceil(y_hi * 1.05 / y_step) * y_step;

  // Layout: title on top, legend on the right, tick labels left and below.
  int legend_text = 0;
  for (const LineSeries& s : chart.series) {
    legend_text = std::max(legend_text, Canvas::text_width(s.label));
  }
  const int left = 64;
  const int top = 52;
  const int right = chart.series.empty() ? 24 : legend_text + 60;
  const int bottom = 56;
  const int px0 = left, px1 = chart.width - right;
  const int py0 = top, py1 = chart.height - bottom;
  const auto to_px = [&](double x) {
    return px0 +
           static_cast<int>(std::lround((map_x_value(x) - x_lo) / (x_hi - x_lo) * (px1 - px0)));
  };
  const auto to_py = [&](double y) {
    return py1 - static_cast<int>(std::lround((y - y_lo) / (y_hi - y_lo) * (py1 - py0)));
  };

  canvas.text((chart.width - Canvas::text_width(chart.title, 2)) / 2, 14, chart.title, kBlack, 2);

  // Y grid and tick labels.
  for (double y = y_lo; y <= y_hi + y_step * 1e-6; y += y_step) {
    const int py = to_py(y);
    canvas.line(px0, py, px1, py, kGrid);
    const std::string label = format_tick(y);
    canvas.text(px0 - 8 - Canvas::text_width(label), py - 3, label, kBlack);
  }
  // X ticks: the data's own x values on a log axis when there are few, else powers of 2.
  std::vector<double> x_ticks;
  if (chart.log_x) {
    if (!data_xs.empty() && data_xs.size() <= 16) {
      x_ticks.assign(data_xs.begin(), data_xs.end());
    } else {
      for (double e = std::ceil(x_lo); e <= x_hi; ++e) x_ticks.push_back(std::exp2(e));
    }
  } else {
    const double step = nice_step(x_hi - x_lo, 10);
    for (double x = std::ceil(x_lo / step) * step; x <= x_hi + step * 1e-6; x += step) {
      x_ticks.push_back(x);
    }
  }
  int last_label_end = -1000;
  for (const double x : x_ticks) {
    const int px = to_px(x);
    canvas.line(px, py0, px, py1, kGrid);
    canvas.line(px, py1, px, py1 + 4, kBlack);
    const std::string label = format_tick(x);
    const int lx = px - Canvas::text_width(label) / 2;
    if (lx > last_label_end + 6) {  // skip labels that would overlap
      canvas.text(lx, py1 + 9, label, kBlack);
      last_label_end = lx + Canvas::text_width(label);
    }
  }
  // Axes and their labels.
  canvas.line(px0, py1, px1, py1, kBlack);
  canvas.line(px0, py0, px0, py1, kBlack);
  canvas.text((px0 + px1 - Canvas::text_width(chart.x_label)) / 2, py1 + 28, chart.x_label, kBlack);
  canvas.text(px0 - 40, py0 - 18, chart.y_label, kBlack);

  for (const auto& [value, label] : chart.horizontal_markers) {
    const int py = to_py(value);
    canvas.line(px0, py, px1, py, kMarker, 1, 6);
    canvas.text(px1 - Canvas::text_width(label) - 4, py - 11, label, kMarker);
  }

  // Series: lines, point markers, and a legend entry each.
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const LineSeries& s = chart.series[i];
    const Rgb color = kPalette[i % kPaletteSize];
    const int dash = (static_cast<int>(i) / kPaletteSize) % 2 ? 5 : 0;
    bool have_previous = false;
    int prev_x = 0, prev_y = 0;
    for (const auto& [x, y] : s.points) {
      if ((chart.log_x && !(x > 0)) || !std::isfinite(x) || !std::isfinite(y)) {
        have_previous = false;
        continue;
      }
      const int px = to_px(x), py = to_py(y);
      if (have_previous) canvas.line(prev_x, prev_y, px, py, color, 2, dash);
      canvas.fill_rect(px - 2, py - 2, 5, 5, color);
      prev_x = px;
      prev_y = py;
      have_previous = true;
    }
    const int ly = py0 + 4 + static_cast<int>(i) * 14;
    canvas.line(px1 + 14, ly + 3, px1 + 34, ly + 3, color, 2, dash);
    canvas.text(px1 + 40, ly, s.label, kBlack);
  }
  return canvas;
}

}  // namespace marlinrt::cli

// A minimal PNG writer (8-bit RGB, zlib "stored" blocks: no compression library needed) and a
// line-chart renderer with axes, grid, legend and a small built-in 5x7 bitmap font, for the
// benchmark's plots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace marlinrt::cli {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

// An RGB raster; (0, 0) is the top-left pixel. Drawing outside the raster is clipped.
class Canvas {
 public:
  Canvas(int width, int height, Rgb background);

  int width() const noexcept { return width_; }
  int height() const noexcept { return height_; }
  const std::vector<std::uint8_t>& pixels() const noexcept { return pixels_; }  // RGB rows
  Rgb at(int x, int y) const;

  void set(int x, int y, Rgb color);
  void fill_rect(int x, int y, int width, int height, Rgb color);
  // A line `thickness` pixels wide; dash > 0 draws dash-pixel segments with dash-pixel gaps.
  void line(int x0, int y0, int x1, int y1, Rgb color, int thickness = 1, int dash = 0);
  // Text in the built-in font (letters drawn as capitals), top-left at (x, y), each font pixel
  // `scale` x `scale` screen pixels. Unknown characters draw as '?'.
  void text(int x, int y, std::string_view s, Rgb color, int scale = 1);
  static int text_width(std::string_view s, int scale = 1);
  static int text_height(int scale = 1);

 private:
  int width_;
  int height_;
  std::vector<std::uint8_t> pixels_;
};

// The bytes of a PNG file holding the canvas.
std::vector<std::uint8_t> encode_png(const Canvas& canvas);
// Writes encode_png(canvas) to `path`; throws marlinrt::Error when the file cannot be written.
void write_png(const std::string& path, const Canvas& canvas);

// The checksums PNG and zlib need (exposed for checking against known values).
std::uint32_t crc32(const std::uint8_t* data, std::size_t size,
                    std::uint32_t previous = 0) noexcept;
std::uint32_t adler32(const std::uint8_t* data, std::size_t size) noexcept;

struct LineSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y); drawn in the given order
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;  // log2 spacing, ticks at the data's x values (or powers of 2)
  std::vector<LineSeries> series;
  // Dashed horizontal lines (y value, label), e.g. "1x" or an ideal ratio.
  std::vector<std::pair<double, std::string>> horizontal_markers;
  int width = 1100;
  int height = 640;
};

Canvas render_line_chart(const LineChart& chart);

}  // namespace marlinrt::cli

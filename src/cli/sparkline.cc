#include "cli/sparkline.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace dlab {
namespace {

constexpr std::array<const char*, 8> kBlocks = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// The mean of the finite values in [begin, end); NaN when there are none.
double FiniteMean(std::vector<double>::const_iterator begin,
                  std::vector<double>::const_iterator end) {
  double sum = 0;
  int count = 0;
  for (auto it = begin; it != end; ++it) {
    if (std::isfinite(*it)) {
      sum += *it;
      ++count;
    }
  }
  return count == 0 ? kNoValue : sum / count;
}

// `values` reduced to at most `width` bucket means, buckets as even as integers allow.
std::vector<double> Bucket(const std::vector<double>& values, size_t width) {
  if (values.size() <= width) return values;
  std::vector<double> means;
  means.reserve(width);
  for (size_t i = 0; i < width; ++i) {
    size_t begin = i * values.size() / width;
    size_t end = (i + 1) * values.size() / width;
    means.push_back(FiniteMean(values.begin() + begin, values.begin() + end));
  }
  return means;
}

}  // namespace

std::string Sparkline(const std::vector<double>& values, size_t width) {
  std::vector<double> points = Bucket(values, width);
  double low = std::numeric_limits<double>::infinity();
  double high = -low;
  for (double v : points) {
    if (!std::isfinite(v)) continue;
    low = std::min(low, v);
    high = std::max(high, v);
  }
  // Halves cannot overflow, so a series spanning most of the double range still draws.
  const double half_range = high / 2 - low / 2;
  std::string line;
  for (double v : points) {
    if (!std::isfinite(v)) {
      line += ' ';
    } else if (!(half_range > 0)) {
      line += kBlocks[kBlocks.size() / 2 - 1];
    } else {
      double fraction = (v / 2 - low / 2) / half_range;
      auto level = static_cast<size_t>(std::lround(fraction * (kBlocks.size() - 1)));
      line += kBlocks[std::min(level, kBlocks.size() - 1)];
    }
  }
  return line;
}

}  // namespace dlab

// Text sparklines for `dlab metrics`: a series of numbers drawn as one row of the Unicode block
// characters ▁▂▃▄▅▆▇█, lowest value to highest. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace dlab {

// At most `width` characters (each 3 bytes of UTF-8): one per value, or when there are more
// values than `width`, one per bucket of consecutive values, drawn at the bucket's mean. A flat
// series draws a flat line at mid height; a value (or bucket) with no finite number is a space.
// Empty for no values or a zero width.
std::string Sparkline(const std::vector<double>& values, size_t width);

}  // namespace dlab

#pragma once
// A line plot as a self-contained SVG document (no fonts, scripts or styles outside
// it): labelled axes with ticks, an optional log-scale y axis, one polyline per series
// in distinct colours, a legend and a title. Small on purpose: enough for the plots
// kvfid writes itself (e.g. drift.svg), with no plotting dependency.
#include <string>
#include <vector>

namespace kvfid::ref {

struct PlotSeries {
  std::string label;
  std::vector<double> x;  // [points]
  std::vector<double> y;  // [points]; non-finite points are left out of the line
  std::string dash;       // an SVG stroke-dasharray such as "6 4"; empty for a solid line
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_y = false;
  // log_y only: y values at or below it (zeros included) are drawn at it, and a note
  // under the legend says so. 0 picks the decade below the smallest positive y.
  double log_floor = 0;
  std::vector<PlotSeries> series;
};

// The floor render_svg uses for a log_y plot: log_floor when set, else the power of 10
// one decade below the smallest positive finite y (1e-30 when there is none).
double effective_log_floor(const LinePlot& plot);

// Throws std::invalid_argument when a series' x and y differ in length or a set
// log_floor is not positive.
std::string render_svg(const LinePlot& plot);

}  // namespace kvfid::ref

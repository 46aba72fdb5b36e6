#include "reference/util/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "reference/util/xml_escape.h"

namespace kvfid::ref {

namespace {

// Layout in SVG user units (pixels at 100%).
constexpr double kLeft = 84;          // room for the y tick labels and the y label
constexpr double kTop = 48;           // room for the title
constexpr double kPlotWidth = 640;
constexpr double kPlotHeight = 400;
constexpr double kBelow = 64;         // x tick labels and the x label
constexpr double kLegendGap = 24;
constexpr double kCharWidth = 7;      // rough width of a 12px sans-serif character, for the legend box
constexpr double kLegendRow = 18;
constexpr int kTargetTicks = 8;       // about this many ticks per linear axis
constexpr int kMaxLogLabels = 12;     // beyond this many decades, label every k-th one
constexpr double kNoPositiveFloor = 1e-30;

// Tableau 10 plus two darker tones: distinct on white and to most colour-blind readers.
constexpr const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"};

std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string number(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

// 1, 2 or 5 times a power of 10, about span/target.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / magnitude;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * magnitude;
}

struct Axis {
  double lo = 0, hi = 1;            // data range mapped to the axis (log10 of y for a log axis)
  std::vector<double> ticks;        // in the same units as lo, hi
  std::vector<std::string> labels;  // one per tick
};

Axis linear_axis(double lo, double hi, bool snap_to_ticks) {
  if (!(hi > lo)) {
    lo -= 1;
    hi += 1;
  }
  const double step = nice_step(hi - lo, kTargetTicks);
  if (snap_to_ticks) {  // the tolerance keeps 0.25 / 0.05 = 4.999... from snapping a whole step out
    lo = std::floor(lo / step + 1e-9) * step;
    hi = std::ceil(hi / step - 1e-9) * step;
  }
  Axis a{lo, hi, {}, {}};
  for (double i = std::ceil(lo / step - 1e-9); i * step <= hi + 1e-9 * step; i += 1) {
    const double v = i * step == 0 ? 0.0 : i * step;  // no "-0" label
    a.ticks.push_back(v);
    a.labels.push_back(number(v));
  }
  return a;
}

Axis log_axis(double floor_value, double top) {
  double lo = std::floor(std::log10(floor_value));
  double hi = std::ceil(std::log10(std::max(top, floor_value)));
  if (hi <= lo) hi = lo + 1;
  const int every = int(std::ceil((hi - lo + 1) / kMaxLogLabels));
  Axis a{lo, hi, {}, {}};
  for (double d = lo; d <= hi; d += every) {
    a.ticks.push_back(d);
    a.labels.push_back("1e" + std::to_string(int(d)));
  }
  return a;
}

}  // namespace

double effective_log_floor(const LinePlot& plot) {
  if (plot.log_floor > 0) return plot.log_floor;
  double smallest = std::numeric_limits<double>::infinity();
  for (const PlotSeries& s : plot.series)
    for (double y : s.y)
      if (std::isfinite(y) && y > 0) smallest = std::min(smallest, y);
  if (!std::isfinite(smallest)) return kNoPositiveFloor;
  return std::pow(10.0, std::floor(std::log10(smallest)) - 1);
}

std::string render_svg(const LinePlot& plot) {
  for (const PlotSeries& s : plot.series)
    if (s.x.size() != s.y.size()) throw std::invalid_argument("render_svg: series '" + s.label + "' has x and y of different lengths");
  if (plot.log_y && plot.log_floor < 0) throw std::invalid_argument("render_svg: log_floor must be positive (or 0 for automatic)");

  const double floor_value = plot.log_y ? effective_log_floor(plot) : 0;
  auto shown_y = [&](double y) {
    if (!plot.log_y) return y;
    return std::log10(std::max(y, floor_value));
  };

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const PlotSeries& s : plot.series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_lo = std::min(x_lo, s.x[i]);
      x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i]);
      y_hi = std::max(y_hi, s.y[i]);
    }
  if (!std::isfinite(x_lo)) {  // nothing to draw: an empty frame over [0, 1] x [0 or floor, 1]
    x_lo = 0, x_hi = 1, y_hi = 1;
    y_lo = plot.log_y ? floor_value : 0;
  }
  const Axis xa = linear_axis(x_lo, x_hi, false);
  const Axis ya = plot.log_y ? log_axis(floor_value, y_hi) : linear_axis(y_lo, y_hi, true);
  auto px = [&](double x) { return kLeft + (x - xa.lo) / (xa.hi - xa.lo) * kPlotWidth; };
  auto py = [&](double shown) { return kTop + kPlotHeight - (shown - ya.lo) / (ya.hi - ya.lo) * kPlotHeight; };

  // Clamping is known once the lines are drawn; the note's text is fixed before.
  bool any_clamped = false;
  if (plot.log_y)
    for (const PlotSeries& s : plot.series)
      for (std::size_t i = 0; i < s.y.size(); ++i)
        any_clamped = any_clamped || (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && s.y[i] <= floor_value);
  const std::string note = "values at or below " + number(floor_value) + " (zeros included) drawn at " + number(floor_value);
  std::size_t longest = any_clamped ? note.size() * 11 / 12 : 0;  // the note is set at 11px
  for (const PlotSeries& s : plot.series) longest = std::max(longest, s.label.size());
  const double legend_x = kLeft + kPlotWidth + kLegendGap;
  const double legend_width = 40 + kCharWidth * double(std::max<std::size_t>(longest, 24));
  const double width = legend_x + legend_width + 12;
  const double height = kTop + kPlotHeight + kBelow;

  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << coord(width) << "\" height=\"" << coord(height)
      << "\" viewBox=\"0 0 " << coord(width) << ' ' << coord(height) << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << coord(width) << "\" height=\"" << coord(height) << "\" fill=\"white\"/>\n"
      << "<text class=\"title\" x=\"" << coord(kLeft + kPlotWidth / 2) << "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">"
      << xml_escape(plot.title) << "</text>\n";

  // Grid and ticks.
  out << "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : xa.ticks)
    out << "<line x1=\"" << coord(px(t)) << "\" y1=\"" << coord(kTop) << "\" x2=\"" << coord(px(t)) << "\" y2=\""
        << coord(kTop + kPlotHeight) << "\"/>\n";
  for (double t : ya.ticks)
    out << "<line x1=\"" << coord(kLeft) << "\" y1=\"" << coord(py(t)) << "\" x2=\"" << coord(kLeft + kPlotWidth)
        << "\" y2=\"" << coord(py(t)) << "\"/>\n";
  out << "</g>\n<g class=\"axes\" stroke=\"black\" stroke-width=\"1\" fill=\"none\">\n"
      << "<rect x=\"" << coord(kLeft) << "\" y=\"" << coord(kTop) << "\" width=\"" << coord(kPlotWidth) << "\" height=\""
      << coord(kPlotHeight) << "\"/>\n";
  for (double t : xa.ticks)
    out << "<line x1=\"" << coord(px(t)) << "\" y1=\"" << coord(kTop + kPlotHeight) << "\" x2=\"" << coord(px(t))
        << "\" y2=\"" << coord(kTop + kPlotHeight + 5) << "\"/>\n";
  for (double t : ya.ticks)
    out << "<line x1=\"" << coord(kLeft - 5) << "\" y1=\"" << coord(py(t)) << "\" x2=\"" << coord(kLeft) << "\" y2=\""
        << coord(py(t)) << "\"/>\n";
  out << "</g>\n";
  for (std::size_t i = 0; i < xa.ticks.size(); ++i)
    out << "<text class=\"x-tick\" x=\"" << coord(px(xa.ticks[i])) << "\" y=\"" << coord(kTop + kPlotHeight + 19)
        << "\" text-anchor=\"middle\">" << xml_escape(xa.labels[i]) << "</text>\n";
  for (std::size_t i = 0; i < ya.ticks.size(); ++i)
    out << "<text class=\"y-tick\" x=\"" << coord(kLeft - 8) << "\" y=\"" << coord(py(ya.ticks[i]) + 4)
        << "\" text-anchor=\"end\">" << xml_escape(ya.labels[i]) << "</text>\n";
  out << "<text class=\"x-label\" x=\"" << coord(kLeft + kPlotWidth / 2) << "\" y=\"" << coord(kTop + kPlotHeight + 46)
      << "\" text-anchor=\"middle\">" << xml_escape(plot.x_label) << "</text>\n";
  const double y_label_x = 22, y_label_y = kTop + kPlotHeight / 2;
  out << "<text class=\"y-label\" x=\"" << coord(y_label_x) << "\" y=\"" << coord(y_label_y) << "\" text-anchor=\"middle\" "
      << "transform=\"rotate(-90 " << coord(y_label_x) << ' ' << coord(y_label_y) << ")\">"
      << xml_escape(plot.y_label + (plot.log_y ? " (log scale)" : "")) << "</text>\n";

  // One polyline per series.
  out << "<g class=\"series\" fill=\"none\" stroke-width=\"1.6\">\n";
  for (std::size_t s = 0; s < plot.series.size(); ++s) {
    const PlotSeries& series = plot.series[s];
    const char* colour = kColours[s % std::size(kColours)];
    out << "<polyline data-label=\"" << xml_escape(series.label) << "\" stroke=\"" << colour << '"'
        << (series.dash.empty() ? "" : " stroke-dasharray=\"" + xml_escape(series.dash) + '"') << " points=\"";
    bool first = true;
    for (std::size_t i = 0; i < series.x.size(); ++i) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
      out << (first ? "" : " ") << coord(px(series.x[i])) << ',' << coord(py(shown_y(series.y[i])));
      first = false;
    }
    out << "\"/>\n";
  }
  out << "</g>\n";

  // Legend, and the note on clamped values below it.
  out << "<g class=\"legend\">\n";
  for (std::size_t s = 0; s < plot.series.size(); ++s) {
    const double y = kTop + 10 + kLegendRow * double(s);
    out << "<line x1=\"" << coord(legend_x) << "\" y1=\"" << coord(y) << "\" x2=\"" << coord(legend_x + 28) << "\" y2=\""
        << coord(y) << "\" stroke=\"" << kColours[s % std::size(kColours)] << "\" stroke-width=\"2\""
        << (plot.series[s].dash.empty() ? "" : " stroke-dasharray=\"" + xml_escape(plot.series[s].dash) + '"') << "/>\n"
        << "<text x=\"" << coord(legend_x + 34) << "\" y=\"" << coord(y + 4) << "\">" << xml_escape(plot.series[s].label)
        << "</text>\n";
  }
  out << "</g>\n";
  if (any_clamped)
    out << "<text class=\"note\" x=\"" << coord(legend_x) << "\" y=\""
        << coord(kTop + 10 + kLegendRow * double(plot.series.size() + 1)) << "\" font-size=\"11\">" << xml_escape(note)
        << "</text>\n";
  out << "</svg>\n";
  return out.str();
}

}  // namespace kvfid::ref

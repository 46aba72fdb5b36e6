#include "reference/util/svg_plot.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/reference/util/xml_elements.h"

namespace kvfid::ref {
namespace {

using test::parse_xml;
using test::XmlDocument;
using test::XmlElement;

// Coordinates are written with two decimals (each within 0.005 of its exact value), so
// a difference of two is within 0.01 of the exact difference.
constexpr double kCoordinateRounding = 0.01;

std::vector<std::pair<double, double>> points_of(const XmlElement& polyline) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(polyline.attributes.at("points"));
  std::string pair;
  while (in >> pair) {
    const std::size_t comma = pair.find(',');
    out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return out;
}

LinePlot kl_plot() {
  LinePlot p;
  p.title = "KL per position: model <m> & formats";
  p.x_label = "position";
  p.y_label = "KL";
  p.log_y = true;
  p.series.push_back({"f16 cached", {0, 1, 2, 3}, {1e-9, 3e-8, 2e-7, 1e-6}, ""});
  p.series.push_back({"f16 recompute", {0, 1, 2, 3}, {1e-9, 3e-8, 2e-7, 1e-6}, "6 4"});
  p.series.push_back({"bf16 cached", {0, 1, 2, 3}, {4e-7, 0.0, 5e-6, 2e-5}, ""});
  return p;
}

TEST(SvgPlot, IsWellFormedWithOnePolylinePerSeries) {
  const LinePlot plot = kl_plot();
  const XmlDocument doc = parse_xml(render_svg(plot));
  ASSERT_EQ(doc.error, "");
  ASSERT_FALSE(doc.elements.empty());
  EXPECT_EQ(doc.elements[0].name, "svg");
  EXPECT_EQ(doc.elements[0].attributes.at("xmlns"), "http://www.w3.org/2000/svg");
  const auto lines = doc.named("polyline");
  ASSERT_EQ(lines.size(), plot.series.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]->attributes.at("data-label"), plot.series[i].label);
    EXPECT_EQ(points_of(*lines[i]).size(), plot.series[i].x.size());
  }
  EXPECT_NE(lines[0]->attributes.at("stroke"), lines[1]->attributes.at("stroke"));
  EXPECT_NE(lines[1]->attributes.at("stroke"), lines[2]->attributes.at("stroke"));
  EXPECT_EQ(lines[0]->attributes.count("stroke-dasharray"), 0u);
  EXPECT_EQ(lines[1]->attributes.at("stroke-dasharray"), "6 4");
}

TEST(SvgPlot, HasTitleAxisLabelsAndLegend) {
  const XmlDocument doc = parse_xml(render_svg(kl_plot()));
  ASSERT_EQ(doc.error, "");
  ASSERT_EQ(doc.with_class("title").size(), 1u);
  EXPECT_EQ(doc.with_class("title")[0]->text, "KL per position: model <m> & formats");  // escaped, read back
  ASSERT_EQ(doc.with_class("x-label").size(), 1u);
  EXPECT_EQ(doc.with_class("x-label")[0]->text, "position");
  ASSERT_EQ(doc.with_class("y-label").size(), 1u);
  EXPECT_EQ(doc.with_class("y-label")[0]->text, "KL (log scale)");
  int legend_texts = 0;
  for (const XmlElement& e : doc.elements)
    if (e.name == "text" && (e.text == "f16 cached" || e.text == "f16 recompute" || e.text == "bf16 cached")) ++legend_texts;
  EXPECT_EQ(legend_texts, 3);
  EXPECT_GE(doc.with_class("x-tick").size(), 2u);
}

// Log ticks are consecutive powers of 10 spanning the data, labelled 1eN, and placed
// evenly (equal pixel spacing per decade).
TEST(SvgPlot, LogAxisTicksAreDecadesSpanningTheData) {
  LinePlot plot = kl_plot();
  plot.series.resize(1);  // 1e-9 .. 1e-6, all positive: floor = 1e-10
  const XmlDocument doc = parse_xml(render_svg(plot));
  ASSERT_EQ(doc.error, "");
  const auto ticks = doc.with_class("y-tick");
  std::vector<std::string> labels;
  std::vector<double> ys;
  for (const XmlElement* t : ticks) labels.push_back(t->text), ys.push_back(std::stod(t->attributes.at("y")));
  EXPECT_EQ(labels, (std::vector<std::string>{"1e-10", "1e-9", "1e-8", "1e-7", "1e-6"}));
  for (std::size_t i = 2; i < ys.size(); ++i) EXPECT_NEAR(ys[i] - ys[i - 1], ys[1] - ys[0], 2 * kCoordinateRounding);
  EXPECT_LT(ys.back(), ys.front());  // larger values higher up
  EXPECT_TRUE(doc.with_class("note").empty());  // nothing was clamped
  // The point at 1e-6 lies on the 1e-6 tick (tick labels sit 4 units below their line).
  const auto pts = points_of(*doc.named("polyline")[0]);
  EXPECT_NEAR(pts.back().second, ys.back() - 4, kCoordinateRounding);
}

TEST(SvgPlot, ZeroIsClampedToTheFloorAndSaidSo) {
  const LinePlot plot = kl_plot();  // bf16 has a 0 at x = 1; smallest positive 1e-9
  EXPECT_EQ(effective_log_floor(plot), 1e-10);
  const XmlDocument doc = parse_xml(render_svg(plot));
  ASSERT_EQ(doc.error, "");
  ASSERT_EQ(doc.with_class("note").size(), 1u);
  EXPECT_NE(doc.with_class("note")[0]->text.find("1e-10"), std::string::npos) << doc.with_class("note")[0]->text;
  const auto bf16 = points_of(*doc.named("polyline")[2]);
  const auto f16 = points_of(*doc.named("polyline")[0]);
  EXPECT_GT(bf16[1].second, f16[0].second);  // 0 drawn below 1e-9, at the floor
  for (const auto& p : bf16) EXPECT_TRUE(std::isfinite(p.second));
}

TEST(SvgPlot, ManyDecadesAreLabelledSparsely) {
  LinePlot plot;
  plot.log_y = true;
  plot.series.push_back({"wide", {0, 1}, {1e-30, 1e10}, ""});
  const XmlDocument doc = parse_xml(render_svg(plot));
  ASSERT_EQ(doc.error, "");
  const auto ticks = doc.with_class("y-tick");
  EXPECT_LE(ticks.size(), 13u);
  EXPECT_GE(ticks.size(), 5u);
  EXPECT_EQ(ticks.front()->text, "1e-31");
}

TEST(SvgPlot, LinearAxisHasNiceTicks) {
  LinePlot plot;
  plot.series.push_back({"line", {0, 511}, {0.25, 0.75}, ""});
  const XmlDocument doc = parse_xml(render_svg(plot));
  ASSERT_EQ(doc.error, "");
  std::vector<std::string> x;
  for (const XmlElement* t : doc.with_class("x-tick")) x.push_back(t->text);
  EXPECT_EQ(x, (std::vector<std::string>{"0", "50", "100", "150", "200", "250", "300", "350", "400", "450", "500"}));
  std::vector<std::string> y;
  for (const XmlElement* t : doc.with_class("y-tick")) y.push_back(t->text);
  EXPECT_EQ(y.front(), "0.25");
  EXPECT_EQ(y.back(), "0.75");
}

TEST(SvgPlot, NonFinitePointsAreLeftOut) {
  LinePlot plot;
  plot.log_y = true;
  plot.series.push_back({"gap", {0, 1, 2}, {1e-3, std::nan(""), 1e-2}, ""});
  const XmlDocument doc = parse_xml(render_svg(plot));
  ASSERT_EQ(doc.error, "");
  EXPECT_EQ(points_of(*doc.named("polyline")[0]).size(), 2u);
}

TEST(SvgPlot, RejectsMismatchedSeries) {
  LinePlot plot;
  plot.series.push_back({"bad", {0, 1}, {1}, ""});
  EXPECT_THROW(render_svg(plot), std::invalid_argument);
}

// The reader itself: it must reject what it exists to catch.
TEST(SvgPlot, XmlReaderRejectsMalformedDocuments) {
  EXPECT_NE(parse_xml("<svg><g></svg>").error, "");
  EXPECT_NE(parse_xml("<svg a=b/>").error, "");
  EXPECT_NE(parse_xml("<svg>a & b</svg>").error, "");
  EXPECT_NE(parse_xml("<svg/><svg/>").error, "");
  EXPECT_EQ(parse_xml("<?xml version=\"1.0\"?>\n<svg a=\"&lt;\"><g/>x &amp; y</svg>\n").error, "");
}

}  // namespace
}  // namespace kvfid::ref

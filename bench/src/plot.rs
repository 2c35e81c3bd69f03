//! Latency figures as SVG: p50/p99/p99.9 against time (from the per-interval histograms of
//! `--interval`) and the latency histogram, for one run (`--plot DIR`) or several runs side by
//! side (`ferrocache-bench plot`, which `compare.sh` uses for one figure per workload).
//!
//! Owns: the figures' layout, scales, colours and line styles, and reading reports back from
//! their JSON. Must not touch: measurement or the report's fields (it reads what `report`
//! wrote).
//!
//! plotters draws with its SVG backend only and without its font features: text goes into the
//! SVG as `<text>` elements that the viewer's fonts render, so no font file or system library
//! is needed (layout uses plotters' estimate of text widths).

use crate::report::{Bucket, IntervalLatency};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A point in the backend's pixels (plotters_backend::BackendCoord).
type BackendCoord = (i32, i32);

/// Why a figure was not drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a run's JSON report: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has no per-interval latencies: make the run with --interval")]
    NoIntervals { path: PathBuf },
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
}

/// What a figure needs of a run's report.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Run {
    /// The measured seconds: an interval that ends after them is partial (only the last
    /// replies of requests sent before the end) and is left out of the lines.
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub intervals: Vec<IntervalLatency>,
    #[serde(default)]
    pub histogram: Vec<Bucket>,
}

impl Run {
    /// The intervals to draw: whole ones that saw requests.
    fn whole_intervals(&self) -> impl Iterator<Item = &IntervalLatency> + '_ {
        let end = self.seconds.unwrap_or(f64::MAX) + 1e-3;
        self.intervals
            .iter()
            .filter(move |i| i.requests > 0 && i.end_s <= end)
    }

    /// Reads the `--json` report of a run made with `--interval`.
    pub fn load(path: &Path) -> Result<Run, PlotError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlotError::Read {
            path: path.to_owned(),
            source,
        })?;
        let run: Run = serde_json::from_str(&text).map_err(|source| PlotError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if run.intervals.is_empty() {
            return Err(PlotError::NoIntervals {
                path: path.to_owned(),
            });
        }
        Ok(run)
    }
}

/// One run in a figure, with the name its lines are labelled with.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub label: &'a str,
    pub run: &'a Run,
}

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 420;

/// One colour per run, distinct in colour and in lightness (so also in grey print).
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn colour(index: usize) -> RGBColor {
    COLOURS[index % COLOURS.len()]
}

/// Writes percentiles against time to `path`.
pub fn percentiles_svg(path: &Path, title: &str, series: &[Series<'_>]) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (WIDTH, PANEL_HEIGHT)).into_drawing_area();
    draw(path, &root, |area| percentiles(area, title, series))
}

/// Writes the latency histogram to `path`.
pub fn histogram_svg(path: &Path, title: &str, series: &[Series<'_>]) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (WIDTH, PANEL_HEIGHT)).into_drawing_area();
    draw(path, &root, |area| histogram(area, title, series))
}

/// Writes both, percentiles above the histogram, to `path`.
pub fn combined_svg(path: &Path, title: &str, series: &[Series<'_>]) -> Result<(), PlotError> {
    let root = SVGBackend::new(path, (WIDTH, 2 * PANEL_HEIGHT)).into_drawing_area();
    draw(path, &root, |area| {
        let (upper, lower) = area.split_vertically(PANEL_HEIGHT);
        percentiles(
            &upper,
            &format!("{title}: percentiles against time"),
            series,
        )?;
        histogram(&lower, &format!("{title}: latency histogram"), series)
    })
}

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type DrawResult<'b> =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'b> as DrawingBackend>::ErrorType>>;

/// Fills the white background, runs `paint`, and writes the file.
fn draw<'b>(
    path: &Path,
    root: &Area<'b>,
    paint: impl FnOnce(&Area<'b>) -> DrawResult<'b>,
) -> Result<(), PlotError> {
    let failed = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_owned(),
        message: e.to_string(),
    };
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    paint(root).map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))
}

/// A logarithmic latency range around `values` (milliseconds), with some room either side.
fn latency_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if high == 0.0 {
        return 0.001..1.0;
    }
    (low / 1.5).max(0.001)..high * 1.5
}

fn percentiles<'b>(area: &Area<'b>, title: &str, series: &[Series<'_>]) -> DrawResult<'b> {
    let end = series
        .iter()
        .flat_map(|s| s.run.whole_intervals().last())
        .map(|i| i.end_s)
        .fold(0.0f64, f64::max)
        .max(0.001);
    let range = latency_range(
        series
            .iter()
            .flat_map(|s| s.run.whole_intervals())
            .flat_map(|i| [i.p50_ms, i.p999_ms]),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, range.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds since measuring began (each point: the interval ending there)")
        .y_desc("latency ms (log)")
        .draw()?;
    // p50 thin, p99 thick, p99.9 dashed: the run is the colour, the percentile the line.
    type Pick = fn(&IntervalLatency) -> f64;
    let lines: [(&str, Pick); 3] = [
        ("p50", |i| i.p50_ms),
        ("p99", |i| i.p99_ms),
        ("p99.9", |i| i.p999_ms),
    ];
    for (index, s) in series.iter().enumerate() {
        let colour = colour(index);
        for (line, (name, pick)) in lines.iter().enumerate() {
            let points: Vec<(f64, f64)> = s
                .run
                .whole_intervals()
                .map(|i| (i.end_s, pick(i)))
                .collect();
            let style = colour.stroke_width(if line == 1 { 3 } else { 1 });
            let drawn = if line == 2 {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(points, style))?
            };
            drawn
                .label(format!("{} {name}", s.label))
                .legend(legend_line(style));
        }
    }
    draw_legend(&mut chart)
}

/// The legend's sample of a line drawn in `style`.
fn legend_line(style: ShapeStyle) -> impl Fn(BackendCoord) -> PathElement<BackendCoord> {
    move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style)
}

/// The legend box, upper right, over a faded background so lines behind it stay visible.
fn draw_legend<'b, CT: CoordTranslate>(
    chart: &mut ChartContext<'b, SVGBackend<'b>, CT>,
) -> DrawResult<'b> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

fn histogram<'b>(area: &Area<'b>, title: &str, series: &[Series<'_>]) -> DrawResult<'b> {
    // Shares of each run's requests, so runs of different lengths compare.
    let shares: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            let total: u64 = s.run.histogram.iter().map(|b| b.requests).sum();
            s.run
                .histogram
                .iter()
                .map(|b| (b.upper_ms, 100.0 * b.requests as f64 / total.max(1) as f64))
                .collect()
        })
        .collect();
    let range = latency_range(shares.iter().flatten().map(|(ms, _)| *ms));
    let top = shares
        .iter()
        .flatten()
        .map(|(_, share)| *share)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(range.log_scale(), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("latency ms (log; buckets 1.25x wide)")
        .y_desc("% of requests")
        .draw()?;
    for (index, (s, points)) in series.iter().zip(shares).enumerate() {
        let style = colour(index).stroke_width(2);
        // Steps: each bucket is flat from the previous bound to its own.
        let mut steps = Vec::with_capacity(points.len() * 2);
        let mut previous = points.first().map_or(0.0, |(ms, _)| ms / 1.25);
        for (ms, share) in points {
            steps.push((previous, share));
            steps.push((ms, share));
            previous = ms;
        }
        chart
            .draw_series(LineSeries::new(steps, style))?
            .label(s.label.to_owned())
            .legend(legend_line(style));
    }
    draw_legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scale: f64) -> Run {
        Run {
            seconds: Some(2.0),
            intervals: (1..=4)
                .map(|i| IntervalLatency {
                    end_s: f64::from(i) * 0.5,
                    requests: 100,
                    p50_ms: 0.1 * scale,
                    p99_ms: 0.5 * scale,
                    p999_ms: 2.0 * scale,
                })
                .collect(),
            histogram: vec![
                Bucket {
                    upper_ms: 0.1 * scale,
                    requests: 300,
                },
                Bucket {
                    upper_ms: 0.5 * scale,
                    requests: 90,
                },
                Bucket {
                    upper_ms: 2.0 * scale,
                    requests: 10,
                },
            ],
        }
    }

    #[test]
    fn a_figure_of_two_runs_labels_both() {
        let dir = std::env::temp_dir().join(format!("bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (run(1.0), run(3.0));
        let series = [
            Series {
                label: "memcached",
                run: &a,
            },
            Series {
                label: "ferrocached",
                run: &b,
            },
        ];
        let path = dir.join("both.svg");
        combined_svg(&path, "W1", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in [
            "memcached p99.9",
            "ferrocached p50",
            "W1: latency histogram",
        ] {
            assert!(svg.contains(text), "no {text:?} in the figure");
        }
    }

    #[test]
    fn a_report_without_intervals_is_refused() {
        let path = std::env::temp_dir().join(format!("bench-plot-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"mode":"load","histogram":[]}"#).unwrap();
        let refused = Run::load(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(refused, Err(PlotError::NoIntervals { .. })));
    }
}

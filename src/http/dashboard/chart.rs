//! Charts drawn on the server as inline SVG: bars (revenue per month) and a line (MRR
//! at each month's end). No script draws them and no library: a handful of rectangles,
//! a polyline, grid lines and labels. Colours come from the dashboard's stylesheet by
//! class (the CSP allows no inline style); each mark has a `<title>`, the browser's own
//! tooltip.

use maud::{Markup, html};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One point of a chart: its x label, its value (minor units) and its tooltip.
pub struct Point {
    pub label: String,
    pub value: i64,
    pub title: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bars,
    Line,
}

/// The chart of `points` with the y axis labelled by `fmt`, described for screen
/// readers by `label`.
pub fn chart(kind: Kind, label: &str, points: &[Point], fmt: &dyn Fn(i64) -> String) -> Markup {
    let (lo, hi, step) = axis(points.iter().map(|p| p.value));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: i64| TOP + plot_h * (hi - v) as f64 / (hi - lo) as f64;
    let band = plot_w / points.len().max(1) as f64;
    let x_mid = |i: usize| LEFT + band * (i as f64 + 0.5);
    let ticks: Vec<i64> = (0..)
        .map(|k| lo + k * step)
        .take_while(|t| *t <= hi)
        .collect();
    let line: String = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x_mid(i), y(p.value)))
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            role="img" aria-label=(label) {
            @for t in &ticks {
                line class=(if *t == 0 { "axis" } else { "grid" })
                    x1=(LEFT) x2=(WIDTH - RIGHT) y1=(num(y(*t))) y2=(num(y(*t))) {}
                text.ylabel x=(LEFT - 6.0) y=(num(y(*t) + 4.0)) { (fmt(*t)) }
            }
            @match kind {
                Kind::Bars => {
                    @for (i, p) in points.iter().enumerate() {
                        @let (top, bottom) = (y(p.value.max(0)), y(p.value.min(0)));
                        rect class=(if p.value < 0 { "bar negative" } else { "bar" })
                            x=(num(x_mid(i) - band * 0.35)) width=(num(band * 0.7))
                            y=(num(top)) height=(num((bottom - top).max(if p.value == 0 { 0.0 } else { 1.0 }))) {
                            title { (p.title) }
                        }
                    }
                }
                Kind::Line => {
                    polyline.line points=(line) {}
                    @for (i, p) in points.iter().enumerate() {
                        circle.dot cx=(num(x_mid(i))) cy=(num(y(p.value))) r="3.5" {
                            title { (p.title) }
                        }
                    }
                }
            }
            @for (i, p) in points.iter().enumerate() {
                text.xlabel x=(num(x_mid(i))) y=(HEIGHT - 8.0) { (month_label(&p.label)) }
            }
        }
    }
}

/// Coordinates with one decimal: enough for a screen, and a smaller page.
fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// `2026-03` as `Mar 26`; any other label as it is.
fn month_label(label: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parsed = label
        .split_once('-')
        .and_then(|(y, m)| Some((y.get(2..)?, m.parse::<usize>().ok()?)));
    match parsed {
        Some((yy, m)) if (1..=12).contains(&m) => format!("{} {yy}", MONTHS[m - 1]),
        _ => label.to_string(),
    }
}

/// The y axis for `values`: bounds that hold them and zero, on multiples of a round
/// step (1, 2 or 5 times a power of ten, in minor units), about four steps in all.
fn axis(values: impl Iterator<Item = i64>) -> (i64, i64, i64) {
    let (mut lo, mut hi) = (0i64, 0i64);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo == hi {
        hi = lo + 1;
    }
    let rough = ((hi - lo) as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude)
        .max(1.0) as i64;
    (
        lo.div_euclid(step) * step,
        (hi + step - 1).div_euclid(step) * step,
        step,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_holds_zero_and_every_value_on_round_steps() {
        assert_eq!(axis([0, 0].into_iter()), (0, 1, 1));
        assert_eq!(axis([120_000, 45_000].into_iter()), (0, 150_000, 50_000));
        let (lo, hi, step) = axis([-3_000, 9_900].into_iter());
        assert!(lo <= -3_000 && hi >= 9_900 && lo % step == 0 && hi % step == 0);
        assert_eq!(step, 5_000);
    }

    #[test]
    fn bars_and_lines_are_svg_with_a_tooltip_per_point_and_no_inline_style() {
        let points: Vec<Point> = (1..=12)
            .map(|m| Point {
                label: format!("2026-{m:02}"),
                value: m * 1_000 - 4_000,
                title: format!("month {m}"),
            })
            .collect();
        for kind in [Kind::Bars, Kind::Line] {
            let svg = chart(kind, "test", &points, &|v| v.to_string()).into_string();
            assert!(svg.starts_with("<svg"), "{svg}");
            assert_eq!(svg.matches("<title>").count(), 12);
            assert!(svg.contains(">Jan 26<") && svg.contains(">Dec 26<"));
            assert!(!svg.contains("style="));
        }
        let bars = chart(Kind::Bars, "t", &points, &|v| v.to_string()).into_string();
        assert!(bars.contains("bar negative"));
    }
}

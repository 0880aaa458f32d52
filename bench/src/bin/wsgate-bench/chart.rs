//! The charts of the result files (part two's Envoy CPU per request, part four's unrelated
//! rate with sockets open against none open), drawn as horizontal bars in an SVG with
//! `plotters` (its SVG backend only: no fonts, no bitmaps) and written beside the result
//! file, which links it.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Which family a bar belongs to, for its colour.
#[derive(Clone, Copy)]
pub enum Kind {
    /// No auth, the wasm floor.
    Baseline,
    /// Envoy's native `jwt_authn`.
    JwtAuthn,
    /// wsgate, this module or the baseline module.
    Wsgate,
}

/// One row of the table: its label and its value.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub kind: Kind,
}

/// Draws `bars` (top to bottom, in table order) into the SVG file `path`, the value axis
/// described by `axis`, each value written with `decimals` decimals.
pub fn write(
    title: &str,
    axis: &str,
    decimals: usize,
    bars: &[Bar],
    path: &Path,
) -> Result<(), String> {
    let rows = bars.len().max(1);
    let height = 90 + 26 * rows as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    let failed = |error: &dyn std::fmt::Display| format!("{}: {error}", path.display());
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let top = bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
    let limit = (top * 1.15).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(340)
        .build_cartesian_2d(0.0..limit, (0..rows).into_segmented())
        .map_err(|e| failed(&e))?;
    // Row 0 at the top, as in the table.
    let label_of = |value: &SegmentValue<usize>| match value {
        SegmentValue::CenterOf(row) => bars
            .get(rows - 1 - row)
            .map_or(String::new(), |bar| bar.label.clone()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&label_of)
        .x_desc(axis)
        .draw()
        .map_err(|e| failed(&e))?;
    let colour = |kind: Kind| match kind {
        Kind::Baseline => RGBColor(150, 150, 150),
        Kind::JwtAuthn => RGBColor(230, 140, 40),
        Kind::Wsgate => RGBColor(40, 100, 200),
    };
    chart
        .draw_series(bars.iter().enumerate().map(|(index, bar)| {
            let row = rows - 1 - index;
            let mut rectangle = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row)),
                    (bar.value, SegmentValue::Exact(row + 1)),
                ],
                colour(bar.kind).filled(),
            );
            rectangle.set_margin(3, 3, 0, 0);
            rectangle
        }))
        .map_err(|e| failed(&e))?;
    let value_style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    chart
        .draw_series(bars.iter().enumerate().map(|(index, bar)| {
            let row = rows - 1 - index;
            Text::new(
                format!(" {:.*}", decimals, bar.value),
                (bar.value, SegmentValue::CenterOf(row)),
                value_style.clone(),
            )
        }))
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))
}

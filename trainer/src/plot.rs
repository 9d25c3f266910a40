//! PNG plots people would rather look at than CSV: a run's training curves, an experiment's
//! lines and a confusion matrix. Drawn with plotters into memory, encoded with `image`, written through a rename.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::atomic_file::{WriteError, write_atomically};
use crate::metrics::EpochMetrics;

/// DejaVu Sans (free licence, `assets/DejaVuSans-LICENSE.txt`), so text renders the same on
/// every machine without system fonts.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

fn font() {
    REGISTER_FONT.call_once(|| {
        // The bundled file is a valid TrueType font; registration cannot fail on it.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn drawing_error(path: &Path, error: impl std::fmt::Display) -> WriteError {
    WriteError {
        path: path.to_path_buf(),
        problem: format!("cannot draw the plot: {error}"),
    }
}

/// Draws a `size` picture with `title` on a white canvas through `body`, then writes it as PNG.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    (title, title_size): (&str, u32),
    body: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    font();
    let mut buffer = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| drawing_error(path, e))?;
        let root = root
            .titled(title, ("sans-serif", title_size))
            .map_err(|e| drawing_error(path, e))?;
        body(&root)?;
        root.present().map_err(|e| drawing_error(path, e))?;
    }
    write_png(path, buffer, size)
}

/// Encodes an RGB buffer as PNG and writes it through a rename.
fn write_png(path: &Path, buffer: Vec<u8>, (width, height): (u32, u32)) -> Result<(), WriteError> {
    let image = image::RgbImage::from_raw(width, height, buffer)
        .ok_or_else(|| drawing_error(path, "buffer of the wrong size"))?;
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| drawing_error(path, e))?;
    write_atomically(path, png.get_ref())
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend entry.
    pub label: String,
    /// (x, y) points, in order.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette: blue, red, green, magenta, orange, black.
    pub color: usize,
    /// Drawn thick (e.g. test error) rather than thin (training error).
    pub bold: bool,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 0, 255),
    RGBColor(255, 0, 0),
    RGBColor(0, 140, 0),
    RGBColor(200, 0, 200),
    RGBColor(255, 140, 0),
    RGBColor(0, 0, 0),
];

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if low.is_finite() {
        (low, high)
    } else {
        (0.0, 1.0)
    }
}

/// Draws `lines` with a legend on one panel.
fn draw_lines<DB: DrawingBackend>(
    panel: &DrawingArea<DB, plotters::coord::Shift>,
    path: &Path,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line],
) -> Result<(), WriteError> {
    let points = || lines.iter().flat_map(|line| line.points.iter());
    let (x_low, x_high) = range(points().map(|p| p.0));
    let (y_low, y_high) = range(points().map(|p| p.1));
    // A single abscissa (e.g. one epoch) is shown against an axis from 0, not a sliver.
    let x_low = if x_high > x_low {
        x_low
    } else {
        x_low.min(0.0)
    };
    let x_high = x_high.max(x_low + 1.0);
    let margin = ((y_high - y_low) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(panel)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_low..x_high, (y_low - margin)..(y_high + margin))
        .map_err(|e| drawing_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| drawing_error(path, e))?;
    for line in lines.iter().filter(|line| !line.points.is_empty()) {
        let color = PALETTE[line.color % PALETTE.len()];
        let width = if line.bold { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(
                line.points.clone(),
                color.stroke_width(width),
            ))
            .map_err(|e| drawing_error(path, e))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
        if line.points.len() <= 50 {
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| drawing_error(path, e))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| drawing_error(path, e))?;
    Ok(())
}

/// One chart of `lines` (e.g. accuracy against ensemble size, error against iterations).
pub fn write_lines(
    path: &Path,
    title: &str,
    axes: (&str, &str),
    lines: &[Line],
) -> Result<(), WriteError> {
    draw_png(path, (900, 600), (title, 20), |root| {
        draw_lines(root, path, axes, lines)
    })
}

/// One bar of a bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Index into the palette.
    pub color: usize,
}

/// A bar chart with the value written above each bar (e.g. accuracy before and after a change).
pub fn write_bars(path: &Path, title: &str, y_desc: &str, bars: &[Bar]) -> Result<(), WriteError> {
    let size = (300 + 180 * bars.len() as u32, 560u32);
    draw_png(path, size, (title, 20), |root| {
        let high = bars
            .iter()
            .map(|bar| bar.value)
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.15;
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), 0.0..high)
            .map_err(|e| drawing_error(path, e))?;
        let label = |segment: &SegmentValue<usize>| match segment {
            SegmentValue::CenterOf(i) if *i < n => bars[*i].label.clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .x_labels(n)
            .x_label_formatter(&label)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| drawing_error(path, e))?;
        for (i, bar) in bars.iter().enumerate() {
            let color = PALETTE[bar.color % PALETTE.len()];
            let mut rectangle = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), bar.value),
                ],
                color.mix(0.7).filled(),
            );
            rectangle.set_margin(0, 0, 20, 20);
            chart
                .draw_series(std::iter::once(rectangle))
                .map_err(|e| drawing_error(path, e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{:.4}", bar.value)
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_string(),
                    (SegmentValue::CenterOf(i), bar.value + high * 0.02),
                    ("sans-serif", 14),
                )))
                .map_err(|e| drawing_error(path, e))?;
        }
        Ok(())
    })
}

fn series(
    metrics: &[EpochMetrics],
    split: &str,
    value: fn(&EpochMetrics) -> f64,
) -> Vec<(f64, f64)> {
    metrics
        .iter()
        .filter(|m| m.split == split)
        .map(|m| (m.epoch as f64, value(m)))
        .collect()
}

/// Loss and top-1 accuracy per epoch, training and validation, side by side.
pub fn write_curves(path: &Path, title: &str, metrics: &[EpochMetrics]) -> Result<(), WriteError> {
    draw_png(path, (1200, 480), (title, 22), |root| {
        let panels = root.split_evenly((1, 2));
        let loss = |m: &EpochMetrics| m.loss;
        let top1 = |m: &EpochMetrics| 100.0 * m.top1;
        for (panel, (caption, value)) in panels.iter().zip([
            ("loss", loss as fn(&EpochMetrics) -> f64),
            ("top-1 accuracy (%)", top1),
        ]) {
            let splits = [
                ("train", 0),
                ("valid", 1),
                ("test", 2),
                ("valid-ema", 3),
                ("test-ema", 4),
            ];
            let lines = splits.map(|(split, color)| Line {
                label: split.to_string(),
                points: series(metrics, split, value),
                color,
                bold: true,
            });
            draw_lines(panel, path, ("epoch", caption), &lines)?;
        }
        Ok(())
    })
}

/// A confusion matrix, each row shaded by the fraction of its true class predicted as each
/// column; counts are written in the cells while there are few enough classes to read them.
pub fn write_confusion(
    path: &Path,
    title: &str,
    classes: &[String],
    confusion: &[Vec<usize>],
) -> Result<(), WriteError> {
    let n = classes.len().max(1);
    let cell = (720 / n as u32).clamp(2, 64);
    let size = (cell * n as u32 + 200, cell * n as u32 + 200);
    draw_png(path, size, (title, 18), |root| {
        let labels = n <= 40;
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(if labels { 90 } else { 30 })
            .y_label_area_size(if labels { 110 } else { 30 })
            .build_cartesian_2d((0..n).into_segmented(), (0..n).into_segmented())
            .map_err(|e| drawing_error(path, e))?;
        // Rows run top to bottom: true class `c` sits in segment `n - 1 - c`.
        let name = |segment: &SegmentValue<usize>, flip: bool| match segment {
            SegmentValue::CenterOf(i) if labels && *i < n => {
                classes[if flip { n - 1 - i } else { *i }].clone()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&|s| name(s, false))
            .y_label_formatter(&|s| name(s, true))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| drawing_error(path, e))?;
        let corner = |x: usize, y: usize| (SegmentValue::Exact(x), SegmentValue::Exact(y));
        for (truth, row) in confusion.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = n - 1 - truth;
            for (guess, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                let shade = (255.0 * (1.0 - share)) as u8;
                let color = RGBColor(shade, shade, 255);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [corner(guess, y), corner(guess + 1, y + 1)],
                        color.filled(),
                    )))
                    .map_err(|e| drawing_error(path, e))?;
                if labels && cell >= 24 && count > 0 {
                    let ink = if share > 0.5 { WHITE } else { BLACK };
                    chart
                        .draw_series(std::iter::once(Text::new(
                            count.to_string(),
                            corner(guess, y + 1),
                            ("sans-serif", 11).into_font().color(&ink),
                        )))
                        .map_err(|e| drawing_error(path, e))?;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, split: &str, loss: f64, top1: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            split: split.into(),
            loss,
            top1,
            top5: top1,
            lr: 0.1,
            images_per_second: 1.0,
            seconds: 1.0,
        }
    }

    #[test]
    fn curves_are_a_png_with_both_lines_drawn() {
        let dir = std::env::temp_dir().join("trainer-plot-curves");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.png");
        let metrics = [
            row(1, "train", 1.0, 0.5),
            row(1, "valid", 1.1, 0.45),
            row(2, "train", 0.5, 0.8),
            row(2, "valid", 0.7, 0.7),
        ];
        write_curves(&path, "lenet5", &metrics).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (1200, 480));
        let blue = image.pixels().filter(|p| p.0 == [0, 0, 255]).count();
        let red = image.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        assert!(blue > 100 && red > 100, "blue {blue}, red {red}");
    }

    #[test]
    fn confusion_cells_are_shaded_by_row_share() {
        let dir = std::env::temp_dir().join("trainer-plot-confusion");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("confusion.png");
        let classes = vec!["cat".to_string(), "dog".to_string()];
        write_confusion(&path, "test", &classes, &[vec![10, 0], vec![5, 5]]).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        // A full row share is pure blue; a half share is the mid shade.
        assert!(image.pixels().any(|p| p.0 == [0, 0, 255]));
        assert!(image.pixels().any(|p| p.0 == [127, 127, 255]));
    }
}

//! The `/stats` chart: a timeline of online sessions (one lane per user) over the window and
//! the online minutes per hour of the day, drawn with plotters on an RGB buffer and encoded as
//! PNG. Pure: data in, PNG bytes out.
//!
//! Text needs a font and tgwatch reads none from the system (a server may have none): a subset
//! of DejaVu Sans (Latin-1 and a few symbols, 17 kB; Bitstream Vera license, see
//! `assets/fonts/LICENSE`) is built into the binary and drawn by ab_glyph, in pure Rust.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use plotters::{
    coord::ranged1d::SegmentValue,
    prelude::*,
    style::{
        FontStyle, register_font,
        text_anchor::{HPos, Pos, VPos},
    },
};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

pub const WIDTH: u32 = 1000;
/// Lanes drawn at most; more users are summed up in the title.
pub const MAX_LANES: usize = 15;
const TITLE_HEIGHT: u32 = 40;
const LANE_HEIGHT: u32 = 30;
const TIMELINE_EXTRA: u32 = 90;
const HOURLY_HEIGHT: u32 = 300;

const ONLINE: RGBColor = RGBColor(46, 160, 67);
const BARS: RGBColor = RGBColor(56, 108, 176);
const GRID: RGBColor = RGBColor(225, 225, 225);

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the chart font cannot be loaded")]
    Font,
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG: {0}")]
    Encode(#[from] png::EncodingError),
}

/// One user's row of the timeline.
#[derive(Clone, Debug)]
pub struct Lane {
    pub label: String,
    /// Online spans, already clipped to the window.
    pub spans: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub lanes: Vec<Lane>,
    /// Seconds online per UTC hour of the day, summed over the window (and the users).
    pub hourly_seconds: [i64; 24],
}

impl Chart {
    pub fn height(&self) -> u32 {
        let lanes = self.lanes.len().clamp(1, MAX_LANES) as u32;
        TITLE_HEIGHT + TIMELINE_EXTRA + LANE_HEIGHT * lanes + HOURLY_HEIGHT
    }
}

fn font_ready() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

fn draw_error(error: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(error.to_string())
}

/// How to write a time on the x axis, by the window's length.
fn time_label(at: DateTime<Utc>, window_seconds: i64) -> String {
    let format = match window_seconds {
        s if s <= 36 * 3600 => "%H:%M",
        s if s <= 14 * 86_400 => "%b %-d %Hh",
        _ => "%b %-d",
    };
    at.format(format).to_string()
}

fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_owned();
    }
    let mut short: String = label.chars().take(max - 1).collect();
    short.push('…');
    short
}

/// Draws the chart and returns the PNG file's bytes.
pub fn render_png(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    font_ready()?;
    let (width, height) = (WIDTH, chart.height());
    let mut pixels = vec![0_u8; (width * height * 3) as usize];
    draw(chart, &mut pixels, (width, height))?;
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(png_bytes)
}

fn draw(chart: &Chart, pixels: &mut [u8], size: (u32, u32)) -> Result<(), ChartError> {
    let canvas = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    canvas.fill(&WHITE).map_err(draw_error)?;
    let root = canvas
        .titled(&chart.title, (FAMILY, 22).into_font().color(&BLACK))
        .map_err(draw_error)?;
    let lanes: Vec<&Lane> = chart.lanes.iter().take(MAX_LANES).collect();
    let timeline_height = TIMELINE_EXTRA + LANE_HEIGHT * lanes.len().max(1) as u32;
    let (upper, lower) = root.split_vertically(timeline_height);

    // The timeline: time across (plotters picks whole hours or days for the ticks), one lane
    // per user down, the first user on top.
    let lane_count = lanes.len().max(1) as f64;
    let (from, to) = (
        chart.from,
        chart.to.max(chart.from + chrono::Duration::seconds(1)),
    );
    let span = (to - from).num_seconds();
    let caption = if chart.lanes.len() > lanes.len() {
        format!(
            "Online sessions (the first {} of {} users)",
            lanes.len(),
            chart.lanes.len()
        )
    } else {
        "Online sessions".to_owned()
    };
    let mut timeline = ChartBuilder::on(&upper)
        .caption(caption, (FAMILY, 16))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(150)
        .build_cartesian_2d(from..to, 0.0..lane_count)
        .map_err(draw_error)?;
    timeline
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .x_labels(7)
        .x_label_formatter(&|at: &DateTime<Utc>| time_label(*at, span))
        .y_labels(0)
        .label_style((FAMILY, 13))
        .draw()
        .map_err(draw_error)?;
    let top = |index: usize| lane_count - index as f64;
    // At least about a pixel wide, so a short visit still shows on a long window.
    let least = chrono::Duration::seconds((span / 800).max(60));
    let bars = lanes.iter().enumerate().flat_map(|(index, lane)| {
        lane.spans.iter().map(move |(start, end)| {
            let start = (*start).clamp(from, to);
            let end = (*end).max(start + least).min(to).max(start);
            Rectangle::new(
                [(start, top(index) - 0.2), (end, top(index) - 0.8)],
                ONLINE.filled(),
            )
        })
    });
    timeline.draw_series(bars).map_err(draw_error)?;
    // Lane names left of the axis (a segmented axis cannot hold a single lane).
    let name_style = TextStyle::from((FAMILY, 13).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (index, lane) in lanes.iter().enumerate() {
        let (x, y) = timeline.backend_coord(&(from, top(index) - 0.5));
        canvas
            .draw_text(&shorten(&lane.label, 18), &name_style, (x - 8, y))
            .map_err(draw_error)?;
    }

    // Minutes online per hour of the day.
    let minutes: Vec<f64> = chart
        .hourly_seconds
        .iter()
        .map(|s| *s as f64 / 60.0)
        .collect();
    // At least five minutes high, so an empty chart still has a readable scale.
    let top = (minutes.iter().copied().fold(0.0_f64, f64::max) * 1.1).max(5.0);
    let mut hourly = ChartBuilder::on(&lower)
        .caption("Minutes online by hour of the day (UTC)", (FAMILY, 16))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d((0..23_i32).into_segmented(), 0.0..top)
        .map_err(draw_error)?;
    let hour_label = |value: &SegmentValue<i32>| match value {
        SegmentValue::CenterOf(hour) if hour % 2 == 0 && *hour < 24 => format!("{hour:02}"),
        _ => String::new(),
    };
    hourly
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .x_labels(24)
        .x_label_formatter(&hour_label)
        .y_labels(6)
        .y_label_formatter(&|m: &f64| format!("{m:.0}"))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(draw_error)?;
    hourly
        .draw_series(minutes.iter().enumerate().map(|(hour, value)| {
            let hour = hour as i32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(hour), 0.0),
                    (SegmentValue::Exact(hour + 1), *value),
                ],
                BARS.filled(),
            );
            bar.set_margin(0, 0, 3, 3);
            bar
        }))
        .map_err(draw_error)?;
    canvas.present().map_err(draw_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn ihdr_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&png[12..16], b"IHDR");
        let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        (width, height)
    }

    fn chart(lanes: usize, hours: i64) -> Chart {
        let to = Utc
            .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
            .single()
            .expect("time");
        let from = to - Duration::hours(hours);
        Chart {
            title: "@alice_w, last 24 h".into(),
            from,
            to,
            lanes: (0..lanes)
                .map(|i| Lane {
                    label: format!("@user_number_{i}_with_a_long_name"),
                    spans: vec![
                        (from + Duration::hours(1), from + Duration::hours(2)),
                        (from + Duration::minutes(200), from + Duration::minutes(201)),
                    ],
                })
                .collect(),
            hourly_seconds: std::array::from_fn(|h| (h as i64) * 60),
        }
    }

    #[test]
    fn renders_a_png_of_the_announced_size() {
        let chart = chart(1, 24);
        let png = render_png(&chart).expect("chart renders");
        assert_eq!(ihdr_size(&png), (WIDTH, chart.height()));
        // Not a blank image: the green of the online bars is in it.
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("decodes");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut buffer).expect("frame");
        assert!(
            buffer.chunks(3).any(|p| p == [46, 160, 67]),
            "online bars are drawn"
        );
    }

    #[test]
    fn many_users_long_windows_and_empty_data_render() {
        for (lanes, hours) in [(0, 1), (40, 8760), (3, 72)] {
            let mut chart = chart(lanes, hours);
            if lanes == 0 {
                chart.hourly_seconds = [0; 24];
            }
            let png = render_png(&chart).expect("chart renders");
            assert_eq!(ihdr_size(&png), (WIDTH, chart.height()));
        }
    }
}

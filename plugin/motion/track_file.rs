//! Coefficient tracks as files, for driving other rigs and for evaluation: JSON or CSV, 25 fps, ARKit names.
//!
//! JSON: `{"frame_rate_hz": 25, "names": [52 ARKit names], "frames": [{"time": t, "weights": [52 numbers],
//! "head_rotation": [pitch, yaw, roll], "head_translation": [x, y, z]}, …]}`. CSV: the header of
//! [`FaceCoefficients::csv_header`], one row per frame. Frame `i` has `time = i / frame rate`.

use std::io::{self, Write};
use std::path::Path;

use super::{ARKIT_NAMES, FaceCoefficients};

/// A track file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackFormat {
    /// One JSON object (see the module documentation).
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

impl TrackFormat {
    /// The format a path's extension names (`.json` or `.csv`, any case), or `None`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else if extension.eq_ignore_ascii_case("csv") {
            Some(Self::Csv)
        } else {
            None
        }
    }
}

/// A number as JSON: non-finite values (which JSON cannot hold) are written as 0.
fn number(value: f32) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        "0".to_owned()
    }
}

fn list(values: impl IntoIterator<Item = f32>) -> String {
    let items: Vec<String> = values.into_iter().map(number).collect();
    format!("[{}]", items.join(","))
}

/// Writes `frames` (one per frame at `frame_rate_hz`) to `out` in `format`.
pub fn write_track(
    out: &mut impl Write,
    frames: &[FaceCoefficients],
    frame_rate_hz: u32,
    format: TrackFormat,
) -> io::Result<()> {
    let time = |i: usize| i as f64 / f64::from(frame_rate_hz.max(1));
    match format {
        TrackFormat::Csv => {
            writeln!(out, "{}", FaceCoefficients::csv_header())?;
            for (i, frame) in frames.iter().enumerate() {
                let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
                let clean = FaceCoefficients {
                    weights: frame.weights.map(finite),
                    head_rotation: frame.head_rotation.to_array().map(finite).into(),
                    head_translation: frame.head_translation.to_array().map(finite).into(),
                };
                writeln!(out, "{}", clean.csv_row(time(i)))?;
            }
        }
        TrackFormat::Json => {
            let names: Vec<String> = ARKIT_NAMES.iter().map(|n| format!("\"{n}\"")).collect();
            write!(
                out,
                "{{\"frame_rate_hz\":{frame_rate_hz},\"names\":[{}],\"frames\":[",
                names.join(",")
            )?;
            for (i, frame) in frames.iter().enumerate() {
                if i > 0 {
                    write!(out, ",")?;
                }
                write!(
                    out,
                    "{{\"time\":{},\"weights\":{},\"head_rotation\":{},\"head_translation\":{}}}",
                    time(i),
                    list(frame.weights),
                    list(frame.head_rotation.to_array()),
                    list(frame.head_translation.to_array())
                )?;
            }
            writeln!(out, "]}}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_csv_hold_every_frame_with_names() {
        let mut frame = FaceCoefficients::default();
        frame.weights[17] = 0.25;
        frame.weights[3] = f32::NAN;
        let frames = vec![FaceCoefficients::default(), frame];
        let mut json = Vec::new();
        write_track(&mut json, &frames, 25, TrackFormat::Json).expect("json");
        let json = String::from_utf8(json).expect("utf-8");
        assert!(json.starts_with("{\"frame_rate_hz\":25,\"names\":[\"eyeBlinkLeft\","));
        assert!(
            json.contains("{\"time\":0.04,\"weights\":[0,0,0,0,"),
            "{json}"
        );
        assert!(json.contains(",0.25,"));
        assert!(!json.contains("NaN"));
        let mut csv = Vec::new();
        write_track(&mut csv, &frames, 25, TrackFormat::Csv).expect("csv");
        let csv = String::from_utf8(csv).expect("utf-8");
        assert_eq!(csv.lines().count(), 3);
        assert!(!csv.contains("NaN"));
        assert_eq!(
            TrackFormat::from_path(Path::new("a/b.JSON")),
            Some(TrackFormat::Json)
        );
        assert_eq!(
            TrackFormat::from_path(Path::new("b.csv")),
            Some(TrackFormat::Csv)
        );
        assert_eq!(TrackFormat::from_path(Path::new("b.txt")), None);
    }
}

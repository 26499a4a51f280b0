//! Text matrices as the original writes them (`np.savetxt(fmt='%.5f')`, one image row per line)
//! and numbers as Python prints them.

use std::fmt::Write as _;
use std::path::Path;

use ndarray::Array2;

use crate::{FileError, write_atomic};

/// The original `write_matrix_txt`: rows as lines, values `%.5f`, single spaces. Rust's `{:.5}`
/// rounds the exact binary value half-to-even like C's printf, and keeps the sign of -0.0.
pub fn format_matrix(m: &Array2<f32>) -> String {
    let mut out = String::with_capacity(m.len() * 9);
    for row in m.rows() {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                out.push(' ');
            }
            write!(out, "{:.5}", f64::from(*v)).expect("writing to a String");
        }
        out.push('\n');
    }
    out
}

pub fn write_matrix(path: impl AsRef<Path>, m: &Array2<f32>) -> Result<(), FileError> {
    write_atomic(path.as_ref(), format_matrix(m).as_bytes())
}

/// Reads a text matrix with numbers separated by spaces or commas (the original layouts use both).
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Array2<f32>, FileError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, e))?;
    let mut values = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let before = values.len();
        for token in line.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            let v: f32 = token
                .parse()
                .map_err(|_| FileError::new(path, format!("line {}: '{token}' is not a number", i + 1)))?;
            values.push(v);
        }
        let n = values.len() - before;
        if *cols.get_or_insert(n) != n {
            return Err(FileError::new(
                path,
                format!("line {}: {n} values, the first line has {}", i + 1, cols.unwrap_or(0)),
            ));
        }
        rows += 1;
    }
    Array2::from_shape_vec((rows, cols.unwrap_or(0)), values).map_err(|e| FileError::new(path, e))
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for decimal
/// exponents -4..16 and scientific notation (`1e-05`, `1.5e+16`) outside.
pub fn python_float_repr(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // `{:e}` gives the shortest round-trip digit count; among strings of that length Python picks
    // the correctly rounded one (ties to even), which is what the exact `{:.N e}` mode prints.
    let shortest = format!("{x:e}");
    let digit_count = shortest.split('e').next().map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let sci = format!("{x:.prec$e}", prec = digit_count - 1);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // position of the decimal point within `digits`
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_cases() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.0078125, "0.0078125"),
            (1.0, "1.0"),
            (1.9921875, "1.9921875"),
            (f64::from(0.475_515_84_f32), "0.47551584243774414"),
            (0.248_706_817_626_953_13, "0.24870681762695312"),
            (1e-5, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (0.0001, "0.0001"),
            (123456.0, "123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn matrix_format_rounds_half_even_and_keeps_negative_zero() {
        let m = Array2::from_shape_vec((2, 2), vec![0.015625, -0.0, 3.999_999, -1.25]).unwrap();
        assert_eq!(format_matrix(&m), "0.01562 -0.00000\n4.00000 -1.25000\n");
    }

    #[test]
    fn read_matrix_commas_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.txt");
        std::fs::write(&p, "1,2,3\n4,5,6\n").unwrap();
        let m = read_matrix(&p).unwrap();
        assert_eq!(m.shape(), &[2, 3]);
        assert_eq!(m[(1, 2)], 6.0);
        std::fs::write(&p, "1,2,3\n4,x,6\n").unwrap();
        let err = read_matrix(&p).unwrap_err().to_string();
        assert!(err.contains("m.txt") && err.contains("line 2: 'x' is not a number"), "{err}");
        std::fs::write(&p, "1,2,3\n4,6\n").unwrap();
        let err = read_matrix(&p).unwrap_err().to_string();
        assert!(err.contains("line 2: 2 values"), "{err}");
    }
}

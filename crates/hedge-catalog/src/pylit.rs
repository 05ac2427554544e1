//! A parser for Python literals, the subset `ast.literal_eval` accepts that SkyPilot's catalogs write:
//! dicts, lists, tuples, single- or double-quoted strings with backslash escapes, integers, floats, `True`,
//! `False` and `None`. SkyPilot's `GpuInfo` column is `str()` of a Python dict
//! (`{'Gpus': [{'Name': 'A100', 'Count': 8}], 'TotalGpuMemoryInMiB': 327680}`), which is not JSON, and
//! `common/accelerators.csv` lists clouds as a Python list (`['AWS', 'GCP']`).
//!
//! Nesting is limited to [`MAX_DEPTH`] so that hostile input cannot overflow the stack.

use std::fmt;

pub const MAX_DEPTH: usize = 64;

#[derive(Clone, PartialEq, Debug)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    /// Key/value pairs in source order.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// The value under a string key of a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(kv) => kv
                .iter()
                .find(|(k, _)| matches!(k, PyValue::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PyValue::Int(i) => Some(*i),
            PyValue::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e15 => {
                Some(*f as i64)
            }
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PyError {
    /// 0-based byte offset of the problem.
    pub offset: usize,
    pub reason: String,
}

impl fmt::Display for PyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.reason)
    }
}

/// Parses one Python literal; only whitespace may follow it.
pub fn parse(s: &str) -> Result<PyValue, PyError> {
    let mut p = Parser {
        s: s.as_bytes(),
        src: s,
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> PyError {
        PyError {
            offset: self.i,
            reason: reason.into(),
        }
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn value(&mut self, depth: usize) -> Result<PyValue, PyError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.ws();
        match self.peek() {
            None => Err(self.err("expected a value, found the end of the text")),
            Some(b'{') => self.dict(depth),
            Some(b'[') => self.seq(b']', depth),
            Some(b'(') => self.seq(b')', depth),
            Some(q @ (b'\'' | b'"')) => self.string(q).map(PyValue::Str),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
                {
                    self.i += 1;
                }
                match &self.src[start..self.i] {
                    "None" => Ok(PyValue::None),
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    "nan" => Ok(PyValue::Float(f64::NAN)),
                    "inf" => Ok(PyValue::Float(f64::INFINITY)),
                    other => {
                        self.i = start;
                        Err(self.err(format!("{other:?} is not a Python literal")))
                    }
                }
            }
            Some(_) => Err(self.err("expected a value")),
        }
    }
    fn dict(&mut self, depth: usize) -> Result<PyValue, PyError> {
        self.i += 1; // '{'
        let mut kv = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(PyValue::Dict(kv));
            }
            let k = self.value(depth + 1)?;
            if matches!(k, PyValue::List(_) | PyValue::Dict(_)) {
                return Err(self.err("a dict key must be hashable (not a list or dict)"));
            }
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':' after a dict key"));
            }
            self.i += 1;
            let v = self.value(depth + 1)?;
            kv.push((k, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}' in a dict")),
            }
        }
    }
    fn seq(&mut self, close: u8, depth: usize) -> Result<PyValue, PyError> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(PyValue::List(items));
            }
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return Err(self.err(format!("expected ',' or '{}'", close as char))),
            }
        }
    }
    fn string(&mut self, quote: u8) -> Result<String, PyError> {
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            if c == quote {
                out.push_str(&self.src[run..self.i]);
                self.i += 1;
                return Ok(out);
            }
            if c == b'\n' {
                return Err(self.err("line break inside a string"));
            }
            if c == b'\\' {
                out.push_str(&self.src[run..self.i]);
                self.i += 1;
                let Some(e) = self.peek() else {
                    return Err(self.err("unterminated escape"));
                };
                self.i += 1;
                match e {
                    b'\\' => out.push('\\'),
                    b'\'' => out.push('\''),
                    b'"' => out.push('"'),
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'0' => out.push('\0'),
                    b'x' | b'u' => {
                        let n = if e == b'x' { 2 } else { 4 };
                        let hex = self
                            .src
                            .get(self.i..self.i + n)
                            .ok_or_else(|| self.err("short escape"))?;
                        let code =
                            u32::from_str_radix(hex, 16).map_err(|_| self.err("bad hex escape"))?;
                        out.push(
                            char::from_u32(code)
                                .ok_or_else(|| self.err("escape is not a character"))?,
                        );
                        self.i += n;
                    }
                    _ => {
                        // Python keeps unknown escapes as written.
                        out.push('\\');
                        self.i -= 1;
                    }
                }
                run = self.i;
                continue;
            }
            // Advance by a whole UTF-8 character so slices stay on boundaries.
            let ch_len = self.src[self.i..].chars().next().map_or(1, char::len_utf8);
            self.i += ch_len;
        }
    }
    fn number(&mut self) -> Result<PyValue, PyError> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
        }
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'.' | b'_' | b'+' | b'-'))
        {
            // A sign is part of the number only right after an exponent marker.
            if matches!(self.s[self.i], b'+' | b'-') && !matches!(self.s[self.i - 1], b'e' | b'E') {
                break;
            }
            self.i += 1;
        }
        let text: String = self.src[start..self.i]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(PyValue::Int(i));
        }
        let body = text.trim_start_matches(['-', '+']);
        let looks_numeric = body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && body
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
        match text.parse::<f64>() {
            Ok(f) if looks_numeric => Ok(PyValue::Float(f)),
            _ => {
                self.i = start;
                Err(self.err(format!("{text:?} is not a number")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skypilot_gpu_info() {
        let v = parse("{'Gpus': [{'Name': 'A100', 'Manufacturer': 'NVIDIA', 'Count': 8, 'LogicalGpuCount': 8, 'GpuPartitionSize': 1.0, 'Workloads': ['ml-ai'], 'MemoryInfo': {'SizeInMiB': 40960}}], 'TotalGpuMemoryInMiB': 327680}").unwrap();
        let gpu = &v.get("Gpus").unwrap().as_list().unwrap()[0];
        assert_eq!(gpu.get("Name").unwrap().as_str(), Some("A100"));
        assert_eq!(gpu.get("Count").unwrap().as_i64(), Some(8));
        assert_eq!(gpu.get("GpuPartitionSize"), Some(&PyValue::Float(1.0)));
        assert_eq!(
            gpu.get("MemoryInfo")
                .unwrap()
                .get("SizeInMiB")
                .unwrap()
                .as_i64(),
            Some(40960)
        );
        assert_eq!(v.get("TotalGpuMemoryInMiB").unwrap().as_i64(), Some(327680));
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse("['AWS', \"GCP\",]").unwrap(),
            PyValue::List(vec![PyValue::Str("AWS".into()), PyValue::Str("GCP".into())])
        );
        assert_eq!(
            parse(" (1, -2.5e3, True, None) ").unwrap(),
            PyValue::List(vec![
                PyValue::Int(1),
                PyValue::Float(-2500.0),
                PyValue::Bool(true),
                PyValue::None
            ])
        );
        assert_eq!(
            parse(r"'it\'s \x41\u00e9 ü'").unwrap(),
            PyValue::Str("it's Aé ü".into())
        );
        assert_eq!(parse("{}").unwrap(), PyValue::Dict(vec![]));
        assert_eq!(parse("1_000").unwrap(), PyValue::Int(1000));
    }

    #[test]
    fn rejects_with_position() {
        for (bad, at) in [
            ("{'a': }", 6),
            ("{'a' 1}", 5),
            ("[1, 2", 5),
            ("'abc", 4),
            ("foo", 0),
            ("{[1]: 2}", 4),
            ("1 2", 2),
            ("1e", 0),
            ("-", 0),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.offset, at, "{bad}: {e}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).unwrap_err().reason.contains("nested deeper"));
    }
}

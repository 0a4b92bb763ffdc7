//! A strict reader of the exposition text (Prometheus 0.0.4 and OpenMetrics
//! 1.0 text), so tests can check that a scrape parses as a scraper would
//! read it and look samples up by series instead of matching substrings.

/// One sample line: a series and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name (with its `_total`, `_bucket`, ... suffix).
    pub name: String,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The series as written: `name{k="v",...}` (values escaped again), or
    /// `name` without labels.
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Why a text is not valid exposition text: the line (1-based) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The offending line.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

const TYPES: &[&str] =
    &["counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset", "gaugehistogram"];

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(ok_first) && chars.all(ok_rest)
}

/// Every sample of `text`, in order; an error at the first line a scraper would reject.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    let mut eof = false;
    for (i, line) in text.lines().enumerate() {
        let err = |reason: String| ParseError { line: i + 1, reason };
        if eof {
            return Err(err("content after # EOF".into()));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            let keyword = parts.next();
            let name = parts.next().unwrap_or_default();
            let rest = parts.next().unwrap_or_default().trim();
            let ok = match keyword {
                Some("EOF") => {
                    eof = true;
                    true
                }
                Some("TYPE") => is_name(name, true) && TYPES.contains(&rest),
                Some("HELP") | Some("UNIT") => is_name(name, true),
                _ => true, // a plain comment
            };
            if !ok {
                return Err(err(format!("bad metadata line {line:?}")));
            }
            continue;
        }
        out.push(sample(line).map_err(err)?);
    }
    Ok(out)
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or_else(|| format!("label without value in {line:?}"))?;
            let key = &rest[..eq];
            if !is_name(key, false) {
                return Err(format!("bad label name {key:?}"));
            }
            rest = rest[eq + 1..].strip_prefix('"').ok_or_else(|| format!("unquoted label value in {line:?}"))?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?} in {line:?}")),
                    },
                    Some((j, '"')) => break j,
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated label value in {line:?}")),
                }
            };
            labels.push((key.to_string(), value));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected , or }} after a label in {line:?}"));
            }
        }
    }
    let mut fields = rest.strip_prefix(' ').ok_or_else(|| format!("no space before the value in {line:?}"))?.split(' ');
    let raw = fields.next().unwrap_or_default();
    let value: f64 = raw.parse().map_err(|_| format!("bad value {raw:?}"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<f64>().is_err()
    {
        return Err(format!("bad timestamp {ts:?}"));
    }
    if fields.next().is_some() {
        return Err(format!("trailing fields in {line:?}"));
    }
    Ok(Sample { name: name.to_string(), labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_escapes_and_special_values() {
        let t = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\nb +Inf\nc{le=\"+Inf\"} NaN 1700000000\n";
        let s = parse(t).expect("parses");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].label("y"), Some("q\"\\\n"));
        assert_eq!(s[0].series(), "a_total{x=\"1\",y=\"q\\\"\\\\\\n\"}");
        assert!(s[1].value.is_infinite());
        assert!(s[2].value.is_nan());
    }

    #[test]
    fn rejects_what_a_scraper_rejects() {
        for bad in ["1abc 1", "a{x=1} 1", "a{x=\"1\" 1", "a 1 2 3", "a one", "# TYPE a nonsense", "a 1\n# EOF\nb 2"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}

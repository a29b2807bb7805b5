//! The HTTP long-polling wire format (`Listening-Configs`): records separated by 0x01, fields by
//! 0x02: `dataId␂group␂md5[␂tenant]␁`. The answer lists changed keys in the same shape without
//! md5, URL-encoded, followed by a newline.

use crate::error::{Error, Result};

/// Word separator (0x02).
pub const WORD: char = '\u{2}';
/// Line separator (0x01).
pub const LINE: char = '\u{1}';
/// Most keys in one long poll (Nacos answers 400 above it).
pub const MAX_KEYS: usize = 10_000;

/// One listened key as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listened {
    /// dataId.
    pub data_id: String,
    /// group.
    pub group: String,
    /// The client's md5 (empty when it has nothing).
    pub md5: String,
    /// tenant as sent (`None` when the record had three fields).
    pub tenant: Option<String>,
}

/// Parses the decoded `Listening-Configs` value.
pub fn parse(raw: &str) -> Result<Vec<Listened>> {
    let mut out = Vec::new();
    for line in raw.split(LINE).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(WORD).collect();
        let (data_id, group, md5, tenant) = match f.as_slice() {
            [d, g] => (d, g, &"", None),
            [d, g, m] => (d, g, m, None),
            [d, g, m, t] => (d, g, m, Some(t.to_string())),
            _ => return Err(Error::InvalidParam(format!("invalid Listening-Configs record {line:?}"))),
        };
        out.push(Listened { data_id: data_id.to_string(), group: group.to_string(), md5: md5.to_string(), tenant });
        if out.len() > MAX_KEYS {
            return Err(Error::InvalidParam(format!("too many listened configs (more than {MAX_KEYS})")));
        }
    }
    Ok(out)
}

/// Renders the changed keys: `URLEncode(dataId␂group[␂tenant]␁…)` + `\n`, or empty for none.
pub fn render(changed: &[&Listened]) -> String {
    if changed.is_empty() {
        return String::new();
    }
    let mut plain = String::new();
    for l in changed {
        plain.push_str(&l.data_id);
        plain.push(WORD);
        plain.push_str(&l.group);
        if let Some(t) = l.tenant.as_deref().filter(|t| !t.is_empty()) {
            plain.push(WORD);
            plain.push_str(t);
        }
        plain.push(LINE);
    }
    let mut out = url_encode(&plain);
    out.push('\n');
    out
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`: unreserved `A-Za-z0-9.-*_` kept, space → `+`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_three_and_four_fields() {
        let raw = "a.yaml\u{2}G\u{2}abc\u{1}b\u{2}G\u{2}\u{2}dev\u{1}";
        let v = parse(raw).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].tenant, None);
        assert_eq!(v[1].md5, "");
        assert_eq!(v[1].tenant.as_deref(), Some("dev"));
        assert!(parse("only-one-field\u{1}").is_err());
    }

    #[test]
    fn render_matches_nacos() {
        let a = Listened { data_id: "app.yaml".into(), group: "DEFAULT_GROUP".into(), md5: "x".into(), tenant: None };
        assert_eq!(render(&[&a]), "app.yaml%02DEFAULT_GROUP%01\n");
        let b = Listened { tenant: Some("dev".into()), ..a };
        assert_eq!(render(&[&b]), "app.yaml%02DEFAULT_GROUP%02dev%01\n");
        assert_eq!(render(&[]), "");
    }
}

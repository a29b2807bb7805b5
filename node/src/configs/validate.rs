//! Config validation following Nacos (`ParamUtils` and the 2.3+ parameter checks).

use crate::configs::model::CONFIG_TYPES;
use crate::error::{Error, Result};

/// Longest dataId.
pub const MAX_DATA_ID: usize = 256;
/// Longest group.
pub const MAX_GROUP: usize = 128;
/// Longest namespace id.
pub const MAX_NAMESPACE: usize = 64;
/// Most tags.
pub const MAX_TAGS: usize = 5;
/// Longest tag.
pub const MAX_TAG: usize = 64;
/// Longest description.
pub const MAX_DESC: usize = 128;
/// Longest `use` / `effect`.
pub const MAX_USE: usize = 32;
/// Longest schema.
pub const MAX_SCHEMA: usize = 32_768;

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidParam(msg.into())
}

fn key_part(what: &str, v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() {
        return Err(invalid(format!("invalid {what}: must not be blank")));
    }
    if v.len() > max {
        return Err(invalid(format!("invalid {what}: longer than {max} characters")));
    }
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c)) {
        return Err(invalid(format!("invalid {what} {v:?}: only letters, digits and '-', '_', ':', '.' are allowed")));
    }
    Ok(())
}

/// dataId: `^[a-zA-Z0-9-_:.]+$`, at most 256.
pub fn data_id(v: &str) -> Result<()> {
    key_part("dataId", v, MAX_DATA_ID)
}

/// group: `^[a-zA-Z0-9-_:.]+$`, at most 128.
pub fn group(v: &str) -> Result<()> {
    key_part("group", v, MAX_GROUP)
}

/// Namespace (tenant): empty (public) or `^[\w-]+$`, at most 64.
pub fn namespace(v: &str) -> Result<()> {
    if v.len() > MAX_NAMESPACE {
        return Err(invalid(format!("invalid tenant: longer than {MAX_NAMESPACE} characters")));
    }
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(invalid(format!("invalid tenant {v:?}")));
    }
    Ok(())
}

/// Content: not blank and at most `max` bytes.
pub fn content(v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() {
        return Err(invalid("invalid content: must not be blank"));
    }
    if v.len() > max {
        return Err(invalid(format!("invalid content: {} bytes exceeds the limit of {max} bytes", v.len())));
    }
    Ok(())
}

/// Normalises a type: known names as given (lowercase), anything else `text`.
pub fn config_type(v: &str) -> String {
    let lower = v.trim().to_ascii_lowercase();
    if CONFIG_TYPES.contains(&lower.as_str()) { lower } else { "text".to_owned() }
}

/// Splits and checks `config_tags` (comma separated, ≤ 5, each ≤ 64).
pub fn tags(v: &str) -> Result<Vec<String>> {
    let tags: Vec<String> = v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!("invalid config_tags: at most {MAX_TAGS} tags")));
    }
    if tags.iter().any(|t| t.len() > MAX_TAG) {
        return Err(invalid(format!("invalid config_tags: a tag is longer than {MAX_TAG}")));
    }
    Ok(tags)
}

/// Length limits of desc/use/effect/schema.
pub fn descriptive(desc: &str, usage: &str, effect: &str, schema: &str) -> Result<()> {
    if desc.len() > MAX_DESC {
        return Err(invalid(format!("invalid desc: longer than {MAX_DESC}")));
    }
    if usage.len() > MAX_USE || effect.len() > MAX_USE {
        return Err(invalid(format!("invalid use/effect: longer than {MAX_USE}")));
    }
    if schema.len() > MAX_SCHEMA {
        return Err(invalid(format!("invalid schema: longer than {MAX_SCHEMA}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(data_id("app.yaml").is_ok());
        assert!(data_id("a:b-c_d.e").is_ok());
        assert!(data_id("").is_err());
        assert!(data_id("a b").is_err());
        assert!(data_id("a/b").is_err());
        assert!(data_id(&"x".repeat(257)).is_err());
        assert!(group("DEFAULT_GROUP").is_ok());
        assert!(group("g#").is_err());
        assert!(namespace("").is_ok());
        assert!(namespace("dev-1").is_ok());
        assert!(namespace("dev.1").is_err());
    }

    #[test]
    fn content_and_tags() {
        assert!(content("a", 10).is_ok());
        assert!(content("  ", 10).is_err());
        assert!(content(&"a".repeat(11), 10).is_err());
        assert_eq!(config_type("YAML"), "yaml");
        assert_eq!(config_type("exe"), "text");
        assert_eq!(tags("a, b").unwrap(), vec!["a", "b"]);
        assert!(tags("a,b,c,d,e,f").is_err());
    }
}

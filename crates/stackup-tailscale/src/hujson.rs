//! HuJSON (JSON with `//` and `/* */` comments and trailing commas), the format of Tailscale
//! policy files. stackup sends the policy text exactly as written; this module only reads it to
//! check it before any API call and to compare meaning when the text differs.

use serde_json::Value;

use crate::error::TailscaleError;

/// Converts HuJSON to standard JSON text: comments become spaces (line breaks kept, so error
/// positions still point at the user's line) and trailing commas are dropped.
pub fn to_json(src: &str) -> Result<String, TailscaleError> {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    // Position in `out` of a comma that is trailing if the next significant byte closes.
    let mut pending_comma: Option<usize> = None;
    let line_of = |pos: usize| src[..pos].bytes().filter(|c| *c == b'\n').count() + 1;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                pending_comma = None;
                let start = i;
                out.push(c);
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(TailscaleError::HuJson(format!(
                                "unterminated string at line {}",
                                line_of(start)
                            )));
                        }
                        Some(b'\\') => {
                            out.push(b'\\');
                            if let Some(n) = b.get(i + 1) {
                                out.push(*n);
                            }
                            i += 2;
                        }
                        Some(b'"') => {
                            out.push(b'"');
                            i += 1;
                            break;
                        }
                        Some(x) => {
                            out.push(*x);
                            i += 1;
                        }
                    }
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i;
                out.extend_from_slice(b"  ");
                i += 2;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(TailscaleError::HuJson(format!(
                                "unterminated /* comment at line {}",
                                line_of(start)
                            )));
                        }
                        Some(b'*') if b.get(i + 1) == Some(&b'/') => {
                            out.extend_from_slice(b"  ");
                            i += 2;
                            break;
                        }
                        Some(b'\n') => {
                            out.push(b'\n');
                            i += 1;
                        }
                        Some(_) => {
                            out.push(b' ');
                            i += 1;
                        }
                    }
                }
            }
            b',' => {
                pending_comma = Some(out.len());
                out.push(c);
                i += 1;
            }
            b']' | b'}' => {
                if let Some(p) = pending_comma.take() {
                    out[p] = b' ';
                }
                out.push(c);
                i += 1;
            }
            c if c.is_ascii_whitespace() => {
                out.push(c);
                i += 1;
            }
            _ => {
                pending_comma = None;
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| TailscaleError::HuJson("not UTF-8".into()))
}

/// Parses HuJSON into a JSON value; the policy must be an object.
pub fn parse(src: &str) -> Result<Value, TailscaleError> {
    let json = to_json(src)?;
    let v: Value = serde_json::from_str(&json).map_err(|e| TailscaleError::HuJson(e.to_string()))?;
    if !v.is_object() {
        return Err(TailscaleError::HuJson("a policy file must be a JSON object `{ … }`".into()));
    }
    Ok(v)
}

/// Normalises text for comparison: line endings to `\n`, trailing whitespace of each line and
/// of the document dropped. Anything else (comments, order, indentation) is kept.
pub fn normalize_text(src: &str) -> String {
    let unix = src.replace("\r\n", "\n");
    let mut out = unix.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_comments_and_trailing_commas_but_not_inside_strings() {
        let src = r#"// Example policy
{
  /* groups */
  "groups": {"group:dev": ["a@example.com",],},
  "hosts": {"url": "http://x//y", "c": "/* not a comment */", "q": "say \"hi\", // ok",},
  "acls": [
    {"action": "accept", "src": ["tag:ci"], "dst": ["tag:prod:22"]}, // ci → prod ssh
  ],
}"#;
        let v = parse(src).unwrap();
        assert_eq!(v["groups"]["group:dev"], json!(["a@example.com"]));
        assert_eq!(v["hosts"]["url"], "http://x//y");
        assert_eq!(v["hosts"]["c"], "/* not a comment */");
        assert_eq!(v["hosts"]["q"], "say \"hi\", // ok");
        assert_eq!(v["acls"][0]["dst"], json!(["tag:prod:22"]));
    }

    #[test]
    fn errors_point_at_the_line() {
        let err = parse("{\n  \"acls\": [\n  }\n").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(parse("[1]").unwrap_err().to_string().contains("object"));
        assert!(parse("{ /* open").unwrap_err().to_string().contains("unterminated"));
        assert!(parse("{\"a\": \"open").unwrap_err().to_string().contains("unterminated string"));
    }

    #[test]
    fn normalizes_only_whitespace_at_line_ends() {
        assert_eq!(normalize_text("{\r\n  \"a\": 1,  \r\n}\n\n"), "{\n  \"a\": 1,\n}");
        assert_ne!(normalize_text("{ // x\n}"), normalize_text("{\n}"));
    }
}

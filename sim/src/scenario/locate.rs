//! Where things are written in a scenario file, and how to show a user's text safely.
//!
//! Errors name the file, the line and the field. Lines come from the spans the TOML parser
//! keeps for tables, or from finding the key inside a table's text, since values parsed
//! through `toml::Value` lose their spans.

use std::borrow::Cow;
use std::ops::Range;

use super::ScenarioError;

/// A user's text as it is safe to print on a terminal: control characters (escape sequences,
/// carriage returns, newlines that could fake a `verdict:` line) and bidirectional overrides
/// are shown escaped, as Rust writes them (`\u{1b}`).
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // U+202A..U+202E and U+2066..U+2069 reorder the text around them on display.
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// At most `chars_max` characters of `text`, escaped, with `…` when cut: a 200 KB key or a
/// line of NULs in an error message is shown as a short, printable excerpt.
pub fn excerpt(text: &str, chars_max: usize) -> String {
    let mut cut: String = text.chars().take(chars_max).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    escape_control(&cut).into_owned()
}

/// Characters of a key or message shown in an error at most.
const KEY_CHARS_MAX: usize = 40;
const MESSAGE_CHARS_MAX: usize = 200;

/// A scenario file's name and text, for building located errors.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn error(&self, line: usize, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError { file: self.file.to_string(), line, field: field.into(), message: message.into() }
    }

    /// The 1-based line of byte `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        line_at(self.text, offset)
    }

    /// The line, inside `span`, where `key = ...` starts a line; the span's first line otherwise.
    pub fn line_of_key(&self, span: &Range<usize>, key: &str) -> usize {
        let start_line = self.line_at(span.start);
        let text = self.slice(span);
        for (i, l) in text.lines().enumerate() {
            let l = l.trim_start();
            if let Some(rest) = l.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return start_line + i;
                }
            }
        }
        start_line
    }

    /// One `[[step]]` table with its sub-tables (`[step.op]`): the parser's span of a step
    /// ends before them, so extend it to the next header that is not the step's own.
    pub fn step_region(&self, span: &Range<usize>) -> Range<usize> {
        let start = span.start.min(self.text.len());
        let mut end = span.end.clamp(start, self.text.len());
        for line in self.text[end..].split_inclusive('\n') {
            let head = line.trim_start();
            if head.starts_with('[') && !head.starts_with("[step.") && !head.starts_with("[ step.") {
                break;
            }
            end += line.len();
        }
        start..end
    }

    /// The line of a dotted field path (`op.preferred`, `check.node`, `peers[1]`) inside
    /// `region`: where its last key is written, else where its first is (`op = {` or
    /// `[step.op]`), else the region's first line.
    pub fn line_of_path(&self, region: &Range<usize>, path: &str) -> usize {
        let keys: Vec<&str> = path.split('.').map(|k| k.split('[').next().unwrap_or(k)).collect();
        let text = self.slice(region);
        let found = keys.last().and_then(|k| offset_of_key(text, k)).or_else(|| {
            let head = keys.first()?;
            offset_of_key(text, head).or_else(|| text.find(&format!("[step.{head}]")))
        });
        self.line_at(region.start + found.unwrap_or(0))
    }

    /// A TOML syntax or type error: its line, the field it names (or the key its line starts
    /// with) and its message, each short and escaped.
    pub fn toml_error(&self, e: &toml::de::Error) -> ScenarioError {
        let line = e.span().map_or(0, |s| self.line_at(s.start));
        let full = e.message().trim();
        let message = full.lines().next().unwrap_or_default();
        let field = field_in_message(message)
            .or_else(|| {
                // The line the parser points at starts with the key it was reading.
                let text = self.text.lines().nth(line.checked_sub(1)?)?;
                let key = text.split('=').next()?.trim().trim_matches(|c| c == '[' || c == ']');
                (!key.is_empty()).then(|| key.to_string())
            })
            .unwrap_or_else(|| "toml".into());
        self.error(line, excerpt(&field, KEY_CHARS_MAX), excerpt(message, MESSAGE_CHARS_MAX))
    }

    fn slice(&self, span: &Range<usize>) -> &'a str {
        let start = span.start.min(self.text.len());
        self.text.get(start..span.end.clamp(start, self.text.len())).unwrap_or_default()
    }
}

pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Where `key = ` is written in `text`, at a line's start or inside an inline table
/// (`op = { kind = "x", key = 1 }`) or a dotted key (`op.key = 1`).
fn offset_of_key(text: &str, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(key) {
        let at = from + found;
        let before_ok = text[..at].chars().next_back().is_none_or(|c| matches!(c, ' ' | '\t' | '\n' | '{' | ',' | '.'));
        let after = text[at + key.len()..].trim_start_matches([' ', '\t']);
        let after_ok = after.starts_with('=') && !after.starts_with("==");
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + key.len().max(1);
        if from >= bytes.len() {
            break;
        }
    }
    None
}

/// The field a serde message is about, when it names one (`unknown field `x``, `missing field `x``).
pub(crate) fn field_in_message(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    backticked(message)
}

pub(crate) fn backticked(text: &str) -> Option<String> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(text[start..start + len].to_string())
}

/// toml's value deserializer ends nested errors with "in `key.path`"; the first key names the field.
pub(crate) fn nested_key(message: &str) -> Option<String> {
    let path = message.lines().rev().find_map(|l| l.trim().strip_prefix("in "))?;
    let key = backticked(path)?;
    Some(key.split('.').next().unwrap_or(&key).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_control("plain ± text"), "plain ± text");
        assert_eq!(escape_control("a\u{1b}[2Jb\nverdict: pass\r\0"), "a\\u{1b}[2Jb\\nverdict: pass\\r\\u{0}");
        assert_eq!(escape_control("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn excerpts_are_short_and_say_they_were_cut() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt(&"a.".repeat(100_000), 6), "a.a.a.…");
        assert_eq!(excerpt("\0\0", 5), "\\u{0}\\u{0}");
    }

    #[test]
    fn a_field_path_is_found_in_sub_tables_and_inline_tables() {
        let text = "[[step]]\nat_ms = 1\naction = \"client\"\n[step.op]\nkind = \"stepdown\"\npreferred = 7\n\
                    [[step]]\nat_ms = 2\nop = { kind = \"stepdown\", preferred = 9 }\n[system]\npreferred = 1\n";
        let src = Source { file: "x.toml", text };
        let first = src.step_region(&(0..18));
        assert_eq!(src.line_of_path(&first, "op.preferred"), 6);
        assert_eq!(src.line_of_path(&first, "op.nothing"), 4, "the op's own header");
        let second_start = text.find("[[step]]\nat_ms = 2").unwrap();
        let second = src.step_region(&(second_start..second_start + 18));
        assert!(!src.slice(&second).contains("[system]"), "a step's region ends at the next table");
        assert_eq!(src.line_of_path(&second, "op.preferred"), 9);
        assert_eq!(src.line_of_path(&second, "check.node"), 7, "the step's first line");
    }

    #[test]
    fn keys_are_matched_whole() {
        assert_eq!(offset_of_key("xnode = 1\nnode = 2", "node"), Some(10));
        assert_eq!(offset_of_key("{ a = 1, node = 2 }", "node"), Some(9));
        assert_eq!(offset_of_key("node == 2", "node"), None);
    }
}

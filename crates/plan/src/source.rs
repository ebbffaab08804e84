//! The plan's text split into lines, for showing the line a diagnostic points at and for
//! finding where a piece of text was written.

use crate::span::Loc;

/// A plan file's text with an index of where each line starts.
pub struct SourceText<'a> {
    text: &'a str,
    /// Byte offset of the start of each line; line `n` (1-based) starts at `starts[n - 1]`.
    starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    pub fn new(text: &'a str) -> SourceText<'a> {
        let mut starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        SourceText { text, starts }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn line_count(&self) -> u32 {
        u32::try_from(self.starts.len()).unwrap_or(u32::MAX)
    }

    /// Line `n` (1-based) without its line break; empty when out of range.
    pub fn line(&self, n: u32) -> &'a str {
        let Some(index) = (n as usize).checked_sub(1) else {
            return "";
        };
        let Some(&start) = self.starts.get(index) else {
            return "";
        };
        let end = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.text.len());
        let line = &self.text[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// The location of byte offset `offset` (clamped to the text).
    pub fn loc_of_byte(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let index = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[index];
        let column = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        Loc::new(
            u32::try_from(index + 1).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )
    }

    /// Where `needle` is first written at or after `from` (same line at or after its
    /// column, or a later line), looking at most `max_lines` lines ahead. Occurrences in
    /// comments (`#` after a space or at line start) are skipped.
    pub fn find_after(&self, from: Loc, needle: &str, max_lines: u32) -> Option<Loc> {
        if needle.is_empty() || !from.is_known() {
            return None;
        }
        let last = from.line.saturating_add(max_lines).min(self.line_count());
        for n in from.line..=last {
            let line = self.line(n);
            let skip_chars = if n == from.line {
                from.column.saturating_sub(1) as usize
            } else {
                0
            };
            let skip_bytes = line
                .char_indices()
                .nth(skip_chars)
                .map(|(i, _)| i)
                .unwrap_or(line.len());
            let comment = comment_start(line);
            if let Some(found) = line.get(skip_bytes..).and_then(|rest| rest.find(needle)) {
                let at = skip_bytes + found;
                if comment.is_none_or(|c| at < c) {
                    let column = line[..at].chars().count() + 1;
                    return Some(Loc::new(n, u32::try_from(column).unwrap_or(u32::MAX)));
                }
            }
        }
        None
    }
}

/// The byte index where a YAML comment starts on this line, if any. Quotes are honoured
/// well enough for plan files: a `#` inside a quoted scalar is not a comment.
pub fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'')
                && matches!(previous, ' ' | ':' | '[' | '{' | ',' | '-') =>
            {
                quote = Some(c)
            }
            None if c == '#' && previous.is_whitespace() => return Some(i),
            None if c == '#' && i == 0 => return Some(i),
            None => {}
        }
        previous = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_locations() {
        let source = SourceText::new("a: 1\r\nbé: 2\nc");
        assert_eq!(source.line(1), "a: 1");
        assert_eq!(source.line(2), "bé: 2");
        assert_eq!(source.line(3), "c");
        assert_eq!(source.line(4), "");
        assert_eq!(source.line(0), "");
        assert_eq!(source.loc_of_byte(0), Loc::new(1, 1));
        // `:` after `bé` is at byte 9 and character column 3.
        assert_eq!(source.loc_of_byte(9), Loc::new(2, 3));
    }

    #[test]
    fn finds_text_but_not_in_comments() {
        let source = SourceText::new("a: x # Saturday\nb: |\n  Saturday, August 23\n");
        assert_eq!(
            source.find_after(Loc::new(1, 1), "Saturday", 5),
            Some(Loc::new(3, 3))
        );
        assert_eq!(
            source.find_after(Loc::new(1, 1), "x", 5),
            Some(Loc::new(1, 4))
        );
        assert_eq!(comment_start("a: \"x # y\" # z"), Some(11));
    }
}

//! Text that came from the machine under test (kernel releases, runtime
//! versions, reasons quoting a runtime's output), made safe for each output:
//! terminal escapes and control characters neutralised first, then escaped
//! for HTML or Markdown. Every renderer goes through these, never around them.

/// Removes ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL`
/// or `ESC \`, and two-character `ESC X`), and turns every other control
/// character except newline and tab into U+FFFD, as do the bidirectional
/// overrides that could make a reason read backwards (Trojan Source).
pub fn neutralise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, up to the final byte.
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                Some(_) | None => {}
            },
            // C1's CSI, as some terminals read it.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            // A lone CR (a progress line's rewrite) ends a line as LF does.
            '\r' if chars.peek() != Some(&'\n') => out.push('\n'),
            '\r' => {}
            c if c.is_control() || is_bidi_control(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// At most `max` characters, and says how many more there were: a reason of
/// megabytes from a runaway runtime must not make the page unreadable.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!(
            "{}… ({} more characters in the report)",
            &text[..cut],
            text[cut..].chars().count()
        ),
    }
}

/// Neutralised, then escaped for HTML text and quoted attributes alike.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in neutralise(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Neutralised, then `<`, `>` and `&` as entities (so not even a renderer
/// that passes HTML through sees a tag or an entity), and every character
/// that can open inline markup backslash-escaped: `|` that would end a
/// table cell, backticks, emphasis, links and images, strikethrough, math
/// and the backslash itself. Newlines become `<br>`, so a reason stays
/// inside its cell and no line of it can start a block (a heading, a
/// list), which is why `#`, `-` and `.` need no escape.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for c in neutralise(text).chars() {
        match c {
            '\n' => out.push_str("<br>"),
            '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("\u{1b}[31mred\u{1b}[0m", "red")]
    #[case("\u{1b}[1;38;5;196mbold\u{1b}[m plain", "bold plain")]
    #[case("\u{1b}]0;title\u{7}after", "after")]
    #[case("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link")]
    #[case("\u{9b}2Jcleared", "cleared")]
    #[case("a\u{0}b\u{7}c", "a\u{fffd}b\u{fffd}c")]
    #[case("line 1\r\nline 2\ttab", "line 1\nline 2\ttab")]
    #[case("abc\u{202e}fed", "abc\u{fffd}fed")]
    #[case("cut off \u{1b}[", "cut off ")]
    #[case("plain µs text", "plain µs text")]
    fn terminal_escapes_are_neutralised(#[case] from: &str, #[case] to: &str) {
        assert_eq!(neutralise(from), to);
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<script>alert(\"x\")</script> & 'q'\u{1b}[0m"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"
        );
    }

    #[test]
    fn markdown_cannot_open_markup_or_leave_its_cell() {
        let md = markdown("a | b `code` <img src=x> **bold** [l](u) &amp;\nnext");
        assert_eq!(
            md,
            "a \\| b \\`code\\` &lt;img src=x&gt; \\*\\*bold\\*\\* \\[l\\](u) &amp;amp;<br>next"
        );
        assert!(!md.contains('\n'));
        // Every pipe left is escaped.
        assert!(md.match_indices('|').all(|(i, _)| md[..i].ends_with('\\')));
    }

    #[test]
    fn long_text_is_clipped_with_a_count() {
        assert_eq!(clip("abcdef", 10), "abcdef");
        assert_eq!(clip("abcdéf", 3), "abc… (3 more characters in the report)");
    }
}

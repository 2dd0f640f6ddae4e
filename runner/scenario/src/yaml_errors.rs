//! YAML and deserialization errors in the words of a file's author, at the
//! place to fix: an unclosed `{` is blamed on the `{`, a duplicate key on the
//! duplicate, and serde's Rust type names ("expected u8") become ranges
//! ("a whole number from 0 to 255"). Shared by every YAML file orphanage
//! reads: scenarios, the kernels file, expected differences.

/// What is wrong, and where (1-based line and column) when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    pub position: Option<(usize, usize)>,
    pub message: String,
}

/// Checks `text` as plain YAML, before any type reads it: a syntax error or a
/// duplicate key is reported as such, rather than as whatever a half-read
/// document would make of it (an unclosed `{` otherwise swallows the lines
/// after it into one value).
pub fn check_syntax(text: &str) -> Result<(), YamlProblem> {
    yaml_serde::from_str::<yaml_serde::Value>(text)
        .map(|_| ())
        .map_err(|e| explain(text, &e))
}

/// An error of yaml_serde on `text`, reworded and positioned.
pub fn explain(text: &str, error: &yaml_serde::Error) -> YamlProblem {
    let at = error.location().map(|l| (l.line(), l.column()));
    let raw = error.to_string();
    if let Some(problem) = unclosed(&raw) {
        return problem;
    }
    let message = without_location(&raw);
    if let Some(key) = duplicate_key_name(&message) {
        let (path, _) = split_path(&message);
        let position = at.and_then(|start| duplicate_key_position(text, start, &key));
        return YamlProblem {
            position: position.or(at),
            message: format!("{path}duplicate key `{key}`: a key may appear once in a mapping"),
        };
    }
    YamlProblem {
        position: at,
        message: reword_types(&message),
    }
}

/// `did not find expected ',' or '}' at line 5 column 9, while parsing a flow
/// mapping at line 4 column 12`: the `{` at 4:12 is never closed.
fn unclosed(raw: &str) -> Option<YamlProblem> {
    let (what, opener) = [
        (
            "while parsing a flow mapping at ",
            "{` is never closed: no `}`",
        ),
        (
            "while parsing a flow sequence at ",
            "[` is never closed: no `]`",
        ),
        (
            "while scanning a quoted scalar at ",
            "quote is never closed: no matching quote",
        ),
    ]
    .into_iter()
    .find(|(what, _)| raw.contains(what))?;
    let opened = line_column(&raw[raw.find(what)? + what.len()..])?;
    let found = line_column(&raw[raw.find(" at ")? + " at ".len()..]);
    let opener = if opener.starts_with("quote") {
        format!("this {opener}")
    } else {
        format!("this `{opener}")
    };
    Some(YamlProblem {
        position: Some(opened),
        message: match found {
            Some((line, column)) => {
                format!("{opener} before line {line} column {column}")
            }
            None => opener,
        },
    })
}

/// `line L column C` at the start of `text`.
fn line_column(text: &str) -> Option<(usize, usize)> {
    let rest = text.strip_prefix("line ")?;
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// yaml_serde puts " at line L column C" into its messages; the position is
/// reported in front instead.
pub(crate) fn without_location(message: &str) -> String {
    let Some(start) = message.find(" at line ") else {
        return message.to_string();
    };
    let rest = &message[start + " at line ".len()..];
    let after_column = rest.find("column ").map(|c| c + "column ".len()).map(|c| {
        c + rest[c..]
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(rest.len() - c)
    });
    match after_column {
        Some(end) => format!("{}{}", &message[..start], &rest[end..]),
        None => message[..start].to_string(),
    }
}

/// `steps[0].spawn: rest` as (`steps[0].spawn: `, `rest`); no path, ("", all).
fn split_path(message: &str) -> (&str, &str) {
    match message.find(": ") {
        Some(i)
            if !message[..i].contains(' ')
                && message[..i]
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_.[]".contains(c)) =>
        {
            message.split_at(i + 2)
        }
        _ => ("", message),
    }
}

/// The key named by `duplicate field `K`` (typed) or `duplicate entry with key "K"` (plain YAML).
fn duplicate_key_name(message: &str) -> Option<String> {
    if let Some(rest) = message.split("duplicate field `").nth(1) {
        return rest.split('`').next().map(str::to_string);
    }
    let rest = message.split("duplicate entry with key ").nth(1)?;
    let rest = rest.strip_prefix('"')?;
    rest.split('"').next().map(str::to_string)
}

/// Byte offset of 1-based (line, column), columns counted in characters.
fn offset_of(text: &str, (line, column): (usize, usize)) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text[start..].find('\n')? + 1;
    }
    let line_text = &text[start..];
    let within = line_text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + within)
}

/// 1-based (line, column) of a byte offset.
fn position_of(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

fn unquoted(key: &str) -> &str {
    let key = key.trim();
    key.strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key)
}

/// Where `key` appears the second time in the mapping that starts at
/// `start` (yaml_serde blames a duplicate on its mapping's start).
pub fn duplicate_key_position(
    text: &str,
    start: (usize, usize),
    key: &str,
) -> Option<(usize, usize)> {
    nth_key_position(text, start, key, 1)
}

/// Where `key` is in the mapping that starts at `start`.
pub fn key_position(text: &str, start: (usize, usize), key: &str) -> Option<(usize, usize)> {
    nth_key_position(text, start, key, 0)
}

fn nth_key_position(
    text: &str,
    start: (usize, usize),
    key: &str,
    nth: usize,
) -> Option<(usize, usize)> {
    let offset = offset_of(text, start)?;
    let found = if text[offset..].starts_with('{') {
        flow_key_offsets(text, offset)
    } else {
        block_key_offsets(text, start)
    };
    found
        .into_iter()
        .filter(|(k, _)| k == key)
        .nth(nth)
        .map(|(_, at)| position_of(text, at))
}

/// Where the top-level `key:` is (column 1).
pub fn top_level_key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    let prefix = format!("{key}:");
    text.lines()
        .position(|l| l.starts_with(&prefix))
        .map(|n| (n + 1, 1))
}

/// The 1-based (line, column) of the dash that starts item `index` of the
/// block list under the top-level `key:`. Good enough to point a reader at
/// the right item; `None` for a flow list (`key: [...]`).
pub fn list_item_position(text: &str, key: &str, index: usize) -> Option<(usize, usize)> {
    let mut lines = text.lines().enumerate();
    let prefix = format!("{key}:");
    lines.by_ref().find(|(_, l)| l.starts_with(&prefix))?;
    let mut indent = None;
    let mut seen = 0;
    for (n, line) in lines {
        let trimmed = line.trim_start();
        let col = line.len() - trimmed.len();
        if !trimmed.starts_with("- ") && trimmed != "-" {
            if col == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
                return None; // the next top-level key
            }
            continue;
        }
        let item_indent = *indent.get_or_insert(col);
        if col != item_indent {
            continue;
        }
        if seen == index {
            return Some((n + 1, col + 1));
        }
        seen += 1;
    }
    None
}

/// Where `field` is in item `index` of the block list under `key:`, or the
/// item itself when it has no such field.
pub fn list_item_field_position(
    text: &str,
    key: &str,
    index: usize,
    field: &str,
) -> Option<(usize, usize)> {
    let (line, column) = list_item_position(text, key, index)?;
    key_position(text, (line, column + 2), field).or(Some((line, column)))
}

/// The keys of the flow mapping whose `{` is at `open`, with their offsets.
fn flow_key_offsets(text: &str, open: usize) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    // Where the current entry's key began, at depth 1, until its `:`.
    let mut key_start: Option<usize> = None;
    let mut expecting_key = false;
    for (i, c) in text[open..].char_indices() {
        let at = open + i;
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '{' | '[' => {
                depth += 1;
                if depth == 1 {
                    expecting_key = true;
                }
            }
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                expecting_key = true;
                key_start = None;
            }
            ':' if depth == 1 => {
                if let Some(s) = key_start.take() {
                    keys.push((unquoted(&text[s..at]).to_string(), s));
                }
                expecting_key = false;
            }
            _ if depth == 1 && expecting_key && !c.is_whitespace() => {
                key_start = Some(at);
                expecting_key = false;
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
            '"' | '\'' => quote = Some(c),
            _ => {}
        }
    }
    keys
}

/// The keys of the block mapping whose first key is at `start`: the lines
/// indented exactly as far, until one is indented less.
fn block_key_offsets(text: &str, (line, column): (usize, usize)) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    let indent = column.saturating_sub(1);
    let mut offset = 0;
    for (n, line_text) in text.split_inclusive('\n').enumerate() {
        let here = offset;
        offset += line_text.len();
        if n + 1 < line {
            continue;
        }
        let body = line_text.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let lead = body.chars().count() - trimmed.chars().count();
        let key_at = if n + 1 == line {
            // The first line may begin with `- ` before the mapping's first key.
            Some(indent)
        } else if lead < indent {
            break;
        } else if lead == indent {
            Some(indent)
        } else {
            None
        };
        let Some(col) = key_at else { continue };
        let Some(byte) = body.char_indices().nth(col).map(|(b, _)| b) else {
            continue;
        };
        let rest = &body[byte..];
        if let Some(colon) = rest.find(':') {
            let after = &rest[colon + 1..];
            if after.is_empty() || after.starts_with([' ', '\t']) {
                keys.push((unquoted(&rest[..colon]).to_string(), here + byte));
            }
        }
    }
    keys
}

/// serde's words for what it expected and found, as an author would say them.
fn reword_types(message: &str) -> String {
    let (path, rest) = split_path(message);
    let Some((found, expected)) = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .and_then(|r| r.split_once(", expected "))
    else {
        return message.to_string();
    };
    format!(
        "{path}expected {}, found {}",
        expected_in_words(expected),
        found_in_words(found)
    )
}

fn expected_in_words(expected: &str) -> String {
    let words = match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "usize" => "a whole number, 0 or more",
        "i8" => "a whole number from -128 to 127",
        "i32" => "a whole number from -2147483648 to 2147483647",
        "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a sequence" => "a list ([a, b], or one `- item` per line)",
        "a map" => "a mapping (key: value)",
        "a string" | "string" => "text",
        "a character" | "char" => "one character",
        "newtype variant" => "the word with its value, as a mapping (`{exited: 0}`)",
        "unit variant" => "a bare word",
        "map with a single key" => "a mapping with one key: one step per `- ` item",
        _ if expected.starts_with("struct variant ") || expected.starts_with("struct ") => {
            "a mapping of its fields ({key: value, ...})"
        }
        _ => expected,
    };
    words.to_string()
}

fn found_in_words(found: &str) -> String {
    for prefix in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(value) = found.strip_prefix(prefix) {
            return value.trim_matches('`').to_string();
        }
    }
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    match found {
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        "unit value" => "nothing".into(),
        "unit variant" => "a bare word".into(),
        "newtype variant" | "tuple variant" | "struct variant" => "a word with a value".into(),
        _ => found.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::flow("a: 1\nb: {name: x, by: y, name: z}\n", (2, 4), "name", Some((2, 21)))]
    #[case::flow_across_lines("b: {name: x,\n    name: z}\n", (1, 4), "name", Some((2, 5)))]
    #[case::flow_nested("b: {s: {name: x}, name: z, name: w}\n", (1, 4), "name", Some((1, 28)))]
    #[case::block_top("# c\nchecks: x\nrefs: []\nchecks: y\n", (2, 1), "checks", Some((4, 1)))]
    #[case::block_item("steps:\n  - spawn:\n      name: a\n      by: b\n      name: c\n", (3, 7), "name", Some((5, 7)))]
    #[case::block_dash("- name: a\n  by: b\n  name: c\n- name: d\n", (1, 3), "name", Some((3, 3)))]
    #[case::not_twice("a: {name: x}\n", (1, 4), "name", None)]
    fn a_duplicate_key_is_found_where_it_is_repeated(
        #[case] text: &str,
        #[case] start: (usize, usize),
        #[case] key: &str,
        #[case] want: Option<(usize, usize)>,
    ) {
        assert_eq!(duplicate_key_position(text, start, key), want);
    }

    #[test]
    fn list_items_and_their_fields_are_found() {
        let text =
            "# c\nkernels:\n  - name: a\n    path: x\n  - {name: b, host: true}\n  - name: c\n";
        assert_eq!(list_item_position(text, "kernels", 1), Some((5, 3)));
        assert_eq!(
            list_item_field_position(text, "kernels", 0, "path"),
            Some((4, 5))
        );
        assert_eq!(
            list_item_field_position(text, "kernels", 1, "host"),
            Some((5, 15))
        );
        assert_eq!(
            list_item_field_position(text, "kernels", 2, "path"),
            Some((6, 3))
        );
        assert_eq!(list_item_position(text, "kernels", 3), None);
        assert_eq!(top_level_key_position(text, "kernels"), Some((2, 1)));
    }

    #[rstest]
    #[case::duplicate_in_flow(
        "steps:\n  - spawn: {name: a, name: b}\n",
        (2, 22),
        "steps[0].spawn: duplicate key `name`: a key may appear once in a mapping"
    )]
    #[case::unclosed_brace(
        "steps:\n  - spawn: {name: sub\n  - exit: {by: sub}\n",
        (2, 12),
        "this `{` is never closed: no `}` before line 3 column 9"
    )]
    #[case::unclosed_bracket(
        "refs: [x\nsteps: []\n",
        (1, 7),
        "this `[` is never closed: no `]` before line 2 column 6"
    )]
    #[case::unclosed_quote(
        "checks: 'x\nrefs: []\n",
        (1, 9),
        "this quote is never closed: no matching quote before line 3 column 1"
    )]
    fn syntax_is_checked_before_types(
        #[case] text: &str,
        #[case] position: (usize, usize),
        #[case] message: &str,
    ) {
        let problem = check_syntax(text).unwrap_err();
        assert_eq!(
            problem,
            YamlProblem {
                position: Some(position),
                message: message.into()
            }
        );
    }

    #[rstest]
    #[case(
        "steps[1].exit.code: invalid value: integer `300`, expected u8",
        "steps[1].exit.code: expected a whole number from 0 to 255, found 300"
    )]
    #[case(
        "steps[1].exit.code: invalid type: integer `-1`, expected u8",
        "steps[1].exit.code: expected a whole number from 0 to 255, found -1"
    )]
    #[case(
        "steps[0].expect_signal.count: invalid type: string \"x\", expected u32",
        "steps[0].expect_signal.count: expected a whole number from 0 to 4294967295, found the text \"x\""
    )]
    #[case(
        "steps[0].spawn: invalid type: string \"a\", expected struct variant Step::Spawn",
        "steps[0].spawn: expected a mapping of its fields ({key: value, ...}), found the text \"a\""
    )]
    #[case(
        "refs: invalid type: string \"y\", expected a sequence",
        "refs: expected a list ([a, b], or one `- item` per line), found the text \"y\""
    )]
    #[case(
        "steps[0].ignore.every: invalid type: string \"yes\", expected a boolean",
        "steps[0].ignore.every: expected true or false, found the text \"yes\""
    )]
    #[case(
        "steps[0].wait.status.exited: invalid type: floating point `1.5`, expected i32",
        "steps[0].wait.status.exited: expected a whole number from -2147483648 to 2147483647, found 1.5"
    )]
    #[case(
        "steps[2].wait.status: invalid type: unit variant, expected newtype variant",
        "steps[2].wait.status: expected the word with its value, as a mapping (`{exited: 0}`), found a bare word"
    )]
    #[case(
        "steps[0]: invalid type: map, expected map with a single key",
        "steps[0]: expected a mapping with one key: one step per `- ` item, found a mapping"
    )]
    #[case("unknown field `x`", "unknown field `x`")]
    fn rust_type_names_become_words(#[case] serde: &str, #[case] words: &str) {
        assert_eq!(reword_types(serde), words);
        for rust in ["u8", "u32", "u64", "i32", "Step::", "struct", "variant"] {
            assert!(
                !words.contains(&format!("expected {rust}"))
                    && !words.contains("Step::")
                    && !words.contains("variant"),
                "{words}"
            );
        }
    }

    #[rstest]
    #[case("unknown field `x` at line 3 column 5", "unknown field `x`")]
    #[case(
        "did not find expected ',' at line 4 column 6, while parsing",
        "did not find expected ',', while parsing"
    )]
    #[case("no location here", "no location here")]
    fn locations_are_cut_from_messages(#[case] message: &str, #[case] cut: &str) {
        assert_eq!(without_location(message), cut);
    }
}

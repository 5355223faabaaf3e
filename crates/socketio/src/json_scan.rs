//! A validating scan of one JSON text, in one pass and without building any value: it checks
//! the grammar (RFC 8259), the nesting depth and the element count, and reports the byte range
//! of each element of a top-level array. What a packet's arguments need, at a fraction of the
//! cost of parsing them (they stay raw until a handler asks for them).
//!
//! Pure: no I/O, fuzzed against `serde_json` (`fuzz/fuzz_targets/json_scan.rs`).

use std::ops::Range;

/// Why a text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Not one valid JSON value (or invalid UTF-8 in a string).
    Invalid,
    /// Nested deeper than the limit.
    TooDeep,
    /// A top-level array with more elements than the limit.
    TooMany,
}

/// Deepest nesting the scan tracks (`serde_json`'s own recursion limit is 128, so deeper texts
/// were never accepted).
pub(crate) const MAX_TRACKED_DEPTH: usize = 128;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A value, or the end of the array just opened.
    ValueOrEnd,
    /// A value (after `,` or `:`, or the whole text).
    Value,
    /// `,` or the end of the current container.
    CommaOrEnd,
    /// A key, or the end of the object just opened.
    KeyOrEnd,
    /// A key (after `,` in an object).
    Key,
    /// The `:` after a key.
    Colon,
}

/// Scans `json` as exactly one JSON value (surrounding whitespace allowed). When it is an array,
/// `element` gets the range of each element, in order; at most `max_elements` are allowed.
/// Containers may nest `max_depth` levels (the outermost one is level 1).
pub(crate) fn scan(
    json: &[u8],
    max_depth: usize,
    max_elements: usize,
    mut element: impl FnMut(Range<usize>),
) -> Result<(), ScanError> {
    let max_depth = max_depth.min(MAX_TRACKED_DEPTH);
    let mut i = skip_whitespace(json, 0);
    if json.get(i) != Some(&b'[') {
        // Not an array: one value, no elements to report.
        let end = value_end(json, i, 0, max_depth)?;
        return end_of_text(json, end);
    }
    if max_depth == 0 {
        return Err(too_deep(max_depth));
    }
    // The top-level array, walked here: its elements are mostly scalars, which need none of
    // the nesting state.
    i = skip_whitespace(json, i + 1);
    if json.get(i) == Some(&b']') {
        return end_of_text(json, i + 1);
    }
    let mut elements = 0usize;
    loop {
        if elements == max_elements {
            return Err(ScanError::TooMany);
        }
        elements += 1;
        let end = value_end(json, i, 1, max_depth)?;
        element(i..end);
        i = skip_whitespace(json, end);
        match json.get(i) {
            Some(b',') => i = skip_whitespace(json, i + 1),
            Some(b']') => return end_of_text(json, i + 1),
            _ => return Err(ScanError::Invalid),
        }
    }
}

fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = json.get(i) {
        i += 1;
    }
    i
}

/// The error for a container opened at the depth limit: past serde_json's own limit, a text is
/// invalid as it always was; below it, too deep.
fn too_deep(max_depth: usize) -> ScanError {
    if max_depth == MAX_TRACKED_DEPTH {
        ScanError::Invalid
    } else {
        ScanError::TooDeep
    }
}

/// The end of the value starting at `at`, inside `depth` levels of containers.
fn value_end(json: &[u8], at: usize, depth: usize, max_depth: usize) -> Result<usize, ScanError> {
    match json.get(at) {
        Some(b'[' | b'{') => container_end(json, at, depth, max_depth),
        _ => scalar_end(json, at),
    }
}

/// The end of the string, number or literal starting at `at`.
fn scalar_end(json: &[u8], at: usize) -> Result<usize, ScanError> {
    match json.get(at) {
        Some(b'"') => string_end(json, at),
        Some(b'-' | b'0'..=b'9') => number_end(json, at),
        Some(b't') => literal_end(json, at, b"true"),
        Some(b'f') => literal_end(json, at, b"false"),
        Some(b'n') => literal_end(json, at, b"null"),
        _ => Err(ScanError::Invalid),
    }
}

/// The end of the array or object opening at `at`, inside `base` levels of containers: a state
/// machine, not recursion, so that hostile nesting costs no stack.
fn container_end(
    json: &[u8],
    at: usize,
    base: usize,
    max_depth: usize,
) -> Result<usize, ScanError> {
    // Bit `d` set: the container at depth `d + 1` is an object.
    let mut objects: u128 = 0;
    let mut depth = base;
    let mut want = Want::Value;
    let mut i = at;
    loop {
        i = skip_whitespace(json, i);
        let Some(&c) = json.get(i) else {
            return Err(ScanError::Invalid);
        };
        let in_object = depth > 0 && objects & (1 << (depth - 1)) != 0;
        match want {
            Want::ValueOrEnd | Want::Value => {
                if want == Want::ValueOrEnd && c == b']' {
                    i += 1;
                } else {
                    if let b'[' | b'{' = c {
                        if depth == max_depth {
                            return Err(too_deep(max_depth));
                        }
                        if c == b'{' {
                            objects |= 1 << depth;
                            want = Want::KeyOrEnd;
                        } else {
                            objects &= !(1 << depth);
                            want = Want::ValueOrEnd;
                        }
                        depth += 1;
                        i += 1;
                        continue;
                    }
                    i = scalar_end(json, i)?;
                    want = Want::CommaOrEnd;
                    continue;
                }
            }
            Want::CommaOrEnd => match c {
                b',' => {
                    i += 1;
                    want = if in_object { Want::Key } else { Want::Value };
                    continue;
                }
                b']' if !in_object => i += 1,
                b'}' if in_object => i += 1,
                _ => return Err(ScanError::Invalid),
            },
            Want::KeyOrEnd | Want::Key => {
                if want == Want::KeyOrEnd && c == b'}' {
                    i += 1;
                } else if c == b'"' {
                    i = string_end(json, i)?;
                    want = Want::Colon;
                    continue;
                } else {
                    return Err(ScanError::Invalid);
                }
            }
            Want::Colon => {
                if c != b':' {
                    return Err(ScanError::Invalid);
                }
                i += 1;
                want = Want::Value;
                continue;
            }
        }
        // A container closed at `i - 1`.
        depth -= 1;
        if depth == base {
            return Ok(i);
        }
        want = Want::CommaOrEnd;
    }
}

/// Only whitespace may follow the value.
fn end_of_text(json: &[u8], i: usize) -> Result<(), ScanError> {
    if skip_whitespace(json, i) == json.len() {
        Ok(())
    } else {
        Err(ScanError::Invalid)
    }
}

/// The end (one past the closing quote) of the string opening at `at`.
fn string_end(json: &[u8], at: usize) -> Result<usize, ScanError> {
    let mut i = at + 1;
    let mut ascii = true;
    loop {
        // Eight plain bytes at a time: none of `"`, `\\`, a control character or a non-ASCII byte.
        while let Some(chunk) = json.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !plain(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let Some(&b) = json.get(i) else {
            return Err(ScanError::Invalid);
        };
        match b {
            b'"' => break,
            b'\\' => {
                match json.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = json.get(i + 2..i + 6).ok_or(ScanError::Invalid)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(ScanError::Invalid);
                        }
                        i += 6;
                    }
                    _ => return Err(ScanError::Invalid),
                }
                continue;
            }
            0x00..=0x1f => return Err(ScanError::Invalid),
            0x80.. => ascii = false,
            _ => {}
        }
        i += 1;
    }
    if !ascii && std::str::from_utf8(&json[at + 1..i]).is_err() {
        return Err(ScanError::Invalid);
    }
    Ok(i + 1)
}

/// Whether none of the eight bytes of `w` needs a look: no `"`, no backslash, no control
/// character, nothing above ASCII.
fn plain(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_in(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(w ^ (ONES * u64::from(b'\\')));
    // A byte below 0x20 (exact when no byte has its high bit set, checked with `w & HIGH`).
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (quote | backslash | control | (w & HIGH)) == 0
}

/// The end of the number starting at `at`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_end(json: &[u8], at: usize) -> Result<usize, ScanError> {
    let digits = |from: usize| {
        json[from.min(json.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = at;
    if json.get(i) == Some(&b'-') {
        i += 1;
    }
    match json.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(i),
        _ => return Err(ScanError::Invalid),
    }
    if json.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return Err(ScanError::Invalid);
        }
        i += 1 + n;
    }
    if let Some(b'e' | b'E') = json.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = json.get(i) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return Err(ScanError::Invalid);
        }
        i += n;
    }
    Ok(i)
}

fn literal_end(json: &[u8], at: usize, literal: &[u8]) -> Result<usize, ScanError> {
    if json.get(at..at + literal.len()) == Some(literal) {
        Ok(at + literal.len())
    } else {
        Err(ScanError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(json: &str) -> Result<Vec<&str>, ScanError> {
        let mut out = Vec::new();
        scan(json.as_bytes(), 32, 100, |r| out.push(&json[r]))?;
        Ok(out)
    }

    /// What serde_json accepts, and the elements it sees.
    fn serde(json: &str) -> Option<Vec<String>> {
        let value: &serde_json::value::RawValue = serde_json::from_str(json).ok()?;
        Some(
            serde_json::from_str::<Vec<&serde_json::value::RawValue>>(value.get())
                .map(|v| v.iter().map(|r| r.get().to_owned()).collect())
                .unwrap_or_default(),
        )
    }

    #[test]
    fn agrees_with_serde_json() {
        let cases = [
            r#"["echo",{"a":[1,2,{"b":null}],"c":"x\"y"},-0.5e+3,true,false,null]"#,
            r#" [ "a" , 1 ] "#,
            "[]",
            "[ ]",
            "{}",
            r#"{"a":1}"#,
            "1",
            r#""s""#,
            "[1,]",
            "[,1]",
            "[1 2]",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[-]",
            "[tru]",
            "[nulll]",
            r#"["\x"]"#,
            r#"["\u12g4"]"#,
            r#"["\u00e9é",{"ü":"\ud83d\ude00"}]"#,
            "[\"a\u{1}\"]",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{1:2}"#,
            r#"{"a":1,}"#,
            "[1]]",
            "[[1]",
            "[1] x",
            "",
            "   ",
            "[\"unterminated",
            r#"[{"a":[]},[[]],{}]"#,
            r#"["\ud800"]"#,
            r#"[[1,[2]],{"a":{"b":[3]}}, "x" ]"#,
            "[1,{}]",
            r#"[{"a":1},]"#,
            r#"[{"a":1}"#,
            r#"[{"a":1]]"#,
            " 5 ",
            "[1]x",
            "[\t1\n,\r2 ]",
        ];
        for case in cases {
            let ours = ranges(case).ok();
            let theirs = serde(case);
            match (&ours, &theirs) {
                (Some(ours), Some(theirs)) => assert_eq!(ours, theirs, "{case}"),
                (None, None) => {}
                _ => panic!("{case:?}: ours {ours:?}, serde_json {theirs:?}"),
            }
        }
    }

    #[test]
    fn plain_words() {
        let word = |s: &[u8; 8]| plain(u64::from_le_bytes(*s));
        assert!(word(b"abcdefgh"));
        assert!(word(b"  ~!#$%&"));
        for bad in [
            b"abc\"defg",
            b"abcdefg\\",
            b"\x01bcdefgh",
            b"abcd\x1fghi",
            b"abcd\xc3\xa9gh",
            b"\x7f\x00aaaaaa",
        ] {
            assert!(!word(bad), "{bad:?}");
        }
        // Long strings cross the fast path and the byte path in every alignment.
        for pad in 0..9 {
            let text = format!("[\"{}\\n\u{e9}{}\"]", "x".repeat(pad), "y".repeat(17));
            assert_eq!(ranges(&text).map(|r| r.len()), Ok(1), "{text}");
        }
    }

    #[test]
    fn limits() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert_eq!(
            scan(deep.as_bytes(), 32, 100, |_| {}),
            Err(ScanError::TooDeep)
        );
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert_eq!(scan(ok.as_bytes(), 32, 100, |_| {}), Ok(()));
        assert_eq!(scan(b"[1]", 1, 100, |_| {}), Ok(()));
        assert_eq!(scan(b"[[1]]", 1, 100, |_| {}), Err(ScanError::TooDeep));
        assert_eq!(scan(b"[{}]", 1, 100, |_| {}), Err(ScanError::TooDeep));
        assert_eq!(scan(b"[]", 0, 100, |_| {}), Err(ScanError::TooDeep));
        assert_eq!(scan(b"{}", 0, 100, |_| {}), Err(ScanError::TooDeep));
        assert_eq!(scan(b"1", 0, 100, |_| {}), Ok(()));
        assert_eq!(scan(b"[1,2,3]", 32, 2, |_| {}), Err(ScanError::TooMany));
        assert_eq!(scan(b"[1,2]", 32, 2, |_| {}), Ok(()));
        // Past serde_json's own limit, as before: invalid.
        let very = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            scan(very.as_bytes(), 1000, 100, |_| {}),
            Err(ScanError::Invalid)
        );
        // Invalid UTF-8 inside a string.
        assert_eq!(
            scan(b"[\"\xff\"]", 32, 100, |_| {}),
            Err(ScanError::Invalid)
        );
        assert_eq!(
            scan(b"[\xc3\xa9]", 32, 100, |_| {}),
            Err(ScanError::Invalid)
        );
    }
}

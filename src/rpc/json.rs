//! A borrowed JSON value built from simd-json's tape.
//!
//! simd-json does the hard part (validation, UTF-8, escapes, numbers) at SIMD speed and leaves a flat
//! "tape" of nodes. We fold that tape into a small tree whose strings borrow from the parse buffer.
//! Unlike simd-json's own `BorrowedValue` (a hash map), objects here keep every member in order,
//! duplicates included, because the contract rejects duplicate member names (§3.1) and a map would
//! silently hide them.

use simd_json::{Node, StaticNode};

/// Nesting deeper than this is answered as a parse error (-32700): no method takes deep input, and
/// the bound keeps both simd-json's stack and our recursive fold small.
pub(crate) const MAX_DEPTH: usize = 64;

/// One JSON value; strings borrow from the parser's buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// An integer above i64::MAX that fits in u64.
    UInt(u64),
    /// Any other number (fractions, exponents, integers beyond 64 bits).
    Float(f64),
    /// A string (already unescaped).
    Str(&'a str),
    /// An array, in order.
    Array(Vec<Json<'a>>),
    /// An object's members in document order, duplicates kept.
    Object(Vec<(&'a str, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The member `key` of an object (the first one when duplicated).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The JSON type name used in `invalid_type` error details.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Int(_) | Json::UInt(_) | Json::Float(_) => "number",
            Json::Str(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// The first member name of this object (not of nested ones) that appears twice, in
    /// document order of the second occurrence; `None` for non-objects.
    ///
    /// Linear in the member count: a client chooses how many members an object has (up to
    /// `max_message_bytes`), so comparing each member with all earlier ones would let one
    /// message cost O(n²) — 87 000 keys took tens of seconds of a shard's time. Small objects
    /// (every real request) keep the allocation-free pairwise scan; larger ones use a hash set
    /// with std's randomly keyed SipHash, so chosen keys cannot force collisions either.
    pub fn duplicate_member(&self) -> Option<&'a str> {
        let Json::Object(members) = self else {
            return None;
        };
        if members.len() <= SMALL_OBJECT {
            return members.iter().enumerate().find_map(|(i, (k, _))| {
                members[..i]
                    .iter()
                    .any(|(earlier, _)| earlier == k)
                    .then_some(*k)
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        members
            .iter()
            .find_map(|(k, _)| (!seen.insert(*k)).then_some(*k))
    }

    /// The dotted path of the first member name that appears twice in one object, searching
    /// nested objects too (arrays contribute their index: `a.0.b`). Linear in the size of the
    /// tree: each object's own check is linear ([`Json::duplicate_member`]) and each node is
    /// visited once; a path string is built only on the way out of a hit.
    pub fn first_duplicate(&self) -> Option<String> {
        let mut path = Vec::new();
        self.duplicate_path(&mut path).then(|| path.join("."))
    }

    /// Pushes the path to the first duplicate (innermost segment last) and says whether there
    /// was one. The segments are joined once at the end: formatting the path at every level on
    /// the way out would copy long keys once per level of nesting.
    fn duplicate_path(&self, path: &mut Vec<String>) -> bool {
        let found = match self {
            Json::Object(members) => {
                if let Some(k) = self.duplicate_member() {
                    path.push(k.to_string());
                    return true;
                }
                members.iter().find_map(|(k, v)| {
                    let at = path.len();
                    v.duplicate_path(path).then_some((at, (*k).to_string()))
                })
            }
            Json::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                let at = path.len();
                v.duplicate_path(path).then_some((at, i.to_string()))
            }),
            _ => None,
        };
        match found {
            Some((at, segment)) => {
                path.insert(at, segment);
                true
            }
            None => false,
        }
    }
}

/// Objects up to this many members are checked for duplicates pairwise (at most 120
/// comparisons, no allocation); larger ones through a hash set.
const SMALL_OBJECT: usize = 16;

/// The input was not JSON we accept (syntax, depth or encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError;

/// A reusable parser: keeps simd-json's scratch buffers, its tape allocation and a private,
/// padded copy of the input (simd-json unescapes strings in place, so it needs a mutable buffer;
/// the WebSocket payload is shared). After the first few messages, parsing allocates only the
/// tree's object and array vectors.
pub struct Parser {
    input: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: simd_json::Tape<'static>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser with empty scratch buffers (they grow to the largest message seen).
    pub fn new() -> Self {
        Parser {
            input: Vec::new(),
            buffers: simd_json::Buffers::with_max_depth(0, MAX_DEPTH),
            tape: simd_json::Tape::null(),
        }
    }

    /// Parses `text` into a tree borrowing from this parser.
    pub fn parse(&mut self, text: &[u8]) -> Result<Json<'_>, ParseError> {
        let len = text.len();
        self.input.clear();
        self.input.extend_from_slice(text);
        // The padding lets simd-json read whole SIMD blocks past the end without its own copy.
        self.input.resize(len + simd_json::INPUT_PADDING, 0);
        let mut tape = std::mem::replace(&mut self.tape, simd_json::Tape::null()).reset();
        let value =
            match simd_json::fill_tape_padded(&mut self.input, len, &mut self.buffers, &mut tape) {
                Ok(()) => {
                    let mut pos = 0;
                    fold(&tape.0, &mut pos, 0).and_then(|v| {
                        if pos == tape.0.len() {
                            Ok(v)
                        } else {
                            Err(ParseError)
                        }
                    })
                }
                Err(_) => Err(ParseError),
            };
        // Keep the tape's allocation for the next message.
        self.tape = tape.reset();
        value
    }
}

/// Folds the node at `*pos` (and its children) into a `Json`, advancing `*pos` past them.
fn fold<'a>(nodes: &[Node<'a>], pos: &mut usize, depth: usize) -> Result<Json<'a>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError);
    }
    let node = nodes.get(*pos).ok_or(ParseError)?;
    *pos += 1;
    Ok(match node {
        Node::String(s) => Json::Str(s),
        Node::Static(StaticNode::Null) => Json::Null,
        Node::Static(StaticNode::Bool(b)) => Json::Bool(*b),
        Node::Static(StaticNode::I64(i)) => Json::Int(*i),
        Node::Static(StaticNode::U64(u)) => match i64::try_from(*u) {
            Ok(i) => Json::Int(i),
            Err(_) => Json::UInt(*u),
        },
        Node::Static(StaticNode::F64(f)) => Json::Float(*f),
        Node::Array { len, .. } => {
            let mut items = Vec::with_capacity(*len);
            for _ in 0..*len {
                items.push(fold(nodes, pos, depth + 1)?);
            }
            Json::Array(items)
        }
        Node::Object { len, .. } => {
            let mut members = Vec::with_capacity(*len);
            for _ in 0..*len {
                let key = match nodes.get(*pos) {
                    Some(Node::String(k)) => *k,
                    _ => return Err(ParseError),
                };
                *pos += 1;
                members.push((key, fold(nodes, pos, depth + 1)?));
            }
            Json::Object(members)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<String, ParseError> {
        let mut p = Parser::new();
        p.parse(s.as_bytes()).map(|v| format!("{v:?}"))
    }

    #[test]
    fn folds_nested_values_in_order() {
        let mut p = Parser::new();
        let v = p
            .parse(br#"{"b":[1,-2,3.5,"x\n"],"a":{"c":null,"d":true}}"#)
            .unwrap();
        let Json::Object(m) = &v else {
            panic!("not an object")
        };
        assert_eq!(m[0].0, "b");
        assert_eq!(
            m[0].1,
            Json::Array(vec![
                Json::Int(1),
                Json::Int(-2),
                Json::Float(3.5),
                Json::Str("x\n")
            ])
        );
        assert_eq!(v.get("a").and_then(|a| a.get("d")), Some(&Json::Bool(true)));
    }

    #[test]
    fn big_integers_keep_their_value() {
        let mut p = Parser::new();
        assert_eq!(
            p.parse(b"18446744073709551615").unwrap(),
            Json::UInt(u64::MAX)
        );
        assert_eq!(
            p.parse(b"-9223372036854775808").unwrap(),
            Json::Int(i64::MIN)
        );
        assert!(matches!(
            p.parse(b"123456789012345678901234567890").unwrap(),
            Json::Float(_)
        ));
    }

    #[test]
    fn duplicates_are_visible_with_their_path() {
        let mut p = Parser::new();
        let v = p.parse(br#"{"a":1,"b":{"x":1,"x":2}}"#).unwrap();
        assert_eq!(v.first_duplicate().as_deref(), Some("b.x"));
        let v = p.parse(br#"{"id":1,"id":2}"#).unwrap();
        assert_eq!(v.first_duplicate().as_deref(), Some("id"));
        assert_eq!(v.duplicate_member(), Some("id"));
        // Only this object's own members count for duplicate_member.
        let v = p.parse(br#"{"a":{"x":1,"x":2}}"#).unwrap();
        assert_eq!(v.duplicate_member(), None);
    }

    #[test]
    fn duplicates_in_large_objects_use_the_same_rules() {
        // Above SMALL_OBJECT the hash-set path runs; it must find the same (second) occurrence.
        let mut text = String::from("{");
        for i in 0..1000 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str(r#""k500":0,"k7":0}"#);
        let mut p = Parser::new();
        let v = p.parse(text.as_bytes()).unwrap();
        assert_eq!(v.duplicate_member(), Some("k500"));
        let unique = format!("{}\"z\":0}}", &text[..text.find(r#""k500":0"#).unwrap()]);
        let v = p.parse(unique.as_bytes()).unwrap();
        assert_eq!(v.duplicate_member(), None);
    }

    #[test]
    fn rejects_bad_input_and_deep_nesting() {
        assert!(parse("{").is_err());
        assert!(parse("").is_err());
        assert!(parse("[1,]").is_err());
        assert!(parse(&"[".repeat(100)).is_err());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
    }
}

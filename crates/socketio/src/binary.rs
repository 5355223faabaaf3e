//! Binary payloads in typed arguments: [`Binary`] serializes as a Socket.IO placeholder
//! (`{"_placeholder":true,"num":n}`) and collects the bytes as an attachment, and deserializes a
//! placeholder back into the attachment it names. Outside packet encoding/decoding it has no form.

use bytes::Bytes;
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;

/// Bytes sent or received as a binary attachment, usable anywhere in a serde type.
///
/// ```
/// use socketio::Binary;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Upload { name: String, file: Binary }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binary(pub Bytes);

impl From<Vec<u8>> for Binary {
    fn from(v: Vec<u8>) -> Self {
        Binary(Bytes::from(v))
    }
}

impl From<&'static [u8]> for Binary {
    fn from(v: &'static [u8]) -> Self {
        Binary(Bytes::from_static(v))
    }
}

thread_local! {
    static OUTGOING: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
}

/// Runs `f` while collecting the attachments of every [`Binary`] it serializes.
pub(crate) fn collect_attachments<R>(f: impl FnOnce() -> R) -> (R, Vec<Bytes>) {
    let previous = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let result = f();
    let collected = OUTGOING.with(|o| std::mem::replace(&mut *o.borrow_mut(), previous));
    (result, collected.unwrap_or_default())
}

/// Runs `f` with `attachments` available to every [`Binary`] it deserializes.
pub(crate) fn with_attachments<R>(attachments: &[Bytes], f: impl FnOnce() -> R) -> R {
    let previous = INCOMING.with(|i| i.borrow_mut().replace(attachments.to_vec()));
    let result = f();
    INCOMING.with(|i| *i.borrow_mut() = previous);
    result
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let num = OUTGOING.with(|o| {
            o.borrow_mut().as_mut().map(|list| {
                list.push(self.0.clone());
                list.len() - 1
            })
        });
        let Some(num) = num else {
            return Err(S::Error::custom(
                "Binary can only be serialized as a Socket.IO argument",
            ));
        };
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("_placeholder", &true)?;
        map.serialize_entry("num", &num)?;
        map.end()
    }
}

#[derive(Deserialize)]
struct Placeholder {
    #[serde(rename = "_placeholder")]
    placeholder: bool,
    num: usize,
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let p = Placeholder::deserialize(deserializer)?;
        if !p.placeholder {
            return Err(D::Error::custom("expected a binary placeholder"));
        }
        INCOMING
            .with(|i| {
                i.borrow()
                    .as_ref()
                    .and_then(|list| list.get(p.num).cloned())
            })
            .map(Binary)
            .ok_or_else(|| D::Error::custom(format!("no binary attachment number {}", p.num)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_placeholders() {
        let value = (1, Binary::from(&b"ab"[..]), vec![Binary::from(&b"c"[..])]);
        let (json, attachments) = collect_attachments(|| serde_json::to_string(&value));
        let json = json.expect("serializes");
        assert_eq!(
            json,
            r#"[1,{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]"#
        );
        assert_eq!(attachments.len(), 2);
        let back: (i32, Binary, Vec<Binary>) =
            with_attachments(&attachments, || serde_json::from_str(&json)).expect("deserializes");
        assert_eq!(back, value);
        let missing: Result<Binary, _> = with_attachments(&[], || {
            serde_json::from_str(r#"{"_placeholder":true,"num":3}"#)
        });
        assert!(missing.is_err());
        assert!(serde_json::to_string(&Binary::default()).is_err());
    }
}

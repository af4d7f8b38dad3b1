//! Finding the position of a field path (`sampling.temperature`) in YAML source text.

use super::{Location, MAX_FILE_BYTES, too_deep};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// `examples[2].user` -> [Key(examples), Index(2), Key(user)].
pub(super) fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Segment::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(close) = inner.find(']') else { break };
                if let Ok(n) = inner[..close].parse() {
                    out.push(Segment::Index(n));
                }
                rest = &inner[close + 1..];
            }
        } else {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

const FOUND: &str = "\u{0}parlor-locate-found";

/// Position of the value at `path` (`sampling.temperature`, `examples[1].user`) in `text`, or
/// of its closest existing parent; `None` if the text does not parse or nothing matches.
///
/// It walks the document with serde_yaml itself and stops with a marker error at the target:
/// serde_yaml stamps the position of the value on that error, so flow style, quoting, anchors
/// and comments are all handled the way the parser sees them.
pub fn locate(text: &str, path: &str) -> Option<Location> {
    let segs = segments(path);
    (0..=segs.len())
        .rev()
        .find_map(|n| locate_exact(text, &segs[..n]))
}

fn locate_exact(text: &str, segs: &[Segment]) -> Option<Location> {
    if text.len() > MAX_FILE_BYTES || too_deep(text).is_some() {
        return None;
    }
    let de = serde_yaml::Deserializer::from_str(text);
    match (Locator { path: segs }).deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        }),
        Err(_) => None,
    }
}

struct Locator<'p> {
    path: &'p [Segment],
}

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Locator<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.path.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let matches = match (&self.path[0], &key) {
                (Segment::Key(k), serde_yaml::Value::String(s)) => k == s,
                (Segment::Key(k), other) => serde_yaml::to_string(other)
                    .map(|s| s.trim() == k)
                    .unwrap_or(false),
                (Segment::Index(_), _) => false,
            };
            if matches {
                return map.next_value_seed(Locator {
                    path: &self.path[1..],
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let target = match self.path.first() {
            None => return Err(de::Error::custom(FOUND)),
            Some(Segment::Index(n)) => Some(*n),
            Some(Segment::Key(_)) => None,
        };
        let mut i = 0;
        loop {
            if Some(i) == target {
                return seq
                    .next_element_seed(Locator {
                        path: &self.path[1..],
                    })
                    .map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        if self.path.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        let (_, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<IgnoredAny>(variant).map(|_| ())
    }
}

impl Locator<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

//! `schemas/fix44-veloz.xml` against [`super::MESSAGES`] and [`crate::tags::ALL`]: a small
//! hand-written reader (elements, attributes, comments; no entities or CDATA, which the file
//! does not use) and exact comparisons.

use super::*;
use std::collections::BTreeMap;

#[derive(Debug)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Element>,
}

impl Element {
    fn attr(&self, k: &str) -> &str {
        self.attrs
            .get(k)
            .unwrap_or_else(|| panic!("<{}> has no {k}", self.name))
    }
    fn child(&self, name: &str) -> &Element {
        let mut it = self.children.iter().filter(|c| c.name == name);
        let c = it
            .next()
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name));
        assert!(it.next().is_none(), "<{}> has two <{name}>", self.name);
        c
    }
}

/// Parse the whole document into its root element; panics (failing the test) on unbalanced
/// or malformed tags.
fn read_xml(text: &str) -> Element {
    let mut stack: Vec<Element> = vec![Element {
        name: String::new(),
        attrs: BTreeMap::new(),
        children: vec![],
    }];
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        assert!(
            rest[..open].trim().is_empty(),
            "text outside tags: {:?}",
            &rest[..open]
        );
        rest = &rest[open..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").expect("unterminated comment");
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").expect("unterminated declaration");
            rest = &r[end + 2..];
            continue;
        }
        let close = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let done = stack.pop().expect("stack");
            assert_eq!(
                done.name,
                name.trim(),
                "</{}> closes <{}>",
                name.trim(),
                done.name
            );
            stack
                .last_mut()
                .expect("a closing tag with nothing open")
                .children
                .push(done);
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/').trim();
        let (name, mut attrs_text) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad element name {name:?}"
        );
        let mut attrs = BTreeMap::new();
        loop {
            attrs_text = attrs_text.trim_start();
            if attrs_text.is_empty() {
                break;
            }
            let (k, v) = attrs_text
                .split_once('=')
                .unwrap_or_else(|| panic!("bad attribute in <{tag}>"));
            let v = v.trim_start();
            let quote = v.chars().next().expect("attribute value");
            assert!(
                quote == '\'' || quote == '"',
                "unquoted attribute in <{tag}>"
            );
            let end = v[1..].find(quote).expect("unterminated attribute") + 1;
            let value = &v[1..end];
            assert!(
                !value.contains(['<', '&']),
                "markup in an attribute of <{tag}>"
            );
            assert!(
                attrs
                    .insert(k.trim().to_string(), value.to_string())
                    .is_none(),
                "repeated attribute {k} in <{tag}>"
            );
            attrs_text = &v[end + 1..];
        }
        let el = Element {
            name: name.to_string(),
            attrs,
            children: vec![],
        };
        if self_closing {
            stack.last_mut().expect("stack").children.push(el);
        } else {
            stack.push(el);
        }
    }
    assert!(rest.trim().is_empty(), "text after the last tag");
    assert_eq!(
        stack.len(),
        1,
        "unclosed <{}>",
        stack.last().map_or("", |e| e.name.as_str())
    );
    let mut doc = stack.pop().expect("document");
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().expect("root")
}

fn load() -> Element {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/fix44-veloz.xml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    read_xml(&text)
}

/// (name, required) of the `<field>` children of `el`; nothing else may be there.
fn field_refs(el: &Element) -> Vec<(String, bool)> {
    el.children
        .iter()
        .map(|f| {
            assert_eq!(
                f.name, "field",
                "<{}> holds a <{}>: no groups or components in Veloz's subset",
                el.name, f.name
            );
            let req = match f.attr("required") {
                "Y" => true,
                "N" => false,
                other => panic!("required={other:?}"),
            };
            (f.attr("name").to_string(), req)
        })
        .collect()
}

fn named(list: &[(u32, bool)]) -> Vec<(String, bool)> {
    list.iter()
        .map(|&(t, r)| (name(t).to_string(), r))
        .collect()
}

#[test]
fn the_reader_rejects_broken_xml() {
    for bad in [
        "<a><b></a>",
        "<a>",
        "<a x='1></a>",
        "<a/><b/>",
        "<a>text</a>",
        "</a>",
    ] {
        assert!(
            std::panic::catch_unwind(|| read_xml(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
    let ok = read_xml("<?xml version='1.0'?><!-- c --><a k=\"v\"><b/><c x='1' y='2'></c></a>");
    assert_eq!((ok.children.len(), ok.child("c").attr("y")), (2, "2"));
}

#[test]
fn the_root_is_fix_4_4() {
    let fix = load();
    assert_eq!(fix.name, "fix");
    for (k, v) in [
        ("type", "FIX"),
        ("major", "4"),
        ("minor", "4"),
        ("servicepack", "0"),
    ] {
        assert_eq!(fix.attr(k), v);
    }
    let order: Vec<&str> = fix.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        order,
        ["header", "messages", "trailer", "components", "fields"]
    );
    assert!(fix.child("components").children.is_empty());
}

#[test]
fn fields_match_the_tags_module() {
    let fix = load();
    let defined: Vec<(u32, String, String)> = fix
        .child("fields")
        .children
        .iter()
        .map(|f| {
            (
                f.attr("number").parse().expect("number"),
                f.attr("name").to_string(),
                f.attr("type").to_string(),
            )
        })
        .collect();
    let want: Vec<(u32, String, String)> = ALL
        .iter()
        .map(|&(t, n, ty)| (t, n.to_string(), ty.to_string()))
        .collect();
    assert_eq!(
        defined, want,
        "the XML's <fields> (sorted by number) and tags::ALL differ"
    );
    for f in &fix.child("fields").children {
        for v in &f.children {
            assert_eq!(v.name, "value");
            assert!(!v.attr("enum").is_empty() && !v.attr("description").is_empty());
        }
    }
}

#[test]
fn header_trailer_and_messages_match_the_table() {
    let fix = load();
    assert_eq!(field_refs(fix.child("header")), named(HEADER));
    assert_eq!(field_refs(fix.child("trailer")), named(TRAILER));
    let messages = &fix.child("messages").children;
    assert_eq!(messages.len(), MESSAGES.len());
    for (el, def) in messages.iter().zip(MESSAGES) {
        assert_eq!(el.name, "message");
        assert_eq!(
            (el.attr("name"), el.attr("msgtype")),
            (def.name, def.msg_type)
        );
        assert_eq!(
            el.attr("msgcat"),
            if def.admin { "admin" } else { "app" },
            "{}",
            def.name
        );
        assert_eq!(field_refs(el), named(def.fields), "{}", def.name);
    }
    // Every tag a message uses is defined, and every defined tag is used.
    let mut used: Vec<u32> = HEADER
        .iter()
        .chain(TRAILER)
        .chain(MESSAGES.iter().flat_map(|m| m.fields))
        .map(|f| f.0)
        .collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used, ALL.iter().map(|t| t.0).collect::<Vec<_>>());
}

#[test]
fn enums_are_the_subset_veloz_uses() {
    let fix = load();
    let values = |tag: u32| -> Vec<String> {
        let f = fix
            .child("fields")
            .children
            .iter()
            .find(|f| f.attr("number") == tag.to_string())
            .expect("field");
        f.children
            .iter()
            .map(|v| v.attr("enum").to_string())
            .collect()
    };
    assert_eq!(values(SIDE), ["1", "2"]);
    assert_eq!(values(ORD_TYPE), ["1", "2"]);
    assert_eq!(values(TIME_IN_FORCE), ["0", "1", "3", "4"]);
    assert_eq!(values(EXEC_TYPE), ["0", "4", "5", "8", "F", "I"]);
    assert_eq!(values(ORD_STATUS), ["0", "1", "2", "4", "8"]);
    assert_eq!(values(EXEC_INST), ["6"]);
    assert_eq!(
        values(SELF_TRADE_PREVENTION_INSTRUCTION),
        ["0", "1", "2", "3"]
    );
    assert_eq!(values(ENCRYPT_METHOD), ["0"]);
    assert_eq!(values(MASS_CANCEL_REQUEST_TYPE), ["1", "7"]);
    assert_eq!(values(MASS_CANCEL_RESPONSE), ["0", "1", "7"]);
}

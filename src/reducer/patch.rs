//! `reducers.patch()`: the state is a JSON document, changed by RFC 6902 JSON Patch.
//!
//! An action `{ type: 'PATCH', ops: [...] }` applies its operations atomically (the
//! `json-patch` crate undoes the ones already applied when a later one fails), so a
//! failed patch changes nothing, on every replica alike. Other action types leave the
//! state alone, as a Redux reducer does with actions that are not its own.

use super::Reducer;
use serde::Deserialize;
use serde_json::Value;

/// The action type that carries a patch.
pub const PATCH: &str = "PATCH";

pub struct PatchReducer {
    doc: Value,
}

#[derive(Deserialize)]
struct Action<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    ops: Option<json_patch::Patch>,
}

impl PatchReducer {
    pub fn new(initial: Value) -> PatchReducer {
        PatchReducer { doc: initial }
    }
}

impl Reducer for PatchReducer {
    fn apply(&mut self, action: &[u8]) -> Result<bool, String> {
        let a: Action =
            serde_json::from_slice(action).map_err(|e| format!("invalid PATCH action: {e}"))?;
        if a.ty != PATCH {
            return Ok(false);
        }
        let ops = a
            .ops
            .ok_or("a PATCH action needs ops: [...] (RFC 6902 operations)")?;
        json_patch::patch(&mut self.doc, &ops).map_err(|e| format!("patch refused: {e}"))?;
        Ok(true)
    }

    fn state_json(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&self.doc).map_err(|e| e.to_string())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.doc = serde_json::from_slice(state).map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Result<Value, String> {
        let mut r = PatchReducer::new(doc.clone());
        let action = json!({ "type": "PATCH", "ops": ops }).to_string();
        let res = r.apply(action.as_bytes());
        if res.is_err() {
            assert_eq!(r.doc, doc, "a failed patch changes nothing");
        }
        res.map(|_| r.doc)
    }

    /// RFC 6902, Appendix A: every example, with the result the RFC gives.
    #[test]
    fn rfc6902_appendix_a() {
        let ok = |doc: Value, ops: Value, want: Value| assert_eq!(run(doc, ops).unwrap(), want);
        let err = |doc: Value, ops: Value| assert!(run(doc, ops).is_err());
        // A.1 Adding an Object Member
        ok(
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz","value":"qux"}]),
            json!({"baz":"qux","foo":"bar"}),
        );
        // A.2 Adding an Array Element
        ok(
            json!({"foo":["bar","baz"]}),
            json!([{"op":"add","path":"/foo/1","value":"qux"}]),
            json!({"foo":["bar","qux","baz"]}),
        );
        // A.3 Removing an Object Member
        ok(
            json!({"baz":"qux","foo":"bar"}),
            json!([{"op":"remove","path":"/baz"}]),
            json!({"foo":"bar"}),
        );
        // A.4 Removing an Array Element
        ok(
            json!({"foo":["bar","qux","baz"]}),
            json!([{"op":"remove","path":"/foo/1"}]),
            json!({"foo":["bar","baz"]}),
        );
        // A.5 Replacing a Value
        ok(
            json!({"baz":"qux","foo":"bar"}),
            json!([{"op":"replace","path":"/baz","value":"boo"}]),
            json!({"baz":"boo","foo":"bar"}),
        );
        // A.6 Moving a Value
        ok(
            json!({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}),
            json!([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]),
            json!({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}),
        );
        // A.7 Moving an Array Element
        ok(
            json!({"foo":["all","grass","cows","eat"]}),
            json!([{"op":"move","from":"/foo/1","path":"/foo/3"}]),
            json!({"foo":["all","cows","eat","grass"]}),
        );
        // A.8 Testing a Value: Success
        ok(
            json!({"baz":"qux","foo":["a",2,"c"]}),
            json!([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]),
            json!({"baz":"qux","foo":["a",2,"c"]}),
        );
        // A.9 Testing a Value: Error
        err(
            json!({"baz":"qux"}),
            json!([{"op":"test","path":"/baz","value":"bar"}]),
        );
        // A.10 Adding a Nested Member Object
        ok(
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/child","value":{"grandchild":{}}}]),
            json!({"foo":"bar","child":{"grandchild":{}}}),
        );
        // A.11 Ignoring Unrecognized Elements
        ok(
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz","value":"qux","xyz":123}]),
            json!({"foo":"bar","baz":"qux"}),
        );
        // A.12 Adding to a Nonexistent Target
        err(
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz/bat","value":"qux"}]),
        );
        // A.14 ~ Escape Ordering
        ok(
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":10}]),
            json!({"/":9,"~1":10}),
        );
        // A.15 Comparing Strings and Numbers
        err(
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":"10"}]),
        );
        // A.16 Adding an Array Value
        ok(
            json!({"foo":["bar"]}),
            json!([{"op":"add","path":"/foo/-","value":["abc","def"]}]),
            json!({"foo":["bar",["abc","def"]]}),
        );
        // copy (section 4.5)
        ok(
            json!({"a":{"b":1}}),
            json!([{"op":"copy","from":"/a","path":"/c"}]),
            json!({"a":{"b":1},"c":{"b":1}}),
        );
    }

    /// A.13 Invalid JSON Patch Document: an operation with two `op` members is refused
    /// as a whole (the text, since a JSON value cannot hold a duplicate key).
    #[test]
    fn rfc6902_a13_duplicate_op_is_refused() {
        let mut r = PatchReducer::new(json!({"foo":"bar"}));
        let action =
            br#"{"type":"PATCH","ops":[{"op":"add","path":"/baz","value":"qux","op":"remove"}]}"#;
        assert!(r.apply(action).is_err());
        assert_eq!(r.doc, json!({"foo":"bar"}));
    }

    #[test]
    fn a_failing_operation_undoes_the_ones_before_it() {
        let doc = json!({"n":1,"list":[1,2]});
        let ops = json!([
            {"op":"replace","path":"/n","value":2},
            {"op":"add","path":"/list/-","value":3},
            {"op":"remove","path":"/list/0"},
            {"op":"move","from":"/n","path":"/m"},
            {"op":"test","path":"/m","value":99}
        ]);
        assert!(run(doc, ops).is_err());
    }

    #[test]
    fn other_actions_and_malformed_patches() {
        let mut r = PatchReducer::new(json!({}));
        r.apply(br#"{"type":"@@redux/INIT"}"#).unwrap();
        assert!(r.apply(br#"{"type":"PATCH"}"#).is_err());
        assert!(r
            .apply(br#"{"type":"PATCH","ops":[{"op":"explode","path":"/"}]}"#)
            .is_err());
        assert!(r.apply(br#"{"type":"PATCH","ops":{"op":"add"}}"#).is_err());
        assert!(r.apply(b"not json").is_err());
        assert_eq!(r.doc, json!({}));
    }
}

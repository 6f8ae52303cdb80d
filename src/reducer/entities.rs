//! `reducers.entities()`: Redux Toolkit's `createEntityAdapter` state and operations,
//! in the engine.
//!
//! The state is RTK's `{ ids, entities }` (plus any other fields of the initial state,
//! left alone), and the actions are what a slice built on the adapter dispatches:
//! `{ type: '<name>/addOne', payload }` for each of `addOne`, `addMany`, `setOne`,
//! `setMany`, `setAll`, `upsertOne`, `upsertMany`, `updateOne`, `updateMany`,
//! `removeOne`, `removeMany`, `removeAll`, with RTK's payloads and semantics (RTK 2's
//! unsorted adapter). An entity's id is its `id` field (or the configured key); ids
//! keep their JSON type (number or string), `entities` is keyed by the id as JS would
//! turn it into a property name. Other action types leave the state alone.
//!
//! Each action is checked whole before it changes anything: an entity without an id,
//! or a payload of the wrong shape, refuses the action, and the state stays as it was.

use super::Reducer;
use serde_json::{Map, Value};

pub const OPERATIONS: [&str; 12] = [
    "addOne",
    "addMany",
    "setOne",
    "setMany",
    "setAll",
    "upsertOne",
    "upsertMany",
    "updateOne",
    "updateMany",
    "removeOne",
    "removeMany",
    "removeAll",
];

pub struct EntitiesReducer {
    /// Action types are `<prefix>/<operation>`.
    prefix: String,
    id_key: String,
    ids: Vec<Value>,
    entities: Map<String, Value>,
    /// The state's other fields (RTK's `getInitialState(extra)`).
    extra: Map<String, Value>,
}

/// An id as JS turns it into a property name (`String(id)`).
fn key_of(id: &Value) -> Result<String, String> {
    match id {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "an entity id must be a string or a number, got {other}"
        )),
    }
}

/// Whether JS orders this property name before the others (an array index).
fn is_index(k: &str) -> Option<u32> {
    if k.is_empty() || (k.len() > 1 && k.starts_with('0')) || !k.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    k.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

type Entity = (String, Value);

impl EntitiesReducer {
    /// `initial`: `{ ids, entities, ...extra }` or null for an empty collection.
    pub fn new(prefix: String, id_key: String, initial: Value) -> Result<EntitiesReducer, String> {
        let mut r = EntitiesReducer {
            prefix,
            id_key,
            ids: Vec::new(),
            entities: Map::new(),
            extra: Map::new(),
        };
        if !initial.is_null() {
            r.set_state(initial)?;
        }
        Ok(r)
    }

    fn set_state(&mut self, state: Value) -> Result<(), String> {
        let Value::Object(mut m) = state else {
            return Err("an entity state must be an object { ids, entities }".into());
        };
        let ids = match m.remove("ids") {
            Some(Value::Array(a)) => a,
            None => Vec::new(),
            Some(_) => return Err("ids must be an array".into()),
        };
        let entities = match m.remove("entities") {
            Some(Value::Object(e)) => e,
            None => Map::new(),
            Some(_) => return Err("entities must be an object keyed by id".into()),
        };
        for id in &ids {
            let k = key_of(id)?;
            if !entities.contains_key(&k) {
                return Err(format!("ids lists {k} but entities has no such entity"));
            }
        }
        self.ids = ids;
        self.entities = entities;
        self.extra = m;
        Ok(())
    }

    fn entity(&self, v: Value) -> Result<Entity, String> {
        if !v.is_object() {
            return Err(format!("an entity must be an object, got {v}"));
        }
        let id = v
            .get(&self.id_key)
            .ok_or_else(|| format!("an entity has no {:?} field: {v}", self.id_key))?;
        Ok((key_of(id)?, v))
    }

    /// An array of entities, or a record of them (RTK's `ensureEntitiesArray`).
    fn entities_of(&self, v: Value) -> Result<Vec<Entity>, String> {
        let list = match v {
            Value::Array(a) => a,
            Value::Object(m) => m.into_iter().map(|(_, e)| e).collect(),
            other => {
                return Err(format!(
                    "expected an array (or a record) of entities, got {other}"
                ))
            }
        };
        list.into_iter().map(|e| self.entity(e)).collect()
    }

    fn add(&mut self, (k, e): Entity) {
        if self.entities.contains_key(&k) {
            return;
        }
        self.ids.push(e[&self.id_key].clone());
        self.entities.insert(k, e);
    }

    fn set(&mut self, (k, e): Entity) {
        if !self.entities.contains_key(&k) {
            self.ids.push(e[&self.id_key].clone());
        }
        self.entities.insert(k, e);
    }

    fn remove_many(&mut self, keys: &[String]) {
        let mut removed = false;
        for k in keys {
            removed |= self.entities.remove(k).is_some();
        }
        if removed {
            let entities = &self.entities;
            self.ids
                .retain(|id| key_of(id).is_ok_and(|k| entities.contains_key(&k)));
        }
    }

    /// RTK's `updateManyMutably`: changes to one id are merged first; an update whose
    /// changes carry a new id moves the entity to that key, and then `ids` is rebuilt in
    /// the order JS lists the keys of `entities` (array indexes ascending first).
    fn update_many(&mut self, updates: Vec<(String, Map<String, Value>)>) {
        let mut merged: Vec<(String, Map<String, Value>)> = Vec::new();
        for (k, changes) in updates {
            if !self.entities.contains_key(&k) {
                continue;
            }
            match merged.iter_mut().find(|(m, _)| *m == k) {
                Some((_, c)) => c.extend(changes),
                None => merged.push((k, changes)),
            }
        }
        let mut order: Option<Vec<String>> = None;
        for (k, changes) in merged {
            let Some(Value::Object(original)) = self.entities.get(&k) else {
                continue;
            };
            let mut updated = original.clone();
            updated.extend(changes);
            let Ok(new_key) = updated.get(&self.id_key).map_or(Ok(k.clone()), key_of) else {
                continue;
            };
            if new_key != k {
                let order = order.get_or_insert_with(|| {
                    self.ids.iter().filter_map(|i| key_of(i).ok()).collect()
                });
                order.retain(|o| *o != k);
                if !self.entities.contains_key(&new_key) {
                    order.push(new_key.clone());
                }
                self.entities.remove(&k);
            }
            self.entities.insert(new_key, Value::Object(updated));
        }
        if let Some(order) = order {
            let (mut index, named): (Vec<String>, Vec<String>) =
                order.into_iter().partition(|k| is_index(k).is_some());
            index.sort_by_key(|k| is_index(k));
            self.ids = index
                .iter()
                .chain(&named)
                .filter_map(|k| {
                    self.entities
                        .get(k)
                        .and_then(|e| e.get(&self.id_key))
                        .cloned()
                })
                .collect();
        }
    }

    fn update_of(&self, v: Value) -> Result<(String, Map<String, Value>), String> {
        let Value::Object(mut m) = v else {
            return Err(format!("an update must be {{ id, changes }}, got {v}"));
        };
        let id = m.remove("id").ok_or("an update needs an id")?;
        let changes = match m.remove("changes") {
            Some(Value::Object(c)) => c,
            _ => return Err("an update needs changes: { ... }".into()),
        };
        Ok((key_of(&id)?, changes))
    }

    fn operate(&mut self, op: &str, payload: Value) -> Result<(), String> {
        match op {
            "addOne" => {
                let e = self.entity(payload)?;
                self.add(e);
            }
            "addMany" => {
                for e in self.entities_of(payload)? {
                    self.add(e);
                }
            }
            "setOne" => {
                let e = self.entity(payload)?;
                self.set(e);
            }
            "setMany" => {
                for e in self.entities_of(payload)? {
                    self.set(e);
                }
            }
            "setAll" => {
                let list = self.entities_of(payload)?;
                self.ids.clear();
                self.entities.clear();
                for e in list {
                    self.add(e);
                }
            }
            "upsertOne" | "upsertMany" => {
                let list = if op == "upsertOne" {
                    vec![self.entity(payload)?]
                } else {
                    self.entities_of(payload)?
                };
                // RTK's splitAddedUpdatedEntities: present ones are shallow-merged
                // updates, the others are added after them.
                let (updated, added): (Vec<Entity>, Vec<Entity>) = list
                    .into_iter()
                    .partition(|(k, _)| self.entities.contains_key(k));
                self.update_many(
                    updated
                        .into_iter()
                        .map(|(k, e)| match e {
                            Value::Object(m) => (k, m),
                            _ => unreachable!("checked by entity()"),
                        })
                        .collect(),
                );
                for e in added {
                    self.add(e);
                }
            }
            "updateOne" => {
                let u = self.update_of(payload)?;
                self.update_many(vec![u]);
            }
            "updateMany" => {
                let Value::Array(list) = payload else {
                    return Err("updateMany needs an array of { id, changes }".into());
                };
                let updates = list
                    .into_iter()
                    .map(|u| self.update_of(u))
                    .collect::<Result<_, _>>()?;
                self.update_many(updates);
            }
            "removeOne" => {
                let k = key_of(&payload)?;
                self.remove_many(&[k]);
            }
            "removeMany" => {
                let list = match payload {
                    Value::Array(a) => a,
                    other => return Err(format!("removeMany needs an array of ids, got {other}")),
                };
                let keys = list.iter().map(key_of).collect::<Result<Vec<_>, _>>()?;
                self.remove_many(&keys);
            }
            "removeAll" => {
                self.ids.clear();
                self.entities.clear();
            }
            _ => {}
        }
        Ok(())
    }
}

impl Reducer for EntitiesReducer {
    fn apply(&mut self, action: &[u8]) -> Result<bool, String> {
        #[derive(serde::Deserialize)]
        struct Action<'a> {
            #[serde(rename = "type", borrow)]
            ty: std::borrow::Cow<'a, str>,
            #[serde(default)]
            payload: Value,
        }
        let a: Action =
            serde_json::from_slice(action).map_err(|e| format!("invalid action: {e}"))?;
        let Some(op) =
            a.ty.strip_prefix(self.prefix.as_str())
                .and_then(|t| t.strip_prefix('/'))
        else {
            return Ok(false);
        };
        if !OPERATIONS.contains(&op) {
            return Ok(false);
        }
        let op = op.to_string();
        self.operate(&op, a.payload)
            .map_err(|e| format!("{}: {e}", a.ty))?;
        Ok(true)
    }

    fn state_json(&self) -> Result<Vec<u8>, String> {
        #[derive(serde::Serialize)]
        struct State<'a> {
            ids: &'a [Value],
            entities: &'a Map<String, Value>,
            #[serde(flatten)]
            extra: &'a Map<String, Value>,
        }
        serde_json::to_vec(&State {
            ids: &self.ids,
            entities: &self.entities,
            extra: &self.extra,
        })
        .map_err(|e| e.to_string())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let v: Value = serde_json::from_slice(state).map_err(|e| e.to_string())?;
        self.set_state(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> EntitiesReducer {
        EntitiesReducer::new("books".into(), "id".into(), Value::Null).unwrap()
    }

    fn act(r: &mut EntitiesReducer, op: &str, payload: Value) -> Result<bool, String> {
        let a = json!({"type": format!("books/{op}"), "payload": payload}).to_string();
        r.apply(a.as_bytes())
    }

    fn state(r: &EntitiesReducer) -> Value {
        serde_json::from_slice(&r.state_json().unwrap()).unwrap()
    }

    #[test]
    fn add_set_and_remove_follow_rtk() {
        let mut r = store();
        act(&mut r, "addOne", json!({"id":"a","title":"A"})).unwrap();
        // addOne with an existing id does nothing; setOne replaces the whole entity.
        act(&mut r, "addOne", json!({"id":"a","title":"X"})).unwrap();
        assert_eq!(
            state(&r),
            json!({"ids":["a"],"entities":{"a":{"id":"a","title":"A"}}})
        );
        act(&mut r, "setOne", json!({"id":"a","author":"Z"})).unwrap();
        assert_eq!(state(&r)["entities"]["a"], json!({"id":"a","author":"Z"}));
        // addMany takes an array or a record; numeric ids stay numbers in ids.
        act(
            &mut r,
            "addMany",
            json!([{"id":2},{"id":1},{"id":2,"dup":true}]),
        )
        .unwrap();
        act(&mut r, "setMany", json!({"x":{"id":"c"}})).unwrap();
        assert_eq!(state(&r)["ids"], json!(["a", 2, 1, "c"]));
        assert_eq!(state(&r)["entities"]["2"], json!({"id":2}));
        act(&mut r, "removeMany", json!([1, "a", "nope"])).unwrap();
        assert_eq!(state(&r)["ids"], json!([2, "c"]));
        act(&mut r, "removeOne", json!(2)).unwrap();
        assert_eq!(state(&r)["ids"], json!(["c"]));
        act(&mut r, "setAll", json!([{"id":"q"},{"id":"p"}])).unwrap();
        assert_eq!(
            state(&r),
            json!({"ids":["q","p"],"entities":{"q":{"id":"q"},"p":{"id":"p"}}})
        );
        act(&mut r, "removeAll", Value::Null).unwrap();
        assert_eq!(state(&r), json!({"ids":[],"entities":{}}));
    }

    #[test]
    fn updates_and_upserts_merge_shallowly() {
        let mut r = store();
        act(
            &mut r,
            "addMany",
            json!([{"id":"a","n":1,"tags":[1]},{"id":"b","n":2}]),
        )
        .unwrap();
        act(&mut r, "updateOne", json!({"id":"a","changes":{"n":10}})).unwrap();
        act(&mut r, "updateOne", json!({"id":"zz","changes":{"n":10}})).unwrap();
        assert_eq!(
            state(&r)["entities"]["a"],
            json!({"id":"a","n":10,"tags":[1]})
        );
        // Two updates of one id merge; upsert merges into present ones, adds the rest.
        act(
            &mut r,
            "updateMany",
            json!([{"id":"b","changes":{"x":1}},{"id":"b","changes":{"y":2}}]),
        )
        .unwrap();
        assert_eq!(
            state(&r)["entities"]["b"],
            json!({"id":"b","n":2,"x":1,"y":2})
        );
        act(
            &mut r,
            "upsertMany",
            json!([{"id":"b","n":3},{"id":"c","n":4}]),
        )
        .unwrap();
        assert_eq!(
            state(&r)["entities"]["b"],
            json!({"id":"b","n":3,"x":1,"y":2})
        );
        act(&mut r, "upsertOne", json!({"id":"a","tags":[]})).unwrap();
        assert_eq!(
            state(&r)["entities"]["a"],
            json!({"id":"a","n":10,"tags":[]})
        );
        assert_eq!(state(&r)["ids"], json!(["a", "b", "c"]));
    }

    #[test]
    fn an_update_that_changes_the_id_rekeys_in_js_key_order() {
        let mut r = store();
        act(&mut r, "addMany", json!([{"id":"x"},{"id":5},{"id":"y"}])).unwrap();
        act(&mut r, "updateOne", json!({"id":"x","changes":{"id":1}})).unwrap();
        // Object.values(entities): array indexes ascending, then names in insertion order.
        assert_eq!(state(&r)["ids"], json!([1, 5, "y"]));
        assert_eq!(state(&r)["entities"]["1"], json!({"id":1}));
        assert!(state(&r)["entities"].get("x").is_none());
    }

    #[test]
    fn bad_payloads_change_nothing_and_other_actions_are_ignored() {
        let mut r = store();
        act(&mut r, "addOne", json!({"id":"a"})).unwrap();
        let before = state(&r);
        assert!(act(&mut r, "addMany", json!([{"id":"b"},{"title":"no id"}])).is_err());
        assert!(act(&mut r, "addOne", json!("a")).is_err());
        assert!(act(&mut r, "updateOne", json!({"id":"a"})).is_err());
        assert!(act(&mut r, "removeMany", json!("a")).is_err());
        assert!(act(&mut r, "setOne", json!({"id":{"nested":1}})).is_err());
        r.apply(br#"{"type":"other/addOne","payload":{"id":"z"}}"#)
            .unwrap();
        r.apply(br#"{"type":"books/sortComparer"}"#).unwrap();
        assert_eq!(state(&r), before);
    }

    #[test]
    fn extra_fields_and_restore() {
        let init = json!({"ids":[1],"entities":{"1":{"id":1}},"loading":"idle"});
        let mut r = EntitiesReducer::new("books".into(), "isbn".into(), init.clone()).unwrap();
        assert_eq!(state(&r), init);
        act(&mut r, "addOne", json!({"isbn":"978"})).unwrap();
        assert_eq!(state(&r)["ids"], json!([1, "978"]));
        assert_eq!(state(&r)["loading"], json!("idle"));
        r.restore(br#"{"ids":[],"entities":{}}"#).unwrap();
        assert!(r.restore(br#"{"ids":["a"],"entities":{}}"#).is_err());
        assert!(EntitiesReducer::new("b".into(), "id".into(), json!([1])).is_err());
    }
}

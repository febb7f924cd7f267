//! Completes the OpenAPI document so that it lists every answer the API can give, the way
//! a generated client and schemathesis (`.ci/contract`) read it.
//!
//! Each route declares its own answers with `#[utoipa::path]`. The description of an error
//! answer is the list of problem `code`s it may carry (`"out_of_stock"`,
//! `"already_paid, payment_in_progress"`). What every route of a kind can answer is added
//! here, once, from the shape of the operation:
//!
//! | the operation | adds |
//! |---|---|
//! | needs a bearer token | 401 `unauthorized` |
//! | is under `/admin/` | 403 `forbidden` |
//! | has path parameters | 404 `not_found` |
//! | takes a JSON body | 400 `invalid_request`, 413 `payload_too_large`, 415 `unsupported_media_type`, 422 `validation_failed` |
//! | takes query parameters | 400 `invalid_request`, 422 `validation_failed` |
//! | takes `Idempotency-Key` | 400 `invalid_request`, 409 `idempotency_key_in_use`, 422 `idempotency_key_reused` |
//! | any | 500 `internal_error`, 503 `request_timeout` |
//!
//! Every error answer is then declared as `application/problem+json` whose `status` is the
//! answer's and whose `code` is one of the listed codes, so a body that carries another
//! code breaks the document's schema; 409, 429 and 503 declare `Retry-After`.
//!
//! A string schema of format `line` or `email-address` gets the pattern of
//! [`matsuri_core::text`], where the server's own check of such a field lives; a list
//! schema marked `x-unique-items` (utoipa has no attribute for it) gets `uniqueItems`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use matsuri_core::error::PROBLEM_CONTENT_TYPE;
use matsuri_core::text;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// What an operation takes, read off its declaration.
#[derive(Debug, Default)]
struct Shape {
    token: bool,
    staff: bool,
    body: bool,
    query: bool,
    path_params: bool,
    idempotency_key: bool,
}

impl Shape {
    fn of(path: &str, op: &Value) -> Self {
        let params = op
            .get("parameters")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let param_in = |place: &str| {
            params
                .iter()
                .any(|p| p.get("in").and_then(Value::as_str) == Some(place))
        };
        let security = op
            .get("security")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Shape {
            // An empty requirement among the alternatives makes the token optional.
            token: !security.is_empty()
                && security
                    .iter()
                    .all(|s| s.as_object().is_some_and(|s| !s.is_empty())),
            staff: path.contains("/admin/"),
            body: op.get("requestBody").is_some(),
            query: param_in("query"),
            path_params: param_in("path"),
            idempotency_key: params.iter().any(|p| {
                p.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
            }),
        }
    }

    /// The answers every operation of this shape can give, by status.
    fn shared_answers(&self) -> Vec<(u16, &'static str)> {
        let mut answers = vec![(500, "internal_error"), (503, "request_timeout")];
        if self.token {
            answers.push((401, "unauthorized"));
        }
        if self.staff {
            answers.push((403, "forbidden"));
        }
        if self.path_params {
            answers.push((404, "not_found"));
        }
        if self.body || self.query || self.idempotency_key {
            answers.push((400, "invalid_request"));
        }
        if self.body || self.query {
            answers.push((422, "validation_failed"));
        }
        if self.body {
            answers.push((413, "payload_too_large"));
            answers.push((415, "unsupported_media_type"));
        }
        if self.idempotency_key {
            answers.push((409, "idempotency_key_in_use"));
            answers.push((422, "idempotency_key_reused"));
        }
        answers
    }
}

/// Completes `doc` (an OpenAPI document as JSON) in place. Answers with what it found that
/// does not follow the conventions above (an error answer whose description is not a list
/// of codes); the tests keep that empty.
pub fn complete(doc: &mut Value) -> Vec<String> {
    let mut complaints = Vec::new();
    add_patterns(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return complaints;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if METHODS.contains(&method.as_str()) {
                let label = format!("{} {path}", method.to_uppercase());
                complete_operation(&label, path, op, &mut complaints);
            }
        }
    }
    complaints
}

fn complete_operation(label: &str, path: &str, op: &mut Value, complaints: &mut Vec<String>) {
    let shape = Shape::of(path, op);
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        complaints.push(format!("{label}: no responses"));
        return;
    };
    let mut codes: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (status, response) in responses.iter() {
        let Ok(status) = status.parse::<u16>() else {
            complaints.push(format!("{label}: response {status} is not a status"));
            continue;
        };
        if status < 400 {
            continue;
        }
        let listed = codes.entry(status).or_default();
        let description = response
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for word in description
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            if is_code(word) {
                listed.push(word.to_owned());
            } else {
                complaints.push(format!(
                    "{label}: the {status} answer's description lists {word:?}, not a problem code"
                ));
            }
        }
    }
    for (status, code) in shape.shared_answers() {
        codes.entry(status).or_default().push(code.to_owned());
    }
    for (status, mut list) in codes {
        list.sort();
        list.dedup();
        if list.is_empty() {
            complaints.push(format!(
                "{label}: the {status} answer names no problem code"
            ));
        }
        responses.insert(status.to_string(), problem_answer(status, &list));
    }
    for (status, response) in responses.iter_mut() {
        if let Some(response) = response.as_object_mut() {
            let missing = response
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing {
                response.insert("description".into(), success_description(status).into());
            }
        }
    }
}

/// Gives every string schema of a text format its pattern, and every list marked unique
/// `uniqueItems`.
fn add_patterns(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.remove("x-unique-items").is_some() {
                object.insert("uniqueItems".into(), true.into());
            }
            let pattern = match object.get("format").and_then(Value::as_str) {
                Some(text::LINE_FORMAT) => Some(text::LINE_PATTERN),
                Some(text::TEXT_FORMAT) => Some(text::TEXT_PATTERN),
                Some(text::EMAIL_FORMAT) => Some(text::EMAIL_PATTERN),
                _ => None,
            };
            if let Some(pattern) = pattern {
                object.insert("pattern".into(), pattern.into());
            }
            object.values_mut().for_each(add_patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(add_patterns),
        _ => {}
    }
}

fn is_code(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn problem_answer(status: u16, codes: &[String]) -> Value {
    let description = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut answer = Map::new();
    answer.insert(
        "description".into(),
        format!("Problem: {description}").into(),
    );
    answer.insert(
        "content".into(),
        json!({ PROBLEM_CONTENT_TYPE: { "schema": {
            "allOf": [
                { "$ref": "#/components/schemas/Problem" },
                { "type": "object", "properties": {
                    "status": { "const": status },
                    "code": { "type": "string", "enum": codes },
                } },
            ]
        } } }),
    );
    if matches!(status, 409 | 429 | 503) {
        answer.insert(
            "headers".into(),
            json!({ "Retry-After": {
                "description": "Whole seconds to wait before trying again, when the wait is known.",
                "schema": { "type": "integer", "minimum": 0 },
            } }),
        );
    }
    Value::Object(answer)
}

fn success_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        _ => "Answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(op: Value) -> (Value, Vec<String>) {
        let mut doc = json!({ "paths": { "/api/v1/admin/things/{id}": { "put": op } } });
        let complaints = complete(&mut doc);
        (
            doc["paths"]["/api/v1/admin/things/{id}"]["put"].clone(),
            complaints,
        )
    }

    #[test]
    fn an_operation_gains_the_answers_of_its_shape() {
        let (op, complaints) = operation(json!({
            "parameters": [{ "name": "id", "in": "path" }, { "name": "Idempotency-Key", "in": "header" }],
            "requestBody": { "content": {} },
            "security": [{ "bearer": [] }],
            "responses": { "200": {}, "409": { "description": "sku_taken" } },
        }));
        assert!(complaints.is_empty(), "{complaints:?}");
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(
            statuses,
            [
                "200", "400", "401", "403", "404", "409", "413", "415", "422", "500", "503"
            ]
        );
        let conflict = &op["responses"]["409"];
        let schema = &conflict["content"][PROBLEM_CONTENT_TYPE]["schema"]["allOf"][1];
        assert_eq!(
            schema["properties"]["code"]["enum"],
            json!(["idempotency_key_in_use", "sku_taken"])
        );
        assert_eq!(schema["properties"]["status"]["const"], 409);
        assert!(conflict["headers"]["Retry-After"].is_object());
        assert_eq!(op["responses"]["200"]["description"], "OK");
    }

    #[test]
    fn text_formats_get_their_patterns() {
        let mut doc = json!({ "components": { "schemas": { "User": { "properties": {
            "name": { "type": "string", "format": "line" },
            "email": { "type": "string", "format": "email-address" },
            "seats": { "type": "array", "x-unique-items": true },
        } } } } });
        complete(&mut doc);
        let user = &doc["components"]["schemas"]["User"]["properties"];
        assert_eq!(user["name"]["pattern"], text::LINE_PATTERN);
        assert_eq!(user["email"]["pattern"], text::EMAIL_PATTERN);
        assert_eq!(user["seats"]["uniqueItems"], true);
        assert!(user["seats"].get("x-unique-items").is_none());
    }

    #[test]
    fn an_optional_token_adds_no_401() {
        let (op, _) = operation(json!({
            "security": [{}, { "bearer": [] }],
            "responses": { "200": {} },
        }));
        assert!(op["responses"].get("401").is_none());
    }

    #[test]
    fn a_description_that_is_no_code_list_is_reported() {
        let (_, complaints) = operation(json!({
            "responses": { "200": {}, "409": { "description": "The seat is taken." } },
        }));
        assert!(
            complaints.iter().any(|c| c.contains("The seat is taken.")),
            "{complaints:?}"
        );
    }
}

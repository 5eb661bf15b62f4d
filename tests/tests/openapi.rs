//! server-lite/openapi.json against the real routes: every documented operation is called on a
//! running pod, and its status and JSON body must match what the document promises.

use serde_json::{json, Value};
use shoal_tests::media;
use shoal_tests::pod::TestPod;

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let path = r.trim_start_matches("#/").split('/');
            path.fold(doc, |node, key| &node[key])
        }
        None => schema,
    }
}

/// Checks `value` against the parts of a JSON schema the document uses (type, required,
/// properties, items, nullable). Returns what does not fit.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    let fits = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !fits {
        problems.push(format!("{at}: expected {}, got {value}", schema["type"]));
        return;
    }
    for key in schema["required"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap();
        if value.get(key).is_none() {
            problems.push(format!("{at}: missing required {key}"));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (key, sub) in props {
            if let Some(v) = value.get(key) {
                check(doc, sub, v, &format!("{at}.{key}"), problems);
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), problems);
        }
    }
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(shoal_tests::workspace_root().join("server-lite/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let pod = TestPod::start_with(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let clip = media::progressive_mp4(dir.path(), "doc.mp4", 1);
    let video = pod.upload_file(&clip, "Documented video");
    let uuid = video["uuid"].as_str().unwrap().to_owned();
    let base = format!("{}/api/v1", pod.url());
    let auth = format!("Bearer {}", pod.admin_token());

    let mut problems = Vec::new();
    let mut operations = 0;
    let paths = doc["paths"].as_object().unwrap();
    // Deletion last, so the other operations find the video.
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if method != "parameters" {
                ops.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    ops.sort_by_key(|(_, m, _)| m == "delete");
    for (path, method, op) in ops {
        operations += 1;
        let url = format!("{base}{}", path.replace("{id}", &uuid));
        let request = ureq::request(&method.to_uppercase(), &url).set("Authorization", &auth);
        let result = match (method.as_str(), path.as_str()) {
            ("get", "/search/videos") => request.query("search", "documented").call(),
            ("put", _) => request.send_json(json!({"description": "checked against the document"})),
            ("post", "/videos/upload") => {
                // Only the shape of a refusal is checked here; real uploads are above.
                request
                    .set("Content-Type", "multipart/form-data; boundary=x")
                    .send_string("--x--\r\n")
            }
            _ => request.call(),
        };
        let (status, body) = match result {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let Some(response) = op["responses"].get(status.to_string()) else {
            problems.push(format!(
                "{method} {path}: status {status} is not documented ({body})"
            ));
            continue;
        };
        if let Some(schema) = response.pointer("/content/application~1json/schema") {
            match serde_json::from_str::<Value>(&body) {
                Ok(value) => check(
                    &doc,
                    schema,
                    &value,
                    &format!("{method} {path}"),
                    &mut problems,
                ),
                Err(_) => problems.push(format!("{method} {path}: body is not JSON: {body}")),
            }
        }
    }
    assert!(
        operations >= 8,
        "the document lists only {operations} operations"
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

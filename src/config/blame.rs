//! Which value of the configuration a serde error is about.
//!
//! serde's messages say what was wrong ("invalid type: integer `1`, expected a string") but
//! not where. Rather than track the path through every deserializer call (which costs the
//! module about 17 KB of generic code, measured with `serde_path_to_error`), the path is
//! found after the fact, once, at start-up: a member or element is at fault when the document
//! without it reads, or fails only for lacking it. Descending while that holds names the
//! deepest value at fault; a message about a missing or unknown field adds that field.

use serde_json::Value;

/// One step of a path: an object member or an array element.
#[derive(Debug, Clone)]
enum Step {
    Member(String),
    Element(usize),
}

/// The path (`from_headers[1].value_prefix`) of the value in `document` that `read` fails
/// on with `message`; `configuration` when it is the document as a whole.
pub(super) fn blame(
    document: &Value,
    message: &str,
    read: &dyn Fn(Value) -> Result<(), String>,
) -> String {
    let mut path: Vec<Step> = Vec::new();
    'descend: while let Some(node) = at(document, &path) {
        let children: Vec<Step> = match node {
            Value::Object(members) => members.keys().cloned().map(Step::Member).collect(),
            Value::Array(items) => (0..items.len()).map(Step::Element).collect(),
            _ => break,
        };
        for child in children {
            let mut probe = document.clone();
            let removed = remove(&mut probe, &path, &child);
            let at_fault = removed
                && match read(probe) {
                    Ok(()) => true,
                    // A required member that is bad: without it, only its absence is wrong
                    // (unless absence was the fault to begin with).
                    Err(other) => match &child {
                        Step::Member(name) => {
                            !message.starts_with("missing field")
                                && other == format!("missing field `{name}`")
                        }
                        Step::Element(_) => false,
                    },
                };
            if at_fault {
                path.push(child);
                continue 'descend;
            }
        }
        break;
    }
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    if let Some(name) = named {
        if !matches!(path.last(), Some(Step::Member(last)) if last == name) {
            path.push(Step::Member(name.to_owned()));
        }
    }
    let mut text = String::new();
    for step in &path {
        match step {
            Step::Member(name) if text.is_empty() => text.push_str(name),
            Step::Member(name) => {
                text.push('.');
                text.push_str(name);
            }
            Step::Element(index) => text.push_str(&format!("[{index}]")),
        }
    }
    if text.is_empty() {
        "configuration".to_owned()
    } else {
        text
    }
}

/// The value at `path`.
fn at<'a>(document: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(document, |node, step| match step {
        Step::Member(name) => node.get(name),
        Step::Element(index) => node.get(*index),
    })
}

/// Removes `child` of the value at `path`; whether there was one.
fn remove(document: &mut Value, path: &[Step], child: &Step) -> bool {
    let node = path.iter().try_fold(document, |node, step| match step {
        Step::Member(name) => node.get_mut(name),
        Step::Element(index) => node.get_mut(*index),
    });
    match (node, child) {
        // Rebuilt by inserting, as the JSON parser does, rather than removed from or
        // collected into: either would add map code (about 3 KB and 5 KB) for this
        // start-up-only path.
        (Some(Value::Object(members)), Step::Member(name)) => {
            let had = members.contains_key(name);
            let mut kept = serde_json::Map::new();
            for (member, value) in std::mem::take(members) {
                if member != *name {
                    kept.insert(member, value);
                }
            }
            *members = kept;
            had
        }
        (Some(Value::Array(items)), Step::Element(index)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

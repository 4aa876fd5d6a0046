//! docs/cli-json.md as a schema: the field tables of each `## command`
//! section, read from the document itself, so a test fails when the JSON
//! and its documentation part ways.

use serde_json::Value;

const DOC: &str = include_str!("../../docs/cli-json.md");

/// One documented field: its name and the start of its Type cell.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: String,
}

/// The field tables (`| Field | Type | Meaning |`) of the section headed
/// `## {section}`, in document order.
pub fn tables(section: &str) -> Vec<Vec<Field>> {
    let heading = format!("## {section}");
    let body: Vec<&str> = DOC
        .lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    assert!(
        !body.is_empty(),
        "docs/cli-json.md has no section {heading:?}"
    );
    let mut tables = Vec::new();
    let mut rows = body.iter().peekable();
    while let Some(line) = rows.next() {
        if !line.starts_with("| Field | Type |") {
            continue;
        }
        rows.next(); // |---|---|---|
        let mut table = Vec::new();
        while let Some(row) = rows.next_if(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            table.push(Field {
                name: cells[1].trim_matches('`').to_string(),
                kind: cells[2].to_string(),
            });
        }
        tables.push(table);
    }
    tables
}

/// Checks `value` against a documented table: every key is documented,
/// every documented field is present unless *optional*, and each value has
/// the documented type (`null` only where *nullable*).
pub fn check(what: &str, value: &Value, table: &[Field]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {value}"));
    for key in object.keys() {
        assert!(
            table.iter().any(|f| &f.name == key),
            "{what}: field {key:?} is not in docs/cli-json.md"
        );
    }
    for field in table {
        match object.get(&field.name) {
            None => assert!(
                field.kind.contains("optional"),
                "{what}: documented field {:?} is missing: {value}",
                field.name
            ),
            Some(v) => assert!(
                has_type(v, &field.kind),
                "{what}.{}: {v} is not {:?}",
                field.name,
                field.kind
            ),
        }
    }
}

/// Whether `v` fits a Type cell such as "integer, nullable" or "time".
fn has_type(v: &Value, kind: &str) -> bool {
    if v.is_null() {
        return kind.contains("nullable");
    }
    let base = kind.split([',', ':', ' ']).next().unwrap_or_default();
    match base {
        "integer" => v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "time" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("docs/cli-json.md: unknown type {other:?} in {kind:?}"),
    }
}

/// Checks every element of the array `value` against `table`.
pub fn check_each(what: &str, value: &Value, table: &[Field]) {
    let items = value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {value}"));
    for (i, item) in items.iter().enumerate() {
        check(&format!("{what}[{i}]"), item, table);
    }
}

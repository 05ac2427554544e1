//! The OpenAPI 3.1 document served at `/v1/openapi.json`, written by hand next to the routes it
//! describes (a test checks that every route of [`crate::api::router`] is in it).

use serde_json::{json, Value};

fn op(summary: &str, admin: bool, body: Option<&str>, ok: &str) -> Value {
    let mut v = json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            ok: {"description": "success", "content": {"application/json": {}}},
            "4XX": {"description": "bad input, missing auth, not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    });
    if admin {
        v["description"] = json!("Needs the admin token.");
    }
    if let Some(ct) = body {
        v["requestBody"] = json!({"required": true, "content": {ct: {}}});
    }
    v
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
}

/// The document.
pub fn document() -> Value {
    let mut submit = op(
        "Submit a job: a SkyPilot task YAML (or JSON) with optional top-level `team`, `priority`, `deadline`",
        false,
        Some("application/yaml"),
        "201",
    );
    submit["requestBody"]["content"]["application/json"] = json!({});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Hedge broker API", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string", "description": "stable, e.g. invalid_yaml, unknown_accelerator, invalid_accelerators, body_too_large, unknown_team, unauthorized, not_found"},
                        "message": {"type": "string"},
                        "field": {"type": ["string", "null"], "description": "the offending input field"}
                    }}}
                }
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness and store reachability", "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus text format", "responses": {"200": {"description": "ok", "content": {"text/plain": {}}}}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "ok"}}}},
            "/v1/jobs": {
                "post": submit,
                "get": {
                    "parameters": [
                        {"name": "team", "in": "query", "schema": {"type": "string"}},
                        {"name": "state", "in": "query", "schema": {"type": "string"}, "description": "comma-separated states"},
                        {"name": "after", "in": "query", "schema": {"type": "integer"}, "description": "cursor: `next` of the previous page"},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
                        {"name": "newest_first", "in": "query", "schema": {"type": "boolean"}}
                    ],
                    "summary": "List jobs (a team token sees only its team's)",
                    "security": [{"bearer": []}],
                    "responses": {"200": {"description": "{jobs, next}"}}
                }
            },
            "/v1/jobs/{id}": {"parameters": id_param(), "get": op("A job with its launch attempts and, if waiting, why", false, None, "200")},
            "/v1/jobs/{id}/cancel": {"parameters": id_param(), "post": op("Cancel a job", false, None, "200")},
            "/v1/jobs/{id}/events": {"parameters": id_param(), "get": op("Every state change with its reason and placement explanation", false, None, "200")},
            "/v1/jobs/{id}/logs": {"parameters": id_param(), "get": op("The latest attempt's stdout and stderr (query `tail_bytes`)", false, None, "200")},
            "/v1/providers": {"get": op("Providers with health, GPUs in use and free committed capacity", false, None, "200")},
            "/v1/commitments": {
                "get": op("Commitments with used and idle GPUs", false, None, "200"),
                "post": op("Import commitments: a list, or a plan's JSON with a `commitments` list", true, Some("application/json"), "200")
            },
            "/v1/teams": {"get": op("Teams (a team token sees its own)", false, None, "200")},
            "/v1/teams/{id}": {"parameters": id_param(), "put": op("Create or replace a team: monthly budget, GPU quotas, preemption policy", true, Some("application/json"), "200")},
            "/v1/teams/{id}/tokens": {"parameters": id_param(), "post": op("Issue a token for a team (the secret is returned once)", true, Some("application/json"), "201")},
            "/v1/admin/providers/{id}/faults": {
                "parameters": id_param(),
                "get": op("A provider's injected faults", true, None, "200"),
                "put": op("Inject faults: {unreachable, fail_submits, lose_next} (when fault_injection is on)", true, Some("application/json"), "200")
            }
        }
    })
}

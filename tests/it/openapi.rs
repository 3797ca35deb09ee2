//! The API contract: the OpenAPI document at `/api/openapi.json` (open, OpenAPI 3.1), the page at
//! `/api/docs`, every registered route in the document, and schemathesis fuzzing every
//! operation of the document against `tgwatch demo` (the sandbox Telegram).

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::{App, HttpRequest, test, web};
use common::{TOKEN, spawn_app};
use serde_json::Value;
use tgwatch_core::{clock::Clock, config::Secret};
use tgwatch_service::http::Switches;
use tgwatch_testkit::demo;

const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_o"
online = [[0, 300]]
"#;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The (method, path) of every operation in the document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_document_is_open_and_every_operation_has_its_responses_and_the_error_shape() {
    let app = spawn_app(SCENARIO, |_| {}).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // No token.
    let response = client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    let error = &document["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let operations = operations(&document);
    assert!(operations.len() > 60, "{operations:?}");
    // A route only `tgwatch demo` serves is documented only there (tests/it/demo.rs).
    assert!(
        document["paths"]
            .get("/api/accounts/{id}/login/qr/demo-scan")
            .is_none(),
        "the demo's scan route is not in a service's document"
    );
    let mut ids = BTreeSet::new();
    for (method, path) in &operations {
        let operation = &document["paths"][path][method];
        assert!(
            ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "operationId of {method} {path} used twice"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|status| status.starts_with(['1', '2', '3'])),
            "{method} {path} documents no success"
        );
        assert_eq!(
            responses["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{method} {path}"
        );
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                assert!(
                    path.contains(&format!("{{{}}}", parameter["name"].as_str().unwrap())),
                    "{method} {path}: {parameter}"
                );
            }
        }
    }
    // Behind the token unless said otherwise; the open routes say so.
    assert_eq!(
        document["security"],
        serde_json::json!([{"admin_token": []}])
    );
    for open in [
        "/api/health",
        "/livez",
        "/readyz",
        "/api/openapi.json",
        "/ws",
    ] {
        assert_eq!(
            document["paths"][open]["get"]["security"],
            serde_json::json!([{}]),
            "{open}"
        );
    }
    // Request bodies and query parameters are described.
    let create = &document["paths"]["/api/webhooks"]["post"];
    assert!(create["requestBody"]["content"]["application/json"]["schema"].is_object());
    let list = &document["paths"]["/api/tracked-users"]["get"]["parameters"];
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|parameter| parameter["name"] == "online" && parameter["in"] == "query"),
        "{list}"
    );

    // The page: Swagger UI from the binary, reading the document.
    let redirect = client
        .get(format!("{}/api/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "docs/");
    let page = client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("://"),
        "the page loads nothing from elsewhere:\n{html}"
    );
    let initializer = client
        .get(format!("{}/api/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/api/openapi.json"), "{initializer}");
}

/// Every switchable route switched on: the document and the router both list them.
const ALL_ROUTES: Switches = Switches {
    fault_injection: true,
    demo_phone: true,
};

/// The patterns of every resource of the router that `tgwatch_service::http::routes` builds,
/// read from actix's resource map (it has no other way to list them): each pattern as
/// registered, relative to its scope.
async fn registered_patterns() -> BTreeSet<String> {
    async fn map(request: HttpRequest) -> String {
        format!("{:?}", request.resource_map())
    }
    let app = test::init_service(
        App::new()
            .route("/__resource_map", web::get().to(map))
            .configure(tgwatch_service::http::routes(ALL_ROUTES)),
    )
    .await;
    let debug = test::call_and_read_body(
        &app,
        test::TestRequest::get().uri("/__resource_map").to_request(),
    )
    .await;
    let debug = String::from_utf8(debug.to_vec()).unwrap();
    let mut patterns = BTreeSet::new();
    for piece in debug.split("patterns: Single(\"").skip(1) {
        let pattern = piece.split('"').next().unwrap();
        patterns.insert(pattern.to_owned());
    }
    assert!(
        patterns.contains("/accounts") && patterns.contains("/livez"),
        "actix's resource map no longer reads as expected: {debug}"
    );
    patterns
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_registered_route_is_in_the_document() {
    let document =
        serde_json::to_value(tgwatch_service::http::openapi::openapi(ALL_ROUTES)).unwrap();
    let operations = operations(&document);
    let paths: BTreeSet<String> = operations.iter().map(|(_, path)| path.clone()).collect();
    // Every resource of the router: at the root, or in the `/api` or `/telegram` (seed 003)
    // scope.
    for pattern in registered_patterns().await {
        let exempt = [
            // The probe of this test, the root and the `/api` scope themselves.
            "/__resource_map",
            "",
            "/api",
            // The Swagger UI files of `/api/docs/`: the page of the document, not an operation.
            "/api/docs/{_:.*}",
        ];
        if exempt.contains(&pattern.as_str()) {
            continue;
        }
        assert!(
            ["", "/api", "/telegram"]
                .iter()
                .any(|scope| paths.contains(&format!("{scope}{pattern}"))),
            "`{pattern}` is served but not in the OpenAPI document: register it with \
             `.service(handler)` and `#[utoipa::path]`"
        );
    }

    // Every method each path answers is documented, and every documented one is answered: a
    // method that is not registered gets the router's JSON 405.
    let app = spawn_app(SCENARIO, |config| config.testing.fault_injection = true).await;
    let client = reqwest::Client::new();
    for path in &paths {
        // The demo's scan route needs the demo's sandbox phone, which a scripted Telegram does
        // not have: tests/it/demo.rs calls it.
        if path.ends_with("/demo-scan") {
            continue;
        }
        // A path segment of the right shape (a UUID or a number), so the route matches.
        let concrete = path
            .replace("{chat_id}", "1")
            .replace("{message_id}", "1")
            .replace("{id}", "0190a1b2-0000-7000-8000-000000000000");
        for method in METHODS {
            let documented = operations.contains(&(method.to_owned(), path.clone()));
            if documented && path.ends_with("ws") {
                continue;
            }
            let response = client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{concrete}", app.base),
                )
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let not_allowed = status == 405 && body.contains("method_not_allowed");
            assert_eq!(
                !not_allowed, documented,
                "{method} {path}: {status} {body} (documented: {documented})"
            );
        }
    }
}

/// How long schemathesis fuzzes (`--max-time`): a few minutes for the whole test.
const FUZZ_SECONDS: u64 = 150;
/// The run's hard limit: its budget and the phases that do not stop at it, with room.
const FUZZ_BUDGET: Duration = Duration::from_secs(FUZZ_SECONDS + 150);

/// schemathesis (PyPI) generates requests for every operation of the document, with the admin
/// token, against `tgwatch demo` over the sandbox Telegram: no 5xx, every status, content type
/// and body as the document says, and the service still answers afterwards. Webhook URLs may
/// only point at 127.0.0.0/8 (the demo's `webhooks.allowed_destinations`), so nothing the fuzzer
/// registers is ever sent beyond this machine. `/ws` and `/telegram/ws` are left out: a request
/// that is not a WebSocket handshake gets the 500 that seed 004 asks for.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let python = common::python::venv("schemathesis-venv", &["schemathesis==4.32.5"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let speed = 60.0;
    let mut demo = demo::demo(dir.path(), "127.0.0.1:0".parse().unwrap(), speed);
    demo.config.http.admin_token = Some(Secret::new(TOKEN));
    assert_eq!(
        demo.config.webhooks.allowed_destinations,
        ["127.0.0.0/8", "::1/128"],
        "the fuzzed demo reaches this machine only"
    );
    let (app, _sandbox) = demo::start(demo, Clock::fast(speed)).await.expect("demo");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_rt::spawn(app.run_until_stopped());

    let report = common::target_dir().join("artifacts/schemathesis");
    let _ = std::fs::create_dir_all(&report);
    // `python -m`: the venv's console scripts name the python of where it was built.
    let mut command = tokio::process::Command::new(&python);
    command
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{base}/api/openapi.json"))
        .args(["--url", &base])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--exclude-path-regex", "^/(telegram/)?ws$"])
        // Every phase (examples, coverage, fuzzing, stateful); fuzzing and stateful testing
        // repeat until this budget is spent.
        .args(["--max-time", &FUZZ_SECONDS.to_string()])
        .args(["--seed", "15"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "20"])
        .arg("--no-color")
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        // Its example database (`.schemathesis/`) goes where it works, not into the checkout.
        .current_dir(&report)
        .kill_on_drop(true);
    let output = tokio::time::timeout(FUZZ_BUDGET, command.output())
        .await
        .expect("schemathesis finishes within its budget")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::write(report.join("output.txt"), stdout.as_bytes()).expect("report");
    println!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found problems (report in {}):\n{stdout}\n{stderr}",
        report.display()
    );
    // No crash: the service still answers.
    let health = reqwest::get(format!("{base}/livez")).await.unwrap();
    assert_eq!(health.status(), 200);
}

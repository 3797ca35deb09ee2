//! The demo's webhook consumer: an HTTP server on 127.0.0.1 that checks the Standard Webhooks
//! signature of every delivery it receives and shows the latest ones at `GET /`, so that a demo
//! user sees signed webhooks arrive without writing a receiver.

use std::{
    collections::VecDeque,
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tgwatch_core::signing::SigningSecret;

/// How many deliveries the page keeps.
const KEPT: usize = 20;

/// One delivery as the receiver saw it.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// `webhook-id`.
    pub id: String,
    /// The event's `type` (`user_online`, `new_message`, ...).
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The `webhook-signature` matched the endpoint's secret.
    pub signature_valid: bool,
}

/// What the receiver has seen.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Deliveries {
    pub total: u64,
    pub valid_signatures: u64,
    /// Newest first.
    pub latest: VecDeque<Delivery>,
}

struct State {
    secret: SigningSecret,
    seen: Mutex<Deliveries>,
}

impl State {
    fn seen(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running receiver.
#[derive(Clone)]
pub struct DemoReceiver {
    /// Where webhooks are sent (`POST`).
    pub hook_url: String,
    /// The page of the latest deliveries (`GET`).
    pub page_url: String,
    state: Arc<State>,
}

impl DemoReceiver {
    /// Listens on 127.0.0.1 (any free port) and checks signatures with `secret`. Must run inside
    /// an actix system.
    pub fn start(secret: SigningSecret) -> std::io::Result<DemoReceiver> {
        let state = Arc::new(State {
            secret,
            seen: Mutex::new(Deliveries::default()),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/hook", web::post().to(receive))
                .route("/", web::get().to(page))
        })
        .workers(1)
        .disable_signals()
        .bind((Ipv4Addr::LOCALHOST, 0))?;
        let address: SocketAddr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("the receiver bound no address"))?;
        actix_web::rt::spawn(server.run());
        Ok(DemoReceiver {
            hook_url: format!("http://{address}/hook"),
            page_url: format!("http://{address}/"),
            state,
        })
    }

    /// What it has received so far.
    pub fn deliveries(&self) -> Deliveries {
        self.state.seen().clone()
    }
}

async fn receive(request: HttpRequest, body: String, state: web::Data<State>) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let signature_valid = header("webhook-timestamp")
        .parse::<i64>()
        .is_ok_and(|timestamp| {
            state
                .secret
                .verify(&id, timestamp, &body, &header("webhook-signature"))
        });
    let event_type = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["type"].as_str().map(str::to_owned));
    let mut seen = state.seen();
    seen.total += 1;
    seen.valid_signatures += u64::from(signature_valid);
    seen.latest.push_front(Delivery {
        id,
        event_type,
        received_at: Utc::now(),
        signature_valid,
    });
    seen.latest.truncate(KEPT);
    HttpResponse::NoContent().finish()
}

async fn page(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(&*state.seen())
}

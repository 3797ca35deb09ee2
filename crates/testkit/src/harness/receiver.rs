//! A webhook consumer on 127.0.0.1: records what it receives and answers as told.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// How the receiver answers.
#[derive(Clone, Copy)]
pub enum Behaviour {
    Ok,
    /// Every second request gets a 500, every fourth hangs past the client's timeout.
    Flaky,
    /// Answers 204 after this long, so that requests are in flight at any moment.
    Slow(std::time::Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    pub answered: u16,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

struct State {
    behaviour: Behaviour,
    count: AtomicUsize,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn hook(request: HttpRequest, body: String, state: web::Data<State>) -> HttpResponse {
    let n = state.count.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = match state.behaviour {
        Behaviour::Ok => 204,
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            204
        }
        Behaviour::Flaky if n % 4 == 3 => {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            200
        }
        Behaviour::Flaky if n % 2 == 1 => 500,
        Behaviour::Flaky => 200,
    };
    state.received.lock().expect("lock").push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signature: header("webhook-signature"),
        body,
        answered: answer,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answer).expect("status")).finish()
}

impl Receiver {
    pub fn start(behaviour: Behaviour) -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(State {
            behaviour,
            count: AtomicUsize::new(0),
            received: received.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/hook", web::post().to(hook))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("bind receiver");
        let port = server.addrs()[0].port();
        actix_rt::spawn(server.run());
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            received,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The successfully answered messages, by webhook-id.
    pub fn delivered_ids(&self) -> std::collections::BTreeSet<String> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.id)
            .collect()
    }
}

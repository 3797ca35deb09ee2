//! `GET /api/supervision`: the supervision tree; `POST /api/faults/panic`: fault injection,
//! registered only with `[testing] fault_injection` (or `demo --fault-injection`).

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use crate::{
    state::AppState,
    supervision::{ChildKind, NodeView, tree::FaultError},
};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(tree);
}

pub fn fault_routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(inject_panic);
}

/// The supervision tree: the service, its singletons (storage, channels, webhooks, bot, live)
/// and the fleet (accounts, each with the people it watches), with each actor's state and
/// restarts.
#[utoipa::path(
    operation_id = "supervision_tree",
    tag = "operations",
    responses((status = 200, body = NodeView))
)]
#[get("/supervision")]
async fn tree(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.supervision.view())
}

/// Which actor to make panic.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FaultActor {
    Account,
    /// The actor holding one tracked person's state.
    Target,
    Storage,
    Channels,
    Webhooks,
    Bot,
    Live,
}

impl FaultActor {
    fn kind(self) -> ChildKind {
        match self {
            FaultActor::Account => ChildKind::Account,
            FaultActor::Target => ChildKind::Target,
            FaultActor::Storage => ChildKind::Storage,
            FaultActor::Channels => ChildKind::Channels,
            FaultActor::Webhooks => ChildKind::Webhooks,
            FaultActor::Bot => ChildKind::Bot,
            FaultActor::Live => ChildKind::Live,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PanicRequest {
    actor: FaultActor,
    /// The account's or tracked user's UUID, for `account` and `target`.
    id: Option<Uuid>,
}

/// A panic on its way.
#[derive(Serialize, ToSchema)]
pub struct PanicQueued {
    actor: FaultActor,
    id: Option<Uuid>,
    /// What happens next.
    message: &'static str,
}

/// Makes an actor panic while handling its next message (fault injection). The supervisor
/// restarts it; `GET /api/supervision` shows the restart.
#[utoipa::path(
    operation_id = "inject_panic",
    tag = "operations",
    request_body = PanicRequest,
    responses(
        (status = 202, body = PanicQueued),
        (status = 400, description = "`id` missing for `account` or `target`", body = ErrorBody),
        (status = 404, description = "No such actor running", body = ErrorBody),
    )
)]
#[post("/faults/panic")]
async fn inject_panic(
    state: web::Data<AppState>,
    request: web::Json<PanicRequest>,
) -> Result<HttpResponse, ApiError> {
    let PanicRequest { actor, id } = request.into_inner();
    state
        .supervision
        .inject_panic(actor.kind(), id)
        .map_err(|error| match error {
            FaultError::IdRequired(_) => ApiError::bad_request("id_required", error.to_string()),
            FaultError::NoSuchChild { .. } | FaultError::NotRunning(_) => ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "not_found",
                error.to_string(),
            ),
        })?;
    tracing::warn!(
        actor = actor.kind().as_str(),
        ?id,
        "fault injected: the actor panics at its next message"
    );
    Ok(HttpResponse::Accepted().json(PanicQueued {
        actor,
        id,
        message: "the actor panics while handling its next message; its supervisor restarts it",
    }))
}

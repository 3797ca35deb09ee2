//! `GET /api/cluster`: the instances sharing the database, what each holds, which one leads.

use actix_web::{HttpResponse, get, web};

use super::error::{ApiError, ErrorBody};
use crate::{
    cluster::{self, ClusterView},
    state::AppState,
};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(instances);
}

/// The live instances on this database, oldest first: their heartbeat, the accounts whose
/// lease each holds, and the leader (bot polling, periodic jobs). On SQLite, the one instance.
#[utoipa::path(
    operation_id = "cluster",
    tag = "operations",
    responses(
        (status = 200, body = ClusterView),
        (status = 503, description = "the database does not answer", body = ErrorBody)
    )
)]
#[get("/cluster")]
async fn instances(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let view = cluster::view(&state.db, &state.ownership).await?;
    Ok(HttpResponse::Ok().json(view))
}

//! The registry behind the supervision tree: one node per supervised actor, with its restart
//! intensity and what to do when it is exceeded. The actors' restart loops
//! ([`super::child`]) and the accounts' reconnects write to it; `GET /api/supervision` and the
//! fault-injection route read it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

use tgwatch_core::{
    clock::Clock,
    supervision::{RestartHistory, RestartIntensity, Verdict},
};

/// What a node of the tree is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChildKind {
    /// The root: the whole service.
    Service,
    /// The accounts and the people they watch.
    Fleet,
    Storage,
    Channels,
    Webhooks,
    Bot,
    Live,
    /// One Telegram account.
    Account,
    /// One tracked person's state (the gap rule, the poll schedule).
    Target,
}

impl ChildKind {
    /// Kinds with one child per account or per person: a fault is aimed at one of them by id.
    pub fn has_many(self) -> bool {
        matches!(self, ChildKind::Account | ChildKind::Target)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::Service => "service",
            ChildKind::Fleet => "fleet",
            ChildKind::Storage => "storage",
            ChildKind::Channels => "channels",
            ChildKind::Webhooks => "webhooks",
            ChildKind::Bot => "bot",
            ChildKind::Live => "live",
            ChildKind::Account => "account",
            ChildKind::Target => "target",
        }
    }
}

/// Where a child is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChildState {
    Running,
    /// Between a failure and the next start.
    Restarting,
    /// Restarted too often: alive but given no work until an operator starts it anew.
    Parked,
    /// Given up on, or (the service node) stopping.
    Stopped,
}

/// What the supervisor does when a child fails more often than its restart intensity allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalation {
    /// Park the child (an account's work moves to healthy accounts; a person is no longer
    /// polled); the rest of the service goes on.
    Park,
    /// The service cannot do without it: report unhealthy and stop cleanly rather than limp.
    StopService,
}

/// One node of `GET /api/supervision`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub kind: ChildKind,
    /// The account's or tracked user's UUID; the kind's name for the others.
    pub id: String,
    pub label: String,
    pub state: ChildState,
    /// Restarts since the child was started (by the service or an operator).
    pub restarts: u64,
    pub last_restart_at: Option<DateTime<Utc>>,
    /// Why it was restarted last (the panic message, or why it stopped).
    pub last_reason: Option<String>,
    #[schema(no_recursion)]
    pub children: Vec<NodeView>,
}

/// Which node: its kind and, for an account or a person, their UUID (a singleton or a grouping
/// is named by its kind). Copied into every child's handle and every node's parent, so it owns
/// nothing on the heap: a fleet of 100,000 people holds three of these per person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: ChildKind,
    id: Option<Uuid>,
}

impl Key {
    fn named(kind: ChildKind) -> Key {
        Key { kind, id: None }
    }

    fn of(kind: ChildKind, id: Uuid) -> Key {
        Key { kind, id: Some(id) }
    }

    /// The id as `GET /api/supervision` shows it.
    fn id_text(&self) -> String {
        match self.id {
            Some(id) => id.to_string(),
            None => self.kind.as_str().to_owned(),
        }
    }
}

/// Makes the child's actor panic while handling its next message; false once it is gone.
type PanicTrigger = Box<dyn Fn() -> bool + Send>;

struct Node {
    /// Tells a child apart from the one started after it under the same key.
    generation: u64,
    label: Box<str>,
    parent: Key,
    state: ChildState,
    escalation: Escalation,
    /// Stopped on purpose: not to be restarted.
    retired: bool,
    intensity: RestartIntensity,
    /// Boxed and made on the first failure: most children of a large fleet never fail.
    failures: Option<Box<Failures>>,
    panic_trigger: Option<PanicTrigger>,
}

/// What a child that failed, or is about to stop itself, carries.
#[derive(Default)]
struct Failures {
    restarts: u64,
    last_restart_at: Option<DateTime<Utc>>,
    last_reason: Option<String>,
    history: RestartHistory,
    /// Why the actor is stopping, when it stops itself for a reason.
    stop_reason: Option<String>,
}

impl Node {
    fn failures(&mut self) -> &mut Failures {
        self.failures.get_or_insert_with(Box::default)
    }

    fn restarts(&self) -> u64 {
        self.failures
            .as_ref()
            .map_or(0, |failures| failures.restarts)
    }
}

struct Registry {
    nodes: HashMap<Key, Node>,
    next_generation: u64,
    /// Why the service gave up (a singleton restarted too often).
    gave_up: Option<String>,
}

/// The tree, shared by every child and the HTTP API.
#[derive(Clone)]
pub struct Supervision {
    registry: Arc<Mutex<Registry>>,
    clock: Clock,
    gave_up: Arc<watch::Sender<Option<String>>>,
}

/// Why a fault cannot be injected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    #[error("`id` is required for `{0}`: the UUID of the account or tracked user")]
    IdRequired(&'static str),
    #[error("there is no running `{kind}` with id {id}")]
    NoSuchChild { kind: &'static str, id: String },
    #[error("`{0}` is not running in this service")]
    NotRunning(&'static str),
}

fn root() -> Key {
    Key::named(ChildKind::Service)
}

fn fleet() -> Key {
    Key::named(ChildKind::Fleet)
}

impl Supervision {
    pub fn new(clock: Clock) -> Supervision {
        Supervision {
            registry: Arc::new(Mutex::new(Registry {
                nodes: HashMap::new(),
                next_generation: 0,
                gave_up: None,
            })),
            clock,
            gave_up: Arc::new(watch::channel(None).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a singleton child (storage, channels, webhooks, bot, live) under the root.
    pub fn singleton(&self, kind: ChildKind, intensity: RestartIntensity) -> Child {
        self.register(
            Key::named(kind),
            kind.as_str(),
            root(),
            intensity,
            Escalation::StopService,
        )
    }

    /// Registers an account under the fleet.
    pub fn account(&self, id: Uuid, label: &str, intensity: RestartIntensity) -> Child {
        self.register(
            Key::of(ChildKind::Account, id),
            label,
            fleet(),
            intensity,
            Escalation::Park,
        )
    }

    /// Registers a tracked person under the account that watches them (the fleet when none).
    pub fn target(
        &self,
        id: Uuid,
        label: &str,
        account: Option<Uuid>,
        intensity: RestartIntensity,
    ) -> Child {
        let parent = match account {
            Some(account) => Key::of(ChildKind::Account, account),
            None => fleet(),
        };
        self.register(
            Key::of(ChildKind::Target, id),
            label,
            parent,
            intensity,
            Escalation::Park,
        )
    }

    fn register(
        &self,
        key: Key,
        label: &str,
        parent: Key,
        intensity: RestartIntensity,
        escalation: Escalation,
    ) -> Child {
        let mut registry = self.lock();
        registry.next_generation += 1;
        let generation = registry.next_generation;
        registry.nodes.insert(
            key,
            Node {
                generation,
                label: label.into(),
                parent,
                state: ChildState::Running,
                escalation,
                retired: false,
                intensity,
                failures: None,
                panic_trigger: None,
            },
        );
        Child {
            supervision: self.clone(),
            key,
            generation,
        }
    }

    /// Makes the child `kind` (`id` for accounts and targets) panic while handling its next
    /// message.
    pub fn inject_panic(&self, kind: ChildKind, id: Option<Uuid>) -> Result<(), FaultError> {
        let key = match (kind.has_many(), id) {
            (true, None) => return Err(FaultError::IdRequired(kind.as_str())),
            (true, Some(id)) => Key::of(kind, id),
            (false, _) => Key::named(kind),
        };
        let registry = self.lock();
        let trigger = registry
            .nodes
            .get(&key)
            .filter(|node| !node.retired)
            .and_then(|node| node.panic_trigger.as_ref());
        match trigger.map(|panic| panic()) {
            Some(true) => Ok(()),
            _ if kind.has_many() => Err(FaultError::NoSuchChild {
                kind: kind.as_str(),
                id: key.id_text(),
            }),
            _ => Err(FaultError::NotRunning(kind.as_str())),
        }
    }

    /// Why the service gave up, once a child that it cannot do without failed too often.
    pub fn gave_up(&self) -> Option<String> {
        self.lock().gave_up.clone()
    }

    /// Completes when the service gives up (see [`Supervision::gave_up`]), with the reason.
    pub async fn given_up(&self) -> String {
        let mut changes = self.gave_up.subscribe();
        loop {
            if let Some(reason) = changes.borrow_and_update().clone() {
                return reason;
            }
            if changes.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The restarts of every account, by id (the dashboard's accounts panel).
    pub fn account_restarts(&self) -> HashMap<Uuid, u64> {
        self.lock()
            .nodes
            .iter()
            .filter(|(key, _)| key.kind == ChildKind::Account)
            .filter_map(|(key, node)| Some((key.id?, node.restarts())))
            .collect()
    }

    /// The whole tree, children sorted by kind then label.
    pub fn view(&self) -> NodeView {
        let registry = self.lock();
        let mut children: HashMap<&Key, Vec<&Key>> = HashMap::new();
        for (key, node) in &registry.nodes {
            if !node.retired {
                children.entry(&node.parent).or_default().push(key);
            }
        }
        let service_state = match registry.gave_up {
            Some(_) => ChildState::Stopped,
            None => ChildState::Running,
        };
        let fleet = fleet();
        let mut fleet_view = grouping(&fleet, ChildState::Running);
        fleet_view.children = views_of(&registry, &children, &fleet);
        let mut service = grouping(&root(), service_state);
        service.last_reason = registry.gave_up.clone();
        service.children = views_of(&registry, &children, &root());
        service.children.push(fleet_view);
        service
    }
}

/// A node that is not an actor: the service itself, the fleet.
fn grouping(key: &Key, state: ChildState) -> NodeView {
    NodeView {
        kind: key.kind,
        id: key.id_text(),
        label: key.id_text(),
        state,
        restarts: 0,
        last_restart_at: None,
        last_reason: None,
        children: Vec::new(),
    }
}

fn views_of(
    registry: &Registry,
    children: &HashMap<&Key, Vec<&Key>>,
    parent: &Key,
) -> Vec<NodeView> {
    let mut views: Vec<NodeView> = children
        .get(parent)
        .into_iter()
        .flatten()
        .filter_map(|key| {
            let node = registry.nodes.get(*key)?;
            let failures = node.failures.as_deref();
            Some(NodeView {
                kind: key.kind,
                id: key.id_text(),
                label: node.label.to_string(),
                state: node.state,
                restarts: node.restarts(),
                last_restart_at: failures.and_then(|failures| failures.last_restart_at),
                last_reason: failures.and_then(|failures| failures.last_reason.clone()),
                children: views_of(registry, children, key),
            })
        })
        .collect();
    views.sort_by(|a, b| (a.kind, &a.label, &a.id).cmp(&(b.kind, &b.label, &b.id)));
    views
}

/// A child's handle on its node: what its restart loop and the actor itself report.
#[derive(Clone)]
pub struct Child {
    supervision: Supervision,
    key: Key,
    generation: u64,
}

impl Child {
    /// Runs `change` on this child's node, if it is still this child's.
    fn with_node<R>(&self, change: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let mut registry = self.supervision.lock();
        registry
            .nodes
            .get_mut(&self.key)
            .filter(|node| node.generation == self.generation)
            .map(change)
    }

    pub fn kind(&self) -> ChildKind {
        self.key.kind
    }

    /// The account's or person's UUID, the kind's name for the others.
    pub fn id(&self) -> String {
        self.key.id_text()
    }

    /// Records a failure (a panic, a stop, a lost connection) and decides what follows: within
    /// the intensity the child restarts; beyond it the child is parked, or the service gives up.
    pub fn record_failure(&self, reason: &str) -> Verdict {
        let now = self.supervision.clock.now();
        let outcome = self.with_node(|node| {
            let intensity = node.intensity;
            let failures = node.failures();
            failures.restarts += 1;
            failures.last_restart_at = Some(now);
            failures.last_reason = Some(reason.to_owned());
            let verdict = failures.history.record(now, intensity);
            let recent = failures.history.recent();
            node.state = match (verdict, node.escalation) {
                (Verdict::Restart, _) if node.state == ChildState::Parked => ChildState::Parked,
                (Verdict::Restart, _) => ChildState::Restarting,
                (Verdict::GiveUp, Escalation::Park) => ChildState::Parked,
                (Verdict::GiveUp, Escalation::StopService) => ChildState::Stopped,
            };
            (verdict, node.escalation, recent, node.label.to_string())
        });
        let Some((verdict, escalation, recent, label)) = outcome else {
            return Verdict::Restart;
        };
        if verdict == Verdict::GiveUp {
            tracing::error!(
                kind = self.kind().as_str(),
                id = %self.id(),
                label,
                failures = recent,
                reason,
                "restart intensity exceeded"
            );
            if escalation == Escalation::StopService {
                let why = format!(
                    "{} failed {recent} times within its restart window (last: {reason})",
                    self.kind().as_str()
                );
                self.supervision.lock().gave_up.get_or_insert(why.clone());
                self.supervision.gave_up.send_replace(Some(why));
            }
        }
        verdict
    }

    /// Failures counted in the current window.
    pub fn recent_failures(&self) -> usize {
        self.with_node(|node| {
            node.failures
                .as_ref()
                .map_or(0, |failures| failures.history.recent())
        })
        .unwrap_or(0)
    }

    /// The child runs again after a restart (a parked child stays parked).
    pub fn running(&self) {
        self.with_node(|node| {
            if node.state == ChildState::Restarting {
                node.state = ChildState::Running;
            }
        });
    }

    pub fn is_parked(&self) -> bool {
        self.with_node(|node| node.state == ChildState::Parked)
            .unwrap_or(false)
    }

    /// Parks the child outside a restart (an account that cannot connect again).
    pub fn park(&self) {
        self.with_node(|node| node.state = ChildState::Parked);
    }

    /// The actor stops for good: its restart loop ends and the node leaves the tree.
    pub fn retire(&self) {
        self.with_node(|node| node.retired = true);
    }

    pub fn is_retired(&self) -> bool {
        self.with_node(|node| node.retired).unwrap_or(true)
    }

    /// Says why the actor is about to stop itself (its restart records this reason).
    pub fn stopping_because(&self, reason: String) {
        self.with_node(|node| node.failures().stop_reason = Some(reason));
    }

    pub(super) fn take_stop_reason(&self) -> Option<String> {
        self.with_node(|node| {
            node.failures
                .as_mut()
                .and_then(|failures| failures.stop_reason.take())
        })
        .flatten()
    }

    pub(super) fn set_panic_trigger(&self, trigger: PanicTrigger) {
        self.with_node(|node| node.panic_trigger = Some(trigger));
    }

    /// Takes the node out of the tree (its actor is gone).
    pub(super) fn remove(&self) {
        let mut registry = self.supervision.lock();
        if registry
            .nodes
            .get(&self.key)
            .is_some_and(|node| node.generation == self.generation)
        {
            registry.nodes.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Supervision {
        Supervision::new(Clock::fast(1.0))
    }

    #[test]
    fn the_tree_puts_accounts_under_the_fleet_and_people_under_their_account() {
        let supervision = tree();
        let intensity = RestartIntensity::new(5, 60);
        supervision.singleton(ChildKind::Storage, intensity);
        let account = Uuid::now_v7();
        supervision.account(account, "alice", intensity);
        let person = Uuid::now_v7();
        supervision.target(person, "@bob", Some(account), intensity);
        let lonely = Uuid::now_v7();
        supervision.target(lonely, "@carol", None, intensity);

        let view = supervision.view();
        assert_eq!(view.kind, ChildKind::Service);
        let kinds: Vec<ChildKind> = view.children.iter().map(|child| child.kind).collect();
        assert_eq!(kinds, vec![ChildKind::Storage, ChildKind::Fleet]);
        let fleet = &view.children[1];
        assert_eq!(fleet.children.len(), 2);
        assert_eq!(fleet.children[0].kind, ChildKind::Account);
        assert_eq!(fleet.children[0].label, "alice");
        assert_eq!(fleet.children[0].children[0].id, person.to_string());
        assert_eq!(fleet.children[1].label, "@carol");
    }

    #[test]
    fn a_child_beyond_its_intensity_is_parked_or_stops_the_service() {
        let supervision = tree();
        let intensity = RestartIntensity::new(1, 3600);
        let account = supervision.account(Uuid::now_v7(), "alice", intensity);
        assert_eq!(account.record_failure("boom"), Verdict::Restart);
        account.running();
        assert_eq!(account.record_failure("boom"), Verdict::GiveUp);
        account.running();
        assert!(account.is_parked());
        assert_eq!(supervision.gave_up(), None);

        let storage = supervision.singleton(ChildKind::Storage, intensity);
        storage.record_failure("disk");
        storage.record_failure("disk");
        let reason = supervision.gave_up().expect("the service gives up");
        assert!(reason.contains("storage failed 2 times"), "{reason}");
        assert_eq!(supervision.view().state, ChildState::Stopped);
    }

    #[test]
    fn a_retired_child_leaves_the_tree_and_its_successor_stays() {
        let supervision = tree();
        let id = Uuid::now_v7();
        let intensity = RestartIntensity::new(5, 60);
        let first = supervision.account(id, "alice", intensity);
        let second = supervision.account(id, "alice", intensity);
        first.retire();
        first.remove();
        assert!(!second.is_retired());
        assert_eq!(supervision.view().children[0].children.len(), 1);
        second.retire();
        assert!(supervision.view().children[0].children.is_empty());
    }

    #[test]
    fn faults_need_an_id_for_accounts_and_people_and_a_running_child() {
        let supervision = tree();
        assert_eq!(
            supervision.inject_panic(ChildKind::Account, None),
            Err(FaultError::IdRequired("account"))
        );
        let missing = Uuid::now_v7();
        assert!(matches!(
            supervision.inject_panic(ChildKind::Target, Some(missing)),
            Err(FaultError::NoSuchChild { .. })
        ));
        assert_eq!(
            supervision.inject_panic(ChildKind::Bot, None),
            Err(FaultError::NotRunning("bot"))
        );
        let storage = supervision.singleton(ChildKind::Storage, RestartIntensity::new(5, 60));
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        storage.set_panic_trigger(Box::new(move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            true
        }));
        assert_eq!(supervision.inject_panic(ChildKind::Storage, None), Ok(()));
        assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
    }
}

//! Carriers and dial plans changed while the switch runs (issue 15).
//!
//! Where they live: the database (`routing_documents`), one JSON document per carrier or
//! dial plan, seeded from the TOML's `[[carriers]]` and `[[dial_plans]]` at the first start.
//! From then on every node routes with the database's copy, so the console, the API and the
//! CLI change one place for the whole cluster; `talktime routes reseed` copies the TOML in
//! again. A change is validated against the whole routing before it is written, then the
//! sync task of each node loads it (addresses resolved and buy rates read here, never in the
//! core) and hands the core a [`RoutingUpdate`]: new calls route with it, calls in progress
//! keep their carrier.

use std::sync::Arc;
use std::time::Duration;

use talktime_b2bua::{Input, RoutingUpdate};
use talktime_routing::{CarrierConfig, DialPlanConfig};
use talktime_store::{RoutingDocument, RoutingKind, RoutingSnapshot, Store, StoreError};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::server::{CoreSender, wall_clock_ms};

/// One version of the carriers and dial plans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub version: i64,
    pub carriers: Vec<CarrierConfig>,
    pub dial_plans: Vec<DialPlanConfig>,
}

/// Why a change is refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The change would make the routing invalid; `field` names the form field at fault.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no {kind} named {name:?}")]
    NotFound { kind: &'static str, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored {0} is not readable JSON: {1}")]
    Corrupt(&'static str, String),
}

fn documents(
    carriers: &[CarrierConfig],
    dial_plans: &[DialPlanConfig],
) -> Result<Vec<RoutingDocument>, EditError> {
    let mut out = Vec::with_capacity(carriers.len() + dial_plans.len());
    for carrier in carriers {
        out.push(carrier_document(carrier)?);
    }
    for plan in dial_plans {
        out.push(plan_document(plan)?);
    }
    Ok(out)
}

fn carrier_document(carrier: &CarrierConfig) -> Result<RoutingDocument, EditError> {
    Ok(RoutingDocument {
        kind: RoutingKind::Carrier,
        name: carrier.name.clone(),
        document: serde_json::to_string(carrier)
            .map_err(|error| EditError::Corrupt("carrier", error.to_string()))?,
    })
}

fn plan_document(plan: &DialPlanConfig) -> Result<RoutingDocument, EditError> {
    Ok(RoutingDocument {
        kind: RoutingKind::DialPlan,
        name: plan.name.clone(),
        document: serde_json::to_string(plan)
            .map_err(|error| EditError::Corrupt("dial plan", error.to_string()))?,
    })
}

fn from_snapshot(snapshot: RoutingSnapshot) -> Result<Routing, EditError> {
    let mut routing = Routing {
        version: snapshot.version,
        ..Routing::default()
    };
    for document in snapshot.documents {
        match document.kind {
            RoutingKind::Carrier => routing.carriers.push(
                serde_json::from_str(&document.document)
                    .map_err(|error| EditError::Corrupt("carrier", error.to_string()))?,
            ),
            RoutingKind::DialPlan => routing.dial_plans.push(
                serde_json::from_str(&document.document)
                    .map_err(|error| EditError::Corrupt("dial plan", error.to_string()))?,
            ),
        }
    }
    Ok(routing)
}

/// The database's routing; `None` until it was seeded.
pub async fn load(store: &Store) -> Result<Option<Routing>, EditError> {
    store
        .routing_snapshot()
        .await?
        .map(from_snapshot)
        .transpose()
}

/// The routing to start with: the database's, seeded from the TOML at the first start. A
/// TOML that differs from the database afterwards is reported, not applied.
pub async fn load_or_seed(store: &Store, config: &Config) -> anyhow::Result<Routing> {
    if let Some(routing) = load(store).await? {
        if routing.carriers != config.carriers || routing.dial_plans != config.dial_plans {
            warn!(
                "the configuration file's carriers or dial plans differ from the database's; the \
                 database's are used (`talktime routes reseed` copies the file's in)"
            );
        }
        return Ok(routing);
    }
    let seed = documents(&config.carriers, &config.dial_plans)?;
    if store.seed_routing(&seed, wall_clock_ms()).await? {
        info!(
            carriers = config.carriers.len(),
            dial_plans = config.dial_plans.len(),
            "carriers and dial plans copied from the configuration into the database"
        );
    }
    load(store)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the routing was seeded but cannot be read back"))
}

/// Replaces the database's routing with the configuration file's (validated first).
pub async fn reseed(store: &Store, config: &Config) -> anyhow::Result<i64> {
    talktime_routing::validate(&config.carriers, &config.dial_plans)
        .map_err(|errors| anyhow::anyhow!("invalid routing configuration: {errors}"))?;
    let seed = documents(&config.carriers, &config.dial_plans)?;
    Ok(store.replace_routing(&seed, wall_clock_ms()).await?)
}

/// Changes carriers and dial plans for the console, the API and the CLI: each change is
/// checked against the whole routing before anything is written, then the node's sync task
/// is woken (and the caller may wait until the core routes with it).
#[derive(Debug, Clone)]
pub struct RoutingEditor {
    store: Store,
    /// Dial plans the configuration's access numbers route with (access number, plan).
    access_plans: Vec<(String, String)>,
    /// For `routes explain`: how a dialled number becomes E.164, the local time's offset.
    pub number_rules: talktime_routing::NumberRules,
    pub utc_offset_minutes: i32,
    changed: Arc<Notify>,
    applied: watch::Receiver<i64>,
}

impl RoutingEditor {
    /// An editor whose changes nobody applies (the CLI: running nodes notice them).
    pub fn offline(store: Store, config: &Config) -> RoutingEditor {
        let (_, applied) = watch::channel(0);
        RoutingEditor::new(store, config, Arc::new(Notify::new()), applied)
    }

    fn new(
        store: Store,
        config: &Config,
        changed: Arc<Notify>,
        applied: watch::Receiver<i64>,
    ) -> RoutingEditor {
        let access_plans = config
            .access_numbers
            .iter()
            .map(|access| (access.number.clone(), access.dial_plan.clone()))
            .collect();
        RoutingEditor {
            store,
            access_plans,
            number_rules: config.number_rules.clone(),
            utc_offset_minutes: config.billing.utc_offset_minutes,
            changed,
            applied,
        }
    }

    pub async fn current(&self) -> Result<Routing, EditError> {
        load(&self.store).await?.ok_or(EditError::Invalid {
            field: "name",
            message: "the routing was never seeded: start the switch once".into(),
        })
    }

    /// Adds a carrier, or replaces the one of that name.
    pub async fn put_carrier(&self, carrier: CarrierConfig) -> Result<i64, EditError> {
        let mut routing = self.current().await?;
        match routing.carriers.iter_mut().find(|c| c.name == carrier.name) {
            Some(existing) => *existing = carrier.clone(),
            None => routing.carriers.push(carrier.clone()),
        }
        check(&routing)?;
        self.written(
            self.store
                .put_routing_document(&carrier_document(&carrier)?, wall_clock_ms())
                .await?,
        )
        .await
    }

    /// Removes a carrier no route names.
    pub async fn delete_carrier(&self, name: &str) -> Result<i64, EditError> {
        let mut routing = self.current().await?;
        let before = routing.carriers.len();
        routing.carriers.retain(|carrier| carrier.name != name);
        if routing.carriers.len() == before {
            return Err(EditError::NotFound {
                kind: "carrier",
                name: name.to_owned(),
            });
        }
        check(&routing)?;
        let version = self
            .store
            .delete_routing_document(RoutingKind::Carrier, name)
            .await?;
        self.deleted(version, "carrier", name).await
    }

    /// Adds a dial plan, or replaces the one of that name.
    pub async fn put_dial_plan(&self, plan: DialPlanConfig) -> Result<i64, EditError> {
        let mut routing = self.current().await?;
        match routing.dial_plans.iter_mut().find(|p| p.name == plan.name) {
            Some(existing) => *existing = plan.clone(),
            None => routing.dial_plans.push(plan.clone()),
        }
        check(&routing)?;
        self.written(
            self.store
                .put_routing_document(&plan_document(&plan)?, wall_clock_ms())
                .await?,
        )
        .await
    }

    /// Removes a dial plan no access number routes with.
    pub async fn delete_dial_plan(&self, name: &str) -> Result<i64, EditError> {
        if let Some((access, _)) = self.access_plans.iter().find(|(_, plan)| plan == name) {
            return Err(EditError::Invalid {
                field: "name",
                message: format!("access number {access} routes with dial plan {name}"),
            });
        }
        let version = self
            .store
            .delete_routing_document(RoutingKind::DialPlan, name)
            .await?;
        self.deleted(version, "dial plan", name).await
    }

    async fn deleted(
        &self,
        version: Option<i64>,
        kind: &'static str,
        name: &str,
    ) -> Result<i64, EditError> {
        match version {
            Some(version) => self.written(version).await,
            None => Err(EditError::NotFound {
                kind,
                name: name.to_owned(),
            }),
        }
    }

    /// Wakes the sync task and waits (a few seconds at most) until the core routes with
    /// `version`: the caller's next call sees the change.
    async fn written(&self, version: i64) -> Result<i64, EditError> {
        self.changed.notify_one();
        let mut applied = self.applied.clone();
        let wait = applied.wait_for(|applied| *applied >= version);
        if tokio::time::timeout(APPLY_WAIT, wait).await.is_err() {
            warn!(
                version,
                "routing change written; the switch has not applied it yet"
            );
        }
        Ok(version)
    }
}

/// How long an edit waits for its node to route with it.
const APPLY_WAIT: Duration = Duration::from_secs(3);

/// The whole routing's check, the first problem as a field and a message.
fn check(routing: &Routing) -> Result<(), EditError> {
    talktime_routing::validate(&routing.carriers, &routing.dial_plans).map_err(|errors| {
        let first = errors.0.first();
        EditError::Invalid {
            field: first.map_or("name", talktime_routing::ConfigError::field),
            message: errors.to_string(),
        }
    })
}

/// What the sync task needs.
#[allow(missing_debug_implementations)]
pub struct Sync {
    pub store: Store,
    pub config: Config,
    pub transport: crate::transport::Transport,
    pub core: CoreSender,
    /// The version the core started with.
    pub version: i64,
}

/// Starts the node's sync task; returns the editor that wakes it.
pub fn spawn_sync(sync: Sync) -> RoutingEditor {
    let changed = Arc::new(Notify::new());
    let (applied_sender, applied) = watch::channel(sync.version);
    let editor = RoutingEditor::new(sync.store.clone(), &sync.config, changed.clone(), applied);
    let every = Duration::from_millis(sync.config.cluster.routing_check_ms.max(100));
    tokio::spawn(async move {
        let mut version = sync.version;
        loop {
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
            match sync.store.routing_version().await {
                Ok(Some(latest)) if latest != version => match apply(&sync, latest).await {
                    Ok(()) => {
                        version = latest;
                        applied_sender.send_replace(latest);
                    }
                    Err(error) => warn!(%error, "cannot apply the changed routing"),
                },
                Ok(_) => {}
                Err(error) => warn!(%error, "cannot read the routing version"),
            }
        }
    });
    editor
}

/// Loads the routing, prepares what the core cannot do itself (DNS, buy rates, TLS) and
/// hands it over.
async fn apply(sync: &Sync, version: i64) -> anyhow::Result<()> {
    let routing = load(&sync.store)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the routing is gone"))?;
    // A change two nodes made at once can clash: refuse it whole, keep routing as before.
    check(&routing)?;
    let carriers = routing.carriers.clone();
    let carrier_addresses =
        tokio::task::spawn_blocking(move || crate::startup::resolve_carriers(&carriers)).await?;
    let buy_rates = crate::startup::buy_rate_decks(&sync.store, &routing.carriers).await?;
    let tls = crate::tls::TlsClients::new(
        &sync.config.tls,
        &sync.config.paths.data_dir,
        &routing.carriers,
        &carrier_addresses,
    )?;
    sync.transport.set_tls_clients(tls);
    let update = RoutingUpdate {
        version: routing.version.max(version),
        carriers: routing.carriers,
        dial_plans: routing.dial_plans,
        buy_rates,
        carrier_addresses,
    };
    sync.core
        .send(Input::RoutingChanged(Box::new(update)))
        .await
        .map_err(|_| anyhow::anyhow!("the switch is stopping"))?;
    Ok(())
}

//! `gma views`: lists the analyst views of `views/` and creates them in BigQuery.

#[cfg(feature = "bigquery")]
use anyhow::Context;
use anyhow::{Result, bail};
use gma_pipeline::sql;
use gma_pipeline::views::{self, ViewDef, ViewSettings};
#[cfg(feature = "bigquery")]
use gma_pipeline::warehouse::Warehouse;

use crate::cli::{BigQueryArgs, ViewSettingsArgs, ViewsApplyArgs, ViewsArgs, ViewsCommand};

impl ViewSettingsArgs {
    /// The views' settings, reading events from `events_table`.
    pub fn settings(&self, events_table: &str) -> ViewSettings {
        let list = |values: &[String]| -> Vec<String> {
            values
                .iter()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        };
        ViewSettings {
            events_table: events_table.to_owned(),
            incident_labels: list(&self.incident_labels),
            production_environments: list(&self.production_environments),
            ..ViewSettings::default()
        }
    }
}

/// Runs one `gma views` subcommand.
pub async fn run(args: ViewsArgs) -> Result<()> {
    match args.command {
        ViewsCommand::List => {
            list();
            Ok(())
        }
        ViewsCommand::Apply(args) => apply(*args).await,
        ViewsCommand::Refresh(args) => crate::views_refresh::run(*args).await,
    }
}

fn list() {
    let width = views::VIEWS.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for view in views::VIEWS {
        println!(
            "{:<12}  {:<width$}  {}",
            view.layer.name(),
            view.name,
            view.summary()
        );
    }
}

/// The views `only` names, with the views they read; every view when `only` is empty.
fn selected(only: &[String]) -> Result<Vec<&'static ViewDef>> {
    if only.is_empty() {
        return Ok(views::VIEWS.iter().collect());
    }
    let mut named = Vec::new();
    for name in only {
        match views::find(name.trim()) {
            Some(view) => named.push(view),
            None => bail!("there is no view {name:?}; `gma views list` lists them"),
        }
    }
    Ok(views::with_dependencies(named))
}

async fn apply(args: ViewsApplyArgs) -> Result<()> {
    let chosen = selected(&args.only)?;
    let settings = args.views.settings(&args.bigquery.events_table);
    if args.dry_run {
        print_ddl(&args.bigquery, &settings, &chosen)
    } else {
        apply_in_bigquery(&args.bigquery, &settings, &chosen).await
    }
}

/// Prints the statements that create the views in the dataset the flags name.
fn print_ddl(bigquery: &BigQueryArgs, settings: &ViewSettings, chosen: &[&ViewDef]) -> Result<()> {
    let prefix = sql::bigquery_prefix(&bigquery.project()?, &bigquery.dataset()?);
    let print = |ddl: &str| println!("{};\n", sql::resolve(ddl, &prefix).trim_end());
    let typed: Vec<_> = chosen
        .iter()
        .filter_map(|view| view.typed_table())
        .collect();
    if !typed.is_empty() {
        println!(
            "-- The event views are typed tables, kept up to date by `gma views refresh` (schedule it);\n-- drop a view of the same name made by an earlier version before creating its table.\n"
        );
        print(sql::WATERMARKS.ddl);
        print(sql::REFRESH_REQUESTS.ddl);
    }
    for view in chosen {
        match view.typed_table() {
            Some(table) => print(table.ddl),
            None => print(&settings.create_statement(view)?),
        }
    }
    Ok(())
}

/// Creates the dataset and the events table if missing, then the views.
#[cfg(feature = "bigquery")]
async fn apply_in_bigquery(
    bigquery: &BigQueryArgs,
    settings: &ViewSettings,
    chosen: &[&ViewDef],
) -> Result<()> {
    let config = bigquery.warehouse_config()?;
    let warehouse = crate::backend::bigquery::warehouse(config.clone(), "gma views apply")?;
    warehouse
        .ensure_dataset()
        .await
        .with_context(|| format!("creating the dataset {}", config.dataset))?;
    let events = sql::EVENTS.renamed(&settings.events_table)?;
    warehouse
        .ensure_table(&events)
        .await
        .with_context(|| format!("creating the events table {events}"))?;
    warehouse.create_views(settings, chosen).await.context(
        "applying the views (those before the failed one are in place; run it again once fixed)",
    )?;
    println!(
        "applied {} views to {}.{}",
        chosen.len(),
        config.project,
        config.dataset
    );
    Ok(())
}

/// Refuses to apply the views in a build without BigQuery.
#[cfg(not(feature = "bigquery"))]
async fn apply_in_bigquery(
    _bigquery: &BigQueryArgs,
    _settings: &ViewSettings,
    _chosen: &[&ViewDef],
) -> Result<()> {
    Err(crate::backend::without_bigquery(
        "print the DDL with --dry-run",
    ))
}

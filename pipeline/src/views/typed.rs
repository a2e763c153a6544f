//! The typed event tables: each event view (layer [`Layer::Events`]) is also a table of the same
//! name holding the view's columns for every delivery, so the views above it read typed columns
//! instead of every payload of all history.
//!
//! The view's SELECT stays the one definition of a row: a refresh step projects the events that
//! landed in a window through it ([`ViewSettings::refresh_rows`]), with the events table inside
//! `unique_events` narrowed to the window, and appends the rows the table does not hold yet.

use super::{Layer, VIEWS, ViewDef, ViewError, ViewSettings};
use crate::sql::{self, TableDef};

/// Whether the event views are read from their typed tables or computed from payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventViews {
    /// From the typed tables the refresh keeps (the default).
    #[default]
    Typed,
    /// As views over `unique_events`, reading every payload at every query: their definition
    /// before typed tables, kept as the reference the typed tables are checked against.
    FromPayloads,
}

impl ViewDef {
    /// The typed table of an event view; `None` for the views of other layers.
    pub fn typed_table(&self) -> Option<TableDef> {
        (self.layer == Layer::Events)
            .then(|| sql::typed_table(self.name))
            .flatten()
    }

    /// The webhook event (`X-GitHub-Event`) an event view's rows come from: the value its
    /// `WHERE event = '...'` names.
    pub fn event_type(&self) -> Option<&'static str> {
        const MARK: &str = "WHERE event = '";
        let at = self.sql.rfind(MARK)? + MARK.len();
        let rest = &self.sql[at..];
        Some(&rest[..rest.find('\'')?])
    }
}

/// Every event view with its typed table, in [`VIEWS`] order.
pub fn typed_views() -> impl Iterator<Item = (&'static ViewDef, TableDef)> {
    VIEWS
        .iter()
        .filter_map(|view| view.typed_table().map(|table| (view, table)))
}

impl ViewSettings {
    /// These settings with the event views computed from payloads at every query
    /// ([`EventViews::FromPayloads`]): the reference the typed tables are checked against.
    #[must_use]
    pub fn reading_payloads(self) -> Self {
        Self {
            event_views: EventViews::FromPayloads,
            ..self
        }
    }

    /// The SELECT a refresh step runs for `view`'s typed table: the events of type
    /// [`ViewDef::event_type`] received in (`@after`, `@until`], deduplicated and projected
    /// exactly as the view does, less the delivery ids the table holds among its rows received
    /// after `@held_after`. Comments are left out (BigQuery's emulator reads quotes in them).
    ///
    /// # Errors
    /// [`ViewError::Setting`] for bad settings; [`ViewError::Shape`] when the view does not read
    /// `unique_events` as event views do (a bug caught by tests).
    pub fn refresh_rows(&self, view: &ViewDef) -> Result<String, ViewError> {
        let shape = |reason: &str| ViewError::Shape {
            view: view.name,
            reason: reason.to_owned(),
        };
        let event = view
            .event_type()
            .ok_or_else(|| shape("it names no event type (WHERE event = '...')"))?;
        let unique = super::find("unique_events").ok_or_else(|| shape("no unique_events"))?;
        let events_table = format!("`${{dataset}}{}`", self.events_table.trim());
        let window = sql::name_tables(
            &sql::strip_comments(sql::REFRESH_WINDOW),
            &[("events_table", self.events_table.trim())],
        )
        .replace("@event", &format!("'{event}'"));
        let unique = replace_once(
            &sql::strip_comments(&self.render(unique)?),
            &events_table,
            &format!("({}) AS refresh_window", window.trim()),
        )
        .ok_or_else(|| shape("unique_events does not read the events table once"))?;
        let projection = replace_once(
            &sql::strip_comments(&self.render(view)?),
            "`${dataset}unique_events`",
            &format!("({}) AS unique_events", unique.trim()),
        )
        .ok_or_else(|| shape("it does not read unique_events once"))?;
        Ok(sql::name_tables(
            &sql::strip_comments(sql::REFRESH_ROWS),
            &[("projection", projection.trim()), ("table", view.name)],
        ))
    }
}

/// `text` with its one occurrence of `from` replaced by `to`; `None` unless there is exactly
/// one.
fn replace_once(text: &str, from: &str, to: &str) -> Option<String> {
    (text.matches(from).count() == 1).then(|| text.replacen(from, to, 1))
}
